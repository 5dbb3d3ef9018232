"""Give the heap's free pages back to the operating system after a large job; keep the
garbage collector off a node's start-up objects.

A node that builds large arrays once per sweep (the compounding volume, the completion's
point clouds and network activations) frees them afterwards, but glibc's allocator keeps
freed heap pages mapped, and its mmap threshold grows with every large block freed, so
later blocks of the same size come from the heap instead of mmap. The resident size then
climbs sweep after sweep with no leak behind it. ``malloc_trim(0)`` returns every whole
free page of every arena (``MADV_DONTNEED``); it costs milliseconds, once per sweep.

Python's full (generation 2) collection walks every tracked object, and a node that imports
torch, Open3D and SciPy holds hundreds of thousands of them, nearly all made at start-up
and alive for good: in the completion node a full collection paused it for tenths of a
second, and one that fell between the X-ray placement and its callback held the sweep's
final spine up (docs/results.md, "Sweep end -> final"). :func:`freeze_heap` moves the
objects alive once start-up is done out of the collector's sight (``gc.freeze``); later
garbage is collected as before.

NumPy asks the kernel for transparent huge pages for every array of 4 MB or more
(``madvise``). A node allocates its large arrays once per sweep, on memory it gave back
after the last one, and on this project's VM those first touches of huge pages cost most
of the sweep end's system time (the breathing fit ran three times slower in the node than
in a process that had used the memory before). :func:`no_numpy_hugepages` turns the
request off in a node's process (``run_node``); the measurements are in docs/results.md
("NumPy's huge pages").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    fn = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Release free heap memory to the OS; True if any was released (False off glibc)."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False


def freeze_heap() -> None:
    """Collect once, then exclude every object alive now from later collections.

    For a node's own process once its start-up is done (``run_node``): frozen objects
    that later form unreachable cycles are never freed, which a process that builds and
    drops nodes (a test session) must not pay.
    """
    gc.collect()
    gc.freeze()


def no_numpy_hugepages() -> bool:
    """Stop NumPy from asking for transparent huge pages for its large arrays, unless the
    user chose with NumPy's own ``NUMPY_MADVISE_HUGEPAGE``; True when it changed anything."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    return bool(setter(False)) if setter is not None else False
