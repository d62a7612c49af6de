"""Sizes and counts as people type them: ``320kB``, ``0.5MB``, ``100M`` (MACs), ``1.2G``.

Bytes follow the convention of MCU datasheets (docs/design.md): ``kB``/``KB``/``KiB``/``k`` = 1024 B,
``MB``/``MiB`` = 1024² B, ``GB``/``GiB`` = 1024³ B; a bare number is bytes. Counts (MACs, FLOPs) are
decimal as the papers quote them: ``K`` = 10³, ``M`` = 10⁶, ``G`` = 10⁹; a bare number is a count.
Both must be positive; a malformed or non-positive value raises :class:`UnitError`, whose message
is meant for one line of a CLI.
"""

from __future__ import annotations

import math
import re

from tinyjax.errors import UnitError

__all__ = ["UnitError", "format_bytes", "format_count", "parse_bytes", "parse_count"]

_BYTES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
          "mib": 1024 ** 2, "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3}
_COUNT = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def _parse(text: str, table: dict[str, int], what: str, example: str) -> int:
    m = _NUMBER.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in table:
        raise UnitError(f"cannot read {what} {text!r}; write it like {example}")
    value = float(m.group(1)) * table[unit]
    if not math.isfinite(value) or value <= 0:
        raise UnitError(f"{what} must be positive, got {text!r}")
    n = round(value)
    if n < 1:
        raise UnitError(f"{what} {text!r} is less than one")
    return n


def parse_bytes(text: str) -> int:
    """``"320kB"`` -> 327680 (kB = 1024 B); ``"1MB"`` -> 1048576; ``"4096"`` -> 4096."""
    return _parse(text, _BYTES, "a size", "320kB, 320KiB, 0.5MB or 4096 (bytes)")


def parse_count(text: str) -> int:
    """``"100M"`` -> 100_000_000; ``"1.2G"`` -> 1_200_000_000; ``"25e6"`` -> 25_000_000."""
    return _parse(text, _COUNT, "a count", "100M, 1.2G, 500K or 25e6")


def format_bytes(n: int) -> str:
    """``327680`` -> ``"320.0 kB"`` (kB = 1024 B)."""
    return f"{n / 1024 ** 2:.2f} MB" if n >= 1024 ** 2 else f"{n / 1024:.1f} kB"


def format_kb(n: float, grouped: bool = False) -> str:
    """``n`` bytes in kB with one decimal, the way plans and reports print them: ``"288.0 kB"``
    (``grouped``: thousands separated, ``"1,372.0 kB"``)."""
    return f"{n / 1024:,.1f} kB" if grouped else f"{n / 1024:.1f} kB"


def format_count(n: int) -> str:
    """``99536432`` -> ``"99.54M"``."""
    return f"{n / 1e9:.3f}G" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}K"
