#!/bin/sh
# Chromium for the web app's browser tests (tests/web): Debian's package, never a browser
# download. Run as root on a fresh Debian machine; idempotent. Prints the binary's path.
# The tests find /usr/bin/chromium themselves (or $HLOPS_CHROMIUM), and fail under CI=true
# when it is missing.
set -eu
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi
command -v chromium || echo /usr/bin/chromium
