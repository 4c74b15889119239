#!/usr/bin/env bash
# Install the pinned Label Studio into its own virtualenv, .venv-labelstudio (gitignored),
# from requirements/labelstudio.lock — idempotently: nothing is done when the venv already
# has the lock's label-studio version. Its dependencies (Django, pydantic, ...) are pinned
# for Label Studio and would conflict with hlops's, so they never enter .venv.
#
# Prints the path of the label-studio executable on its last line; .ci/run exports it:
#   export HLOPS_LABEL_STUDIO="$(bash .ci/labelstudio.sh | tail -n 1)"
# Works on a fresh Debian machine as root (python3-venv is installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-labelstudio
lock=requirements/labelstudio.lock
want=$(sed -n 's/^label-studio==\(.*\)$/\1/p' "$lock")

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  start=$SECONDS
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r "$lock"
  echo "label-studio $want installed into $venv in $((SECONDS - start)) s" >&2
else
  echo "label-studio $want already in $venv" >&2
fi
# A migrated data dir (no user) the test fixture copies per instance: Label Studio's
# migrations cost ~40 s of CPU, paid here once instead of in every test session.
template="$venv/hlops-template-$want"
if [ ! -f "$template/label_studio.sqlite3" ]; then
  start=$SECONDS
  rm -rf "$template.tmp" && mkdir -p "$template.tmp"
  LATEST_VERSION_CHECK=false LABEL_STUDIO_BASE_DATA_DIR="$PWD/$template.tmp" USERNAME= PASSWORD= \
    "$venv/bin/label-studio" init --data-dir "$template.tmp" --quiet --no-browser >/dev/null
  rm -f "$template.tmp/.env"
  mv "$template.tmp" "$template"
  echo "migrated template data dir $template in $((SECONDS - start)) s" >&2
fi
echo "$PWD/$venv/bin/label-studio"
