#!/bin/bash
# Written by belt's local driver. Runs as PID 2 under tini (PID 1) in fresh mount, uts, ipc and pid
# namespaces inside the host's network namespace, and turns them into something that looks like a
# small VM: its own address, hostname, copy-on-write system directories, /var/lib/docker, /run,
# /tmp and sshd. Safe to run again on the same host directory (belt start after belt stop).
#
# usage: hostinit.sh NAME IP/PREFIX HOSTDIR [DIR_TO_HIDE...]
set -eu
trap 'echo "hostinit: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
NAME=$1 CIDR=$2 H=$3; shift 3
LIB=$H/lib
echo "hostinit: start $(date +%s.%N)"

ip link set lo up
ip addr replace "$CIDR" dev eth0
ip link set eth0 up
# Like a fresh VM: no forwarding (dockerd turns it on itself), no IPv6, and no default route, so
# nothing a host sends can leave this machine.
sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true

# A private /run first: scratch space for moving the cgroup tree.
mount -t tmpfs -o mode=755,nosuid,nodev,size=64m belt-run /run
mkdir -p /run/lock /run/sshd /run/.cg /run/belt-host
# The host directory may live under /root or /home (the default store is ~/.belt), which get
# fresh mounts below: pin it at a private path first and work from there.
mount --bind "$H" /run/belt-host
H=/run/belt-host
LIB=$H/lib
# The sysfs of this network namespace (what `ip netns exec` does), keeping the cgroup hierarchies:
# bound into a PRIVATE tmpfs, so that what runs here (the docker init script's cgroupfs_mount)
# never creates directories in the machine's own cgroup tmpfs.
mount --rbind /sys/fs/cgroup /run/.cg
umount -l /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
if [ "$(stat -fc %T /run/.cg)" = cgroup2fs ]; then
  mount --rbind /run/.cg /sys/fs/cgroup
else
  mount -t tmpfs -o mode=755,nosuid,nodev,noexec belt-cgroup /sys/fs/cgroup
  for c in /run/.cg/*; do
    mountpoint -q "$c" || continue
    mkdir -p "/sys/fs/cgroup/${c##*/}"
    mount --bind "$c" "/sys/fs/cgroup/${c##*/}"
  done
fi
umount -R -l /run/.cg
rmdir /run/.cg

# Copy-on-write system directories: daemon.json, apt, useradd stay in this host.
for d in etc usr var opt srv; do
  [ -d "/$d" ] || continue
  mkdir -p "$H/fs/$d" "$H/fs/.work/$d"
  mount -t overlay "belt-$d" -o "lowerdir=/$d,upperdir=$H/fs/$d,workdir=$H/fs/.work/$d" "/$d"
done
# Fresh /root and /home (the machine's dotfiles and tokens must not leak in, and its .bashrc may
# be slow), kept across restarts.
if [ ! -d "$H/fs/root" ]; then
  mkdir -p -m 700 "$H/fs/root"
  cp -a /etc/skel/. "$H/fs/root/"
fi
chmod 700 "$H/fs/root"
mkdir -p "$H/fs/home"
mount --bind "$H/fs/root" /root
mount --bind "$H/fs/home" /home
# The engine's data root on the real file system: overlay2 refuses an overlayfs backing.
mkdir -p "$H/docker" /var/lib/docker
mount --bind "$H/docker" /var/lib/docker

# Identity.
hostname "$NAME"
echo "$NAME" > /etc/hostname
printf '127.0.0.1 localhost\n%s %s\n' "${CIDR%/*}" "$NAME" > /etc/hosts
[ -s /etc/machine-id ] && [ -f "$H/.machine-id-set" ] || {
  head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/machine-id
  echo >> /etc/machine-id
  touch "$H/.machine-id-set"
}
echo "nameserver 127.0.0.1" > /etc/resolv.conf

# systemd is not PID 1 here: a small systemctl that runs dockerd from the unit and its drop-ins,
# and a sudo for root. Both live only in this host's /usr overlay.
install -m 755 "$LIB/systemctl" /usr/bin/systemctl
[ -e /usr/bin/sudo ] || install -m 755 "$LIB/sudo" /usr/bin/sudo
[ -e /usr/bin/dockerd ] || [ ! -e /usr/sbin/dockerd ] || ln -s /usr/sbin/dockerd /usr/bin/dockerd
# Without CAP_SYS_RESOURCE the stock init script's `ulimit -n 1048576` aborts under set -e.
if [ -f /etc/init.d/docker ]; then
  sed -i -e 's/^\(\s*\)ulimit -n 1048576$/\1ulimit -n 1048576 2>\/dev\/null || ulimit -n $(ulimit -Hn)/' \
         -e 's/^\(\s*\)ulimit -\([pu]\) unlimited$/\1ulimit -\2 unlimited 2>\/dev\/null || true/' /etc/init.d/docker
fi

# sshd with this host's own keys (made once, kept across restarts) and the cluster key for the
# login user: root, or the cloud user of $H/cloud-user (written by the driver for emulated images).
if [ ! -f "$H/.host-keys-made" ]; then
  rm -f /etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C "root@$NAME" -f /etc/ssh/ssh_host_ed25519_key
  ssh-keygen -q -t ecdsa -N '' -C "root@$NAME" -f /etc/ssh/ssh_host_ecdsa_key
  touch "$H/.host-keys-made"
fi
mkdir -p -m 700 /root/.ssh
if [ -s "$H/cloud-user" ]; then
  # A host that stands for a cloud image (the EC2 emulator's Ubuntu AMIs): the image's login user,
  # made as cloud-init makes its default user. The key in ~USER/.ssh/authorized_keys, passwordless
  # sudo, and root's copy of the key answering only "Please login as the user ..." (disable_root).
  # Password '*' rather than useradd's locked '!': sshd without PAM refuses locked accounts.
  U=$(cat "$H/cloud-user")
  case $U in ''|root|*[!a-z0-9_-]*|[!a-z_]*) echo "hostinit: '$U' cannot be the cloud login user" >&2; exit 1 ;; esac
  if [ ! -u /usr/bin/sudo ]; then
    echo "hostinit: a host whose login user is $U needs the real sudo on this machine: apt-get install sudo" >&2
    exit 1
  fi
  groups=$(for g in adm sudo; do getent group "$g" >/dev/null && printf '%s,' "$g"; done)
  id -u "$U" >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' ${groups:+-G "${groups%,}"} "$U"
  UH=$(getent passwd "$U" | cut -d: -f6)
  install -d -m 700 -o "$U" -g "$U" "$UH/.ssh"
  install -m 600 -o "$U" -g "$U" "$H/authorized_keys" "$UH/.ssh/authorized_keys"
  mkdir -p /etc/sudoers.d
  printf '# Created by belt local host init, as cloud-init does\n# User rules for %s\n%s ALL=(ALL) NOPASSWD:ALL\n' "$U" "$U" > /etc/sudoers.d/90-cloud-init-users
  chmod 440 /etc/sudoers.d/90-cloud-init-users
  while IFS= read -r key || [ -n "$key" ]; do
    [ -n "$key" ] || continue
    printf 'no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo '"'"'Please login as the user \\"%s\\" rather than the user \\"root\\".'"'"';echo;sleep 10;exit 142" %s\n' "$U" "$key"
  done < "$H/authorized_keys" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
else
  install -m 600 "$H/authorized_keys" /root/.ssh/authorized_keys
fi
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/00-belt-local.conf <<CONF
ListenAddress 0.0.0.0:22
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxStartups 200:30:400
MaxSessions 100
CONF

# Hide the operator's store and belt's own files: nothing in a host can read or change them.
for d in "$@"; do
  [ -d "$d" ] && mount -t tmpfs -o ro,size=4k,mode=755 belt-hidden "$d"
done
# A private /tmp last (the host directory may live under the machine's /tmp).
mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m belt-tmp /tmp

# Nothing below needs the host directory: unpin it (the overlays keep their own references).
umount -l /run/belt-host
rmdir /run/belt-host
/usr/sbin/sshd -E /var/log/sshd.log
echo "hostinit: ssh-ready $(date +%s.%N)"
# Stay as the host's keeper; tini reaps orphans.
while :; do sleep 3600 & wait $! || true; done
