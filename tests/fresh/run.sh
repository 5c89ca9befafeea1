#!/usr/bin/env bash
# The README's two commands on a fresh Debian, as a newcomer types them: a root made by debootstrap from
# this machine's Debian mirror (bookworm = Debian 12, trixie = Debian 13), the checkout copied in, the
# commands read from the README's first code block and run by an ordinary user, then by root.
#
#   sudo bash tests/fresh/run.sh bookworm|trixie
#
# Besides the README's words, the root gets only what a Linux desktop has: Python 3, sudo, an X server
# (Xvfb here) and the window's system libraries the README names, a resolver and the CA bundle of the
# network it is on, and (for the tests) ../shared bind-mounted beside the checkout. CI=true is not passed
# in: tests that need a tool no desktop has skip there with the package's name, as on a newcomer's machine.
# The app's command ends in `vbg`, the window on the webcam; a root has no webcam, so after installing
# exactly as written the window is opened on a real clip for 8 s and must show frames and exit 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
suite=${1:?usage: run.sh bookworm|trixie}
base=${FRESH_ROOTS:-/var/tmp/vbg-fresh}
root=$base/$suite
shared=$(cd .. && pwd)/shared

mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "fresh: no Debian mirror in this machine's apt sources" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq debootstrap; }

# the README's first code block: line 1 installs and opens the app, line 2 runs the tests
mapfile -t commands < <(awk '/^```/{n++; next} n == 1' README.md | sed 's/ *# .*$//' | sed '/^$/d')
[ ${#commands[@]} -eq 2 ] || { echo "fresh: the README's first code block must hold exactly two commands" >&2; exit 1; }
app=${commands[0]} tests=${commands[1]}

# the fresh system is kept as a tarball (made once: debootstrap takes a minute or two); every run starts
# from a pristine copy of it, so nothing a previous run installed is there
desktop=python3,sudo,ca-certificates,xvfb,libxcb-cursor0,libxkbcommon-x11-0,libxcb-icccm4,libxcb-keysyms1
desktop=$desktop,libxcb-shape0,libxcb-render-util0,libxcb-image0,libxcb-randr0,libxcb-sync1,libxcb-xfixes0
glib=libglib2.0-0
[ "$suite" = bookworm ] || glib=libglib2.0-0t64   # renamed in Debian 13 (64-bit time_t); apt still takes the old name
desktop=$desktop,libx11-xcb1,libegl1,libgl1,libfontconfig1,$glib,libdbus-1-3,libgssapi-krb5-2
image=$base/$suite-$(md5sum <<< "$desktop" | cut -c1-8).tar   # a new list of packages makes a new image
unmount_all() { { grep -o " $root/[^ ]*" /proc/mounts || true; } | sort -r | xargs -r -n 1 umount -l; }
unmount_all   # a run that was killed may have left its mounts: never delete through them
if [ ! -f "$image" ]; then
    rm -rf --one-file-system "$root"
    mkdir -p "$base"
    debootstrap --variant=minbase --include="$desktop" "$suite" "$root" "$mirror" > "$base/$suite-debootstrap.log" 2>&1 || {
        tail -n 20 "$base/$suite-debootstrap.log"; echo "fresh: debootstrap $suite failed" >&2; exit 1; }
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    chroot "$root" apt-get update -qq   # a desktop's package lists are current
    chroot "$root" useradd --create-home --shell /bin/bash newcomer
    echo "newcomer ALL=(ALL) NOPASSWD: ALL" > "$root/etc/sudoers.d/newcomer"
    tar -C "$root" -cf "$image.part" . && mv "$image.part" "$image"
fi
rm -rf --one-file-system "$root"
mkdir -p "$root"
tar -C "$root" -xf "$image"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -f "$root/etc/apt/sources.list.d/debian.sources" ] || echo "deb $mirror $suite main" > "$root/etc/apt/sources.list"

mounted=()
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; unmount_all; }
trap cleanup EXIT
mount_in() { mkdir -p "$root$2"; mount "${@:3}" "$1" "$root$2"; mounted+=("$root$2"); }
mount_in proc /proc -t proc
mount_in sysfs /sys -t sysfs
mount_in /dev /dev --bind
mount_in /dev/pts /dev/pts --bind
mkdir -p "$root/home/newcomer/shared"
mount_in "$shared" /home/newcomer/shared --bind -o ro

home=/home/newcomer
rm -rf "$root$home/vbg"
mkdir -p "$root$home/vbg"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$root$home/vbg"
chroot "$root" chown -R newcomer:newcomer $home/vbg

as_newcomer() { chroot "$root" runuser -u newcomer -- env -i HOME=$home PATH=/usr/local/bin:/usr/bin:/bin \
                TERM=dumb bash -lc "cd ~/vbg && $1"; }
as_root() { chroot "$root" env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            TERM=dumb bash -lc "cd $home/vbg && $1"; }
clip=$home/shared/data/clips/indoor_woman_1280x720.mp4
os=$(. "$root/etc/os-release" && echo "$PRETTY_NAME")

for who in newcomer root; do
    run=as_$who
    install=${app% && *vbg}   # everything before the final `vbg`: the install, exactly as written
    [ "$install" != "$app" ] || { echo "fresh: the README's first command must end by running vbg" >&2; exit 1; }
    echo "FRESH $os as $who: $install"
    t0=$SECONDS
    $run "$install" > /tmp/vbg-fresh-$suite-$who-install.log 2>&1 || {
        tail -n 30 /tmp/vbg-fresh-$suite-$who-install.log; echo "FRESH $os as $who: install FAILED"; exit 1; }
    echo "FRESH $os as $who: installed in $((SECONDS - t0)) s"
    vbg=$(awk '{print $NF}' <<< "$app")
    # the window, on a clip under a real X server, for 8 s: frames shown, clean exit
    $run "Xvfb :77 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & x=\$!; sleep 2;
          DISPLAY=:77 VBG_MODEL=$home/shared/models/pphumanseg_v2_portrait_lite_256x144.onnx \
          $vbg gui --input $clip --loop --no-vcam --duration 8 --status-every 4; rc=\$?; kill \$x; exit \$rc" \
        > /tmp/vbg-fresh-$suite-$who-app.log 2>&1 || {
        tail -n 20 /tmp/vbg-fresh-$suite-$who-app.log; echo "FRESH $os as $who: app FAILED"; exit 1; }
    status=$(grep -E "^vbg: +[0-9.]+ fps" /tmp/vbg-fresh-$suite-$who-app.log | tail -n 1 || true)
    echo "FRESH $os as $who: app: ${status:0:110}"
    awk '{ if ($3 == "fps" && $2 > 0) shown = 1 } END { exit !shown }' <<< "$status" || {
        tail -n 20 /tmp/vbg-fresh-$suite-$who-app.log; echo "FRESH $os as $who: the window showed no frames"; exit 1; }
done

echo "FRESH $os: $tests"
t0=$SECONDS
as_newcomer "VBG_SHARED=$home/shared $tests" > /tmp/vbg-fresh-$suite-tests.log 2>&1 || {
    tail -n 40 /tmp/vbg-fresh-$suite-tests.log; echo "FRESH $os: tests FAILED"; exit 1; }
echo "FRESH $os: $(tail -n 1 /tmp/vbg-fresh-$suite-tests.log) ($((SECONDS - t0)) s)"
