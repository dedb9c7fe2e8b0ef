#!/usr/bin/env bash
# Install the Debian peers the tests talk to (lei, public-inbox-httpd, dovecot, notmuch, mu, git,
# xapian-tools, mbsync, headless chromium), and libjemalloc2, which the Xapian shard writers preload
# when it is present (README, Benchmarks).
# Needs root; without it, says so and exits 0: the tests that need a peer then skip.
set -uo pipefail
PKGS="lei public-inbox git sqlite3 xapian-tools notmuch maildir-utils dovecot-imapd isync chromium libjemalloc2"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && { echo "install-peers: all present"; exit 0; }
if [ "$(id -u)" != 0 ]; then
  echo "install-peers: not root, not installing:$missing (tests that need them will skip)"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null || {
  echo "install-peers: apt-get failed for:$missing" >&2; exit 1; }
echo "install-peers: installed$missing"
