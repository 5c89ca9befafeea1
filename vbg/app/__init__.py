"""The desktop app: a Qt window over the engine's threads, and `vbg ctl` to drive it from outside."""
