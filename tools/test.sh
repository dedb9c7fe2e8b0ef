#!/usr/bin/env bash
# Set up and run the test suite (what .ci/run runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# the structure stays as CONTRIBUTING.md describes it: lint, types, no import cycle, layers kept
.venv/bin/ruff check --quiet lei_store tools tests
.venv/bin/mypy --no-error-summary
.venv/bin/python tools/import_graph.py >/dev/null || { .venv/bin/python tools/import_graph.py; exit 1; }
exec .venv/bin/python -m pytest "$@"
