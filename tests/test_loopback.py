"""What vbg does and says for each v4l2loopback version. The drivers themselves run in the qemu system
test (tests/system/): here no kernel module can be loaded, so the driver's answers (its version file,
its QUERYCAP) are stood in for by replacing the two functions that read them."""

import pytest

from vbg.outputs import loopback
from vbg.outputs.sinks import VirtualCameraSink


@pytest.mark.parametrize("text, version", [("0.15.0", (0, 15, 0)), ("0.13.2", (0, 13, 2)), ("0.12.7", (0, 12, 7)),
                                           ("0.14.0-rc1", (0, 14, 0)), ("", None), ("git", None)])
def test_the_drivers_version_is_read_as_it_writes_it(text, version):
    assert loopback.parse_version(text) == version


def test_what_each_version_needs():
    assert not loopback.registers_writers(None) and not loopback.one_reader(None)   # 0.12.7 declares no version
    assert not loopback.registers_writers((0, 12, 7))
    assert loopback.registers_writers((0, 13, 2)) and loopback.one_reader((0, 15, 0))
    assert loopback.version_text(None) == "v4l2loopback 0.12 or older"


def _stale(path):
    return loopback.DeviceState(path, loopback.LOOPBACK_DRIVER, "vbg", capture=False, output=False)


def test_a_stuck_device_is_reset_on_0_12_and_never_touched_on_0_13_and_later(monkeypatch):
    repaired = []
    monkeypatch.setattr(loopback, "query", _stale)
    monkeypatch.setattr(loopback, "repair", lambda path: repaired.append(path) or _stale(path))
    monkeypatch.setattr(loopback.sys, "platform", "linux")

    monkeypatch.setattr(loopback, "driver_version", lambda: None)
    assert "could not reset it" in loopback.prepare("/dev/video10") and repaired == ["/dev/video10"]

    repaired.clear()
    monkeypatch.setattr(loopback, "driver_version", lambda: (0, 15, 0))
    reason = loopback.prepare("/dev/video10")
    assert repaired == [] and "modprobe -r v4l2loopback" in reason and "could not reset" not in reason


class OneReaderCamera:
    """Stands in for an opened virtual camera on a given driver (no device here)."""

    def __init__(self, driver):
        self.device, self.driver = "/dev/video10", driver

    def send(self, image):
        pass

    def watch_readers(self):
        return type("Watcher", (), {"readers": 1, "available": True, "close": lambda self: None})()

    def close(self):
        pass


@pytest.mark.parametrize("driver, refused", [((0, 15, 0), True), ((0, 13, 2), True), (None, False)])
def test_the_status_says_other_apps_are_refused_where_the_driver_refuses_them(driver, refused):
    sink = VirtualCameraSink((64, 48), 30, None, open_camera=lambda *a: OneReaderCamera(driver))
    assert ("other apps are refused" in sink.state()) == refused
    assert sink.state().startswith("vcam /dev/video10: 1 reader")


def test_the_window_says_other_apps_are_refused_on_a_one_reader_driver():
    from vbg.app.status import virtual_camera_words

    for driver, refused in (((0, 15, 0), True), (None, False)):
        sink = VirtualCameraSink((64, 48), 30, None, open_camera=lambda *a, d=driver: OneReaderCamera(d))
        words = virtual_camera_words(sink.status())
        assert words.startswith("virtual camera: in use by 1 app") and ("other apps are refused" in words) == refused


def test_a_lost_loopback_webcam_nobody_writes_to_is_left_closed_so_its_writer_can_come_back(monkeypatch):
    """v4l2loopback 0.13+ refuse a writer while a reader streams without one: vbg retrying such a webcam
    in a loop kept its program (ffmpeg in the system test; OBS for users) from ever writing again."""
    import time

    from vbg.capture.source import CaptureThread, FrameSource
    from vbg.frames import FramePool, LatestSlot
    from vbg.settings import CaptureSettings
    from vbg.timing import StageTimes

    class SilentCamera(FrameSource):
        """Stands in for an opened loopback webcam whose writer is gone (none here): no frame comes."""

        def read(self, into):
            time.sleep(0.01)
            return None

    opens, writer = [], []
    monkeypatch.setattr(loopback.sys, "platform", "linux")
    monkeypatch.setattr(loopback, "query", lambda path: loopback.DeviceState(path, loopback.LOOPBACK_DRIVER,
                                                                            "webcam", True, True))
    monkeypatch.setattr(loopback, "holders", lambda path: list(writer))
    settings = CaptureSettings()
    settings.camera = "/dev/video0"
    capture = CaptureThread(settings, LatestSlot(), FramePool(2), StageTimes(),
                            open_source=lambda s: opens.append(time.monotonic()) or SilentCamera())
    capture.backoff.delays, capture.LOST_AFTER_S = (0.02,), 0.05
    capture.start()
    try:
        time.sleep(1.0)
        unfed = len(opens)
        writer.append((123, "ffmpeg"))       # a program writes to it again
        time.sleep(0.5)
    finally:
        capture.stop()
        capture.join(5)
    # each try takes about the same time, open or not: without a writer, SKIP_UNFED of every
    # SKIP_UNFED + 1 leave it closed; with one, every try opens it
    unfed_rate, fed_rate = unfed / 1.0, (len(opens) - unfed) / 0.5
    assert unfed >= 2 and fed_rate >= 5
    assert unfed_rate <= 0.6 * fed_rate, (unfed_rate, fed_rate)
