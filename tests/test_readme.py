"""Every Python block of the README runs, so an example cannot drift from the code.

Each ```python block runs on its own, in a temporary working directory, as a user would paste it.
Files a block says the user already has (``tinynet_e.safetensors``: timm weights on disk) are made
first, from timm with random weights.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, request):
    code = BLOCKS[index]
    monkeypatch.chdir(tmp_path)
    if "tinynet_e.safetensors" in code:
        from safetensors.torch import save_file

        timm = request.getfixturevalue("timm")
        save_file(timm.create_model("tinynet_e").state_dict(), "tinynet_e.safetensors")
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})
