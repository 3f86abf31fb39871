"""Protocol and engine anomalies → alerts (``protocol.*``, ``dos.*``).

Contract
--------
``AnomalyMapper(sink, ctx).anomaly(obs)`` turns one ``Anomaly`` observation
into a finding of the rule ``catalogue.ANOMALY_RULES`` gives its id; ids in
``IGNORED_ANOMALIES`` (capture-file damage, capture holes) and unknown ids are
counted and raise nothing.

* The condition is (anomaly id, client, server, server port): every
  occurrence on every connection between the two hosts aggregates into one
  alert whose count is the number of anomalies reported.  Capture-level
  anomalies have no flow and key on the id alone.
* Floods are already sampled by the engine (first 256 per flow and id, then 1
  in 1,000); the flow's end brings ``flow.anomalies_suppressed`` with what was
  not reported, which becomes ``dos.anomaly_flood`` for that pair with the
  suppressed numbers in ``details`` — so no flood is silently lost, and the
  mapper never rate-limits again.
* ``RECEIVED_OVERFLOWS`` (``mqtt.key_overflow``) from the server's side —
  the broker's PUBLISHes to a subscriber — raise nothing (counted).
* A stream that ends inside a message (``CLOSED_TRUNCATIONS``: ``modbus.truncated``,
  ``mqtt.truncated_at_eof``, ``opcua.truncated_chunk``) is usually the capture's
  edge and raises nothing; but when the side that sent the partial message
  closed the connection itself (its FIN, or a reset, in the flow's flags) the
  message's length lied — what fuzzers and malformed-packet floods send — and
  ``flow_ended`` raises the protocol's ``*_malformed`` rule with the
  anomaly's frame.  Held per flow until its end (bounded by ``MAX_HELD``).
"""
from __future__ import annotations

import re
from collections import OrderedDict

from .. import observations as O
from .catalogue import ANOMALY_RULES, CLOSED_TRUNCATIONS, IGNORED_ANOMALIES, RULES, finding
from .context import Context
from .model import AlertSink

_SUPPRESSED = re.compile(r"([A-Za-z0-9_.]+): (\d+) of (\d+) not reported")
MAX_DETAIL = 256
"""Characters of an anomaly's detail kept in the alert (the detail may quote wire bytes)."""


RECEIVED_OVERFLOWS = frozenset({"mqtt.key_overflow"})
"""Key overflows that raise nothing when the server's direction overflowed: the broker's PUBLISHes to a
subscriber (of ``#``, a historian) name every topic of the site — thousands on a big broker, or another
client's topic flood, whose own (client) direction overflows and is alerted.  Counted in
``counts["received_overflow"]``."""

MAX_HELD = 65_536
"""Flows with a truncation held until their end; the oldest is forgotten first."""
_FIN = {"client": "fin_client", "server": "fin_server"}


class AnomalyMapper:
    def __init__(self, sink: AlertSink, ctx: Context):
        self.sink = sink
        self.ctx = ctx
        self.counts = {"mapped": 0, "ignored": 0, "unknown": 0, "received_overflow": 0}
        self.held: OrderedDict = OrderedDict()     # flow id -> (anomaly, FlowInfo)

    def flow_ended(self, o: O.FlowEnd) -> None:
        """Raise a held truncation when the side that sent the partial message closed the connection."""
        h = self.held.pop(o.flow_id, None)
        if h is None:
            return
        a, fi = h
        flags = o.tcp_flags_seen
        if "rst" not in flags and _FIN.get(a.side) not in flags:
            return
        rule = CLOSED_TRUNCATIONS[a.id]
        detail = a.detail[:MAX_DETAIL]
        self.sink.raise_finding(finding(
            rule, (a.id, fi.client, fi.server, fi.server_port),
            f"{RULES[rule].title} ({fi.client} → {fi.server}:{fi.server_port}): {detail}, then the {a.side} "
            "closed the connection (a length that lies)", self.ctx.evidence(a.frame, a.ts, a.flow_id),
            src=fi.client, dst=fi.server, protocol=a.protocol or fi.protocol, port=fi.server_port,
            details={"anomaly": a.id, "detail": detail, "side": a.side, "closed_by_sender": True}))

    def anomaly(self, a: O.Anomaly) -> None:
        if a.id in CLOSED_TRUNCATIONS and a.flow_id:
            fi = self.ctx.flows.get(a.flow_id)
            if fi is not None and a.flow_id not in self.held:
                self.held[a.flow_id] = (a, fi)
                if len(self.held) > MAX_HELD:
                    self.held.popitem(last=False)
        if a.id in RECEIVED_OVERFLOWS and a.side == "server":
            self.counts["received_overflow"] += 1
            return
        rule = ANOMALY_RULES.get(a.id)
        if rule is None:
            self.counts["ignored" if a.id in IGNORED_ANOMALIES else "unknown"] += 1
            return
        self.counts["mapped"] += 1
        fi = self.ctx.flows.get(a.flow_id) if a.flow_id else None
        ev = self.ctx.evidence(a.frame, a.ts, a.flow_id)
        detail = a.detail[:MAX_DETAIL]
        title = RULES[rule].title
        if fi is None:
            self.sink.raise_finding(finding(rule, (a.id,), f"{title}: {detail}", ev, protocol=a.protocol,
                                            details={"anomaly": a.id, "detail": detail}))
            return
        details = {"anomaly": a.id, "detail": detail, "side": a.side}
        if a.id == "flow.anomalies_suppressed":
            details["suppressed"] = {m.group(1): int(m.group(2)) for m in _SUPPRESSED.finditer(a.detail)}
        where = f"{fi.client} → {fi.server}:{fi.server_port}"
        self.sink.raise_finding(finding(rule, (a.id, fi.client, fi.server, fi.server_port),
                                        f"{title} ({where}): {detail}", ev, src=fi.client, dst=fi.server,
                                        protocol=a.protocol or fi.protocol, port=fi.server_port, details=details))
