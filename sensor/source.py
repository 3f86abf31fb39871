"""Capture sources: files (pcap, pcapng, gzip-compressed), standard input.

A source hands the engine ``bytes`` chunks of a bounded size; the engine walks
the records inside and returns how much it consumed, and the rest is carried
into the next chunk.  Reading large chunks costs one copy from the page cache
per chunk, the same as walking a memory map, and works the same way for
gzip streams and pipes, where there is nothing to map.  Memory stays bounded
by the chunk size plus one record.
"""
from __future__ import annotations

import gzip
import io
import os
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
    else:
        try:
            raw = open(path, "rb", buffering=CHUNK)
        except FileNotFoundError:
            raise CaptureError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CaptureError(f"{path}: is a directory") from None
        except PermissionError:
            raise CaptureError(f"{path}: permission denied") from None
        size = os.fstat(raw.fileno()).st_size
    head = raw.peek(2)[:2]
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), size
    return raw, size


def chunks(stream: BinaryIO) -> Iterator[bytes]:
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
