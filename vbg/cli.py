"""The `vbg` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from vbg import __version__
from vbg.errors import VbgError
from vbg.outputs import BACKENDS
from vbg.settings import (COMPOSITORS, EDGE_PRESETS, Settings, apply_edge_preset, check_pause_image,
                          parse_positive, parse_size)

log = logging.getLogger("vbg")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (and exit 2), like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _arg(parse):
    """Wraps a VbgError-raising parser so argparse reports it as a usage error (exit 2)."""
    def convert(text):
        try:
            return parse(text)
        except VbgError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _fraction(text):
    value = parse_positive(text, "value") if text.strip() not in ("0", "0.0") else 0.0
    if value > 1:
        raise VbgError(f"bad value {text!r}: use a number from 0 to 1")
    return value


def _pixels(text):
    try:
        value = int(text)
    except ValueError:
        raise VbgError(f"bad pixel count {text!r}: use a whole number >= 0") from None
    if value < 0:
        raise VbgError(f"bad pixel count {text!r}: use a whole number >= 0")
    return value


def _camera(text):
    text = text.strip()
    if not text or (text.lstrip("-").isdigit() and int(text) < 0):
        raise VbgError(f"bad camera {text!r}: use an index (0, 1, …) or a device path such as /dev/video0")
    return text


def _box(text):
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise VbgError(f"bad box {text!r}: use X0,Y0,X1,Y1 in pixels, e.g. 330,150,512,400") from None
    if x1 <= x0 or y1 <= y0 or min(x0, y0) < 0:
        raise VbgError(f"bad box {text!r}: X1 must exceed X0 and Y1 exceed Y0, all >= 0")
    return x0, y0, x1, y1


def _add_model_args(p):
    from vbg.models import names

    p.add_argument("--model", metavar="NAME|PATH", help=f"the segmentation model: one vbg knows ({', '.join(names())}; "
                   "found in the user cache, downloaded there if missing) or an ONNX file (default: $VBG_MODEL, "
                   "then the cache)")
    from vbg.matting.segment import DEVICES

    p.add_argument("--device", choices=DEVICES, default=argparse.SUPPRESS,
                   help="inference device; auto uses CUDA only if onnxruntime confirms it (default: auto)")
    p.add_argument("--adaptive", choices=("off", "auto"), default=argparse.SUPPRESS,
                   help="auto (default): skip the model while the picture holds still, at most 4 frames in a row "
                   "(about 17%% less CPU on a talking head); off: run it on every frame")
    p.add_argument("--focus", choices=("head", "off"), default=argparse.SUPPRESS,
                   help="head (default): the model's runs alternate between the whole frame and a crop of the head "
                   "at 1.75x the detail (cleaner hair and ears, no extra runs); off: the whole frame only")
    p.add_argument("--threads", type=int, default=argparse.SUPPRESS,
                   help="inference threads (default: half the cores, 1-4)")


def _add_live_args(p):
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=_arg(_camera), metavar="ID|PATH",
                     help="camera index or device path (default: 0)")
    src.add_argument("--input", metavar="FILE", help="a video file instead of a camera (played at its fps)")
    p.add_argument("--loop", action="store_true", help="loop --input")
    p.add_argument("--size", type=_arg(parse_size), metavar="WxH", help="ask the camera for this size")
    p.add_argument("--fps", type=_arg(lambda t: parse_positive(t, "fps")), help="ask the camera for this rate")
    p.add_argument("--no-mjpg", action="store_true", help="do not ask the camera for MJPG")
    p.add_argument("--background", "-b", metavar="SPEC",
                   help="blur[:1-100], color:#RRGGBB, none, or an image or video file (default: the window's "
                   "last choice; blur at first)")
    p.add_argument("--mirror", action="store_true", help="mirror the output horizontally")
    p.add_argument("--no-vcam", action="store_true", help="no virtual camera (preview/record only)")
    p.add_argument("--vcam-device", metavar="PATH", help="virtual camera device (Linux: /dev/videoN; with "
                   "--vcam-backend pipewire: the node name, default vbg)")
    p.add_argument("--vcam-backend", choices=tuple(BACKENDS),
                   help="; ".join(f"{b.name}: {b.help}" for b in BACKENDS.values()) + " (default v4l2loopback)")
    p.add_argument("--always-on", action="store_true",
                   help="keep camera and model running while no app reads the virtual camera")
    p.add_argument("--record", metavar="FILE", help="also write the output to this video file")
    p.add_argument("--pause-image", type=_arg(check_pause_image), metavar="WHAT",
                   help="what calls see while paused: background (the chosen picture alone; a 'paused' card for "
                   "blur and off), black, or an image file (default: background)")
    _add_model_args(p)
    _add_quality_args(p)


def _add_quality_args(p):
    p.add_argument("--smoothing", type=_arg(_fraction), default=argparse.SUPPRESS, metavar="0-1",
                   help=f"temporal smoothing strength, 0 = off (default: {Settings().smooth.strength})")
    p.add_argument("--no-refine", action="store_true", default=argparse.SUPPRESS,
                   help="plain bilinear mask upscaling (no edge refinement)")
    p.add_argument("--edge", choices=EDGE_PRESETS, default=argparse.SUPPRESS,
                   help="fine: colour-guided edge and the person's own colour at it (no halo of the old room "
                   "over replaced backgrounds; about 7 CPU-ms more a 720p frame); standard: grey-guided; auto "
                   "(default): fine for images, colours and videos, standard under a blur")
    p.add_argument("--compositor", choices=COMPOSITORS, default=argparse.SUPPRESS,
                   help="which path does the edge band: compiled (one pass, numba), opencv (the fallback), "
                   "auto (default: compiled once it is compiled, OpenCV until then and without numba)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vbg", description="Real-time webcam virtual background.")
    parser.add_argument("--version", action="version", version=f"vbg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (what each stage decides)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="the live pipeline without a window", argument_default=argparse.SUPPRESS,
                         description="Camera (or file) -> virtual camera, with a status line every few seconds. "
                         "Starts from the settings the window saved; flags override them for this run.")
    _add_live_args(run)
    stop = run.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=int, metavar="N", help="stop after N output frames")
    stop.add_argument("--duration", type=_arg(lambda t: parse_positive(t, "duration")), metavar="S",
                      help="stop after S seconds")
    run.add_argument("--status-every", type=float, default=5.0, metavar="S", help="status line period (default 5)")
    run.add_argument("--lossless", action="store_true", help="drop no frame: each stage waits for the next "
                     "(for testing the live threads against `vbg render`)")
    run.add_argument("--alpha-dir", metavar="DIR", help="also write the final 8-bit alpha of each frame here")

    gui = sub.add_parser("gui", help="the window (also what `vbg` alone opens)", argument_default=argparse.SUPPRESS,
                         description="The window: live preview, backgrounds, controls, hotkeys. Same options as "
                         "`vbg run`; they override the saved settings for this run.")
    _add_live_args(gui)
    gui.add_argument("--duration", type=_arg(lambda t: parse_positive(t, "duration")), metavar="S",
                     help="close the window after S seconds (a soak test)")
    gui.add_argument("--status-every", type=_arg(lambda t: parse_positive(t, "status period")), metavar="S",
                     help="print a status line (fps, memory, reference counts) every S seconds")
    gui.add_argument("--tray", action="store_true", help="start in the tray, window hidden (how start at login "
                     "runs it); without a tray the window shows")

    desktop = sub.add_parser("install-desktop", help="add vbg to the applications menu (and start at login)",
                             description="Writes the menu entry, icon and AppStream metainfo into your XDG "
                             "folders (~/.local/share); --autostart also starts vbg in the tray at login.")
    desktop.add_argument("--autostart", action="store_true", help="start vbg in the tray when you log in")
    desktop.add_argument("--remove", action="store_true", help="remove everything install-desktop wrote")

    from vbg.app.commands import PUBLIC_VERBS, usage

    ctl = sub.add_parser("ctl", help="drive the running window (bind these to your desktop's shortcuts)",
                         description="Commands to the running vbg window over a per-user local socket.")
    ctl.add_argument("ctl_command", metavar="COMMAND", choices=PUBLIC_VERBS, help=usage())
    ctl.add_argument("ctl_args", nargs="*", metavar="ARG")

    render = sub.add_parser("render", help="offline, deterministic matting of an image, folder or video",
                            description="Every frame in order, with the same stages as live.")
    render.add_argument("input", metavar="INPUT", help="an image, a folder of images, or a video")
    render.add_argument("-o", "--output", required=True, help="output image, folder, or video (.mp4/.avi); "
                        "for a video with a non-video name, a folder of PNG frames")
    render.add_argument("--background", "-b", default="blur", metavar="SPEC",
                        help="blur[:1-100], color:#RRGGBB, none, an image or video file, or transparent (RGBA PNG)")
    render.add_argument("--alpha-dir", metavar="DIR", help="also write the final 8-bit alpha of each frame here")
    render.add_argument("--threshold", type=_arg(_fraction), metavar="T", help="hard cut-out at alpha T (0-1)")
    render.add_argument("--feather", type=_arg(_pixels), default=0, metavar="PX", help="soften the edge by PX")
    render.add_argument("--erode", type=_arg(_pixels), default=0, metavar="PX", help="shrink the person by PX")
    render.add_argument("--mirror", action="store_true", help="mirror the output horizontally")
    render.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_args(render)
    _add_quality_args(render)

    bench = sub.add_parser("bench", help="measure the real pipeline's speed and CPU cost",
                           description="Runs the real pipeline unthrottled on a clip (a generated one if none) "
                           "and reports fps, CPU time per frame and per-stage median/p99.")
    bench.add_argument("--input", metavar="FILE", help="the clip (default: a generated one)")
    bench.add_argument("--size", type=_arg(parse_size), metavar="WxH", help="re-encode the clip at this size first")
    bench.add_argument("--frames", type=int, default=300, help="frames to time (default 300)")
    bench.add_argument("--paced", type=_arg(lambda t: parse_positive(t, "fps")), metavar="FPS",
                       help="feed frames at this rate instead of unthrottled; reports capture-to-output latency")
    bench.add_argument("--background", "-b", default="blur", metavar="SPEC",
                       help="blur[:1-100] (default), color:#RRGGBB, none, or an image or video file")
    bench.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    bench.add_argument("--reference", metavar="MEDIAPIPE_ONNX",
                       help="also time an lfbw-style pipeline (MediaPipe selfie model, float blend) on the same "
                       "clip, for scale")
    _add_model_args(bench)
    _add_quality_args(bench)

    ev = sub.add_parser("eval", help="cut-out quality against ground truth, beside the bare model and an EMA",
                        description="Stills: --images DIR --masks DIR. Video: --video FILE [--alpha DIR] (without "
                        "--alpha, only frame-to-frame alpha change). Reports IoU, boundary F, alpha MAD, dtSSD "
                        "and flicker for the pipeline, the bare model (raw) and a plain EMA (ema).")
    ev.add_argument("--images", metavar="DIR", help="a folder of photos, scored against --masks")
    ev.add_argument("--masks", metavar="DIR", help="masks named like the images (binary or soft PNG)")
    ev.add_argument("--video", metavar="FILE", help="a video, scored against --alpha (ground truth) if given")
    ev.add_argument("--alpha", metavar="DIR", help="ground-truth alpha of --video: 000000.png, 000001.png, …")
    ev.add_argument("--clip", metavar="FILE", help="a real clip without ground truth: room kept and person lost, "
                    "judged against the --baseline models' consensus, for the pipeline, the bare model and each "
                    "of the pipeline's stages")
    ev.add_argument("--box", type=_arg(_box), metavar="X0,Y0,X1,Y1", help="--clip only: also count the room "
                    "kept inside this rectangle of the frame, in pixels a frame")
    ev.add_argument("--reference-cache", metavar="DIR", help="--clip only: keep the references' verdicts here "
                    "and reuse them (the peers cost more than the pipeline)")
    ev.add_argument("--pred", metavar="DIR", help="also score alphas written by anything else (same names)")
    ev.add_argument("--plate", metavar="PNG", help="the true background behind the person in --video: also "
                    "score the composite over black and white against the truth (all pixels, and the edge band)")
    ev.add_argument("--size", type=_arg(parse_size), metavar="WxH", help="--video only: score it scaled down to "
                    "this size (frames, alpha and plate alike, area-averaged), as a smaller camera would see it")
    ev.add_argument("--crop", type=_arg(parse_size), metavar="WxH", help="--video with --alpha: score a window "
                    "of this size centred on the person (before --size), as a camera of another shape would see "
                    "it, e.g. 406x720 for a phone held upright")
    ev.add_argument("--baseline", action="append", default=[], metavar="NAME=PATH",
                    help="also run a peer model for comparison: rvm=PATH (RobustVideoMatting ONNX) or "
                    "mediapipe=PATH (MediaPipe selfie segmentation ONNX); may be repeated")
    ev.add_argument("--variants", default=",".join(("pipeline", "raw", "ema")),
                    help="comma-separated, from pipeline, raw, ema (default: all)")
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    ev.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_args(ev)
    _add_quality_args(ev)

    devices = sub.add_parser("devices", help="cameras, virtual-camera devices and inference providers",
                             description="Lists cameras, virtual-camera devices (v4l2loopback, PipeWire), "
                             "onnxruntime's providers and the model vbg would load, and says what to do about "
                             "anything missing.")
    devices.add_argument("--model", metavar="NAME|PATH", help="check this model instead of the one vbg would load")
    return parser


# flag -> (section, field, how the flag's value becomes the setting's)
FLAGS = {
    "camera": ("capture", "camera", None), "input": ("capture", "input", None), "loop": ("capture", "loop", None),
    "size": ("capture", "size", None), "fps": ("capture", "fps", None), "no_mjpg": ("capture", "mjpg", "not"),
    "model": ("segment", "model", None), "device": ("segment", "device", None),
    "threads": ("segment", "threads", None), "adaptive": ("segment", "adaptive", None),
    "focus": ("segment", "focus", None),
    "smoothing": ("smooth", "strength", None),
    "no_refine": ("refine", "enabled", "not"), "threshold": ("refine", "threshold", None),
    "erode": ("refine", "erode", None), "feather": ("refine", "feather", None),
    "background": ("composite", "background", None), "mirror": ("composite", "mirror", None),
    "compositor": ("composite", "compositor", None),
    "no_vcam": ("output", "vcam", "not"), "vcam_device": ("output", "vcam_device", None),
    "vcam_backend": ("output", "vcam_backend", None),
    "record": ("output", "record", None), "pause_image": ("output", "pause_image", None), "always_on": ("output", "idle_when_unwatched", "not"),
}


def settings_from_args(args, base: Settings | None = None) -> Settings:
    """`base` (defaults, or the saved settings for run/gui) with the flags that were given."""
    s = base or Settings()
    given = vars(args)
    for flag, (section, name, how) in FLAGS.items():
        if flag in given and not (how == "not" and given[flag] is False):
            value = given[flag]
            setattr(getattr(s, section), name, (not value) if how == "not" else value)
    if "edge" in given:
        apply_edge_preset(s, given["edge"])
    return s


def saved_settings() -> Settings:
    from vbg.resources import config_dir

    return Settings.load(config_dir() / "settings.json")


INTERRUPTED = threading.Event()  # Ctrl-C came before a command set up its own handling


def cmd_run(args) -> int:
    from vbg.pipeline import Pipeline

    pipeline = Pipeline(settings_from_args(args, saved_settings()), lossless=getattr(args, "lossless", False),
                        alpha_dir=getattr(args, "alpha_dir", None))
    received = []

    def on_signal(signum, _frame):
        received.append(signum)
        pipeline.request_stop()

    handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    if INTERRUPTED.is_set():  # Ctrl-C came while the pipeline was being built, and its exception was lost
        on_signal(signal.SIGINT, None)
    try:
        pipeline.start()
        pipeline.wait(frames=getattr(args, "frames", None), duration=getattr(args, "duration", None),
                      status_every=args.status_every,
                      status=lambda line: print(f"vbg: {line}", file=sys.stderr, flush=True))
    finally:
        pipeline.stop()
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
    print(f"vbg: stopped after {pipeline.counters.frames_out} frames | {pipeline.status_line()}", file=sys.stderr)
    return 128 + received[0] if received else 0


def cmd_render(args) -> int:
    from vbg.matting.chain import open_segmenter
    from vbg.render import render

    settings = settings_from_args(args)
    segmenter = open_segmenter(settings)
    n, expected = render(args.input, args.output, settings, segmenter, background=args.background,
                         alpha_dir=args.alpha_dir, show_progress=not args.quiet)
    print(f"vbg: rendered {n} frame{'s' * (n != 1)} -> {args.output}", file=sys.stderr)
    # a container's header often counts a frame or two the stream does not hold (a transcode with audio)
    if expected and n < expected - max(2, expected // 100):
        print(f"vbg: warning: {args.input} ended after {n} of its {expected} frames (truncated or damaged): "
              "the output is incomplete", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args) -> int:
    from vbg.bench import format_report, run_bench

    if args.frames < 1:
        raise VbgError("--frames must be at least 1")
    if args.reference and not os.path.isfile(args.reference):
        raise VbgError(f"reference model {args.reference} does not exist (the MediaPipe selfie ONNX, e.g. "
                       "../shared/peers/mp_selfie_segmentation_landscape_144x256.onnx)")
    if getattr(args, "compositor", "auto") == "compiled":
        from vbg.matting.kernels import KERNELS

        if not KERNELS.available:
            raise VbgError("--compositor compiled needs numba (pip install numba); without it vbg composites "
                           "with OpenCV")
    result = run_bench(settings_from_args(args), args.input, args.size, args.frames, paced_fps=args.paced,
                       log=lambda m: print(f"vbg: {m}", file=sys.stderr))
    if args.reference:
        from vbg.bench import run_reference

        result["reference"] = run_reference(args.reference, args.input, args.size, args.frames, result["threads"])
    print(format_report(result))
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_eval(args) -> int:
    from vbg.evaluate import VARIANTS, eval_clip, eval_stills, eval_video, format_clip_report, format_report
    from vbg.matting.chain import open_segmenter

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise VbgError(f"unknown variant {unknown[0]!r}: use {', '.join(VARIANTS)}")
    if bool(args.images) != bool(args.masks):
        raise VbgError("stills need both --images DIR and --masks DIR")
    if sum(map(bool, (args.images, args.video, args.clip))) != 1:
        raise VbgError("give one of --images DIR --masks DIR, --video FILE [--alpha DIR], or --clip FILE")
    if (args.box or args.reference_cache) and not args.clip:
        raise VbgError("--box and --reference-cache are for --clip")
    if (args.size or args.crop) and not args.video:
        raise VbgError("--size and --crop reshape a --video: photos are scored as they are")
    settings = settings_from_args(args)
    segmenter = open_segmenter(settings) if variants else None
    baselines = {}
    for item in args.baseline:
        name, sep, path = item.partition("=")
        if not sep:
            raise VbgError(f"bad --baseline {item!r}: use NAME=PATH, e.g. rvm=rvm_mobilenetv3_fp32.onnx")
        baselines[name.strip()] = path.strip()
    if args.clip:
        report = eval_clip(args.clip, settings, segmenter or open_segmenter(settings), baselines, args.limit,
                           progress=not args.quiet, box=args.box, cache=args.reference_cache)
        print(format_clip_report(report))
        if args.json:
            print(json.dumps(report))
        return 0
    if args.images:
        report = eval_stills(args.images, args.masks, settings, segmenter, variants, args.pred, args.limit,
                             progress=not args.quiet, baselines=baselines)
    else:
        report = eval_video(args.video, args.alpha, settings, segmenter, variants, args.pred, args.limit,
                            progress=not args.quiet, plate=args.plate, baselines=baselines, size=args.size,
                            crop=args.crop)
    print(format_report(report))
    if args.json:
        print(json.dumps(report))
    return 0


def cmd_gui(args) -> int:
    from vbg.app.main import run_gui

    saved = saved_settings()
    given = [flag for flag in FLAGS if flag in vars(args)]
    return run_gui(settings_from_args(args, saved_settings()), saved, duration=getattr(args, "duration", None),
                   status_every=getattr(args, "status_every", None), tray=getattr(args, "tray", False),
                   given=given)


def cmd_install_desktop(args) -> int:
    from vbg.app import desktop

    if args.remove:
        removed = desktop.remove()
        print("\n".join(f"removed {p}" for p in removed) or "nothing to remove: vbg was not installed to the desktop")
        return 0
    for path in desktop.install(autostart=args.autostart):
        print(f"wrote {path}")
    print("vbg is in your applications menu" + (" and starts in the tray when you log in" if args.autostart else ""))
    return 0


def cmd_ctl(args) -> int:
    from vbg.app.control import send

    from vbg.app.commands import BY_VERB

    ctl_args = list(args.ctl_args)
    if BY_VERB[args.ctl_command].arg == "PATH" and ctl_args:  # the window may run in another folder
        ctl_args[0] = os.path.abspath(ctl_args[0])
    elif args.ctl_command == "select" and ctl_args and os.path.exists(" ".join(ctl_args)):
        ctl_args = [os.path.abspath(" ".join(ctl_args))]
    elif args.ctl_command == "source" and ctl_args and os.path.isfile(" ".join(ctl_args)):
        ctl_args = [os.path.abspath(" ".join(ctl_args))]
    reply = send(args.ctl_command, ctl_args)
    if not reply.get("ok"):
        raise VbgError(reply.get("error", "the app refused the command"), exit_code=1)
    if args.ctl_command == "status":
        print(json.dumps({k: v for k, v in reply.items() if k != "ok"}))
    elif args.ctl_command == "list":
        for i, label in enumerate(reply["backgrounds"]):
            print(f"{'*' if label == reply['background'] else ' '} {i + 1:2d}. {label}")
    elif args.ctl_command in ("next", "prev", "select", "blur", "off"):
        print(f"background: {reply['background']}")
    elif args.ctl_command in ("pause", "resume", "toggle"):
        print("paused" if reply["paused"] else "running")
    return 0


def cmd_devices(args) -> int:
    from vbg.devices import report

    print(report(args.model))
    return 0


COMMANDS = {"run": cmd_run, "gui": cmd_gui, "ctl": cmd_ctl, "install-desktop": cmd_install_desktop, "render": cmd_render, "bench": cmd_bench,
            "eval": cmd_eval, "devices": cmd_devices}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    native_stderr = None
    if args.command in (None, "run", "gui"):  # a live camera: libjpeg and pyvirtualcam print per frame
        from vbg.noise import NativeStderrFilter

        native_stderr = NativeStderrFilter().install()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="vbg: %(message)s",
                        stream=sys.stderr)
    if args.command is None:
        args = parser.parse_args(["gui"])
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(signum)
        INTERRUPTED.set()  # said to `cmd_run` too: a KeyboardInterrupt raised inside a finaliser is lost
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        return COMMANDS[args.command](args)
    except VbgError as e:
        print(f"vbg: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vbg: interrupted", file=sys.stderr)
        return 130
    except ImportError:
        if not interrupted:  # Ctrl-C while a native library initialises surfaces as an ImportError
            raise
        print("vbg: interrupted", file=sys.stderr)
        return 130
    finally:
        if native_stderr is not None:
            native_stderr.uninstall()
