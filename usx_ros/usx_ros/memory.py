"""Give the heap's free pages back to the operating system after a large job.

A node that builds large arrays once per sweep (the compounding volume, the completion's
point clouds and network activations) frees them afterwards, but glibc's allocator keeps
freed heap pages mapped, and its mmap threshold grows with every large block freed, so
later blocks of the same size come from the heap instead of mmap. The resident size then
climbs sweep after sweep with no leak behind it. ``malloc_trim(0)`` returns every whole
free page of every arena (``MADV_DONTNEED``); it costs milliseconds, once per sweep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


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
