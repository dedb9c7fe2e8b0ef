#!/usr/bin/env bash
# The main job on a fresh machine: set up, write the bundled sample corpus, import it, search it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
rm -rf sample sample-store
.venv/bin/python tools/make_sample_corpus.py sample
LS=".venv/bin/lei-store --store sample-store"
$LS init
$LS import sample/maildir          # Maildir: flags become keywords, sync state recorded
$LS import mboxrd:sample/sample.mboxrd   # the same mail as mboxrd: everything is a duplicate
$LS import sample/maildir          # unchanged Maildir: nothing is read again
if $LS q --help >/dev/null 2>&1; then
  echo "--- messages about scrub, newest first:"; $LS q -f text-summary s:scrub | head -n 8
  echo "--- flagged patches:";                   $LS q -f text-summary 's:PATCH' AND kw:flagged | head -n 8
fi
