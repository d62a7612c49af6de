"""Microcontroller boards a network is exported to or searched for: how much SRAM and flash they have.

    device = get_device("stm32f746")    # Device(name, core, sram_bytes, flash_bytes, description)
    device.fits(peak_sram_bytes, flash_bytes)

Sizes are the chips' totals in bytes (kB = 1024 B), as MCUNet and TinyEngine quote them; the
firmware's code, stack and heap share them with the network, so a plan at the limit is tight.
``core`` is the ``tinyjax.codegen.targets`` target the chip's CPU matches.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple

from tinyjax.errors import UnknownDeviceError

__all__ = ["DEFAULT_MAX_MAC_OVERHEAD", "DEFAULT_TARGET", "DEVICES", "Device", "UnknownDeviceError",
           "get_device"]

KB = 1024
#: the core a plan is made for when neither a board nor a target is named (every CLI, the planner)
DEFAULT_TARGET = "cortex-m7"
#: the most recomputation a patch schedule may add by default, a fraction of the network's MACs
DEFAULT_MAX_MAC_OVERHEAD = 0.15


class Device(NamedTuple):
    """A board: its name, CPU core (a codegen target name), SRAM and flash in bytes."""

    name: str
    core: str
    sram_bytes: int
    flash_bytes: int
    description: str = ""

    def fits(self, sram_bytes: int, flash_bytes: int) -> bool:
        """Whether an arena of ``sram_bytes`` and constants of ``flash_bytes`` fit the chip."""
        return sram_bytes <= self.sram_bytes and flash_bytes <= self.flash_bytes

    def size_text(self) -> str:
        """``256 kB of SRAM and 1024 kB of flash``."""
        return f"{self.sram_bytes // KB} kB of SRAM and {self.flash_bytes // KB} kB of flash"


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("stm32f412", "cortex-m4", 256 * KB, 1024 * KB, "STM32F412, Cortex-M4F at 100 MHz"),
    Device("stm32f746", "cortex-m7", 320 * KB, 1024 * KB, "STM32F746, Cortex-M7 at 216 MHz"),
    Device("stm32h743", "cortex-m7", 512 * KB, 2048 * KB, "STM32H743, Cortex-M7 at 480 MHz"),
)}


def get_device(name: str) -> Device:
    """The :class:`Device` called ``name`` (case-insensitive); :class:`UnknownDeviceError`
    listing the valid names otherwise."""
    key = str(name).lower()
    if key in DEVICES:
        return DEVICES[key]
    close = difflib.get_close_matches(key, list(DEVICES), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UnknownDeviceError(f"unknown device {name!r}; {hint}valid devices: {', '.join(DEVICES)}")
