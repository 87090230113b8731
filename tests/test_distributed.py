"""torchrun with 2 CPU processes: the Trainer trains under DDP and the ranks agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_distributed.py"


@pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed is not built in"
)
def test_two_processes_train_and_agree(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(EXAMPLE), "--epochs", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processes: 2, batch 64 per process" in result.stdout
    accuracy = float(re.search(r"Model accuracy: ([\d.]+)%", result.stdout).group(1))  # type: ignore[union-attr]
    assert accuracy >= 95.0
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["accuracy"] == ranks[1]["accuracy"]
    # Only rank 0 reports: one summary, one history table.
    assert result.stdout.count("Number of images tested") == 1
