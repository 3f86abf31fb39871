"""Monitor: learns until the stop rule (or the window) ends learning, then detects."""
from otwatch.sensor import observations as O
from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.baseline.monitor import Monitor

from .helpers import flow, modbus_req


def feed(m, minutes, extra=None):
    for i in range(minutes):
        m.observe(modbus_req(i * 60.0 + 1, i * 10 + 1))
        if extra and i in extra:
            m.observe(extra[i])
        m.observe(O.IntervalEnd(i * 60.0, (i + 1) * 60.0))


def test_switches_at_the_stop_rule_and_then_detects():
    b, sink, ready = Baseline(), ListSink(), []
    m = Monitor(b, sink, quiet=5, min_duration=600.0, on_ready=ready.append)
    rogue = flow(60 * 20 + 5, 999, client="10.0.0.66", fid=9)
    feed(m, 30, extra={20: rogue})
    assert ready == [b] and b.learning.status == "ready" and not m.learning
    assert b.learning.intervals == 11          # 600 s learned and 5 quiet intervals: ends after the 11th
    assert [f.rule for f in sink.findings if f.rule == "baseline.new_pair"] and \
        {f.src for f in sink.findings} == {"10.0.0.66"}


def test_window_ends_learning_even_when_new_things_keep_coming():
    b, sink = Baseline(), ListSink()
    m = Monitor(b, sink, window=300.0, quiet=1000, min_duration=0.0)
    extra = {i: modbus_req(i * 60.0 + 2, i * 10 + 2, unit=10 + i) for i in range(20)}
    feed(m, 20, extra=extra)
    assert b.learning.status == "ready" and b.learning.intervals <= 7
    assert any(f.rule == "baseline.new_unit_id" for f in sink.findings)


def test_ready_baseline_detects_from_the_start():
    b = Baseline()
    b.learning.status = "ready"
    sink = ListSink()
    m = Monitor(b, sink)
    assert not m.learning
    m.observe(flow(1.0, 1))
    assert {f.rule for f in sink.findings} == {"baseline.new_asset", "baseline.new_pair"}
