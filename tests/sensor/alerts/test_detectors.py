"""Scan, sweep and login detectors on observations: thresholds, what is not a probe, bounded state."""
from __future__ import annotations

from types import SimpleNamespace

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage

from .helpers import flow_end, flow_start


def _stage(detections=None):
    book = AlertBook(AlertSettings.from_mapping(detections))
    return book, AlertStage(book, Context("cap.pcap"))


def _probe(st, fid, src, dst, port, ts, frame, flags=("syn", "rst"), transport="tcp"):
    st.observe(flow_start(fid, src, dst, port, ts, frame, transport))
    st.observe(flow_end(fid, ts + 0.001, frame + 1, flags))


def test_host_scan_counts_distinct_hosts_probed_without_a_session():
    book, st = _stage()
    for i in range(9):
        _probe(st, i + 1, "10.0.0.66", f"10.0.0.{i + 1}", 22, 100.0 + i, 10 * i + 1)
    # sessions that carried data are not probes, however many hosts they reach
    for i in range(20):
        _probe(st, 100 + i, "10.0.0.21", f"10.0.1.{i}", 502, 100.0 + i, 1000 + 10 * i, ("syn", "synack", "data"))
    assert not [a for a in book.alerts() if a.rule == "recon.host_scan"]
    _probe(st, 50, "10.0.0.66", "10.0.0.10", 22, 110.0, 500)
    (a,) = [a for a in book.alerts() if a.rule == "recon.host_scan"]
    assert a.src == "10.0.0.66" and a.count == 10
    assert [e.frame for e in a.evidence][:3] == [1, 11, 21] and a.evidence[-1].frame == 500


def test_port_scan_threshold_from_settings_and_window_expiry():
    book, st = _stage({"recon.port_scan": {"thresholds": {"ports": 3, "window": 10}}})
    _probe(st, 1, "a", "b", 21, 0.0, 1)
    _probe(st, 2, "a", "b", 22, 1.0, 3)
    _probe(st, 3, "a", "b", 23, 20.0, 5)           # the window expired: counting restarts
    _probe(st, 4, "a", "b", 24, 21.0, 7)
    assert not [x for x in book.alerts() if x.rule == "recon.port_scan"]
    _probe(st, 5, "a", "b", 25, 22.0, 9)
    (al,) = [x for x in book.alerts() if x.rule == "recon.port_scan"]
    assert al.count == 3 and [e.frame for e in al.evidence] == [5, 7, 9]


def _modbus(st, frame, fc, unit=1, table="holding_registers", address=0, quantity=1, direction="request",
            exception=None, client="10.0.0.66", server="10.0.0.11"):
    if exception is None:
        ev = SimpleNamespace(function=fc, unit=unit, table=table, address=address, quantity=quantity)
    else:
        ev = SimpleNamespace(function=fc | 0x80, unit=unit, table=table, address=address, quantity=quantity,
                             exception_code=exception)
    st.observe(O.Message(float(frame), frame, "modbus", "k", "read", "t", direction, 1, 1, client, server, 502,
                         ev, (0,)))


def test_modbus_sweeps():
    book, st = _stage()
    for fc in range(1, 12):
        _modbus(st, fc, fc)
    assert not book.alerts()
    _modbus(st, 12, 12)
    (a,) = book.alerts()
    assert a.rule == "recon.modbus_function_sweep" and a.count == 12 and a.port == 502
    book2, st2 = _stage()
    for i in range(8):                         # register sweep seen through illegal-address exceptions
        _modbus(st2, i, 3, address=1000 + i, direction="response", exception=2)
    for i in range(8):                         # unit sweep seen through gateway exceptions
        _modbus(st2, 100 + i, 3, unit=10 + i, direction="response", exception=11)
    assert sorted(a.rule for a in book2.alerts()) == ["recon.modbus_register_sweep", "recon.modbus_unit_sweep"]
    book3, st3 = _stage()
    for i in range(200):                       # an HMI polling the same three reads: nothing
        _modbus(st3, i, (3, 1, 4)[i % 3])
    assert not book3.alerts()


def _mqtt(st, frame, name, code=0, client="10.0.0.66"):
    ev = type(name, (), {"return_code": code, "return_name": "Bad user name or password" if code else ""})()
    st.observe(O.Message(float(frame), frame, "mqtt", "k", "connect", "", "response" if "Ack" in name else
                         "request", 1, 1, client, "10.0.0.50", 1883, ev, (0,)))


def test_mqtt_brute_force_and_accepted_logins():
    book, st = _stage()
    for i in range(10):
        _mqtt(st, i, "MQTTConnAck", 0)          # accepted: nothing
    for i in range(4):
        _mqtt(st, 100 + i, "MQTTConnAck", 5)
    assert not book.alerts()
    _mqtt(st, 130, "MQTTConnAck", 4)
    (a,) = book.alerts()
    assert a.rule == "auth.mqtt_brute_force" and a.count == 5 and a.technique == "T0812"
    assert [e.frame for e in a.evidence] == [100, 101, 102, 103, 130]


def test_anomalies_map_to_rules_keyed_by_the_pair_and_ignored_ones_raise_nothing():
    book, st = _stage()
    st.observe(flow_start(7, "10.0.0.66", "10.0.0.11", 502, 1.0, 1, protocol="modbus"))
    for i in range(3):
        st.observe(O.Anomaly(2.0 + i, 2 + i, "modbus.unsolicited_response", "modbus", 1, 7, "server", "tid=1"))
    st.observe(O.Anomaly(9.0, 9, "mqtt.missing_connect", "mqtt", 1, 7, "client", ""))
    st.observe(O.Anomaly(9.0, 10, "capture.truncated_record", "", 0, 0, "", ""))
    st.observe(O.Anomaly(9.0, 11, "flow.anomalies_suppressed", "modbus", 1, 7, "",
                         "modbus.unsolicited_response: 4740 of 5000 not reported"))
    al = {a.rule: a for a in book.alerts()}
    assert set(al) == {"protocol.modbus_unsolicited_response", "dos.anomaly_flood"}
    u = al["protocol.modbus_unsolicited_response"]
    assert (u.count, u.src, u.dst, u.port, [e.flow_id for e in u.evidence]) == (3, "10.0.0.66", "10.0.0.11", 502,
                                                                                 [7, 7, 7])
    assert al["dos.anomaly_flood"].details["suppressed"] == {"modbus.unsolicited_response": 4740}
    assert st.anomalies.counts == {"mapped": 4, "ignored": 2, "unknown": 0, "received_overflow": 0}


def test_a_subscriber_receiving_thousands_of_topics_is_no_key_overflow_alert():
    """bench/make_varied.py's historian (site/#) receives 5,000 topics: the broker's direction of its link
    overflowed and raised recon.key_overflow; a publisher's own overflow (a topic flood) still does."""
    book, st = _stage()
    st.observe(flow_start(7, "10.61.0.41", "10.61.0.50", 1883, 1.0, 1, protocol="mqtt"))
    st.observe(flow_start(8, "10.61.0.66", "10.61.0.50", 1883, 1.0, 2, protocol="mqtt"))
    st.observe(O.Anomaly(9.0, 90, "mqtt.key_overflow", "mqtt", 1, 7, "server", "more than 4096 keys"))
    st.observe(O.Anomaly(9.0, 91, "mqtt.key_overflow", "mqtt", 2, 8, "client", "more than 4096 keys"))
    assert [(a.rule, a.src) for a in book.alerts()] == [("recon.key_overflow", "10.61.0.66")]
    assert st.anomalies.counts["received_overflow"] == 1


def test_detector_state_is_bounded(monkeypatch):
    from otwatch.sensor.alerts import scan
    monkeypatch.setattr(scan, "MAX_SOURCES", 50)
    book, st = _stage()
    for i in range(500):                       # 500 spoofed sources, one probe each
        _probe(st, i + 1, f"10.9.{i // 250}.{i % 250}", "10.0.0.1", 22, float(i), 2 * i + 1)
    assert len(st.scan.hosts.windows) == 50 and st.scan.counts["windows_forgotten"] > 0


def test_a_master_polling_many_rtus_behind_one_gateway_is_no_unit_sweep():
    book, st = _stage()
    frame = 0
    for unit in range(1, 61):                  # 60 RTUs, each answers its first poll
        frame += 2
        _modbus(st, frame, 3, unit=unit, client="10.0.0.21", server="10.0.0.10")
        _modbus(st, frame + 1, 3, unit=unit, direction="response", client="10.0.0.21", server="10.0.0.10")
    assert not [a for a in book.alerts() if a.rule == "recon.modbus_unit_sweep"]
    for unit in range(1, 33):                  # a scanner: 32 units that never answer
        _modbus(st, 1000 + unit, 3, unit=100 + unit, client="10.0.0.66", server="10.0.0.10")
    (a,) = [a for a in book.alerts() if a.rule == "recon.modbus_unit_sweep"]
    assert a.src == "10.0.0.66" and a.details["distinct"] == 32 and a.evidence[0].frame == 1001
    book2, st2 = _stage()                      # a device that answers every unit id: swept past 128 units
    for unit in range(1, 129):
        _modbus(st2, 2 * unit, 3, unit=unit)
        _modbus(st2, 2 * unit + 1, 3, unit=unit, direction="response")
    (a,) = [a for a in book2.alerts() if a.rule == "recon.modbus_unit_sweep"]
    assert a.src == "10.0.0.66" and a.count >= 1 and a.evidence[-1].frame == 256


def test_a_message_cut_short_by_its_own_sender_is_malformed_the_capture_edge_is_not():
    book, st = _stage()
    for fid, flags in ((1, ("syn", "synack", "data", "fin_client", "fin_server")), (2, ("syn", "synack", "data"))):
        st.observe(flow_start(fid, "10.0.0.66", "10.0.0.50", 1883, 1.0, 10 * fid, protocol="mqtt"))
        st.observe(O.Anomaly(2.0, 10 * fid + 3, "mqtt.truncated_at_eof", "mqtt", 1, fid, "client",
                             "PUBLISH: 22 of 66 bytes"))
        assert not [a for a in book.alerts() if a.evidence[0].frame == 10 * fid + 3]   # held until the end
        st.observe(flow_end(fid, 3.0, 10 * fid + 5, flags))
    (a,) = book.alerts()          # flow 2 ended without its client closing it: the capture's edge
    assert a.rule == "protocol.mqtt_malformed" and a.src == "10.0.0.66" and [e.frame for e in a.evidence] == [13]
    assert a.details["closed_by_sender"]
