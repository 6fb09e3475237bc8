"""How a task process gives memory back: the large tables of a step are freed as it goes, and the allocators
are told to return freed memory to the system at once rather than keep it for later.

A step of 100,000 persons allocates and frees several GB of Arrow buffers, numpy arrays and Python objects in
turn. Left to their defaults, Arrow's mimalloc pool and glibc's malloc keep much of what was freed mapped (glibc
raises its mmap threshold to 32 MB after the first large free, so every later numpy column comes from a heap that
is seldom trimmed): a task's peak resident memory then counts memory no longer in use. Measured on the plan of
1.5 M competence actions (bench/bench_memory.py): peak 2.31 GB as is, 1.90 GB with the settings below, same run
time. Airflow runs each task in its own process, so these process-wide settings apply to one step.

`configure()` is called once per task process (operators.common.job_for); it is idempotent and never fails a task.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)
MMAP_THRESHOLD = 4 << 20   # glibc: allocations of 4 MB and more are mapped, and unmapped when freed
_M_MMAP_THRESHOLD = -3     # mallopt's parameter number (malloc.h)
_done = False


def configure() -> dict:
    """Arrow on jemalloc with no decay (freed pages are returned at once) when pyarrow has it, else the system
    allocator; glibc's mmap threshold fixed at MMAP_THRESHOLD. Returns what was set."""
    global _done
    out: dict = {}
    if _done:
        return out
    _done = True
    try:
        import pyarrow as pa
        try:
            pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(0)
        except (NotImplementedError, AttributeError, pa.ArrowNotImplementedError):
            pool = pa.system_memory_pool()
        pa.set_memory_pool(pool)
        out["arrow_pool"] = pool.backend_name
    except Exception as exc:  # noqa: BLE001 - memory tuning never fails a task
        log.warning("Arrow memory pool left as it is: %s", exc)
    try:
        libc = ctypes.CDLL("libc.so.6")
        out["mmap_threshold"] = MMAP_THRESHOLD if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): its own defaults
        out["mmap_threshold"] = None
    return out
