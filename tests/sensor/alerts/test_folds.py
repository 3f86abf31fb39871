"""One attack, one alert (issue 14 leftovers, point 2): a baseline rule that names the same attack as a built-in
detector's rule (MQTT brute force, function-code, unit-id, register and host sweeps) is folded into that rule's
alert by the AlertBook, each packet counted once; and a scan summary of several servers adds to the alerts the
requests opened instead of opening one more."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from support.attack_capture import CAPTURE, normal_part, windows

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.analysis import OfflineAlerts
from otwatch.sensor.alerts import catalogue as C
from otwatch.sensor.alerts.catalogue import RULES, finding
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage
from otwatch.sensor.baseline.detect import Detector
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.baseline.rules import RULES as BASELINE_RULES
from otwatch.sensor.pipeline import Pipeline, Settings

from .helpers import ev

ROGUE, BROKER, PLC1, PLC2 = "10.40.0.66", "10.40.0.50", "10.40.0.11", "10.40.0.12"
FOLDS = {
    "baseline.mqtt_brute_force": "auth.mqtt_brute_force",
    "baseline.function_code_sweep": "recon.modbus_function_sweep",
    "baseline.unit_id_sweep": "recon.modbus_unit_sweep",
    "baseline.register_sweep": "recon.modbus_register_sweep",
    "baseline.host_sweep": "recon.host_scan",
}


def test_the_catalogue_folds_these():
    assert getattr(C, "FOLDED", None) == FOLDS


def baseline_finding(rule, frame, src="10.0.0.66", dst="10.0.0.11", port=502):
    r = BASELINE_RULES[rule]
    from otwatch.sensor.alerts.model import Finding

    key = (src,) if rule == "baseline.host_sweep" else (src, dst)
    return Finding(rule, key, r.severity, r.category, f"baseline says {rule}", ev(frame), src=src, dst=dst,
                   protocol="modbus", port=port, technique=r.technique)


@pytest.mark.parametrize("origin, target", sorted(FOLDS.items()))
def test_each_folded_rule_joins_its_detector_alert_and_counts_a_packet_once(origin, target):
    book = AlertBook()
    key = {"auth.mqtt_brute_force": ("10.0.0.66", "10.0.0.11", 502), "recon.host_scan": ("10.0.0.66",)}.get(
        target, ("10.0.0.66", "10.0.0.11"))
    for frame in (10, 11, 12):                   # the detector's samples, then ...
        book.raise_finding(finding(target, key, "detector", ev(frame), src="10.0.0.66", dst="10.0.0.11", port=502))
    book.raise_finding(baseline_finding(origin, 12))      # ... the same packet from the baseline: no count
    book.raise_finding(baseline_finding(origin, 13))      # a packet only the baseline counted
    (a,) = book.alerts()
    assert a.rule == target and a.count == 4 and [e.frame for e in a.evidence] == [10, 11, 12, 13]
    assert a.category == RULES[target].category and a.technique == RULES[target].technique
    # the baseline alone (below the detector's threshold) still alerts, under the detector's rule
    book2 = AlertBook()
    book2.raise_finding(baseline_finding(origin, 20))
    (b,) = book2.alerts()
    assert b.id == a.id and b.details["folded_from"] == origin and b.message == f"baseline says {origin}"


def test_settings_of_either_rule_apply_to_the_folded_finding():
    f = baseline_finding("baseline.register_sweep", 1)
    off = AlertBook(AlertSettings.from_mapping({"recon.modbus_register_sweep": {"enabled": False}}))
    off.raise_finding(f)
    assert not off.alerts() and off.counts["disabled"] == 1
    allow = AlertBook(AlertSettings.from_mapping({"recon.modbus_register_sweep": {"allow": ["10.0.0.66/32"]}}))
    allow.raise_finding(f)
    assert not allow.alerts()
    loud = AlertBook(AlertSettings.from_mapping({"recon.modbus_register_sweep": {"severity": "critical"}}))
    loud.raise_finding(f)
    assert loud.alerts()[0].severity == "critical"


def _learned(impl, tmp_path):
    b = Baseline()
    settings = Settings(interval=60.0, implementation=impl)
    p = Pipeline([Learner(b, 60.0)], settings)
    p.run_file(str(normal_part(tmp_path / "normal.pcap")))
    p.finish()
    return b


def refused_connacks() -> list[int]:
    """Frames of the refused CONNACKs in the capture (MQTT fixed header 0x20, return code != 0), by hand."""
    data = CAPTURE.read_bytes()
    out, pos, frame = [], 24, 0
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frame += 1
        pkt = data[pos + 16:pos + 16 + incl]
        ihl = (pkt[14] & 15) * 4
        tcp = 14 + ihl
        if pkt[23] == 6 and struct.unpack_from("!H", pkt, tcp)[0] == 1883:
            pay = pkt[tcp + (pkt[tcp + 12] >> 4) * 4:]
            if len(pay) >= 4 and pay[0] == 0x20 and pay[1] == 2 and pay[3] != 0:
                out.append(frame)
        pos += 16 + incl
    return out


def test_analyze_with_a_baseline_raises_one_alert_per_attack(impl, tmp_path):
    """The attack-scenario capture learned on its normal part, then analysed as `analyze --baseline` does:
    the brute force, the function-code sweep and the register sweep are one alert each."""
    b = _learned(impl, tmp_path)
    off = OfflineAlerts()
    off.add_producer(Detector(b, off.sink))
    p = Pipeline(off.consumers, Settings(interval=60.0, implementation=impl))
    off.start_file(str(CAPTURE), 0)
    p.run_file(str(CAPTURE))
    p.finish()
    off.finish()
    alerts = off.alerts()
    w = windows()["attacks"]

    def one(rule_names, attack):
        hits = [a for a in alerts if a.rule in rule_names]
        assert len(hits) == 1, [(a.rule, a.src, a.dst, a.count) for a in hits]
        lo, hi = w[attack]
        assert all(lo <= e.ts <= hi for e in hits[0].evidence), attack
        return hits[0]

    brute = one({"auth.mqtt_brute_force", "baseline.mqtt_brute_force"}, "mqtt_brute_force")
    assert (brute.src, brute.dst) == (ROGUE, BROKER)
    refused = refused_connacks()
    assert len(refused) >= 5 and brute.count == len(refused)       # every refused CONNACK counted once
    assert {e.frame for e in brute.evidence} <= set(refused)
    fc = one({"recon.modbus_function_sweep", "baseline.function_code_sweep"}, "function_code_sweep")
    assert (fc.src, fc.dst) == (ROGUE, PLC2)
    regs = one({"recon.modbus_register_sweep", "baseline.register_sweep"}, "register_sweep")
    assert (regs.src, regs.dst) == (ROGUE, PLC1)


def _fc_request(st, frame, fc, server):
    e = SimpleNamespace(function=fc, unit=1, table="", address=None, quantity=None)
    st.observe(O.Message(float(frame), frame, "modbus", "k", "other", "t", "request", 1, 1, ROGUE, server, 502,
                         e, (0,)))


def test_a_summary_of_several_servers_adds_to_the_alerts_of_the_requests():
    book = AlertBook()
    st = AlertStage(book, Context("cap.pcap"))
    for fc in range(1, 13):
        _fc_request(st, fc, fc, PLC1)
        _fc_request(st, 100 + fc, fc, PLC2)
    assert sorted((a.rule, a.dst) for a in book.alerts()) == [("recon.modbus_function_sweep", PLC1),
                                                             ("recon.modbus_function_sweep", PLC2)]
    st.observe(O.ScanSummary(100.0, 160.0, ROGUE, "", 0, 101.0, 500, 159.0, 900, 0, 0, 2, 0, 300, 284, 1, 40,
                             ("modbus",), False, (), 0))
    assert sorted((a.rule, a.dst, a.count) for a in book.alerts()) == [
        ("recon.modbus_function_sweep", PLC1, 13), ("recon.modbus_function_sweep", PLC2, 13)]


def test_what_the_fold_remembers_is_bounded():
    from otwatch.sensor.alerts import aggregate

    book = AlertBook()
    for i in range(aggregate.FRAME_ALERTS + 500):        # a host scan from many (spoofed) sources
        book.raise_finding(finding("recon.host_scan", (f"10.9.{i // 256}.{i % 256}",), "m", ev(i)))
    for i in range(100):
        book.raise_finding(finding("recon.host_scan", ("10.0.0.66",), "m", ev(10_000 + i)))
    assert len(book._frames) == aggregate.FRAME_ALERTS
    assert max(len(d) for d in book._frames.values()) == aggregate.FRAMES_REMEMBERED
