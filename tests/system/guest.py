"""Runs inside the qemu guest (see run.sh): vbg against real V4L2 devices on a real kernel.

/dev/video0 is a v4l2loopback "webcam" (exclusive_caps=0) fed by ffmpeg from a real clip, YUYV or MJPG;
/dev/video10 is vbg's virtual camera with exclusive_caps=1, as the README tells users to load it. Real
readers (OpenCV's V4L2 backend and ffmpeg) open it. Prints one `SCENARIO name PASS|FAIL detail` line each;
frames read back go to /run/results (the host's $VBG_SYSTEM_OUT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(os.environ["VBG_ROOT"])
sys.path.insert(0, str(ROOT))
from vbg.outputs import loopback  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "system"))
import browser  # noqa: E402

RESULTS = Path("/run/results")
WEBCAM, VCAM = "/dev/video0", "/dev/video10"
DEVICE_FPS = 10.0  # the webcam's rate (run.sh's clip), which vbg advertises on the virtual camera
CLIP = RESULTS / "webcam.avi"         # 640x480 MJPG at 10 fps, made on the host by run.sh
DAMAGED_CLIP = RESULTS / "webcam_damaged.avi"  # the same with bytes flipped in about a third of its frames
MODEL = Path(os.environ["VBG_SHARED"]) / "models" / "pphumanseg_v2_portrait_lite_256x144.onnx"
failures = 0


def report(name: str, ok: bool, detail: str = "") -> None:
    global failures
    failures += not ok
    print(f"SCENARIO {name} {'PASS' if ok else 'FAIL'} {detail}".rstrip(), flush=True)


def caps(path: str) -> str:
    s = loopback.query(path)
    if s is None:
        return "unopenable"
    return "+".join(n for n, on in (("output", s.output), ("capture", s.capture)) if on) or "neither"


class Feeder:
    """The webcam: ffmpeg writing the clip into /dev/video0, looping, in real time. On v4l2loopback 0.13+
    a writer is refused while a reader streams from a device with no writer (vbg retrying a lost camera),
    so ffmpeg is started again until it stays, as a camera app that retries would."""

    def __init__(self, mjpg: bool = False, clip: Path = CLIP):
        codec = ["-c:v", "copy"] if mjpg else ["-pix_fmt", "yuyv422"]
        self.args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip), *codec,
                     "-f", "v4l2", WEBCAM]
        self.starts = 0
        self._stop = threading.Event()
        self.proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.starts += 1
            self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._stop.is_set():
                self.proc.kill()
            self.proc.wait()
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(5)


class Vbg:
    """`vbg run` on the webcam, into the virtual camera, with its log collected line by line."""

    def __init__(self, *extra: str):
        env = dict(os.environ, VBG_MODEL=str(MODEL), XDG_CONFIG_HOME="/run/vbgcfg", PYTHONUNBUFFERED="1")
        # The OpenCV compositor: the guest's CPU (Nehalem) is not the host's, so numba's cache from the host
        # does not apply, and compiling under TCG takes minutes of a core, which the idle-CPU scenarios would
        # measure. The compiled pass is tested natively (tests/test_kernels.py); these scenarios are about V4L2.
        self.proc = subprocess.Popen([sys.executable, "-m", "vbg", "run", "--camera", WEBCAM, "--vcam-device", VCAM,
                                      "--size", "640x480", "--fps", "10", "-b", "color:#0000ff", "--threads", "1",
                                      "--status-every", "2", "--compositor", "opencv", *extra],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                                     cwd="/run")
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            print(f"  | {line.rstrip()[:200]}", flush=True)

    def wait_for(self, text: str, timeout: float, new_only: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        start = len(self.lines) if new_only else 0
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(text in line for line in self.lines[start:]):
                return True
            time.sleep(0.2)
        return any(text in line for line in self.lines[start:])

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -999


def classify(frame: np.ndarray) -> str:
    """'composite' (blue room, a person in the middle), 'card' (vbg's grey status card), or 'other'."""
    h, w = frame.shape[:2]
    corners = np.concatenate([frame[:40, :40].reshape(-1, 3), frame[:40, -40:].reshape(-1, 3)])
    b, g, r = np.median(corners, axis=0)
    centre = frame[h // 3: 2 * h // 3, w // 2 - 40: w // 2 + 40].reshape(-1, 3)
    centre_blue = np.mean((centre[:, 0] > 180) & (centre[:, 1] < 80) & (centre[:, 2] < 80))
    if b > 180 and g < 70 and r < 70:
        return "composite" if centre_blue < 0.5 else "blue"
    if abs(b - g) < 12 and abs(g - r) < 12 and b < 60:
        return "card"             # a grey status card: which one, card_text() says
    if 60 < b < 110 and g < 40 and r < 40:
        return "card"             # a status card over the last composite, dimmed to a third
    return "other"


CARD_TEXTS = ("vbg: starting camera", "camera lost, reconnecting", "no camera found")


def card_text(frame: np.ndarray) -> str:
    """Which status card `frame` is, by the width of its centred line of text."""
    h, w = frame.shape[:2]
    bright = np.flatnonzero((frame[h // 2 - 30: h // 2 + 30].max(axis=2) > 150).any(axis=0))
    width = bright[-1] - bright[0] + 1 if bright.size else 0
    scale = max(0.5, w / 1280)
    sizes = {t: cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)[0][0] for t in CARD_TEXTS}
    text = min(sizes, key=lambda t: abs(sizes[t] - width))
    return text if abs(sizes[text] - width) <= 12 else f"unknown card ({width} px of text)"


class Reader:
    """A call app: OpenCV's V4L2 backend reading the virtual camera, remembering what each frame was."""

    def __init__(self, name: str):
        self.name = name
        self.kinds: list[tuple[float, str]] = []
        self.cards: list[tuple[float, str]] = []
        self.keep_small = False  # each frame at 80x60 (and the frame), for comparing with the webcam's
        self.small: list[tuple[np.ndarray, np.ndarray]] = []
        self.opened_at = time.monotonic()
        self.cap = cv2.VideoCapture(VCAM, cv2.CAP_V4L2)
        self.ok = self.cap.isOpened()
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._stop = threading.Event()
        self.last: dict[str, np.ndarray] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        if self.ok:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ok, frame = self.cap.read()
            if not ok:
                time.sleep(0.1)
                continue
            kind = classify(frame)
            if kind == "card":
                self.cards.append((time.monotonic(), card_text(frame)))
            elif self.keep_small:
                self.small.append((small(frame), frame))
            self.kinds.append((time.monotonic(), kind))
            self.last[kind] = frame

    def first(self, kind: str, after: float = 0.0, timeout: float = 60) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, k in list(self.kinds):
                if k == kind and t >= after:
                    return t
            time.sleep(0.1)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5) if self.ok else None
        self.cap.release()


def small(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(frame, (80, 60), interpolation=cv2.INTER_AREA).astype(np.int16)


def off_from_clean(frames: list[np.ndarray], clean: np.ndarray) -> list[float]:
    """For each frame (80x60): how far it is from the nearest clean webcam frame, as the 99th percentile
    of its cells' largest channel difference. A clean frame through vbg and back is about 2 levels off; a
    visibly damaged one 14 to 200."""
    return [min(float(np.percentile(np.abs(c - f).max(axis=2), 99)) for c in clean) for f in frames]


def _counts(items: list[str]) -> list[tuple[str, int]]:
    return [(t, items.count(t)) for t in dict.fromkeys(items)]


def recent(reader: Reader, since: float) -> str:
    return ", ".join(f"{t - since:.1f}s {k}" for t, k in reader.kinds if t >= since) or "nothing"


def ffmpeg_reads(n: int, out: Path, timeout: float = 90) -> tuple[bool, str]:
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "v4l2", "-i", VCAM, "-frames:v", str(n),
                        "-y", str(out)], capture_output=True, text=True, timeout=timeout)
    return r.returncode == 0, r.stderr.strip()[-200:]


def browser_calls(vbg: Vbg, one_reader: bool) -> None:
    """The browsers as the call app: the camera listed by its label, opened after idle, frames at the rate
    the track advertises, the person over the requested colour; then Chromium joining while OpenCV reads."""
    if browser.find("chromium") is None:
        report("browser-call", False, "no chromium on this root (apt-get install chromium)")
        return
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)  # the page's server is on 127.0.0.1
    for name in ("chromium", "firefox"):
        if browser.find(name) is None:
            print(f"guest: no {name} on this root: its scenarios are left out", flush=True)
            continue
        vbg.wait_for("no readers (idle)", 60, new_only=False if name == "chromium" else True)
        browser_call(name)


def browser_call(name: str) -> None:
    # the frame looked at is the one 40 s in: under TCG the first composite after idle takes up to 16 s
    r = browser.call("vbg", seconds=10, browser=name, hold=40)
    png = browser.frame_png(r)
    kind = "none"
    if png:
        (RESULTS / f"{name}.png").write_bytes(png)
        frame = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        kind = classify(frame)
        kind += f" ({card_text(frame)!r})" if kind == "card" else ""
    advertised = (r.get("settings") or {}).get("frameRate") or 0
    title = f"{name.capitalize()} {browser.version(name)}"
    first_s = r.get("first_frame_ms", float("nan")) / 1000
    open_s = r.get("open_ms", float("nan")) / 1000
    report(f"{name}-lists-the-camera", any("vbg" in label for label in r.get("labels", [])),
           f"{title} lists {r.get('labels')}{' ' + r['error'] if 'error' in r else ''}"
           f"{' (after asking for any camera: ' + r.get('first_error', 'granted') + ')' if r.get('primed') else ''}")
    report(f"{name}-sees-the-person-over-the-colour", kind == "composite", f"its last frame was a {kind}")
    if name == "chromium":
        delivered = r.get("frames", 0) / r.get("seconds", 10)
        report("chromium-opens-it-after-idle", "open_ms" in r and first_s - open_s < 10,
               f"getUserMedia took {open_s:.1f} s, the first frame came {first_s - open_s:.1f} s after it (Chromium "
               "gives up on a camera that sends nothing for 10 s)")
        report("chromium-rate-advertised-is-delivered", advertised > 0 and 0.8 * advertised <= delivered <= 1.2 * advertised,
               f"the track advertises {advertised:g} fps, {r.get('frames', 0)} frames came in {r.get('seconds', 10)} s "
               f"({delivered:.1f} fps)")
    else:  # libwebrtc's V4L2 capture in Firefox guesses the rate (30 below 800 px wide) instead of asking the device
        # (Firefox does not give up on a slow camera; under TCG its first played frame takes 10-25 s)
        report("firefox-opens-it-after-idle", "open_ms" in r and first_s < 60,
               f"getUserMedia took {open_s:.1f} s, the first frame played {first_s - open_s:.1f} s after it")
        span = r.get("span_s") or 0
        played = r.get("frames", 0) / span if span >= 0.5 * r.get("seconds", 10) else 0.0
        report("firefox-plays-frames-at-the-devices-rate", played >= 0.5 * DEVICE_FPS,
               f"{r.get('frames', 0)} frames played in {span:.1f} s ({played:.1f} fps; {r.get('callbacks', 0)} frame "
               f"callbacks) of the {DEVICE_FPS:g} fps the device advertises (Firefox's track says {advertised:g}: "
               "libwebrtc's guess)")


def browser_beside_opencv(vbg: Vbg, one_reader: bool) -> None:
    """Chromium opening the camera while OpenCV reads it."""
    if browser.find("chromium") is None:
        return
    first = Reader("opencv-first")
    first.first("composite", timeout=120)
    r = browser.call("vbg", seconds=5)
    kept = first.first("composite", after=time.monotonic() - 5, timeout=20) is not None
    first.close()
    if one_reader:
        said = vbg.wait_for("other apps are refused", 10, new_only=False)
        report("chromium-as-second-app-refused-and-said", "frames" not in r and kept and said,
               f"Chromium: {r.get('error', 'got frames')}; OpenCV {'kept reading' if kept else 'stopped'}; vbg's status "
               f"{'says' if said else 'does NOT say'} 'other apps are refused'")
    else:
        report("chromium-and-opencv-at-once", r.get("frames", 0) > 0 and kept,
               f"Chromium got {r.get('frames', 0)} frames in {r.get('seconds', 5)} s "
               f"{r.get('error', '')}; OpenCV {'kept reading' if kept else 'stopped'}")


def main() -> None:
    t_boot = time.monotonic()
    params = ["devices=2", "video_nr=0,10", "exclusive_caps=0,1", "card_label=webcam,vbg"]
    module = os.environ.get("VBG_MODULE", "default")
    if module == "default":  # the DKMS build installed for this kernel
        subprocess.run(["modprobe", "v4l2loopback", *params], check=True)
    else:  # one built by run.sh from another version's source
        depends = subprocess.run(["modinfo", "-F", "depends", module], capture_output=True, text=True).stdout.strip()
        for dep in filter(None, depends.split(",")):
            subprocess.run(["modprobe", dep], check=True)
        subprocess.run(["insmod", module, *params], check=True)
    driver = loopback.driver_version()
    print(f"guest: kernel {os.uname().release}, {loopback.version_text(driver)}", flush=True)
    report("loopback-loaded", caps(VCAM) == "output", f"{VCAM} advertises {caps(VCAM)}")
    one_reader = loopback.one_reader(driver)

    # The bug users hit on 0.12: a writer that only write()s (ffmpeg here, pyvirtualcam before) leaves the
    # device stuck; 0.13+ register such a writer themselves
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=640x480:r=5",
                    "-frames:v", "3", "-pix_fmt", "yuv420p", "-f", "v4l2", VCAM], timeout=120)
    stale = caps(VCAM)
    if loopback.registers_writers(driver):
        report("write-only-writer-leaves-it-usable", stale == "output",
               f"after ffmpeg's write()-based output exited, {VCAM} advertises {stale}")
    else:
        report("write-only-writer-leaves-it-stuck", stale == "neither",
               f"after ffmpeg's write()-based output exited, {VCAM} advertises {stale} (the v4l2loopback 0.12 bug)")

    feeder = Feeder()
    run1 = Vbg()
    try:
        started = run1.wait_for("virtual camera", 240) or run1.wait_for("fps", 60)
        report("camera-opened", run1.wait_for("capturing from", 60, new_only=False), next((l for l in run1.lines if "capturing from" in l), ""))
        report("run1-starts-on-a-stuck-device" if stale == "neither" else "run1-starts", started and run1.proc.poll() is None,
               f"vbg {'reset ' + VCAM + ' and ' if stale == 'neither' else ''}opened it "
               f"({time.monotonic() - t_boot:.0f} s after boot)")
        report("visible-before-first-frame", "capture" in caps(VCAM), f"{VCAM} advertises {caps(VCAM)} while vbg starts")
        idle = run1.wait_for("no readers (idle)", 120)
        report("idle-without-readers", idle, "status says idle" if idle else "never idled")
        report("visible-while-idle", "capture" in caps(VCAM), f"{VCAM} advertises {caps(VCAM)} while vbg idles")

        a = Reader("opencv")
        t_first = a.first("composite", timeout=120)
        first_kind = a.kinds[0][1] if a.kinds else "none"
        before = [text for t, text in a.cards if t_first is None or t < t_first]
        report("resume-when-an-app-opens", a.ok and t_first is not None,
               f"OpenCV opened it ({a.size[0]}x{a.size[1]}), first frame was a {first_kind}, first composite after "
               f"{(t_first - a.opened_at) if t_first else float('nan'):.1f} s")
        report("only-the-starting-card-before-live-frames", set(before) <= {CARD_TEXTS[0]},
               f"cards before the first composite: {', '.join(f'{n} x {t!r}' for t, n in _counts(before)) or 'none'}")
        if "composite" in a.last:
            cv2.imwrite(str(RESULTS / "run1_opencv.png"), a.last["composite"])
        frame = a.last.get("composite")
        report("person-in-the-right-colours-and-size", frame is not None and frame.shape[:2] == (480, 640),
               f"{frame.shape[1]}x{frame.shape[0]}: blue room, person in the middle" if frame is not None else "none")

        ok, err = ffmpeg_reads(5, RESULTS / "run1_ffmpeg_%02d.png")
        seen = [classify(cv2.imread(str(p))) for p in sorted(RESULTS.glob("run1_ffmpeg_*.png"))]
        t0 = time.monotonic()
        kept = a.first("composite", after=t0, timeout=30)
        first_kept = f"OpenCV {'kept reading' if kept else 'got no composite since: ' + recent(a, t0 - 20)}"
        if one_reader:  # the driver refuses the second app: vbg must say so where the user looks
            said = run1.wait_for("other apps are refused", 10, new_only=False)
            report("second-reader-refused-and-said", not ok and not seen and kept is not None and said,
                   f"ffmpeg {'was refused: ' + err if not ok else 'read ' + str(len(seen)) + ' frames'}; {first_kept}; "
                   f"status {'says' if said else 'does NOT say'} 'other apps are refused'")
        else:
            report("two-readers-at-once", ok and "composite" in seen and kept is not None,
                   f"ffmpeg read {len(seen)} frames ({', '.join(seen)}); {first_kept} {err}")

        feeder.stop()
        t_gone = time.monotonic()
        lost = run1.wait_for("camera lost", 30)
        t_card = a.first("card", after=t_gone, timeout=30)
        cpu0, w0 = run1.cpu_seconds(), time.monotonic()
        time.sleep(10)
        cpu_share = (run1.cpu_seconds() - cpu0) / (time.monotonic() - w0)
        flowing = len([1 for t, _ in a.kinds if t > w0]) > 0
        report("webcam-vanishes", lost and t_card is not None and flowing,
               f"'camera lost' card after {(t_card - t_gone) if t_card else float('nan'):.1f} s, output "
               f"{'kept flowing' if flowing else 'stopped: ' + recent(a, t_gone)}, vbg CPU "
               f"{100 * cpu_share:.0f}% of a core while the webcam was gone")
        if "card" in a.last:
            cv2.imwrite(str(RESULTS / "run1_camera_lost.png"), a.last["card"])
        report("cpu-low-while-webcam-gone", cpu_share < 0.5, f"{100 * cpu_share:.0f}% of one core")
        feeder = Feeder()
        t_back = time.monotonic()
        t_comp = a.first("composite", after=t_back, timeout=120)
        report("webcam-comes-back", t_comp is not None,
               f"composites again {(t_comp - t_back) if t_comp else float('nan'):.1f} s after the webcam returned")
        a.close()
        idle_again = run1.wait_for("no readers (idle)", 60)
        report("idle-again-after-readers-close", idle_again, f"{VCAM} advertises {caps(VCAM)} while idle")
    finally:
        rc = run1.stop()
    after = caps(VCAM)
    report("run1-exit", rc == 130 and after == "output", f"exit {rc}; then {VCAM} advertises {after}")

    for run, extra in ((2, ()), (3, ("-b", "none"))):
        if run == 3:  # MJPG from the webcam, like most USB cameras give at 720p, with damaged frames; the
            feeder.stop()  # camera as it is (-b none), so each frame can be compared with the clean clip's
            feeder = Feeder(mjpg=True, clip=DAMAGED_CLIP)
        vbg = Vbg(*extra)
        wanted = "composite" if run == 2 else "other"
        try:
            up = vbg.wait_for("virtual camera", 240)
            if run == 2:
                browser_calls(vbg, one_reader)
                browser_beside_opencv(vbg, one_reader)
            reader = Reader(f"run{run}")
            reader.keep_small = run == 3
            t_first = reader.first(wanted, timeout=120)
            if run == 3 and t_first is not None:
                time.sleep(20)
            if wanted in reader.last:
                cv2.imwrite(str(RESULTS / f"run{run}_opencv.png"), reader.last[wanted])
            reader.close()
        finally:
            rc = vbg.stop(signal.SIGKILL if run == 3 else signal.SIGINT)
        if run == 3:
            said = next((line for line in reversed(vbg.lines) if "damaged camera frames dropped" in line), "")
            dropped = said.split("damaged camera frames dropped")[-1].strip() if said else "none"
            cap, clean = cv2.VideoCapture(str(CLIP)), []
            while (got := cap.read())[0]:
                clean.append(small(got[1]))
            off = off_from_clean([f for f, _ in reader.small], clean)
            worst = int(np.argmax(off)) if off else -1
            if off:
                cv2.imwrite(str(RESULTS / "run3_worst.png"), reader.small[worst][1])
            report("damaged-mjpg-frames-never-shown", said != "" and len(off) >= 20 and max(off) <= 12,
                   f"vbg dropped {dropped} damaged frames; of {len(off)} frames read, the farthest from a clean "
                   f"webcam frame is {max(off) if off else float('nan'):.0f} levels off (clean: about 2; damaged: "
                   f"14 and more)")
        after = caps(VCAM)
        how = "killed with SIGKILL" if run == 3 else f"exit {rc}"
        report(f"run{run}-same-device{'-mjpg-webcam' if run == 3 else ''}",
               up and t_first is not None and after == "output",
               f"frames {'with the person' if run == 2 else 'from the camera'} after "
               f"{(t_first - reader.opened_at) if t_first else float('nan'):.1f} s; {how}; then {VCAM} advertises {after}")
    feeder.stop()
    print(f"guest: {failures} failed, {time.monotonic() - t_boot:.0f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a scenario that cannot even run is a failure, said in one line
        report("guest", False, f"{type(e).__name__}: {e}")
