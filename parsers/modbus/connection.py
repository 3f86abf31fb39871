"""Sans-IO Modbus/TCP connection: bytes in, typed events out.

    conn = ModbusConnection()
    conn.feed(data, side)  -> [ModbusRequest | ModbusResponse | ... | Anomaly, ...]
    conn.gap(nbytes, side) -> [...]
    conn.eof(side)         -> [...]

It runs the protocol kernel (``otwatch.ext.modbus``, compiled or pure) in
``detail_all`` mode, so every message becomes an event, and decodes each record
with ``decode.decode``.  No sockets, no clocks: ``ts`` and ``frame`` are
optional and only flow into the pairing fields (``request_frame``,
``response_time``).  Once the bytes are found not to be Modbus/TCP before any
valid message, one ``Anomaly("modbus.not_modbus", …)`` is returned and further
input is ignored (the engine, in the same situation, detaches the kernel).
"""
from __future__ import annotations

from ..common import CLIENT, FEED_VIOLATION, REC_ANOMALY, REC_MSG, SERVER
from ..limits import DEFAULT_LIMITS, Limits
from .decode import decode
from .events import Anomaly

__all__ = ["ModbusConnection"]


class ModbusConnection:
    """Decode both directions of one Modbus/TCP connection.

    *implementation*: ``"pure"``, ``"compiled"`` or ``None`` (the process-wide
    choice, ``otwatch.ext.IMPLEMENTATION``).
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, implementation: str | None = None) -> None:
        from otwatch.ext import load

        self.seen: dict = {}
        self._kernel = load("modbus", implementation)
        self._core = self._kernel.ModbusCore(self.seen, True, limits)
        self._not_modbus = False

    @property
    def core(self):
        """The kernel object (counters: messages, bytes_decoded, bytes_skipped …)."""
        return self._core

    @property
    def confirmed(self) -> bool:
        return bool(self._core.confirmed)

    def _events(self, records: list, status: int, side: int) -> list:
        events: list = []
        for rec in records:
            if rec[0] == REC_MSG:
                _, s, _ts, _frame, key, raw, ctx = rec
                events.append(decode(key, raw, ctx, s))
            elif rec[0] == REC_ANOMALY:
                _, s, _ts, _frame, anomaly_id, detail = rec
                events.append(Anomaly(anomaly_id, s, detail))
        if status == FEED_VIOLATION and not self._not_modbus:
            self._not_modbus = True
            events.append(Anomaly("modbus.not_modbus", side, self._core.violation or "not Modbus/TCP"))
        return events

    def feed(self, data: bytes, side: int, ts: float = 0.0, frame: int = 0) -> list:
        """The next in-order bytes of *side* (0 client, 1 server)."""
        side = SERVER if side else CLIENT
        out: list = []
        status = self._core.feed(side, data, 0, len(data), ts, frame, out)
        return self._events(out, status, side)

    def gap(self, nbytes: int, side: int, ts: float = 0.0, frame: int = 0) -> list:
        """*nbytes* of *side* were lost (reassembly hole)."""
        side = SERVER if side else CLIENT
        out: list = []
        status = self._core.gap(side, nbytes, ts, frame, out)
        return self._events(out, status, side)

    def eof(self, side: int, ts: float = 0.0, frame: int = 0) -> list:
        """*side* closed its direction."""
        side = SERVER if side else CLIENT
        out: list = []
        status = self._core.eof(side, ts, frame, out)
        return self._events(out, status, side)
