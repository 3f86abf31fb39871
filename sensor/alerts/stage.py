"""The alerting stage: one pipeline consumer that feeds the built-in producers and flushes the AlertBook.

Contract
--------
``AlertStage(book, ctx, inventory=None, settings=None)`` is added to
``Pipeline(consumers)`` after the inventory.  ``observe(obs)`` dispatches by
observation type (one dict lookup; everything else costs nothing):

* ``FlowStart``/``FlowEnd``: the context's flow table; ended flows go to the
  scan detector (probes); both go to the flood detector (``floods``:
  connection floods, message floods on one connection);
* ``Message``: Modbus sweeps (``scan``), a second master writing to a unit,
  a master's burst of writes (``masters``), MQTT logins (``logins``) and who sent
  each new topic (``scan``: a subscriber is no topic flood), OPC UA sessions
  created (``floods``);
* ``Aggregate``: the interval's counts per key (``rates``: message floods
  judged per interval, read sweeps answered by exceptions), judged at
  ``IntervalEnd``;
* ``Anomaly``: ``anomalies``;
* ``ScanSummary``: scans and floods past the engine's budgets (``scan``);
* ``SourceStart`` (when the engine emits it): evidence names that source and
  its frames count from 1;
* ``IntervalEnd``: inventory events are pulled (``assets``) and the book is
  flushed (listeners: store, JSON lines, …).

``finish()`` pulls and flushes once more; call it after ``Pipeline.finish()``
and before the inventory is closed.  Other producers (policy checker,
baseline detector) are consumers of their own that raise into the same book.
"""
from __future__ import annotations

from typing import Any

from .. import observations as O
from .aggregate import AlertBook
from .anomalies import AnomalyMapper
from .assets import AssetEventMapper
from .context import Context
from .floods import FloodDetector
from .logins import LoginDetector
from .masters import MasterWatch
from .rates import IntervalRates
from .scan import ScanDetector
from .settings import AlertSettings


class AlertStage:
    def __init__(self, book: AlertBook, ctx: Context | None = None, inventory: Any = None,
                 settings: AlertSettings | None = None, report_new_assets: bool | None = None):
        self.book = book
        self.ctx = ctx or Context()
        s = settings or book.settings
        self.anomalies = AnomalyMapper(book, self.ctx)
        self.scan = ScanDetector(book, self.ctx, s)
        self.logins = LoginDetector(book, self.ctx, s)
        self.floods = FloodDetector(book, self.ctx, s)
        self.rates = IntervalRates(book, self.ctx, s)
        self.masters = MasterWatch(book, self.ctx, s)
        self._horizon = float("-inf")
        self.assets = AssetEventMapper(book, self.ctx, inventory, report_new_assets) if inventory is not None \
            else None
        self._dispatch = {O.FlowStart: self._flow_start, O.FlowEnd: self._flow_end, O.Message: self._message,
                          O.Anomaly: self.anomalies.anomaly, O.IntervalEnd: self._interval,
                          O.Aggregate: self.rates.aggregate,
                          O.ScanSummary: self.scan.summary}
        source_start = getattr(O, "SourceStart", None)
        if source_start is not None:      # the engine restarts frame numbers per source and says so
            self._dispatch[source_start] = self._source

    def observe(self, obs) -> None:
        h = self._dispatch.get(type(obs))
        if h is not None:
            h(obs)

    def observe_aggregates(self, b: O.LinkAggregates) -> None:
        """A link's aggregates in bulk: counted for the interval's floods and sweeps (``rates``)."""
        self.rates.aggregates(b)

    def horizon(self, ts: float) -> None:
        """The pipeline, before each ``IntervalEnd``: no later observation carries a packet time before *ts*
        (the engine's oldest live flow or half-open record, or the flush's own time; packet time moving
        forward).  Windows and runs that every later event would restart anyway are forgotten, so a flood of
        one-probe sources does not keep one window each up to the producers' caps; no finding changes.  A
        flow starting before it (packet time gone backwards, as across capture files out of order) is
        counted (``flows_before_horizon``): its window may have been forgotten, as an LRU cap would."""
        self._horizon = ts
        self.scan.horizon(ts)
        self.floods.horizon(ts)
        self.logins.horizon(ts)

    def _source(self, o) -> None:
        self.ctx.set_source(o.source, 0)

    def _flow_start(self, o: O.FlowStart) -> None:
        if o.ts < self._horizon:
            self.ctx.counts["flows_before_horizon"] = self.ctx.counts.get("flows_before_horizon", 0) + 1
        self.ctx.flow_started(o)
        self.floods.flow_started(o)

    def _flow_end(self, o: O.FlowEnd) -> None:
        fi = self.ctx.flow_ended(o.flow_id)
        self.scan.flow_ended(o, fi)
        self.floods.flow_ended(o, fi)
        self.anomalies.flow_ended(o)

    def _message(self, m: O.Message) -> None:
        p = m.protocol
        if p == "modbus":
            self.scan.message(m)
            self.masters.message(m)
        elif p == "mqtt":
            self.logins.message(m)
            self.scan.mqtt_message(m)
        elif p == "opcua":
            self.floods.opcua_message(m)

    def _interval(self, o: O.IntervalEnd) -> None:
        self.rates.interval_end(o)     # the interval's aggregates came before its end
        self.flush()
        self.scan.interval_end()       # the engine's scan summaries of the interval came before its end

    def flush(self) -> None:
        if self.assets is not None:
            self.assets.pull()
        self.book.flush()

    def finish(self) -> None:
        self.flush()
