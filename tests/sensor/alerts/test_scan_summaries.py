"""Alerts from scan summaries (issue 12 point 3): one alert per scanner with evidence inside the
attack, the same alert whether the scan was seen probe by probe or summarised past the engine's
budgets, and the per-probe path and the summaries never make two alerts of one scan."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from otwatch.parsers.limits import Limits
from otwatch.sensor import observations as O
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage
from otwatch.sensor.pipeline import Pipeline, Settings

from .helpers import flow_end, flow_start

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("make_hostile", ROOT / "bench" / "make_hostile.py")
make_hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hostile)

SMALL = Limits(link_keys_max=512, scan_flows_per_source=20, scan_flows_per_target=30, scan_keys_per_source=16)


def _summary(**kw):
    d = dict(start_ts=100.0, end_ts=160.0, source="10.0.0.66", target="", port=0, first_ts=101.0, first_frame=7,
             last_ts=159.0, last_frame=9000, flows=2000, flows_unreported=1980, hosts=500, ports=3, keys=0,
             keys_unreported=0, units=0, codes=0, protocols=(), capped=False, held_back=(),
             held_back_unlisted=0)
    d.update(kw)
    return O.ScanSummary(**d)


def _stage():
    book = AlertBook(AlertSettings())
    return book, AlertStage(book, Context("cap.pcap"))


def test_a_source_summary_raises_host_and_port_scans_with_its_first_frame():
    book, st = _stage()
    st.observe(_summary())
    rules = {a.rule: a for a in book.alerts()}
    assert set(rules) == {"recon.host_scan"}         # 3 ports on 500 hosts: below the port threshold
    a = rules["recon.host_scan"]
    assert a.src == "10.0.0.66" and a.evidence[0].frame == 7
    st.observe(_summary(start_ts=160.0, end_ts=220.0, first_frame=9001, last_frame=18000, ports=40))
    rules = {a.rule: a for a in book.alerts()}
    assert rules["recon.host_scan"].count == 2 and "recon.port_scan" in rules   # one alert, two intervals


def test_probe_path_and_summary_are_one_alert():
    book, st = _stage()
    for i in range(12):
        st.observe(flow_start(i + 1, "10.0.0.66", f"10.0.1.{i}", 22, 100.0 + i, 10 * i + 1))
        st.observe(flow_end(i + 1, 100.5 + i, 10 * i + 2))
    st.observe(_summary(first_frame=121))
    (a,) = [a for a in book.alerts() if a.rule == "recon.host_scan"]
    assert a.evidence[0].frame == 1 and any(e.frame == 121 for e in a.evidence)


@pytest.mark.parametrize("summary, rule", [
    (dict(target="", keys=300, keys_unreported=284, units=256, codes=1, protocols=("modbus",), flows=2,
          hosts=2, ports=1), "recon.modbus_unit_sweep"),
    (dict(target="10.0.0.11", keys=300, keys_unreported=284, units=1, codes=40, protocols=("modbus",), flows=0,
          hosts=1, ports=0), "recon.modbus_function_sweep"),
    (dict(target="10.0.0.50", keys=3000, keys_unreported=2744, codes=1, protocols=("mqtt",), flows=0, hosts=1,
          ports=0, last_ts=104.0), "dos.mqtt_topic_flood"),
    (dict(target="10.0.0.60", keys=3000, keys_unreported=2744, codes=1, protocols=("opcua",), flows=0, hosts=1,
          ports=0), "recon.opcua_node_sweep"),
    (dict(source="", target="10.0.0.11", port=502, flows=20000, flows_unreported=18976, hosts=20000, ports=0),
     "dos.flow_flood"),
])
def test_each_sweep_kind_raises_its_rule(summary, rule):
    book, st = _stage()
    st.observe(_summary(**summary))
    (a,) = book.alerts()
    assert a.rule == rule and a.evidence[0].frame == 7


REGISTER_SUMMARY = dict(target="10.0.0.11", keys=300, keys_unreported=284, units=1, codes=1, protocols=("modbus",),
                        flows=0, hosts=1, ports=0)


def test_a_summary_of_new_modbus_keys_alone_is_no_register_sweep():
    """A busy master reading varied ranges makes as many new keys a minute as a sweep: the summary's counts
    cannot tell them apart, so a summary adds to a walk seen in the requests and never starts an alert."""
    book, st = _stage()
    st.observe(_summary(**REGISTER_SUMMARY))
    assert not book.alerts()


def test_a_summary_adds_to_the_walk_of_the_same_client():
    from types import SimpleNamespace

    book, st = _stage()
    for i in range(64):              # the first new keys of the interval, reported one by one: a walk
        e = SimpleNamespace(function=3, unit=1, table="holding_registers", address=10 * i, quantity=10)
        st.observe(O.Message(100.0 + i / 100, 3 + i, "modbus", "k", "read", "t", "request", 1, 1, "10.0.0.66",
                             "10.0.0.11", 502, e, (0,)))
    (a,) = book.alerts()
    assert a.rule == "recon.modbus_register_sweep" and a.count == 15 and a.evidence[0].frame == 3 + 64 - 15
    st.observe(_summary(**REGISTER_SUMMARY))
    st.observe(_summary(**dict(REGISTER_SUMMARY, target="")))     # every server of the client: the walked one
    (b,) = book.alerts()
    assert b.id == a.id and b.count == 17 and b.evidence[-1].frame == 7


@pytest.mark.parametrize("kind, rule", [("syn-flood", "dos.flow_flood"), ("modbus-units", "recon.modbus_unit_sweep"),
                                        ("mqtt-topics", "dos.mqtt_topic_flood")])
def test_hostile_captures_raise_one_alert_with_evidence_inside(tmp_path, kind, rule):
    cap = tmp_path / f"{kind}.pcap"
    make_hostile.build(kind, str(cap), 12000, quiet=True)
    book, st = _stage()
    th = {"dos.flow_flood": {"thresholds": {"flows": 100}}, "dos.mqtt_topic_flood": {"thresholds": {"topics": 100}}}
    book = AlertBook(AlertSettings.from_mapping(th))
    st = AlertStage(book, Context(str(cap)))
    p = Pipeline([st], Settings(limits=SMALL, interval=0.5))
    p.run_file(str(cap))
    p.finish()
    st.finish()
    alerts = [a for a in book.alerts() if a.rule == rule]
    assert len(alerts) == 1
    assert all(1 <= e.frame <= 12000 for e in alerts[0].evidence)


def _publish(st, frame, client, direction):
    from types import SimpleNamespace

    e = type("MQTTPublish", (), {})()
    st.observe(O.Message(float(frame), frame, "mqtt", "mqtt.publish", "publish", f"topic=t/{frame}", direction, 1, 1,
                         client, "10.0.0.50", 1883, e, (3, f"t/{frame}")))


def test_a_subscriber_reached_by_many_new_topics_is_no_topic_flood():
    """The broker forwards a publisher's new topics to a subscriber of '#': the publisher floods, the subscriber
    does not (the engine charges both directions of a link to its client's budget)."""
    book, st = _stage()
    summary = dict(target="10.0.0.50", keys=3000, keys_unreported=2744, codes=1, protocols=("mqtt",), flows=0,
                   hosts=1, ports=0, last_ts=104.0)
    for i in range(256):
        _publish(st, 10 + 2 * i, "10.0.0.66", "request")          # the flooder publishes ...
        _publish(st, 11 + 2 * i, "10.0.0.41", "response")         # ... the broker forwards to the subscriber
    st.observe(_summary(source="10.0.0.66", **summary))
    st.observe(_summary(source="10.0.0.41", **summary))
    assert [(a.rule, a.src) for a in book.alerts()] == [("dos.mqtt_topic_flood", "10.0.0.66")]
    # per interval: the next interval's summary of the same client, now publishing, is a flood
    st.observe(O.IntervalEnd(100.0, 160.0))
    for i in range(256):
        _publish(st, 1000 + i, "10.0.0.41", "request")
    st.observe(_summary(source="10.0.0.41", **summary))
    assert sorted(a.src for a in book.alerts()) == ["10.0.0.41", "10.0.0.66"]


STEADY = dict(target="10.0.0.50", keys=2342, keys_unreported=2086, codes=1, protocols=("mqtt",), flows=0, hosts=1,
              ports=0, first_ts=100.2, last_ts=159.9)
"""bench/make_varied.py's publisher: 2,500 tags of its own at 120 PUBLISHes/s, 2,342 of them new in its first
minute, (nearly) none after: the old rule called it a topic flood."""


def test_a_publisher_bringing_up_its_tags_is_no_topic_flood():
    book, st = _stage()
    st.observe(_summary(**STEADY))
    st.observe(O.IntervalEnd(100.0, 160.0))
    st.observe(_summary(**dict(STEADY, start_ts=160.0, end_ts=220.0, keys=158, first_ts=160.5, last_ts=219.0)))
    assert [a.rule for a in book.alerts()] == []


def test_new_topics_sustained_over_two_intervals_are_a_topic_flood():
    book, st = _stage()
    st.observe(_summary(**dict(STEADY, keys=300)))
    st.observe(O.IntervalEnd(100.0, 160.0))
    assert not book.alerts()
    st.observe(_summary(**dict(STEADY, keys=300, start_ts=160.0, end_ts=220.0, first_ts=160.1, first_frame=5000)))
    (a,) = book.alerts()
    assert a.rule == "dos.mqtt_topic_flood" and [e.frame for e in a.evidence] == [7, 5000]
