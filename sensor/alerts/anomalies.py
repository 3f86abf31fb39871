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
"""
from __future__ import annotations

import re

from .. import observations as O
from .catalogue import ANOMALY_RULES, IGNORED_ANOMALIES, RULES, finding
from .context import Context
from .model import AlertSink

_SUPPRESSED = re.compile(r"([A-Za-z0-9_.]+): (\d+) of (\d+) not reported")
MAX_DETAIL = 256
"""Characters of an anomaly's detail kept in the alert (the detail may quote wire bytes)."""


class AnomalyMapper:
    def __init__(self, sink: AlertSink, ctx: Context):
        self.sink = sink
        self.ctx = ctx
        self.counts = {"mapped": 0, "ignored": 0, "unknown": 0}

    def anomaly(self, a: O.Anomaly) -> None:
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
