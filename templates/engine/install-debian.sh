#!/bin/sh
# Written by belt: installs the Docker engine from the distribution's packages (docker.io) when
# dockerd is absent. {{VERSION_PIN}} is empty or "=VERSION*"; {{APT_OPTS}} carries a proxy if given.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get {{APT_OPTS}} -o DPkg::Lock::Timeout=300 update -q
apt-get {{APT_OPTS}} -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends docker.io{{VERSION_PIN}}
