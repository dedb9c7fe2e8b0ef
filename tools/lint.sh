#!/usr/bin/env bash
# The structure stays as CONTRIBUTING.md describes it: ruff (lint), mypy (types), and the import
# graph (no cycle, layers kept). ruff and mypy live in .lint-venv, apart from .venv: mypy brings
# typing_extensions, which msgspec would then import on every lei-store start.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .lint-venv/bin/python ] || "$PY" -m venv .lint-venv
.lint-venv/bin/python -m pip install -q --disable-pip-version-check "ruff>=0.6" "mypy>=1.10"
.lint-venv/bin/ruff check --quiet lei_store tools tests
.lint-venv/bin/mypy --no-error-summary --python-executable .venv/bin/python
.venv/bin/python tools/import_graph.py >/dev/null || { .venv/bin/python tools/import_graph.py; exit 1; }
