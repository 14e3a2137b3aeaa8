#!/bin/sh
# Written by belt: runs an engine install script (such as get.docker.com) when dockerd is absent.
set -eu
url={{URL}}
if command -v curl >/dev/null 2>&1; then curl -fsSL "$url" -o /tmp/belt-install-engine.sh
elif command -v wget >/dev/null 2>&1; then wget -qO /tmp/belt-install-engine.sh "$url"
else echo "neither curl nor wget is installed" >&2; exit 127; fi
{{VERSION_ENV}} sh /tmp/belt-install-engine.sh
rm -f /tmp/belt-install-engine.sh
