"""The errors ``tinyjax.codegen`` reports to users: each one line that says what is wrong and what to
do; every CLI turns them into ``prog: error: ...`` and exit code 2 (:func:`tinyjax.errors.run_cli`)."""

from __future__ import annotations

from tinyjax.errors import TinyJaxError


class GraphError(TinyJaxError, ValueError):
    """A graph that is not well formed, or a network the int8 graph cannot express."""


class QuantizationError(TinyJaxError, ValueError):
    """A graph, parameter set or range table the int8 quantiser cannot handle."""


class LoweringError(TinyJaxError, ValueError):
    """A network (layer, primitive) that the int8 graph IR cannot express."""


class PlanError(TinyJaxError, ValueError):
    """A memory plan that cannot be made or is wrong (bad buffers, overlap, misalignment)."""


class UnknownTargetError(TinyJaxError, ValueError):
    """A target name that is not in ``kernels.TARGETS``; the message lists the valid ones."""


class ToolchainError(TinyJaxError, RuntimeError):
    """A C toolchain step that could not run or failed: a missing tool (the message names the Debian
    packages to install), a compiler error (:attr:`stderr` holds the compiler's full messages, the
    message its first error), an emulator run that timed out."""

    def __init__(self, message: str, *, stderr: str = "", command: tuple[str, ...] = ()):
        super().__init__(message)
        #: the failing tool's full standard error ('' when it did not run)
        self.stderr = stderr
        #: the command line that failed (empty when it did not run)
        self.command = tuple(command)
