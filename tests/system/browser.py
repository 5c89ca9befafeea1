"""A browser as the call app: headless Chromium opens a camera by its label with getUserMedia, the way
Meet, Teams and Zoom's web client do, and reports what it got.

The page is served from 127.0.0.1 (a secure context, so getUserMedia is allowed) by a small HTTP server
that also takes the page's result: the cameras listed, the time getUserMedia took, the track's settings
(its advertised frame rate), the frames that arrived in `seconds` (Chromium: MediaStreamTrackProcessor
counts each one delivered; Firefox: the video element's presentedFrames, each one played, over the span
its frame callbacks saw: `span_s`) and one frame as PNG.

    python tests/system/browser.py LABEL [SECONDS] [chromium|firefox]   # prints the result as JSON
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXTRA: list[str] = []  # more flags (a fake camera when trying the page without a real one)

PAGE = """<!doctype html><meta charset="utf-8"><title>vbg call</title><script>
const out = {};
async function main() {
  const cameras = async () => (await navigator.mediaDevices.enumerateDevices()).filter(d => d.kind === "videoinput");
  let cams = await cameras();
  out.primed = !cams.some(d => d.label);
  if (out.primed) {  // labels are shown once camera access was granted: ask for any camera first
    try {
      const any = await navigator.mediaDevices.getUserMedia({video: true});
      any.getTracks().forEach(t => t.stop());
    } catch (e) { out.first_error = e.name + ": " + e.message; }
    await new Promise(done => setTimeout(done, 2000));  // that camera (maybe vbg's webcam) released
    cams = await cameras();
  }
  out.labels = cams.map(d => d.label);
  const cam = cams.find(d => d.label.includes(LABEL));
  if (!cam) return;
  const t0 = performance.now();
  const stream = await navigator.mediaDevices.getUserMedia(
      {video: {deviceId: {exact: cam.deviceId}, width: {ideal: 640}, height: {ideal: 480}}});
  out.open_ms = performance.now() - t0;
  const track = stream.getVideoTracks()[0];
  out.settings = track.getSettings();
  out.seconds = SECONDS;
  const canvas = typeof MediaStreamTrackProcessor === "undefined" ? await countPlayed(stream, t0)
                                                                   : await countDelivered(track, t0);
  if (canvas) {
    const blob = await canvas.convertToBlob({type: "image/png"});
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    out.png = btoa(text);
  }
  track.stop();
}

async function countDelivered(track, t0) {  // Chromium: every frame the track delivers
  const reader = new MediaStreamTrackProcessor({track}).readable.getReader();
  let first = null, last = null;
  out.frames = 0;
  const deadline = performance.now() + 1000 * (Math.max(SECONDS, HOLD) + 30);
  while (performance.now() < deadline) {
    const {value, done} = await reader.read();
    if (done) break;
    const now = performance.now();
    if (first === null) { first = now; out.first_frame_ms = now - t0; }
    if (last) last.close();
    last = value;
    if (now - first > 1000 * Math.max(SECONDS, HOLD)) break;
    if (now - first <= 1000 * SECONDS) out.frames++;
  }
  if (!last) return null;
  const canvas = new OffscreenCanvas(last.displayWidth, last.displayHeight);
  canvas.getContext("2d").drawImage(last, 0, 0);
  last.close();
  return canvas;
}

async function countPlayed(stream, t0) {  // Firefox (no MediaStreamTrackProcessor): every frame played
  // counted by the element's presentedFrames, not by callbacks: a busy main thread (TCG) runs one
  // callback for several frames presented
  const video = document.createElement("video");
  video.muted = true;
  video.srcObject = stream;
  document.body.appendChild(video);
  await video.play();
  out.frames = 0;
  out.callbacks = 0;
  await new Promise(done => {
    let first = null, presented = 0;
    const deadline = performance.now() + 1000 * (Math.max(SECONDS, HOLD) + 30);
    setTimeout(done, 1000 * (Math.max(SECONDS, HOLD) + 30));
    const tick = (now, frame) => {
      if (first === null) { first = now; presented = frame.presentedFrames; out.first_frame_ms = now - t0; }
      if (now - first > 1000 * Math.max(SECONDS, HOLD) || now > deadline) return done();
      if (now - first <= 1000 * SECONDS) {
        out.frames = frame.presentedFrames - presented;
        out.span_s = (now - first) / 1000;
        out.callbacks++;
      }
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  });
  const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas;
}
main().catch(e => { out.error = e.name + ": " + e.message; }).finally(
  () => fetch("/result", {method: "POST", body: JSON.stringify(out)}));
</script>"""


FIREFOX_PREFS = """user_pref("media.navigator.permission.disabled", true);
user_pref("media.webrtc.camera.allow-pipewire", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.aboutwelcome.enabled", false);
"""


def find(browser: str) -> str | None:
    return (shutil.which("chromium") or shutil.which("chromium-browser") if browser == "chromium" else
            shutil.which("firefox-esr") or shutil.which("firefox"))


def version(browser: str = "chromium") -> str:
    out = subprocess.run([find(browser), "--version"], capture_output=True, text=True).stdout.split()
    return next((w for w in out if w[:1].isdigit()), "?")


def _command(browser: str, profile: str, url: str) -> list[str]:
    if browser == "chromium":
        return [find(browser), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--use-fake-ui-for-media-stream", *EXTRA, f"--user-data-dir={profile}", url]
    with open(f"{profile}/user.js", "w") as prefs:
        prefs.write(FIREFOX_PREFS + "".join(f"user_pref({name!r}, {value});\n".replace("'", '"')
                                            for name, value in FIREFOX_EXTRA))
    return [find(browser), "--headless", "--no-remote", "--profile", profile, url]


FIREFOX_EXTRA: list[tuple[str, str]] = []  # more prefs (a fake camera when trying the page without a real one)


def call(label: str, seconds: float = 10, timeout: float = 300, browser: str = "chromium", hold: float = 0) -> dict:
    """Runs the page in headless Chromium or Firefox; the page's result, or {'error': ...}. Frames are
    counted for `seconds` from the first; the frame returned is the one at `hold` seconds, if longer."""
    result: dict = {}
    done = threading.Event()
    page = (PAGE.replace("LABEL", json.dumps(label)).replace("SECONDS", str(seconds)).replace("HOLD", str(hold))
            .encode())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self):
            result.update(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="vbg-chromium")
    proc = subprocess.Popen(_command(browser, profile, f"http://127.0.0.1:{server.server_port}/"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not done.wait(timeout):
            result.setdefault("error", f"no result from {browser} within {timeout:g} s")
    finally:
        proc.kill()
        proc.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return result


def frame_png(result: dict) -> bytes | None:
    return base64.b64decode(result["png"]) if result.get("png") else None


if __name__ == "__main__":
    r = call(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 10,
             browser=sys.argv[3] if len(sys.argv) > 3 else "chromium")
    r.pop("png", None)
    print(json.dumps(r, indent=1))
