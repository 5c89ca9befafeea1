"""Native libraries' per-frame complaints become one vbg line; everything else passes through."""

import subprocess
import sys

CHILD = r"""
import logging, os, sys
from vbg.noise import NativeStderrFilter
f = NativeStderrFilter().install()
logging.basicConfig(format="vbg: %(message)s")
for i in range(40):                                   # what libjpeg writes for each damaged frame
    os.write(2, b"Corrupt JPEG data: bad Huffman code\n")
os.write(2, b"some other native message\n")
logging.getLogger("t").warning("a python log line")
f.uninstall()
os.write(2, b"after uninstall\n")
"""


def test_damaged_mjpg_complaints_become_one_line_and_others_pass():
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30)
    lines = r.stderr.splitlines()
    assert r.returncode == 0, r.stderr
    assert not any(line.startswith("Corrupt JPEG") for line in lines)
    summary = [line for line in lines if "damaged MJPG frames" in line]
    assert summary == ["vbg: warning: the camera sends damaged MJPG frames, dropped before they are shown (1 so far; the decoder's messages are "
                       "hidden)", "vbg: warning: the camera sends damaged MJPG frames, dropped before they are shown (40 in all)"]
    assert "some other native message" in lines and "vbg: a python log line" in lines
    assert lines[-1] == "after uninstall"
