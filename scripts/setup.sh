#!/usr/bin/env bash
# Create (or update) .venv with PyTorch and digitrec in editable mode.
#
# torch is installed on its own first: pip takes the pinned CPU wheel where one is
# available locally, and the project's own range (torch>=2.2) is then already met,
# so pip does not reach for a multi-GB CUDA build. Override with TORCH_SPEC, e.g.
# TORCH_SPEC="torch>=2.2" bash scripts/setup.sh.
#
# Usage: bash scripts/setup.sh [EXTRAS]   (default extras: dev,docs)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev,docs}"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
py=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if ! "$py" -c "import torch" 2>/dev/null; then
  "$py" -m pip install --quiet "$torch_spec"
fi
"$py" -m pip install --quiet -e ".[${extras}]"
"$py" -c "import digitrec, torch; print(f'digitrec {digitrec.__version__} with torch {torch.__version__} in .venv')"
