"""tools.interrupt: SIGTERM becomes KeyboardInterrupt inside the block, and only there."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from usx_ros.tools.interrupt import sigterm_as_interrupt


def test_sigterm_interrupts_the_block_and_the_old_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    reached_cleanup = False
    with pytest.raises(KeyboardInterrupt):
        try:
            with sigterm_as_interrupt():
                # CPython runs the handler before the next bytecode after kill returns
                os.kill(os.getpid(), signal.SIGTERM)
                pytest.fail("SIGTERM did not interrupt the block")
        finally:
            reached_cleanup = True
    assert reached_cleanup
    assert signal.getsignal(signal.SIGTERM) is before


def test_off_the_main_thread_the_block_runs_unchanged() -> None:
    seen = {}

    def worker() -> None:
        with sigterm_as_interrupt():
            seen["handler"] = signal.getsignal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=worker)
    t.start()
    t.join(5)
    assert seen["handler"] is before
