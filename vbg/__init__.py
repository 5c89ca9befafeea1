"""vbg: a real-time webcam virtual background."""

__version__ = "0.1.0"
