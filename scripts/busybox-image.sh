#!/usr/bin/env bash
# Makes a Docker image archive (the format of `docker save`, which `docker load` and
# `belt image load` take) from this machine's static busybox (Debian package busybox-static):
# no daemon, no registry, no network. One layer: /bin/busybox, a symlink per applet in /bin, a
# minimal /etc/passwd and /etc/group, /tmp, and /www/index.html (the image's working directory, so
# that `httpd -f -p 8080` serves it). The archive is reproducible: the same busybox gives the same
# bytes (sorted entries, mtime 0, owner root), so the same image ID on every run.
#
# Usage: scripts/busybox-image.sh [OUTPUT] [TAG]
#   OUTPUT  the archive to write (default: belt-busybox.tar)
#   TAG     the image's name (default: belt/busybox:latest)
set -euo pipefail

out=${1:-belt-busybox.tar}
tag=${2:-belt/busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
  echo "Error: no static busybox at $busybox. Install it with: apt-get install busybox-static (or set BUSYBOX=/path/to/busybox)." >&2
  exit 5
fi
if file_out=$(LC_ALL=C ldd "$busybox" 2>&1) && ! grep -q 'not a dynamic executable\|statically linked' <<<"$file_out"; then
  echo "Error: $busybox is dynamically linked: an image of it alone would not run. Install busybox-static." >&2
  exit 5
fi
case "$tag" in
  *:*) ;;
  *) tag="$tag:latest" ;;
esac
if ! [[ "$tag" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "Error: '$tag' is not an image name Docker accepts (lower-case repository, then :tag), e.g. belt/busybox:latest." >&2
  exit 2
fi

case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
  amd64 | x86_64) arch=amd64 ;;
  arm64 | aarch64) arch=arm64 ;;
  armhf | armel | armv7l) arch=arm ;;
  i386 | i686) arch=386 ;;
  *) arch=$(uname -m) ;;
esac
# sed reads the whole banner: with `head -n 1` busybox (which writes its applet list one write()
# per name) could get SIGPIPE, and pipefail made the script exit with nothing on stderr.
version=$("$busybox" 2>&1 | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/www" "$root/tmp" "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'belt busybox httpd\n' >"$root/www/index.html"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

reproducible=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu)
image=$work/image
mkdir -p "$image"
tar "${reproducible[@]}" -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir -p "$image/$diff_id"
mv "$work/layer.tar" "$image/$diff_id/layer.tar"

created=1970-01-01T00:00:00Z
printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/www"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"scripts/busybox-image.sh (BusyBox %s, static)"}]}' \
  "$arch" "$created" "$diff_id" "$created" "$version" >"$work/config.json"
config_id=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$image/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config_id" "$tag" "$diff_id" >"$image/manifest.json"
printf '{"%s":{"%s":"%s"}}' "${tag%:*}" "${tag##*:}" "$config_id" >"$image/repositories"

tmp_out="$out.tmp.$$"
tar "${reproducible[@]}" -C "$image" -cf "$tmp_out" .
mv -f "$tmp_out" "$out"
echo "$out: $tag (busybox $version, $arch), image ID sha256:$config_id, $(du -k "$out" | cut -f1) KiB" >&2
