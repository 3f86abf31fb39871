"""Sans-IO MQTT connection: bytes in, typed events out.

    conn = MQTTConnection()
    events = conn.feed(data, side)      # side 0 = client, 1 = server
    events += conn.gap(nbytes, side)    # bytes lost in reassembly
    events += conn.eof(side)

Runs the protocol kernel (``otwatch.ext.mqtt``, compiled or pure) in
``detail_all`` mode, so every packet becomes an event, plus the full decoder.
Kernel anomalies become ``Anomaly`` events.  Bytes that are not MQTT on a
connection not yet confirmed give one ``Anomaly("mqtt.protocol_violation", ...)``
and nothing more from then on (the engine would detach the kernel).
No sockets, no clocks: record times are 0.0 and frames 0.
"""
from __future__ import annotations

from ...ext import load
from ..common import FEED_VIOLATION, REC_ANOMALY, REC_MSG
from ..limits import DEFAULT_LIMITS, Limits
from .decode import decode
from .events import Anomaly

VIOLATION = "mqtt.protocol_violation"


class MQTTConnection:
    """Decode both directions of one MQTT connection."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, implementation: str | None = None) -> None:
        self._limits = limits
        self.core = load("mqtt", implementation).MQTTCore({}, True, limits)
        """The kernel: counters (messages, bytes_*), confirmed, level."""
        self.violation: str | None = None
        """Why the bytes are not MQTT, once a violation happened."""

    def _events(self, status: int, side: int, out: list) -> list:
        events = []
        for rec in out:
            if rec[0] == REC_MSG:
                _, s, _ts, _frame, key, raw, ctx = rec
                events.append(decode(key, raw, ctx, s, limits=self._limits))
            elif rec[0] == REC_ANOMALY:
                events.append(Anomaly(rec[4], rec[1], rec[5]))
        if status == FEED_VIOLATION and self.violation is None:
            self.violation = self.core.violation
            events.append(Anomaly(VIOLATION, side, self.violation))
        return events

    def feed(self, data: bytes, side: int) -> list:
        """The next in-order bytes of *side*; returns the events they complete."""
        out: list = []
        status = self.core.feed(side, data, 0, len(data), 0.0, 0, out)
        return self._events(status, side, out)

    def gap(self, nbytes: int, side: int) -> list:
        """*nbytes* of *side* were lost (reassembly gap)."""
        out: list = []
        status = self.core.gap(side, nbytes, 0.0, 0, out)
        return self._events(status, side, out)

    def eof(self, side: int) -> list:
        """*side* closed its half of the connection."""
        out: list = []
        status = self.core.eof(side, 0.0, 0, out)
        return self._events(status, side, out)

    @property
    def confirmed(self) -> bool:
        return bool(self.core.confirmed)
