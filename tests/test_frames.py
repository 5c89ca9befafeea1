"""Hand-offs: newest frame wins, memory is bounded by the pool."""

import threading

from vbg.frames import FramePool, LatestSlot


def test_latest_slot_drops_stale_frames_and_returns_them_to_the_pool():
    pool = FramePool(3)
    slot = LatestSlot()
    for i in range(3):
        f = pool.take((4, 4, 3))
        f.index = i
        slot.put(f)
    assert slot.dropped == 2
    assert pool.free_count() == 2                   # the two dropped frames are back
    newest = slot.get(timeout=0)
    assert newest.index == 2


def test_pool_is_bounded():
    pool = FramePool(2)
    a, b = pool.take((2, 2, 3)), pool.take((2, 2, 3))
    assert a is not None and b is not None
    assert pool.take((2, 2, 3), timeout=0.05) is None
    a.release()
    assert pool.take((2, 2, 3), timeout=0.05) is a


def test_lossless_slot_waits_instead_of_dropping():
    pool = FramePool(4)
    slot = LatestSlot(lossless=True)
    got = []

    def consume():
        while (f := slot.get(timeout=1)) is not None:
            got.append(f.index)
            f.release()

    t = threading.Thread(target=consume)
    t.start()
    for i in range(20):
        f = pool.take((2, 2, 3))
        f.index = i
        slot.put(f)
    slot.close()
    t.join()
    assert got == list(range(20)) and slot.dropped == 0


def test_closing_a_slot_wakes_the_consumer():
    slot = LatestSlot()
    threading.Timer(0.05, slot.close).start()
    assert slot.get(timeout=5) is None and slot.closed
