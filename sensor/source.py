"""Capture sources: files (pcap, pcapng, gzip-compressed), standard input.

A source fills one reused buffer (``ChunkReader``): the engine walks the
records in it and says how much it consumed; the rest (at most one partial
record) moves to the front and the next read appends to it.  One ``readinto``
per chunk is the only copy, and no buffer is allocated per chunk: a fresh
4 MiB ``bytes`` per read, and another for ``carry + data``, cost page faults
and copies worth ~10 % of a run.  This works the same for gzip streams and
pipes, where there is nothing to map.  Memory stays bounded by the chunk size
plus one record (the buffer grows only for a single record larger than it,
and the engine refuses records over 16 MiB).
"""
from __future__ import annotations

import gzip
import io
import os
import stat
import sys
from typing import BinaryIO, Iterator

CHUNK = 4 * 1024 * 1024
"""Bytes read per step: large enough that per-chunk overhead vanishes, small
enough to keep memory flat and progress smooth."""

GZIP_MAGIC = b"\x1f\x8b"


class CaptureError(Exception):
    """A capture that cannot be read at all; the message is for the user."""


def open_capture(path: str) -> tuple[BinaryIO, int | None]:
    """Open *path* ('-' for standard input); transparently gunzip.

    Returns (stream, size in bytes or None when unknown, for progress).
    """
    if path == "-":
        raw = io.BufferedReader(sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer,
                                buffer_size=CHUNK)
        size = None
        head = raw.peek(2)[:2]
    else:
        try:
            # unbuffered: ChunkReader reads straight into its buffer (a BufferedReader
            # would read into its own and copy)
            raw = open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise CaptureError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CaptureError(f"{path}: is a directory") from None
        except PermissionError:
            raise CaptureError(f"{path}: permission denied") from None
        st = os.fstat(raw.fileno())
        size = st.st_size
        if stat.S_ISREG(st.st_mode):
            head = os.pread(raw.fileno(), 2, 0)
        else:   # a FIFO or device: no peeking without consuming
            raw = io.BufferedReader(raw, buffer_size=CHUNK)
            head = raw.peek(2)[:2]
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), size
    return raw, size


class ChunkReader:
    """Bytes of *stream* in one reused buffer; ``buf[:end]`` is what is not yet consumed.

        r = ChunkReader(stream)
        while r.fill():
            r.consume(engine.feed(r.buf, False, r.end))
        engine.feed(r.buf, True, r.end)            # end of input: whatever is left
    """

    def __init__(self, stream: BinaryIO, size: int | None = None):
        self.stream = stream
        self.buf = bytearray(size or CHUNK)
        self.end = 0

    def fill(self) -> bool:
        """Read more after the unconsumed bytes; False at the end of the input."""
        if self.end == len(self.buf):
            # one record larger than the buffer: make room (bounded by the engine's record limit)
            self.buf.extend(bytes(len(self.buf)))
        try:
            with memoryview(self.buf) as mv:
                n = self.stream.readinto(mv[self.end:])
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise CaptureError(f"compressed stream is damaged: {exc}") from None
        if not n:
            return False
        self.end += n
        return True

    def consume(self, used: int) -> None:
        """The first *used* bytes are done; keep the rest at the front."""
        rest = self.end - used
        if rest > 0 and used > 0:
            with memoryview(self.buf) as mv:
                mv[:rest] = mv[used:self.end]
        self.end = rest


def chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream as ``bytes`` chunks (for callers that want them; the pipeline uses ChunkReader)."""
    while True:
        try:
            data = stream.read(CHUNK)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise CaptureError(f"compressed stream is damaged: {exc}") from None
        if not data:
            return
        yield data


def raw_position(stream) -> int | None:
    """Bytes of the underlying file consumed so far (for progress on gzip input)."""
    try:
        if isinstance(stream, gzip.GzipFile):
            return stream.fileobj.tell()
        return stream.tell()
    except (OSError, AttributeError, ValueError):
        return None
