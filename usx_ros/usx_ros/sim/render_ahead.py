"""Render a pass's B-mode frames a little ahead of publishing, in a worker thread.

Rendering a frame takes a good part of a frame period; the phantom's timer at the joint
rate publishes whatever is due and must never wait on rendering, so frames are rendered
in order, at most ``lookahead`` ahead of the one last taken. ROS-free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

RENDER_LOOKAHEAD = 15  # frames rendered ahead (0.5 s at 30 Hz)


class RenderAhead:
    """Renders one pass's frames in order in a worker thread, at most ``lookahead`` ahead.

    Args:
        render: frame index of the plan -> (rows, cols) uint8 image.
        lookahead: frames rendered but not yet taken, at most.
    """

    def __init__(self, render: Callable[[int], np.ndarray], lookahead: int) -> None:
        self._render = render
        self._lookahead = lookahead
        self._cond = threading.Condition()
        self._order = np.zeros(0, dtype=np.int64)
        self._images: dict[int, np.ndarray] = {}
        self._next = self._taken = self._generation = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="phantom-render", daemon=True)
        self._thread.start()

    def start_pass(self, order: np.ndarray) -> None:
        """Render plan frames ``order[0], order[1], ...`` from now on (drops the last pass)."""
        with self._cond:
            self._order = np.asarray(order)
            self._images.clear()
            self._next = self._taken = 0
            self._generation += 1
            self._cond.notify_all()

    def take(self, i: int) -> np.ndarray | None:
        """The image of pass position ``i`` if it is rendered (then forgotten), else None."""
        with self._cond:
            image = self._images.pop(i, None)
            if image is not None:
                self._taken = i + 1
                self._cond.notify_all()
            return image

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closed
                        or self._next < min(len(self._order), self._taken + self._lookahead)
                    )
                )
                if self._closed:
                    return
                generation, i, k = self._generation, self._next, int(self._order[self._next])
            image = self._render(k)  # outside the lock: numpy releases the GIL while it works
            with self._cond:
                if generation == self._generation:
                    self._images[i] = image
                    self._next = i + 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
