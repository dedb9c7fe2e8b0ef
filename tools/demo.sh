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
echo "--- messages about scrub, newest first (lei q's language):"
$LS q -f summary -n 6 s:scrub
echo "--- flagged patches that touch scrub.c:"
$LS q -f summary kw:flagged AND dfn:scrub.c
echo "--- one message as JSON, the way lei q prints it:"
$LS q -f jsonl -n 1 'f:zoe@example.de' AND d:2024-03-01..2024-03-31
