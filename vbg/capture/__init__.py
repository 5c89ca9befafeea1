"""Frames in: cameras and video files (source.py), read on a thread of their own; MJPG decoded here."""
