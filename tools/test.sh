#!/usr/bin/env bash
# Set up and run the test suite (what .ci/run runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/python -m pytest "$@"
