"""Aggregates handed over in bulk: one ``LinkAggregates`` per link flush carries exactly the
``Aggregate``s the per-key path gives, and each bulk consumer (summary, JSON lines, inventory) ends
as it does when fed those aggregates one by one — on both kernels."""
from __future__ import annotations

import importlib.util
import io
import pathlib

import pytest

from otwatch.sensor import observations as O
from otwatch.sensor.inventory.store import open_inventory
from otwatch.sensor.jsonout import JSONLines
from otwatch.sensor.pipeline import Pipeline, Settings
from otwatch.sensor.report import Summary

ROOT = pathlib.Path(__file__).resolve().parents[2]
CAPTURES = [ROOT / "pcaps" / n for n in ("demo-plant.pcap", "opcua-security.pcap", "protocol-corners.pcap.gz")]
pytestmark = pytest.mark.skipif(not all(p.exists() for p in CAPTURES), reason="pcaps/ captures missing")

_spec = importlib.util.spec_from_file_location("dbdump", ROOT / "tests" / "sensor" / "inventory" / "dbdump.py")
dbdump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbdump)


class PerKey:
    """A consumer without ``observe_aggregates``: with it in the pipeline, everyone gets ``Aggregate``s."""

    def __init__(self, observe=None):
        self.obs: list = []
        self.observe = observe or self.obs.append


class Bulk:
    """Takes ``LinkAggregates`` whole (and everything else one by one)."""

    def __init__(self):
        self.obs: list = []
        self.observe = self.observe_aggregates = self.obs.append


def _run(impl: str, consumers: list, interval: float = 60.0) -> Pipeline:
    pipe = Pipeline(consumers, Settings(implementation=impl, interval=interval))
    for c in CAPTURES:
        pipe.run_file(str(c))
    pipe.finish()
    return pipe


def _expanded(obs: list) -> list:
    return [a for o in obs for a in (o.each() if type(o) is O.LinkAggregates else (o,))]


@pytest.mark.parametrize("interval", [60.0, 1.0])
def test_bulk_rows_are_the_per_key_aggregates(impl, interval):
    bulk, per = Bulk(), PerKey()
    pb = _run(impl, [bulk], interval)
    pp = _run(impl, [per], interval)
    batches = [o for o in bulk.obs if type(o) is O.LinkAggregates]
    assert batches and max(len(b.rows) for b in batches) > 1
    assert not any(type(o) is O.Aggregate for o in bulk.obs)
    assert not any(type(o) is O.LinkAggregates for o in per.obs)
    assert _expanded(bulk.obs) == per.obs
    for b in batches:
        assert all(len(r) == len(O.AGGREGATE_ROW) for r in b.rows)
    n = sum(len(b.rows) for b in batches)
    assert n == sum(type(o) is O.Aggregate for o in per.obs)
    assert pb.counts["observations"] == pp.counts["observations"]
    totals = sum(r[O.AGGREGATE_ROW.index("interval_count")] for b in batches for r in b.rows)
    assert totals == sum(a.interval_count for a in per.obs if type(a) is O.Aggregate) > 0


def test_summary_and_json_lines_the_same_in_bulk(impl):
    out_b, out_p = io.StringIO(), io.StringIO()
    sb, sp = Summary(), Summary()
    spy = Bulk()
    _run(impl, [sb, JSONLines(out_b), spy])
    _run(impl, [sp, JSONLines(out_p), PerKey()])
    assert any(type(o) is O.LinkAggregates for o in spy.obs)    # the first run did go in bulk
    assert sb.messages == sp.messages and sum(sum(c.values()) for c in sb.messages.values()) > 0
    assert out_b.getvalue() == out_p.getvalue()
    assert '"type":"aggregate"' in out_b.getvalue()


def test_json_lines_of_odd_rows_the_same_in_bulk():
    """A target outside ASCII (escaped as ensure_ascii would) and a count orjson refuses (beyond 64
    bits: the standard library writes that line) give the per-key lines too."""
    rows = (("mqtt.publish", "publish", "topic=caf\u00e9/\u2028/\U0001f600", "request", 2 ** 70, 10, 1.5, 2.5, 3, 30,
             4, 9, (3, "x"), 2, 9, 2.5),
            ("mqtt.publish", "publish", "topic=a\x7fb", "response", 1, 1, 1e-7, 1e17, 1, 1, 5, 5, (3, "y"), 1, 5, 1e17))
    b = O.LinkAggregates("mqtt", 7, "10.0.0.1", "10.0.0.2", 1883, rows)
    bulk, per = io.StringIO(), io.StringIO()
    JSONLines(bulk).observe_aggregates(b)
    jp = JSONLines(per)
    for a in b.each():
        jp.observe(a)
    assert bulk.getvalue() == per.getvalue()
    assert bulk.getvalue().isascii() and "\\u2028" in bulk.getvalue() and str(2 ** 70) in bulk.getvalue()


@pytest.mark.parametrize("batch", [7, 700])
def test_inventory_the_same_in_bulk(impl, tmp_path, batch):
    """The same rows (rowids included), events and counts, also when a batch fills in the middle of a
    link's aggregates (batch 7: the link is resolved again after each flush)."""
    dumps, events, counts = [], [], []
    for name in ("bulk", "per"):
        inv = open_inventory(str(tmp_path / f"{name}.db"), batch=batch)
        spy = Bulk()
        _run(impl, [inv, spy] if name == "bulk" else [PerKey(inv.note)])
        if name == "bulk":
            assert any(type(o) is O.LinkAggregates for o in spy.obs)
        events.append([(e.type, e.asset_id, e.ts, e.frame, e.detail) for e in inv.take_events()])
        inv.close()
        counts.append(inv.counts)
        dumps.append(dbdump.dump(str(tmp_path / f"{name}.db")))
    assert any(line.startswith("  peers ") for line in dumps[0])
    assert dumps[0] == dumps[1]
    assert events[0] == events[1] and events[0]
    assert counts[0] == counts[1]


def _both(impl: str, make, captures=CAPTURES[:1], interval: float = 1.0):
    """*make()* -> (consumer, result()) run once in bulk (checked) and once fed one by one."""
    out = []
    for bulk in (True, False):
        consumer, result = make()
        spy = Bulk() if bulk else PerKey()
        pipe = Pipeline([consumer, spy], Settings(implementation=impl, interval=interval))
        for c in captures:
            pipe.run_file(str(c))
        pipe.finish()
        assert any(type(o) is O.LinkAggregates for o in spy.obs) == bulk
        out.append(result())
    return out


def test_policy_checker_and_baseline_the_same_in_bulk(impl):
    from otwatch.sensor.alerts.model import ListSink
    from otwatch.sensor.baseline import yamlio
    from otwatch.sensor.baseline.detect import Detector
    from otwatch.sensor.baseline.learn import Learner
    from otwatch.sensor.baseline.model import Baseline
    from otwatch.sensor.policy import PolicyChecker, load_policy

    def checker():
        sink = ListSink()
        return PolicyChecker(load_policy(ROOT / "rules" / "demo-plant.yaml"), sink), lambda: sink.findings

    bulk, per = _both(impl, checker, [ROOT / "pcaps" / "attack-scenarios.pcap"])
    assert bulk == per and any(f.rule == "policy.operation_denied" for f in bulk)

    def learner():
        b = Baseline()
        return Learner(b, 1.0), lambda: yamlio.dump(b)

    bulk, per = _both(impl, learner)
    assert bulk == per and "rate" in bulk
    learned = Baseline()
    Pipeline([Learner(learned, 1.0)], Settings(implementation=impl, interval=1.0)).run_file(str(CAPTURES[0]))

    def detector():
        sink = ListSink()
        return Detector(learned, sink, source="x"), lambda: sink.findings

    bulk, per = _both(impl, detector, [ROOT / "pcaps" / "attack-scenarios.pcap"])
    assert bulk == per and bulk


def test_interval_rates_the_same_in_bulk(impl):
    """The alert stage's interval counts (floods, exception sweeps) from a link's rows in bulk equal
    those from its ``Aggregate``s one by one; thresholds low enough that floods are raised."""
    from otwatch.sensor.alerts.context import Context
    from otwatch.sensor.alerts.model import ListSink
    from otwatch.sensor.alerts.rates import FLOOD, IntervalRates
    from otwatch.sensor.alerts.settings import AlertSettings

    settings = AlertSettings.from_mapping({FLOOD: {"thresholds": {"messages": 5, "rate": 1}}})

    class Rates:
        def __init__(self, sink):
            self.r = IntervalRates(sink, Context(), settings)

        def observe(self, obs):
            if type(obs) is O.Aggregate:
                self.r.aggregate(obs)
            elif type(obs) is O.IntervalEnd:
                self.r.interval_end(obs)

        def observe_aggregates(self, b):
            self.r.aggregates(b)

    def rates():
        sink = ListSink()
        return Rates(sink), lambda: sink.findings

    bulk, per = _both(impl, rates, [ROOT / "pcaps" / "attack-scenarios.pcap"])
    assert bulk == per and any(f.rule == FLOOD for f in bulk)
