"""Where tinyjax's C runtime is: the package data folder ``runtime/`` of ``tinyjax.codegen``.

``runtime/include`` holds ``arm_nn_types.h`` and ``arm_nnfunctions.h`` (CMSIS-NN v7's types and the
signatures of the functions generated code calls, so that the real library can replace the
runtime) and ``tjx_kernels.h`` (tinyjax's own kernels: in-place depthwise, table, channel gate,
pad). ``runtime/src`` holds their portable C99 implementations, bit-exact with
:mod:`tinyjax.codegen.numerics.intops`; built with ``__ARM_FEATURE_DSP`` (Cortex-M4/M7) they take the DSP
extension's SIMD paths and report its scratch sizes (the ``dsp`` column of the op table), otherwise
plain C (``plain``). ``-DTJX_DSP_EMULATION`` selects the DSP paths on any host, with portable
versions of the intrinsics, for testing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RUNTIME_DIR", "headers", "include_dir", "sources"]

#: the runtime folder (package data)
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"


def include_dir() -> Path:
    """The folder to put on the compiler's include path (``-I``)."""
    return RUNTIME_DIR / "include"


def headers() -> tuple[Path, ...]:
    """The public headers, sorted by name."""
    return tuple(sorted(include_dir().glob("*.h")))


def sources() -> tuple[Path, ...]:
    """The C files to compile (all of them: each is one kernel family), sorted by name. The
    private header ``src/tjx_nn_support.h`` sits beside them."""
    return tuple(sorted((RUNTIME_DIR / "src").glob("*.c")))
