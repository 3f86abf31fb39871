"""dos.connection_flood and dos.message_flood (sensor/alerts/floods.py) on observations: thresholds both ways.

The benign numbers are those of real stacks: bench/make_varied.py's Modbus master (150 requests/s on each
connection) and MQTT historian (the broker forwards 240 PUBLISHes/s to it), which the first thresholds
(2,000 messages at 250/s, both directions, any MQTT side) flagged as floods.
"""
from __future__ import annotations

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage

from .helpers import flow_start

FLAGS = ("syn", "synack", "data", "fin_client", "fin_server")


def _stage(detections=None):
    book = AlertBook(AlertSettings.from_mapping(detections))
    return book, AlertStage(book, Context("cap.pcap"))


def _conn(st, fid, client, server, port, protocol, t0, t1, messages, payload_client, payload_server, frame):
    st.observe(flow_start(fid, client, server, port, t0, frame, protocol=protocol))
    st.observe(O.FlowEnd(t1, frame + 9, fid, "closed", t0, 10, 10, 0, 0, payload_client, payload_server, protocol,
                         FLAGS, False, 0, 0, 0, 0, messages))


def test_busy_benign_connections_are_no_message_flood():
    book, st = _stage()
    _conn(st, 1, "10.61.0.21", "10.61.0.11", 502, "modbus", 0.0, 22.9, 6872, 82_000, 120_000, 1)   # a fast master
    _conn(st, 2, "10.61.0.41", "10.61.0.50", 1883, "mqtt", 0.0, 23.4, 8239, 16_000, 2_400_000, 100)  # a historian
    _conn(st, 3, "10.61.0.71", "10.61.0.50", 1883, "mqtt", 0.0, 60.0, 7200, 900_000, 14_000, 200)   # a publisher
    _conn(st, 4, "10.61.0.72", "10.61.0.50", 1883, "mqtt", 0.0, 2.0, 5, 1_048_700, 4, 300)          # 1 MiB firmware
    assert not book.alerts()


def test_floods_on_one_connection_are_one_alert_each_with_the_first_frame():
    book, st = _stage()
    _conn(st, 1, "10.50.0.66", "10.50.0.60", 4840, "opcua", 10.0, 11.2, 6017, 280_000, 270_000, 1)   # Read flood
    _conn(st, 2, "10.50.0.66", "10.50.0.50", 1883, "mqtt", 20.0, 20.23, 3003, 6_223_010, 4, 100)     # big PUBLISHes
    _conn(st, 3, "10.50.0.66", "10.50.0.60", 4840, "opcua", 30.0, 31.0, 6000, 280_000, 270_000, 200)
    al = {(a.dst, a.protocol): a for a in book.alerts() if a.rule == "dos.message_flood"}
    assert set(al) == {("10.50.0.60", "opcua"), ("10.50.0.50", "mqtt")}
    ua = al[("10.50.0.60", "opcua")]
    assert ua.count == 2 and [e.frame for e in ua.evidence] == [1, 200]       # where each flooding connection began
    assert al[("10.50.0.50", "mqtt")].details["client_bytes"] == 6_223_010


def test_message_flood_thresholds_are_settings():
    book, st = _stage({"dos.message_flood": {"thresholds": {"messages": 1000, "rate": 200}}})
    _conn(st, 1, "10.61.0.21", "10.61.0.11", 502, "modbus", 0.0, 22.9, 6872, 82_000, 120_000, 1)
    (a,) = book.alerts()
    assert a.rule == "dos.message_flood" and a.src == "10.61.0.21"


def test_connection_flood_counts_connections_of_one_client_to_one_service_within_the_window():
    book, st = _stage()
    for i in range(199):            # 199 in 10 s: below
        st.observe(flow_start(i + 1, "10.50.0.66", "10.50.0.60", 4840, 100.0 + i * 0.05, 10 * i + 1, protocol="opcua"))
    for i in range(50):             # an EWS opening a connection per read at 5 Hz: far below
        st.observe(flow_start(1000 + i, "10.50.0.31", "10.50.0.10", 502, 100.0 + i * 0.2, 5000 + i, protocol="modbus"))
    for i in range(300):            # MQTT is dos.mqtt_connection_flood's (CONNECTs), not this rule's
        st.observe(flow_start(2000 + i, "10.50.0.66", "10.50.0.50", 1883, 100.0 + i * 0.01, 9000 + i, protocol="mqtt"))
    assert not book.alerts()
    st.observe(flow_start(500, "10.50.0.66", "10.50.0.60", 4840, 109.95, 4000, protocol="opcua"))
    (a,) = book.alerts()
    assert a.rule == "dos.connection_flood" and a.dst == "10.50.0.60" and a.port == 4840
    assert a.evidence[0].frame == 1 and a.evidence[-1].frame == 4000 and a.count == 16
    book2, st2 = _stage()           # the same 200 spread over more than the window: nothing
    for i in range(200):
        st2.observe(flow_start(i + 1, "10.50.0.66", "10.50.0.60", 4840, 100.0 + i * 0.06, i + 1, protocol="opcua"))
    assert not book2.alerts()


def test_a_flood_from_many_short_connections_of_one_client_adds_up():
    book, st = _stage()
    for i in range(300):            # an EWS: a connection per read at 5 Hz for a minute
        t = 100.0 + i * 0.2
        _conn(st, i + 1, "10.50.0.31", "10.50.0.10", 502, "modbus", t, t + 0.01, 2, 12, 13, 10 * i + 1)
    assert not book.alerts()
    for i in range(10):             # MQTT-malaria: ten clients of one host, 600 PUBLISHes each, back to back
        t = 500.0 + i * 0.5
        _conn(st, 1000 + i, "10.50.0.66", "10.50.0.50", 1883, "mqtt", t, t + 0.45, 600, 60_000, 4, 5000 + 10 * i)
    (a,) = book.alerts()
    assert a.rule == "dos.message_flood" and a.src == "10.50.0.66" and a.details["connections"] == 9
    assert a.evidence[0].frame == 5080 and a.count == 2       # crossed on the ninth, counted again on the tenth


def test_opcua_session_flood_counts_create_session_requests():
    from types import SimpleNamespace

    book, st = _stage()
    ev = type("OPCUACreateSessionRequest", (), {})()
    for i in range(49):
        st.observe(O.Message(10.0 + i * 0.1, 100 + i, "opcua", "opcua.create_session", "session", "", "request", 1, 1,
                             "10.50.0.66", "10.50.0.60", 4840, ev, (0,)))
    st.observe(O.Message(9.0, 99, "opcua", "opcua.read", "read", "", "request", 1, 1, "10.50.0.66", "10.50.0.60",
                         4840, SimpleNamespace(), (0,)))
    assert not book.alerts()
    st.observe(O.Message(15.0, 200, "opcua", "opcua.create_session", "session", "", "request", 1, 1, "10.50.0.66",
                         "10.50.0.60", 4840, ev, (0,)))
    (a,) = book.alerts()
    assert a.rule == "dos.opcua_session_flood" and a.evidence[0].frame == 100 and a.evidence[-1].frame == 200


def test_opcua_secure_channel_renewals_count_the_first_channel_of_a_connection_does_not():
    book, st = _stage()
    opn = type("OPCUAOpenSecureChannel", (), {})()

    def opn_on(flow, ts, frame):
        st.observe(O.Message(ts, frame, "opcua", "opcua.open_secure_channel", "secure_channel", "", "request", 1,
                             flow, "10.50.0.66", "10.50.0.60", 4840, opn, (0,)))

    for i in range(300):            # a connection flood: one OPN each (dos.connection_flood's), no renewal
        opn_on(1000 + i, 10.0 + i * 0.01, 1000 + i)
    assert not book.alerts()
    opn_on(7, 20.0, 5000)           # one connection renewing its channel 50 times
    for i in range(49):
        opn_on(7, 20.1 + i * 0.1, 5001 + i)
    assert not book.alerts()
    opn_on(7, 26.0, 6000)
    (a,) = book.alerts()
    assert a.rule == "dos.opcua_session_flood" and a.evidence[0].frame == 5001 and a.evidence[-1].frame == 6000
