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


def test_freeze_heap_hides_the_objects_alive_and_still_collects_later_cycles() -> None:
    """In a child process: freezing the test session's own heap would keep its garbage."""
    import subprocess

    code = (
        "import gc, weakref\n"
        "from usx_ros.memory import freeze_heap\n"
        "start_up = [[i] for i in range(200_000)]\n"
        "freeze_heap()\n"
        "class C: pass\n"
        "c = C(); c.me = c; ref = weakref.ref(c); del c\n"
        "gc.collect()\n"
        "print(gc.get_freeze_count() >= 200_000, ref() is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"], out.stderr


@pytest.mark.parametrize(("env", "changed"), [(None, "True"), ("1", "False")])
def test_numpy_stops_asking_for_huge_pages_unless_the_user_chose(env, changed) -> None:
    """In a child process (the setting is process-wide): the first call turns NumPy's
    huge-page requests off (a second finds them off); NUMPY_MADVISE_HUGEPAGE wins."""
    import os
    import subprocess

    code = (
        "from usx_ros.memory import no_numpy_hugepages\n"
        "first = no_numpy_hugepages()\n"
        "try:\n"
        "    from numpy._core import multiarray\n"
        "except ImportError:\n"
        "    from numpy.core import multiarray\n"
        "print(first, multiarray._set_madvise_hugepage(False))\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ
    )
    # the second value: whether huge pages were still requested before that call
    assert out.stdout.split() == [changed, "True" if env == "1" else "False"], out.stderr
