"""AlertBook: repeats aggregate, evidence and memory stay bounded, settings apply, listeners see changes."""
from __future__ import annotations

import pytest

from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.model import MAX_EVIDENCE
from otwatch.sensor.alerts.settings import AlertSettings

from .helpers import f


def test_repeats_fold_into_one_alert_with_a_count_and_bounded_evidence():
    book = AlertBook()
    for i in range(1, 1001):
        book.raise_finding(f(frame=i))
    book.raise_finding(f(key=("10.0.0.66", "10.0.0.12"), frame=5))
    al = {a.dst if False else a.id: a for a in book.alerts()}
    assert len(al) == 2
    a = book.get(f().alert_id)
    assert a.count == 1000 and a.first_ts == 1.0 and a.last_ts == 1000.0
    assert len(a.evidence) == MAX_EVIDENCE
    assert [e.frame for e in a.evidence] == list(range(1, MAX_EVIDENCE)) + [1000]


def test_flush_tells_listeners_what_changed_with_deltas():
    seen = []
    book = AlertBook(listeners=[seen.append])
    book.raise_finding(f(frame=1))
    book.raise_finding(f(frame=2))
    ch = book.flush()
    assert [(c.delta, c.new, c.alert.count) for c in ch] == [(2, True, 2)]
    assert book.flush() == [] and len(seen) == 1
    book.raise_finding(f(frame=3))
    ch = book.flush()
    assert [(c.delta, c.new, c.alert.count) for c in ch] == [(1, False, 3)]


def test_disabled_rules_and_severity_overrides():
    s = AlertSettings.from_mapping({"protocol.*": {"enabled": False},
                                    "recon.port_scan": {"severity": "critical", "allow": ["10.9.0.0/16", "eng"]}})
    book = AlertBook(s)
    book.raise_finding(f("protocol.modbus_malformed", ("x",)))
    book.raise_finding(f(src="10.0.0.66"))
    book.raise_finding(f(key=("other",), src="10.9.1.2"))          # allow-listed network
    book.raise_finding(f(key=("zoned",), src="10.0.0.7", src_zone="eng"))   # allow-listed zone
    assert book.counts["disabled"] == 1 and book.disabled_by_rule == {"protocol.modbus_malformed": 1}
    assert book.counts["allowed"] == 2
    (a,) = book.alerts()
    assert a.rule == "recon.port_scan" and a.severity == "critical"


def test_memory_is_bounded_flushed_alerts_are_forgotten_and_the_rest_counted():
    book = AlertBook(max_alerts=3)
    for i in range(3):
        book.raise_finding(f(key=("s", i)))
    book.raise_finding(f(key=("s", 99)))         # nothing flushed yet: dropped and counted
    assert len(book) == 3 and book.counts["overflow"] == 1 and book.overflow_by_rule == {"recon.port_scan": 1}
    book.flush()
    book.raise_finding(f(key=("s", 0)))          # refreshes 0: 1 is now the least recently changed
    book.raise_finding(f(key=("s", 100)))        # forgets 1
    assert len(book) == 3 and book.counts["forgotten"] == 1
    assert {a.id for a in book.alerts()} == {f(key=k).alert_id for k in (("s", 0), ("s", 2), ("s", 100))}


@pytest.mark.parametrize("bad, msg", [
    ({"x": {"severity": "urgent"}}, "x.severity: unknown severity"),
    ({"x": {"enabled": "no"}}, "x.enabled: expected true or false"),
    ({"x": {"thresholds": {"window": -1}}}, "x.thresholds.window: expected a positive number"),
    ({"x": {"thresholds": {"window": True}}}, "positive number"),
    ({"x": {"disable": True}}, "unknown key"),
    ({"x": ["a"]}, "expected a mapping"),
    ({"x": {"allow": [5]}}, "networks or zone names"),
])
def test_settings_errors_are_clear(bad, msg):
    with pytest.raises(ValueError, match=msg):
        AlertSettings.from_mapping(bad)


def test_alert_ids_are_stable_and_depend_only_on_rule_and_key():
    a, b = f(frame=1), f(frame=99, message="other")
    assert a.alert_id == b.alert_id
    assert a.alert_id != f(key=("10.0.0.66", "10.0.0.13")).alert_id
    assert a.alert_id != f("recon.host_scan").alert_id
    # fixed value: the id must not change between versions or machines (stored ids refer to it)
    from otwatch.sensor.alerts.model import alert_id
    assert alert_id("recon.port_scan", ("10.10.0.66", "10.10.0.11")) == "025fd4aa70cc081b981e"
