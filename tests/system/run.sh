#!/usr/bin/env bash
# System test on a real Linux kernel: boots Debian's kernel under qemu (TCG: no KVM here) with the host's
# root filesystem over 9p (read-only), loads v4l2loopback as a webcam and as vbg's virtual camera
# (exclusive_caps=1), and runs tests/system/guest.py inside, which runs the installed vbg against real V4L2
# devices and real readers (ffmpeg, OpenCV, Chromium, and Firefox ESR where installed). One result line a scenario.
#
# It does so once for each v4l2loopback in use: 0.12.7 (Debian 12, Ubuntu 24.04: the DKMS build of
# v4l2loopback-dkms) and 0.13.2 (bookworm-backports) and 0.15.0 (Debian 13, Fedora, Arch), both built here
# for the test kernel from Debian's v4l2loopback-dkms sources (fetched with apt-get download).
#
#   sudo apt-get install qemu-system-x86 busybox-static cpio ffmpeg linux-image-amd64 linux-headers-amd64 \
#        v4l2loopback-dkms chromium firefox-esr   # (what .ci/run installs)
#   bash tests/system/run.sh [PYTHON]   # PYTHON: the interpreter with vbg installed (default: .venv/bin/python)
#
# Needs root (qemu's 9p export of / must read every file). Output: the guests' logs on stdout, frames read
# back from the virtual camera in $VBG_SYSTEM_OUT/<driver version> (default /tmp/vbg-system), exit 0 when
# every scenario passed on every driver. VBG_SYSTEM_DRIVERS="0.12.7 0.15.0" runs fewer.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="$(cd "$(dirname "${1:-$ROOT/.venv/bin/python}")" && pwd)/$(basename "${1:-$ROOT/.venv/bin/python}")"
OUT="${VBG_SYSTEM_OUT:-/tmp/vbg-system}"
TIMEOUT="${VBG_SYSTEM_TIMEOUT:-1200}"
KVER="$(ls /lib/modules | sort -V | tail -1)"
KERNEL="/boot/vmlinuz-$KVER"
[ -r "$KERNEL" ] || { echo "system: no Debian kernel in /boot (apt-get install linux-image-amd64)"; exit 2; }
modinfo -k "$KVER" v4l2loopback >/dev/null 2>&1 || { echo "system: v4l2loopback is not built for $KVER (apt-get install linux-headers-amd64 v4l2loopback-dkms)"; exit 2; }

DRIVERS="${VBG_SYSTEM_DRIVERS:-0.12.7 0.13.2 0.15.0}"
BUILT="${VBG_SYSTEM_MODULES:-/var/tmp/vbg-v4l2loopback}/$KVER"

# v4l2loopback.ko for VERSION from Debian's DKMS source package, built once for $KVER and kept in $BUILT
module_for() {
    local version="$1" pkg dir
    # the DKMS build installed for this kernel (0.12.7's module declares no version: its package says it)
    local installed
    installed="$(modinfo -k "$KVER" -F version v4l2loopback 2>/dev/null)"
    [ -n "$installed" ] || installed="$(dpkg-query -W -f '${Version}' v4l2loopback-dkms 2>/dev/null | cut -d- -f1)"
    [ "$installed" = "$version" ] && { echo ""; return; }
    if [ ! -f "$BUILT/$version/v4l2loopback.ko" ]; then
        case "$version" in
            0.13.2) pkg="v4l2loopback-dkms=0.13.2-1~bpo12+1"; suite="bookworm-backports";;
            0.15.0) pkg="v4l2loopback-dkms=0.15.0-2"; suite="trixie";;
            *) echo "system: no source known for v4l2loopback $version" >&2; return 1;;
        esac
        dir="$(mktemp -d)"
        mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
        echo "deb http://deb.debian.org/debian $suite main" > "$dir/sources.list"
        local apt=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
                   -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Sandbox::User=root)
        apt-get "${apt[@]}" update -qq >&2 && (cd "$dir" && apt-get "${apt[@]}" download -qq "$pkg" >&2) || {
            echo "system: could not download $pkg from Debian's $suite" >&2; return 1; }
        dpkg-deb -x "$dir"/v4l2loopback-dkms_*.deb "$dir/root"
        local src=("$dir"/root/usr/src/v4l2loopback-*)
        make -s -C "/lib/modules/$KVER/build" M="$src" modules >&2 2>/dev/null || {
            echo "system: v4l2loopback $version does not build for $KVER" >&2; return 1; }
        mkdir -p "$BUILT/$version"
        cp "$src/v4l2loopback.ko" "$BUILT/$version/"
        rm -rf "$dir"
    fi
    echo "$BUILT/$version/v4l2loopback.ko"
}

SHARED="$(cd "${VBG_SHARED:-$ROOT/../shared}" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"; mkdir -p "$OUT"
# the webcam's footage: a real clip at 640x480, 10 fps (the guest runs vbg about 100x slower than this machine)
ffmpeg -nostdin -loglevel error -i "$SHARED/data/clips/indoor_woman_1280x720.mp4" -t 12 \
    -vf "crop=960:720,scale=640:480,fps=10" -c:v mjpeg -q:v 4 "$OUT/webcam.avi"
# a webcam's damaged MJPG: bytes flipped (ffmpeg's noise filter), visibly in about a third of the frames
ffmpeg -nostdin -loglevel error -i "$OUT/webcam.avi" -c:v copy -bsf:v noise=amount=30000 "$OUT/webcam_damaged.avi"
command -v chromium >/dev/null || { echo "system: no chromium, the call app of the browser scenarios (apt-get install chromium)"; exit 2; }

# initramfs: busybox, the modules that mount the host's root over virtio-9p, and an init that does it
mkdir -p "$WORK/initrd/bin" "$WORK/initrd/modules" "$WORK/initrd/newroot"
cp /bin/busybox "$WORK/initrd/bin/"
for m in virtio_pci 9pnet_virtio 9p; do modprobe -S "$KVER" --show-depends "$m"; done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' |
while read -r f; do
    m="$(basename "$f" | sed 's/\.ko.*//')"
    case "$f" in *.xz) xz -dc "$f" > "$WORK/initrd/modules/$m.ko";; *.zst) zstd -qdc "$f" > "$WORK/initrd/modules/$m.ko";; *) cp "$f" "$WORK/initrd/modules/$m.ko";; esac
    echo "$m" >> "$WORK/initrd/modules/order"
done
cp "$ROOT/tests/system/init" "$WORK/initrd/init"
chmod +x "$WORK/initrd/init"
(cd "$WORK/initrd" && find . | cpio -o -H newc --quiet | gzip -1 > "$WORK/initrd.gz")

# Nehalem (SSE4.2, no AVX): TCG emulates AVX/AVX2 so slowly that onnxruntime's AVX2 kernels take 18 s
# an inference in the guest, against 1.2 s with its SSE kernels
boot() {
    local driver="$1" module="$2" out="$OUT/$1"
    mkdir -p "$out"
    cp "$OUT"/webcam*.avi "$out/"
    echo "system: v4l2loopback $driver: booting $KVER under qemu (TCG), guest log follows"
    set +e
    timeout --foreground "$TIMEOUT" qemu-system-x86_64 -machine q35,accel=tcg -cpu "${VBG_SYSTEM_CPU:-Nehalem}" -smp 2 -m 3072 -nographic -no-reboot \
        -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
        -append "console=ttyS0 quiet panic=-1 vbg_root=$ROOT vbg_python=$PYTHON vbg_shared=$SHARED vbg_module=${module:-default}" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs local,path="$out",mount_tag=results,security_model=none,multidevs=remap \
        -serial mon:stdio < /dev/null | tee "$out/console.log"
    local rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 124 ] && echo "system: the guest did not finish within ${TIMEOUT}s"
    local passed failed
    passed=$(grep -c 'SCENARIO [^ ]* PASS' "$out/console.log" || true)
    failed=$(grep -c 'SCENARIO [^ ]* FAIL' "$out/console.log" || true)
    grep -q "GUEST DONE" "$out/console.log" && [ "$passed" -gt 0 ] || failed=$((failed + 1))
    [ -z "$module" ] || grep -q "v4l2loopback $driver\b" "$out/console.log" || {
        echo "system: the guest did not load v4l2loopback $driver"; failed=$((failed + 1)); }
    echo "system: v4l2loopback $driver: $passed passed, $failed failed" | tee -a "$OUT/summary"
    total_passed=$((total_passed + passed)); total_failed=$((total_failed + failed))
}

total_passed=0; total_failed=0
for driver in $DRIVERS; do
    if module="$(module_for "$driver")"; then
        boot "$driver" "$module"
    else
        total_failed=$((total_failed + 1))
    fi
done
cat "$OUT/summary" 2>/dev/null
echo "system: $total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
