"""The desktop around the window: menu entry and autostart, the tray, the libraries Qt needs."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import CLIP_720P, MODEL, need_tool, start_tray
from vbg.app import desktop
from vbg.app.qtcheck import check_platform_libraries, debian_package, missing_libraries
from vbg.errors import VbgError


def test_install_desktop_writes_valid_files_and_removes_them(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    r = subprocess.run([sys.executable, "-m", "vbg", "install-desktop", "--autostart"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    files = desktop.DesktopFiles.here()
    for path in (files.entry, files.icon, files.metainfo, files.autostart):
        assert f"wrote {path}" in r.stdout and path.is_file()
    validate = need_tool("desktop-file-validate", "desktop-file-utils")
    for entry in (files.entry, files.autostart):
        check = subprocess.run([validate, str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    appstream = need_tool("appstreamcli", "appstream")
    check = subprocess.run([appstream, "validate", "--no-net", "--pedantic", str(files.metainfo)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    exec_line = next(line for line in files.autostart.read_text().splitlines() if line.startswith("Exec="))
    command = exec_line.removeprefix("Exec=").split()                   # the command starts this very vbg
    assert command[-2:] == ["gui", "--tray"]
    version = subprocess.run(command[:-2] + ["--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("vbg ")
    again = subprocess.run([sys.executable, "-m", "vbg", "install-desktop"], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and not files.autostart.exists()      # autostart is a choice, undone too
    r = subprocess.run([sys.executable, "-m", "vbg", "install-desktop", "--remove"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.count("removed ") == 3
    assert not any(p.exists() for p in (files.entry, files.icon, files.metainfo, files.autostart))


def test_exec_line_quotes_paths_as_the_desktop_spec_says():
    assert desktop._exec(["/opt/my apps/vbg", "gui"]) == '"/opt/my apps/vbg" gui'
    assert desktop._exec(["/x/$HOME", "50%"]) == '"/x/\\\\$HOME" 50%%'


def test_debian_package_names():
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libX11-xcb.so.1") == "libx11-xcb1"


def test_a_missing_system_library_is_named_in_one_line(tmp_path, monkeypatch):
    """A real ELF that needs a library from a folder that is then emptied: the dynamic linker cannot
    find it, as on a machine without the package (named so that no system has it)."""
    cc = need_tool("gcc", "gcc")
    (tmp_path / "stub.c").write_text("int xcb_icccm_stub(void) { return 0; }\n")
    (tmp_path / "plugin.c").write_text("int xcb_icccm_stub(void);\nint plugin(void) { return xcb_icccm_stub(); }\n")
    libs = tmp_path / "libs"
    libs.mkdir()
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libxcb-vbgtest.so.4", "-o", libs / "libxcb-vbgtest.so.4",
                    tmp_path / "stub.c"], check=True)
    (libs / "libxcb-vbgtest.so").symlink_to("libxcb-vbgtest.so.4")
    plugin = tmp_path / "libqxcb.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", plugin, tmp_path / "plugin.c", f"-L{libs}", "-lxcb-vbgtest"],
                   check=True)
    shutil.rmtree(libs)
    assert missing_libraries([plugin]) == ["libxcb-vbgtest.so.4"]

    import PySide6

    fake_root = tmp_path / "PySide6"
    (fake_root / "Qt" / "plugins" / "platforms").mkdir(parents=True)
    shutil.copy(plugin, fake_root / "Qt" / "plugins" / "platforms" / "libqxcb.so")
    monkeypatch.setattr(PySide6, "__file__", str(fake_root / "__init__.py"))
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    with pytest.raises(VbgError) as err:
        check_platform_libraries()
    assert str(err.value).endswith("sudo apt install libxcb-vbgtest4 (Debian/Ubuntu package names)")
    assert "\n" not in str(err.value)


def test_this_machine_has_every_library_the_window_needs(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    check_platform_libraries()                 # what the README names and .ci/run installs is enough


@pytest.fixture
def tray_display(xvfb):
    """Xvfb with a real system tray."""
    tray = start_tray(xvfb)
    time.sleep(1.0)
    yield xvfb
    tray.terminate()
    tray.wait()


@pytest.mark.integration
def test_window_closes_to_a_real_tray_and_quits_from_its_menu(tray_display, tmp_path):
    script = textwrap.dedent(f"""
        import json
        from PySide6.QtWidgets import QApplication
        from vbg.app.window import MainWindow
        from vbg.settings import Settings
        from PySide6.QtWidgets import QSystemTrayIcon
        app = QApplication(["vbg"])
        t0 = __import__("time").monotonic()
        while not QSystemTrayIcon.isSystemTrayAvailable() and __import__("time").monotonic() - t0 < 10:
            __import__("time").sleep(0.2)           # trayer takes its selection a moment after it starts
        s = Settings()
        s.capture.input, s.capture.loop, s.output.vcam = {str(CLIP_720P)!r}, True, False
        w = MainWindow(s, save_path=None, start_in_tray=True)
        seen = {{"tray": w.tray.visible, "start_in_tray": w.start_in_tray}}
        deadline = __import__("time").monotonic() + 60
        while (w.controller.pipeline is None or w.controller.pipeline.counters.frames_out == 0) and __import__("time").monotonic() < deadline:
            app.processEvents()
        seen["frames_while_hidden"] = w.controller.pipeline.counters.frames_out if w.controller.pipeline else 0
        w.show()
        app.processEvents()
        w.close()                                   # the title bar's close button
        app.processEvents()
        seen["hidden_after_close"] = not w.isVisible()
        seen["engine_after_close"] = w.controller.pipeline is not None and not w.controller.pipeline.finished.is_set()
        engine = w.controller.pipeline
        w.tray_menu.quit_action.trigger()
        app.processEvents()
        seen["engine_after_quit"] = not engine.finished.wait(10)
        print(json.dumps(seen))
    """)
    env = dict(os.environ, DISPLAY=tray_display, VBG_MODEL=str(MODEL))
    env.pop("QT_QPA_PLATFORM", None)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    print(r.stdout, r.stderr[-2000:])
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen == {"tray": True, "start_in_tray": True, "frames_while_hidden": seen["frames_while_hidden"],
                    "hidden_after_close": True, "engine_after_close": True, "engine_after_quit": False}
    assert seen["frames_while_hidden"] > 0                 # the call keeps its camera while the window is away


def test_readme_names_every_package_ci_installs_for_the_window():
    """A newcomer with only what the README names gets what CI has (the window tests used to abort)."""
    import re
    from conftest import ROOT

    ci = (ROOT / ".ci" / "run").read_text()
    window_libs = re.search(r"for lib in (.*?); do", ci, re.S).group(1).replace("\\", " ").split()
    readme = (ROOT / "README.md").read_text()
    apt_line = re.search(r"sudo apt-get install --no-install-recommends xvfb(.*?)```", readme, re.S).group(1)
    named = set(apt_line.replace("\\", " ").split())
    assert set(window_libs) <= named and {"xdotool", "trayer", "gcc", "desktop-file-utils", "appstream"} <= named


@pytest.mark.integration
def test_start_at_login_waits_for_a_tray_that_comes_late(tmp_path, xvfb):
    """At login the panel (and its tray) often starts after vbg: `vbg gui --tray` waits for it
    instead of popping the window up."""
    for tool, package in (("trayer", "trayer"), ("xdotool", "xdotool")):
        need_tool(tool, package)
    env = dict(os.environ, DISPLAY=xvfb, VBG_MODEL=str(MODEL))
    env.pop("QT_QPA_PLATFORM", None)
    app = subprocess.Popen([sys.executable, "-m", "vbg", "gui", "--tray", "--input", str(CLIP_720P), "--loop",
                            "--no-vcam", "--duration", "25"], env=env, stderr=subprocess.PIPE, text=True)
    tray = None
    try:
        time.sleep(4.0)                                               # vbg is up, no tray yet
        tray = start_tray(xvfb)
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            r = subprocess.run([sys.executable, "-m", "vbg", "ctl", "status"], capture_output=True, text=True,
                               env=env, timeout=30)
            if r.returncode == 0 and json.loads(r.stdout)["fps"] > 0:
                status = json.loads(r.stdout)
                break
            time.sleep(0.5)
        assert status is not None, "vbg did not run"
        time.sleep(2.0)
        shown = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "virtual background"],
                               capture_output=True, text=True, env=env)
        assert shown.stdout.strip() == ""                             # still hidden: it went to the tray
    finally:
        app.terminate()
        try:
            _, err = app.communicate(timeout=30)
        finally:
            if tray is not None:
                tray.terminate()
                tray.wait()
    assert "running in the tray: click its icon for the window" in err
    assert "showing the window" not in err
