"""The README's quickstart is code users paste: it must run and say what it claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def test_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README.md has no python code block"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert "Number of images tested: 10000" in out
    accuracy = float(
        next(line for line in out if line.startswith("Model accuracy")).split()[-1][:-1]
    )
    assert accuracy >= 97.0
    assert out[-1] == "7 7"
