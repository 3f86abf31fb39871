"""What travels through the outbox: ``Record`` and the body of each kind.

One definition of each wire shape: every sink (syslog formats, JSON lines, a
later central transport) formats a ``Record``; none reads alerts or the
inventory directly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

KINDS = ("alert", "asset", "heartbeat", "loss")


@dataclass(frozen=True, slots=True)
class Record:
    seq: int             # outbox sequence: the delivery order, unique per database
    id: str              # stable id: an alert's id, "<asset>:<event>:<ts>", "hb:<host>:<n>" ...
    kind: str            # KINDS
    severity: str        # sensor.alerts.model.SEVERITIES
    ts: float            # when it happened (packet time for alerts; sensor time for heartbeats)
    body: dict           # JSON-serialisable; per kind below


def alert_body(alert: Any) -> dict:
    """The body of an ``alert`` record (an ``Alert`` from sensor.alerts.model, as plain data)."""
    d = {f.name: getattr(alert, f.name) for f in dataclasses.fields(alert) if f.name != "updated"}
    d["evidence"] = [dataclasses.asdict(e) if dataclasses.is_dataclass(e) else dict(e) for e in alert.evidence]
    return d


def loss_body(dropped: int, by_severity: dict, first_seq: int, last_seq: int) -> dict:
    """The body of a ``loss`` record: what the bound removed before delivery."""
    return {"message": f"outbox full: {dropped} undelivered records dropped",
            "dropped": dropped, "by_severity": dict(sorted(by_severity.items())),
            "first_seq": first_seq, "last_seq": last_seq}
