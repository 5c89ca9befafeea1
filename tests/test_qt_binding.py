"""The Qt binding must not lose references to True/None/False (PySide6 6.12.0 on Python 3.11 did: the
window aborted after 1.5-4 minutes with `bool_dealloc: deallocating True or False`)."""

import json
import subprocess
import sys

import pytest

PROBE = """
import json, os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from vbg.app.qtcheck import measure_leak
app = QApplication([])
print(json.dumps(measure_leak(app, calls=200)))
"""


def test_signals_and_label_updates_keep_singleton_references():
    # In a child process: a binding that loses references can abort the interpreter that measures it.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    lost = json.loads(out.stdout.strip().splitlines()[-1])
    # 200 emits, label updates and event loop turns: a leaking binding loses 200-600; a sound one ~0
    assert all(delta > -20 for delta in lost.values()), f"references lost: {lost}"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="True/None/False are immortal from Python 3.12 on")
def test_window_refuses_a_leaking_binding_with_one_line(monkeypatch):
    from PySide6.QtWidgets import QApplication

    from vbg.app import qtcheck
    from vbg.errors import VbgError

    app = QApplication.instance() or QApplication([])
    monkeypatch.setattr(qtcheck, "measure_leak", lambda app: {"True": -40, "None": -118, "False": 0})
    with pytest.raises(VbgError, match=r'True: -40, None: -118.*PySide6-Essentials<6\.12'):
        qtcheck.check_qt_binding(app)
