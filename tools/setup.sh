#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install lei_store into it with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# compat mode: the editable install is a plain path entry, so start-up loads no import hook
# (setuptools' default finder costs ~25 ms on every `lei-store` run)
# (should a future setuptools drop compat mode, the default editable install still works, only slower)
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat \
  || .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# byte-compile once: start-up time matters for `lei-store q`, even where PYTHONDONTWRITEBYTECODE is set
.venv/bin/python -m compileall -q lei_store >/dev/null
