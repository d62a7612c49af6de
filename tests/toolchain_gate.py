"""Which C tools a test needs: missing ones skip it locally and fail it on CI (``CI=true``), where
``.ci/run`` installs them (``tinyjax.codegen.emit.toolchain.APT_INSTALL``)."""

from __future__ import annotations

import os

import pytest

from tinyjax.codegen.emit import toolchain
from tinyjax.errors import ToolchainError

#: the tools an MCU test needs (newlib's rdimon is checked with the compiler)
MCU_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "arm-none-eabi-objdump",
             "qemu-system-arm")


def require_tools(*tools: str) -> dict[str, str]:
    """``{tool: path}`` for each of ``tools`` (``"gcc"`` means the host compiler, ``$CC``); skips the
    test when one is missing, or fails it when ``CI=true``."""
    out: dict[str, str] = {}
    for tool in tools:
        try:
            out[tool] = toolchain.host_compiler() if tool == "gcc" else toolchain.require(tool)
            if tool == "arm-none-eabi-gcc":
                toolchain.require_newlib()
        except ToolchainError as e:
            if os.environ.get("CI") == "true":
                pytest.fail(f"missing tool {tool} under CI=true; .ci/run installs it ({e})")
            pytest.skip(str(e))
    return out
