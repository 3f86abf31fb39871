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
import struct
import sys
import zlib
from typing import BinaryIO, Iterator

CHUNK = 4 * 1024 * 1024
"""Bytes read per step: large enough that per-chunk overhead vanishes, small
enough to keep memory flat and progress smooth."""

GZIP_MAGIC = b"\x1f\x8b"
PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4": (">", 1e-6), b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
               b"\xa1\xb2\x3c\x4d": (">", 1e-9), b"\x4d\x3c\xb2\xa1": ("<", 1e-9)}
"""pcap magic -> (byte order, timestamp unit): microseconds, or nanoseconds (tcpdump.org/manpages/pcap-savefile)."""
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class CaptureError(Exception):
    """A capture that cannot be read at all; the message is one line for the user and names the path once."""


def source_name(path: str) -> str:
    """The text that names a capture path in evidence (``SourceStart.source``): the path as given, "stdin" for "-"."""
    return "stdin" if path == "-" else path


def check_path(path: str) -> None:
    """Raise CaptureError when *path* cannot be a capture we can open (missing, a folder, unreadable).

    Lets a command refuse bad input before it starts writing anything; reading may still find
    that the content is not a capture.
    """
    if path == "-":
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except OSError as exc:
        raise CaptureError(f"{path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CaptureError(f"{path}: is a folder, not a capture file")
    if not os.access(path, os.R_OK):
        raise CaptureError(f"{path}: permission denied")
    if stat.S_ISREG(st.st_mode):
        try:
            with open(path, "rb") as f:
                head = f.read(4)
                if head[:2] == GZIP_MAGIC:
                    f.seek(0)
                    with gzip.GzipFile(fileobj=f) as g:
                        head = g.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            raise CaptureError(f"{path}: compressed stream is damaged: {exc}") from None
        if not head:
            raise CaptureError(f"{path}: empty file")
        if len(head) == 4 and head not in PCAP_MAGICS and head != PCAPNG_SHB:
            raise CaptureError(f"{path}: not a pcap or pcapng capture (it starts with {head.hex()})")


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
            raise CaptureError(f"{path}: is a folder, not a capture file") from None
        except PermissionError:
            raise CaptureError(f"{path}: permission denied") from None
        except OSError as exc:
            raise CaptureError(f"{path}: {exc.strerror or exc}") from None
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
        except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as exc:
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
        except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as exc:
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


def first_packet_ts(buf, end: int) -> float | None:
    """Time of the first packet in the capture bytes ``buf[:end]`` (its start), when they show it.

    Classic pcap: the first record header.  pcapng: the first Enhanced Packet Block, with its
    interface's ``if_tsresol`` and ``if_tsoffset`` (draft-ietf-opsawg-pcapng §4.2, §4.3).  None when
    the bytes do not reach a packet or are not a capture.
    """
    head = bytes(buf[:min(end, 1 << 16)])
    magic = head[:4]
    if magic in PCAP_MAGICS:
        e, unit = PCAP_MAGICS[magic]
        if len(head) < 24 + 16:
            return None
        sec, frac = struct.unpack_from(e + "II", head, 24)
        return sec + frac * unit
    if magic != PCAPNG_SHB or len(head) < 12:
        return None
    e = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    ifaces: list[tuple[float, int]] = []
    pos = 0
    while pos + 12 <= len(head):
        btype, blen = struct.unpack_from(e + "II", head, pos)
        if blen < 12 or pos + blen > len(head):
            return None
        if btype == 1:                                        # Interface Description Block
            unit, offset = 1e-6, 0
            opt = pos + 16
            while opt + 4 <= pos + blen - 4:
                code, olen = struct.unpack_from(e + "HH", head, opt)
                if code == 0:
                    break
                if code == 9 and olen >= 1:                   # if_tsresol
                    r = head[opt + 4]
                    unit = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
                elif code == 14 and olen == 8:                # if_tsoffset
                    offset = struct.unpack_from(e + "q", head, opt + 4)[0]
                opt += 4 + olen + (-olen % 4)
            ifaces.append((unit, offset))
        elif btype == 6 and blen >= 28:                       # Enhanced Packet Block
            iface, hi, lo = struct.unpack_from(e + "III", head, pos + 8)
            if iface >= len(ifaces):
                return None
            unit, offset = ifaces[iface]
            return ((hi << 32) | lo) * unit + offset
        elif btype == 0x0A0D0D0A and pos:                     # a new section: interfaces restart
            ifaces = []
        pos += blen
    return None
