#!/usr/bin/env bash
# The bench's own venv for its peers (bench/bench_wire.py, row 3): ansible-core, pinned.
# Kept apart from the project's .venv so the peer's dependencies never reach hlops's.
#   bash bench/peers/setup.sh            # creates bench/.venv-peers (idempotent)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv-peers"
ANSIBLE_CORE="ansible-core==2.19.14"  # the newest series that runs on Python 3.11
if [ ! -x "$venv/bin/ansible-playbook" ] || ! "$venv/bin/pip" show -q ansible-core 2>/dev/null | grep -q .; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "$ANSIBLE_CORE"
"$venv/bin/ansible-playbook" --version
