"""trim_heap gives freed heap pages back: resident memory drops after a large free."""

from __future__ import annotations

import gc
import sys

import psutil
import pytest

from usx_ros.memory import trim_heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_freed_heap_is_returned_to_the_os() -> None:
    proc = psutil.Process()
    # 400 MB in 4 KB blocks: below the mmap threshold, so they live on the heap, and a
    # small block allocated after them pins the heap's top, as in a long-running node
    blocks = [bytearray(4096) for _ in range(100_000)]
    pin = bytearray(4096)
    before_free = proc.memory_info().rss
    del blocks
    gc.collect()
    freed_not_trimmed = proc.memory_info().rss
    assert trim_heap()
    trimmed = proc.memory_info().rss
    assert freed_not_trimmed - before_free > -100 * 2**20  # glibc kept (most of) it mapped
    assert freed_not_trimmed - trimmed > 300 * 2**20, (before_free, freed_not_trimmed, trimmed)
    del pin
