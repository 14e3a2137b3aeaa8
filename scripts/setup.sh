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

# sudo: the EC2 emulator's hosts log in as ubuntu and bootstrap through sudo, like Ubuntu AMIs.
# busybox-static: scripts/busybox-image.sh makes the quick start's image from it (no registry needed).
# ansible-core: the many-hosts test runs Ansible against `belt inventory` (host keys checked strictly).
# g++, make, python3: node-gyp builds ssh2's native crypto binding (below).
pkgs=(docker.io openssh-server openssh-client iproute2 tini curl openssl ca-certificates util-linux sudo busybox-static ansible-core g++ make python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The engine-install integration test installs docker.io inside a test host from a local APT
# repository the test serves itself (tests never reach the internet): cache the .deb here, once.
# The version installed on this machine, so that its dependencies (containerd, runc, tini,
# iptables, ... all present on this machine and so in every host) are satisfied and docker.io
# alone is enough; the candidate version when the installed one is no longer in the archive.
debs=.belt-test/debs
docker_version=$(dpkg-query -W -f='${Version}' docker.io)
docker_candidate=$(apt-cache policy docker.io | awk '$1 == "Candidate:" {print $2}')
cached_deb() {
  local f v
  for f in "$debs"/docker.io_*.deb; do
    [ -f "$f" ] || continue
    v=$(dpkg-deb -f "$f" Version)
    [ "$v" = "$docker_version" ] || [ "$v" = "$docker_candidate" ] && return 0
  done
  return 1
}
if ! cached_deb; then
  echo "setup: downloading docker.io $docker_version into $debs (for test/integration/engine-install.test.ts)" >&2
  mkdir -p "$debs"
  rm -f "$debs"/docker.io_*.deb
  fetch() { (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$@"); }
  fetch "docker.io=$docker_version" 2>/dev/null || { apt-get update -qq && { fetch "docker.io=$docker_version" || fetch docker.io; }; }
fi

export PATH="/usr/local/bin:$PATH"
if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)'; then
  echo "setup: installing Node.js 22 LTS into /usr/local (npm package node@22)" >&2
  npm install -g --prefix /usr/local --no-fund --no-audit node@22 >/dev/null
  hash -r
fi
echo "setup: node $(node --version), npm $(npm --version)" >&2

# Native addons (ssh2's crypto binding, cpu-features) must be compiled against the headers of the
# Node that runs them. A distribution's npm points node-gyp at its own Node's headers (nodedir=/usr
# in Debian's and NodeSource's npmrc); built against Node 20 there, the binding fails to load in
# Node 22 ("did not self-register") and ssh2 silently falls back to JavaScript crypto, which costs
# about a third more of Belt's CPU per host. Use the headers that come with this Node (node@22
# ships them, in node-linux-<arch>), matched by ABI version; without any, node-gyp downloads the
# right ones from nodejs.org (and setup warns below when that fails).
abi=$(node -p process.versions.modules)
unset npm_config_nodedir
for d in /usr/local/lib/node_modules/node/node_modules/node-linux-* "$(dirname "$(readlink -f "$(command -v node)")")/.." /usr/local /usr; do
  h="$d/include/node/node_version.h"
  if [ -f "$h" ] && grep -Eq "^#define NODE_MODULE_VERSION $abi\$" "$h"; then
    export npm_config_nodedir="$(cd "$d" && pwd)"
    break
  fi
done
[ -n "${npm_config_nodedir:-}" ] || export npm_config_nodedir=""
npm ci --no-fund --no-audit --loglevel=error
if node -e "require('./node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node')" 2>/dev/null; then
  echo "setup: ssh2's native crypto binding is built for node $(node --version)" >&2
else
  echo "setup: warning: ssh2's native crypto binding did not build (no C++ toolchain?); SSH works, with more CPU per host" >&2
fi
npm run --silent build
ln -sf "$PWD/bin/run.js" /usr/local/bin/belt
echo "setup: belt is $(command -v belt)" >&2
