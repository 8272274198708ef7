#!/usr/bin/env bash
# Install everything aar needs on a fresh Debian/Ubuntu machine: system packages, a virtualenv in
# .venv with the project and its extras. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
need_apt=()
[ -f /usr/share/wordnet/data.noun ] || need_apt+=(wordnet-base)          # the built-in testbeds' data
command -v bwrap >/dev/null || need_apt+=(bubblewrap)                     # the default sandbox
[ -x /usr/bin/chromium ] || need_apt+=(chromium)                          # dashboard browser tests (playwright)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# Exactly the versions in requirements.lock (refresh it with scripts/lock.sh). torch is pinned to the
# 2.13.0 CPU build, which lies on disk here; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/pip install -q -c requirements.lock torch==2.13.0
.venv/bin/pip install -q -c requirements.lock -e ".[$(cat scripts/extras.txt)]"
echo "aar installed in .venv (activate with: source .venv/bin/activate)"
