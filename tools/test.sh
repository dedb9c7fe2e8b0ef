#!/usr/bin/env bash
# Set up and run the test suite (what .ci/run runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/lint.sh  # ruff, mypy, the import graph
exec .venv/bin/python -m pytest "$@"
