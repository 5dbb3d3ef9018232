"""Frames rendered ahead in a worker thread, handed out once, in pass order.

No sleeps: the render thread stores a frame before it starts the next, so once the
render of position i + 1 has begun, position i can be taken.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from usx_ros.sim.render_ahead import RenderAhead

TIMEOUT_S = 5.0


def _renderer(lookahead: int, gate: threading.Event | None = None):
    """A RenderAhead whose renders announce their plan frame index on a queue."""
    started: queue.Queue[int] = queue.Queue()

    def render(k: int) -> np.ndarray:
        started.put(k)
        if gate is not None:
            assert gate.wait(TIMEOUT_S)
        return np.full((2, 3), k, np.uint8)

    return RenderAhead(render, lookahead), started


def test_frames_come_in_pass_order_and_once():
    renderer, started = _renderer(lookahead=2)
    try:
        renderer.start_pass(np.array([4, 2, 7, 9]))
        assert [started.get(timeout=TIMEOUT_S) for _ in range(2)] == [4, 2]  # the lookahead
        assert renderer.take(0)[0, 0] == 4
        assert renderer.take(0) is None  # handed out once
        assert started.get(timeout=TIMEOUT_S) == 7  # taking one lets the next render
        assert renderer.take(1)[0, 0] == 2
        assert started.get(timeout=TIMEOUT_S) == 9
        assert renderer.take(2)[0, 0] == 7
        assert renderer.take(4) is None  # beyond the pass
    finally:
        renderer.close()


def test_a_new_pass_drops_the_last_one():
    gate = threading.Event()
    renderer, started = _renderer(lookahead=3, gate=gate)
    try:
        renderer.start_pass(np.array([0, 1, 2]))
        assert started.get(timeout=TIMEOUT_S) == 0  # the first pass's frame 0 is rendering
        renderer.start_pass(np.array([5, 6, 8]))
        gate.set()  # frame 0 of the first pass finishes now, for nothing
        assert [started.get(timeout=TIMEOUT_S) for _ in range(2)] == [5, 6]
        assert renderer.take(0)[0, 0] == 5
        assert started.get(timeout=TIMEOUT_S) == 8
        assert renderer.take(1)[0, 0] == 6
    finally:
        renderer.close()


def test_close_stops_the_thread():
    renderer, _ = _renderer(lookahead=1)
    renderer.close()
    renderer.close()  # idempotent
    assert not renderer._thread.is_alive()
