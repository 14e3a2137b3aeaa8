#!/bin/sh
# Written by belt: runs an engine install script (such as get.docker.com) when dockerd is absent.
# $1 is where to download it: another file of the private directory belt made for this install
# (never this script's own path, which sh is still reading), removed with it afterwards.
# For an https URL, curl is held to https through redirects too (--proto =https).
set -eu
url={{URL}}
installer=${1:?usage: sh install.sh INSTALLER_PATH}
if command -v curl >/dev/null 2>&1; then curl -fsSL {{CURL_PROTO}} "$url" -o "$installer"
elif command -v wget >/dev/null 2>&1; then wget -qO "$installer" "$url"
else echo "neither curl nor wget is installed" >&2; exit 127; fi
{{VERSION_ENV}} sh "$installer"
