"""Stream `reports.write_csv` to an HTTP response without holding the whole report.

write_csv writes to a file-like object; here it runs in a worker thread whose
writes go through a small bounded queue to the response generator, so memory
stays at a few chunks whatever the report's size, and a client that goes away
stops the query instead of leaving it running.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

CHUNK_CHARS = 64 * 1024
_DONE = object()


class _ClientGone(Exception):
    """Raised inside the writer thread when the response was closed early."""


class _QueueWriter:
    def __init__(self, chunks: "queue.Queue[Any]", stop: threading.Event):
        self._chunks = chunks
        self._stop = stop
        self._buf: list[str] = []
        self._size = 0

    def write(self, s: str) -> int:
        self._buf.append(s)
        self._size += len(s)
        if self._size >= CHUNK_CHARS:
            self.flush()
        return len(s)

    def flush(self) -> None:
        if self._buf:
            self.put("".join(self._buf).encode("utf-8"))
            self._buf, self._size = [], 0

    def put(self, item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _ClientGone()
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


def stream_from_writer(write: Callable[[Any], Any], *, what: str) -> Iterator[bytes]:
    """Run write(file_like) in a thread and yield what it writes, in chunks of bytes."""
    chunks: "queue.Queue[Any]" = queue.Queue(maxsize=8)
    stop = threading.Event()
    out = _QueueWriter(chunks, stop)

    def produce() -> None:
        try:
            write(out)
            out.flush()
        except _ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 - reported to the reader below
            log.exception("CSV download of %s failed", what)
            try:
                out.flush()  # the rows written before the failure still go out
                out.put(exc)
            except _ClientGone:
                return
        try:
            out.put(_DONE)
        except _ClientGone:
            pass

    worker = threading.Thread(target=produce, name=f"csv-{what}", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                # Headers are gone already: end the body with a line saying it is incomplete.
                yield f"\n# download incomplete: {type(item).__name__}\n".encode("utf-8")
                return
            yield item
    finally:
        stop.set()
