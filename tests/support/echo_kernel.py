"""A protocol kernel for engine tests: records exactly what reassembly delivers.

It follows the kernel contract in docs/architecture.md.  Streams starting with
b"ECHO" are "certainly" this protocol; b"NOPE" makes feed() refuse the flow.
"""
from __future__ import annotations

from otwatch.parsers.common import FEED_OK, FEED_VIOLATION, REC_MSG, Tally


class EchoCore:
    log: list = []        # class-wide, reset by each test: (side, kind, value)

    def __init__(self, seen, detail_all, limits, seen_server=None):
        self.seen = (seen, seen if seen_server is None else seen_server)   # per direction
        self.confirmed = False
        self.messages = 0
        self.bytes_decoded = 0
        self.bytes_skipped = 0
        self.bytes_encrypted = 0
        self.streams = {0: bytearray(), 1: bytearray()}

    def feed(self, side, data, start, end, ts, frame, out):
        chunk = bytes(data[start:end])
        if not self.confirmed and chunk.startswith(b"NOPE"):
            return FEED_VIOLATION
        self.confirmed = True
        self.streams[side] += chunk
        self.bytes_decoded += len(chunk)
        EchoCore.log.append((side, "data", chunk))
        key = (1, side)
        seen = self.seen[side]
        t = seen.get(key)
        if t is None:
            seen[key] = Tally(len(chunk), ts, frame)
            out.append((REC_MSG, side, ts, frame, key, chunk, None))
        else:
            t.count += 1
            t.int_count += 1
        self.messages += 1
        return FEED_OK

    def gap(self, side, n, ts, frame, out):
        self.bytes_skipped += n
        EchoCore.log.append((side, "gap", n))
        return FEED_OK

    def eof(self, side, ts, frame, out):
        EchoCore.log.append((side, "eof", None))
        return FEED_OK


def probe(data, start, end):
    return 2 if bytes(data[start:start + 4]) == b"ECHO" else 0
