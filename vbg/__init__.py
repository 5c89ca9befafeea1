"""vbg: a real-time webcam virtual background."""

import os

__version__ = "0.1.0"

# OpenCV prints multi-line [ WARN ] blocks for every camera retry; vbg says what happened in one line
# of its own. Set before any module imports cv2; OPENCV_LOG_LEVEL in the environment still wins.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
