"""From the AlertBook to the outbox: one ``alert`` record per alert opened or changed.

An ``AlertBook`` listener (sensor/alerts/aggregate.py calls it at each flush
with the alerts changed since the last one).  A record's ``id`` is
``<alert id>:<count>``: the same state of the same alert always has the same
id (a resend is recognisable), and a later state (more occurrences) is a new
record the SIEM sees.  The alert's own id is in the body (``alert_id`` in the
syslog fields).  Flushes happen once per interval, so one alert that repeats a
million times makes at most one record per interval.  An outbox that refuses
the append (disk full …) holds them for the next flush (``sinks.pending``).
"""
from __future__ import annotations

from .outbox import Outbox
from .pending import Pending
from .record import alert_body


class OutboxAlerts:
    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self.out = Pending(outbox, "alert")

    @property
    def records(self) -> int:
        return self.out.counts["records"]

    def __call__(self, changes) -> None:
        self.out.add(("alert", f"{a.id}:{a.count}", a.severity, a.last_ts, alert_body(a))
                     for a in (getattr(c, "alert", c) for c in changes))
        self.out.flush()
