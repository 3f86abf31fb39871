"""Sans-IO OPC UA connection: bytes in, typed events out.

    conn = OPCUAConnection()
    events = conn.feed(data, side)      # side 0 client (TCP initiator), 1 server
    events += conn.gap(nbytes, side)
    events += conn.eof(side)

Runs the protocol kernel (ext/opcua.py, compiled or pure) in ``detail_all``
mode, so every complete message becomes a record, and decodes each record with
``decode.decode``.  Kernel anomalies become :class:`Anomaly` events; bytes that
are not OPC UA on a connection that never carried a valid message give
``Anomaly("opcua.not_opcua", ...)``.  No sockets, clocks or globals: time and
frame numbers are not known here and are passed to the kernel as 0.
"""
from __future__ import annotations

from ..common import FEED_VIOLATION, REC_ANOMALY, REC_MSG
from ..limits import DEFAULT_LIMITS, Limits
from .decode import decode
from .events import Anomaly

NOT_OPCUA = "opcua.not_opcua"
"""Anomaly id: the kernel refused the bytes before any valid message (FEED_VIOLATION)."""


class OPCUAConnection:
    """Decode both directions of one OPC UA binary (UA TCP) connection."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, implementation: str | None = None) -> None:
        from otwatch.ext import load

        self._kernel = load("opcua", implementation)
        self.seen: dict = {}
        self.core = self._kernel.OPCUACore(self.seen, True, limits)

    def _events(self, status: int, out: list, side: int, what: str) -> list:
        events = []
        for rec in out:
            if rec[0] == REC_MSG:
                _, s, _ts, _frame, key, raw, ctx = rec
                events.append(decode(key, raw, ctx, s))
            elif rec[0] == REC_ANOMALY:
                _, s, _ts, _frame, aid, detail = rec
                events.append(Anomaly(aid, s, detail))
        if status == FEED_VIOLATION:
            events.append(Anomaly(NOT_OPCUA, side, what))
        return events

    def feed(self, data: bytes, side: int) -> list:
        out: list = []
        status = self.core.feed(side, data, 0, len(data), 0.0, 0, out)
        return self._events(status, out, side, "%d bytes are not OPC UA binary" % len(data))

    def gap(self, nbytes: int, side: int) -> list:
        out: list = []
        status = self.core.gap(side, nbytes, 0.0, 0, out)
        return self._events(status, out, side, "gap")

    def eof(self, side: int) -> list:
        out: list = []
        status = self.core.eof(side, 0.0, 0, out)
        return self._events(status, out, side, "eof")
