"""User-facing errors and the CLI convention: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class TinyJaxError(Exception):
    """A mistake in what the user asked for (bad name, bad file, bad value): reported, not raised."""


class SpecError(TinyJaxError, ValueError):
    """A model spec, block string or net-config that is malformed; the message names the field."""


class UnknownModelError(TinyJaxError, KeyError):
    """A model name that is not in the zoo; the message names the closest zoo names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class WeightImportError(TinyJaxError, ValueError):
    """A state dict that does not fit the model (missing/unexpected key, wrong shape)."""


# -- deployment (tinyjax.codegen and the export) ---------------------------------------------------

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


class UnknownDeviceError(TinyJaxError, ValueError):
    """A device name that is not in :data:`DEVICES`; the message lists the valid ones."""


class ExportError(TinyJaxError):
    """An export that cannot be made as asked (output folder, device, options)."""


# -- units --------------------------------------------------------------------------------------------

class UnitError(TinyJaxError, ValueError):
    """A size or count that cannot be read, or is not positive."""


# -- data ---------------------------------------------------------------------------------------------

class DataError(TinyJaxError, ValueError):
    """A dataset that cannot be read as asked: unknown name, missing folder or split, unprepared data."""


# -- training (tinyjax.train) -------------------------------------------------------------------------

class ConfigError(TinyJaxError, ValueError):
    """A training configuration value that cannot work (unknown optimiser, bad schedule)."""


class ConfigFileError(TinyJaxError):
    """A config file or override that cannot be used."""


class RunDirError(TinyJaxError):
    """A directory that is not a usable training run; the message says what is missing."""


class CheckpointError(TinyJaxError):
    """A checkpoint that cannot be used (corrupt, or written by another configuration)."""


class TrainingDiverged(TinyJaxError):
    """The loss became NaN or infinite."""


# -- search (tinyjax.search) --------------------------------------------------------------------------

class SamplingError(TinyJaxError):
    """Arguments, ranges or work-directory files the sampler cannot use; the message says which."""


class SearchError(TinyJaxError):
    """A search that cannot go on as asked (budget, work directory)."""


class ExportCheckError(TinyJaxError):
    """The exported C did not build, or its outputs differ from the integer reference."""


class GPError(TinyJaxError, ValueError):
    """Data a GP cannot be fitted to, or a saved GP that is malformed."""


class EvolutionError(TinyJaxError):
    """A search the evolution cannot run: bad settings, a budget nothing fits, a saved state of
    another search; the message says what to change."""


class FormulaError(TinyJaxError, ValueError):
    """Points a formula cannot be fitted to, a malformed formula file, or a target it cannot meet."""


class Stopped(Exception):
    """Long work that a signal stopped after saving where it was (not a mistake of the user):
    :func:`run_cli` exits as ``python -m tinyjax.train`` does, 130 for SIGINT (Ctrl-C: scripts stop
    too) and 0 for SIGTERM (a preemption notice: a scheduler may simply rerun the command)."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message)
        self.signal_name = signal_name


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            prog: str = "tinyjax") -> int:
    """Run a CLI ``main``; a :class:`TinyJaxError` becomes ``prog: error: ...`` and exit code 2,
    Ctrl-C ``prog: interrupted`` and 130, :class:`Stopped` its message and 130 or 0."""
    try:
        return int(main(argv) or 0)
    except TinyJaxError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except Stopped as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 130 if e.signal_name == "SIGINT" else 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return 0
