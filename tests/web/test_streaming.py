"""Streaming a CSV writer to a response: whole output in order, early close stops the writer."""
from __future__ import annotations

import threading

from cstf.web.streaming import CHUNK_CHARS, stream_from_writer


def test_everything_written_arrives_in_order():
    lines = [f"{i},row {i}\n" for i in range(50_000)]

    def write(out):
        for line in lines:
            out.write(line)

    body = b"".join(stream_from_writer(write, what="t")).decode()
    assert body == "".join(lines)


def test_a_client_that_goes_away_stops_the_writer():
    written = []
    finished = threading.Event()

    def write(out):
        try:
            for i in range(10_000):
                out.write("x" * CHUNK_CHARS)  # one chunk per write
                written.append(i)
        finally:
            finished.set()

    stream = stream_from_writer(write, what="t")
    assert len(next(stream)) == CHUNK_CHARS
    stream.close()  # what the server does when the client disconnects
    assert finished.wait(30), "the writer thread kept running after the response was closed"
    assert len(written) < 100


def test_a_failing_writer_ends_the_body_saying_it_is_incomplete():
    def write(out):
        out.write("a,b\n")
        raise RuntimeError("database went away")

    body = b"".join(stream_from_writer(write, what="t")).decode()
    assert body.startswith("a,b\n") and "download incomplete: RuntimeError" in body
