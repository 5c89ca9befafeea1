"""Frames out: the virtual camera (v4l2loopback or PipeWire), a recording, and the cards sent when there is
no composite."""
