#!/usr/bin/env bash
# Installs everything Belt needs on Debian 12 as root, idempotently: the system packages the local
# driver and the tests use, Node.js 22 LTS (from the npm registry's `node@22` when the machine's Node
# is older), the npm dependencies, the build, and a `belt` command in /usr/local/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "Error: scripts/setup.sh installs system packages: run it as root (sudo $0)." >&2
  exit 5
fi

pkgs=(docker.io openssh-server openssh-client iproute2 tini curl openssl ca-certificates util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="/usr/local/bin:$PATH"
if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)'; then
  echo "setup: installing Node.js 22 LTS into /usr/local (npm package node@22)" >&2
  npm install -g --prefix /usr/local --no-fund --no-audit node@22 >/dev/null
  hash -r
fi
echo "setup: node $(node --version), npm $(npm --version)" >&2

npm ci --no-fund --no-audit --loglevel=error
npm run --silent build
ln -sf "$PWD/bin/run.js" /usr/local/bin/belt
echo "setup: belt is $(command -v belt)" >&2
