#!/usr/bin/env bash
# System test on a real Linux kernel: boots Debian's kernel under qemu (TCG: no KVM here) with the host's
# root filesystem over 9p (read-only), loads v4l2loopback (built by DKMS from Debian's package) as a webcam
# and as vbg's virtual camera (exclusive_caps=1), and runs tests/system/guest.py inside, which runs the
# installed vbg against real V4L2 devices and real readers (ffmpeg, OpenCV). One result line a scenario.
#
#   sudo apt-get install qemu-system-x86 busybox-static cpio ffmpeg linux-image-amd64 linux-headers-amd64 \
#        v4l2loopback-dkms          # (what .ci/run installs)
#   bash tests/system/run.sh [PYTHON]   # PYTHON: the interpreter with vbg installed (default: .venv/bin/python)
#
# Needs root (qemu's 9p export of / must read every file). Output: the guest's log on stdout, frames read
# back from the virtual camera in $VBG_SYSTEM_OUT (default /tmp/vbg-system), exit 0 when every scenario passed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="$(cd "$(dirname "${1:-$ROOT/.venv/bin/python}")" && pwd)/$(basename "${1:-$ROOT/.venv/bin/python}")"
OUT="${VBG_SYSTEM_OUT:-/tmp/vbg-system}"
TIMEOUT="${VBG_SYSTEM_TIMEOUT:-1200}"
KVER="$(ls /lib/modules | sort -V | tail -1)"
KERNEL="/boot/vmlinuz-$KVER"
[ -r "$KERNEL" ] || { echo "system: no Debian kernel in /boot (apt-get install linux-image-amd64)"; exit 2; }
modinfo -k "$KVER" v4l2loopback >/dev/null 2>&1 || { echo "system: v4l2loopback is not built for $KVER (apt-get install linux-headers-amd64 v4l2loopback-dkms)"; exit 2; }

SHARED="$(cd "${VBG_SHARED:-$ROOT/../shared}" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"; mkdir -p "$OUT"
# the webcam's footage: a real clip at 640x480, 10 fps (the guest runs vbg about 100x slower than this machine)
ffmpeg -nostdin -loglevel error -i "$SHARED/data/clips/indoor_woman_1280x720.mp4" -t 12 \
    -vf "crop=960:720,scale=640:480,fps=10" -c:v mjpeg -q:v 4 "$OUT/webcam.avi"

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
echo "system: booting $KVER under qemu (TCG), guest log follows"
set +e
timeout --foreground "$TIMEOUT" qemu-system-x86_64 -machine q35,accel=tcg -cpu "${VBG_SYSTEM_CPU:-Nehalem}" -smp 2 -m 3072 -nographic -no-reboot \
    -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 vbg_root=$ROOT vbg_python=$PYTHON vbg_shared=$SHARED" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$OUT",mount_tag=results,security_model=none,multidevs=remap \
    -serial mon:stdio < /dev/null | tee "$OUT/console.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 124 ] && echo "system: the guest did not finish within ${TIMEOUT}s"
passed=$(grep -c 'SCENARIO [^ ]* PASS' "$OUT/console.log" || true)
failed=$(grep -c 'SCENARIO [^ ]* FAIL' "$OUT/console.log" || true)
grep -q "GUEST DONE" "$OUT/console.log" && [ "$passed" -gt 0 ] || failed=$((failed + 1))
echo "system: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
