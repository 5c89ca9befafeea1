"""The loops' timing helpers: the backoff of reconnects and the pace of video files."""

import threading
import time

from vbg.timing import Backoff, Pacer


def test_backoff_grows_to_its_longest_and_starts_again_after_a_success():
    backoff = Backoff((0.25, 0.5, 1.0))
    assert [backoff.next_delay() for _ in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert backoff.failures == 5 and backoff.longest == 1.0
    backoff.reset()
    assert backoff.next_delay() == 0.25


def test_a_paced_loop_that_stalled_goes_on_at_its_rate_instead_of_rushing_to_catch_up():
    pacer = Pacer(100.0, threading.Event())      # 10 ms a frame
    time.sleep(0.2)                              # a stall of 20 frames (a slow disk, a debugger)
    t0 = time.perf_counter()
    for _ in range(4):
        pacer.wait()
    # the first wait after the stall starts counting again; the next three each wait a period
    # (a catch-up would have returned at once for the 20 frames it was behind)
    assert time.perf_counter() - t0 >= 0.025


def test_stop_ends_a_paced_wait_at_once():
    stop = threading.Event()
    pacer = Pacer(0.5, stop)                     # 2 s a frame
    threading.Timer(0.05, stop.set).start()
    t0 = time.perf_counter()
    pacer.wait()
    assert time.perf_counter() - t0 < 1.5
