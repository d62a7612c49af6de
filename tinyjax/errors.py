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


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            prog: str = "tinyjax") -> int:
    """Run a CLI ``main``; a :class:`TinyJaxError` becomes ``prog: error: ...`` and exit code 2."""
    try:
        return int(main(argv) or 0)
    except TinyJaxError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return 0
