"""Stream behaviour of the MQTT kernel and connection: keys and records,
truncation, violations, gaps and resynchronisation, aliases, credentials."""
from __future__ import annotations

import importlib.util
import json
import pathlib
from dataclasses import replace

import pytest

from otwatch.parsers.common import FEED_OK, FEED_VIOLATION, REC_ANOMALY, REC_MSG
from otwatch.parsers.limits import Limits
from otwatch.parsers.mqtt import MQTTConnection, decode, describe, spec, to_dict
from otwatch.parsers.mqtt.events import (
    Anomaly,
    MQTTConnAck,
    MQTTConnect,
    MQTTPingReq,
    MQTTPublish,
    MQTTSubscribe,
    MQTTTruncated,
)

_b = importlib.util.spec_from_file_location("otwatch_test_mqtt_build", pathlib.Path(__file__).with_name("mqtt_build.py"))
B = importlib.util.module_from_spec(_b)
_b.loader.exec_module(B)
assert_decodes = B.helpers.assert_decodes
C, S = 0, 1


def run(core, side, wire, ts=1.0, frame=1):
    out = []
    status = core.feed(side, wire, 0, len(wire), ts, frame, out)
    return status, out


# ------------------------------------------------------------- kernel records
def test_mqtt_kernel_keys_tallies_and_ctx(kernels):
    m = kernels("mqtt")
    seen = {}
    core = m.MQTTCore(seen, False)
    st, out = run(core, C, B.connect(level=5), 1.0, 1)
    assert st == FEED_OK and core.confirmed and core.level == 5
    assert out[0][:5] == (REC_MSG, C, 1.0, 1, (spec.MSG_CONNECT, 5)) and out[0][6] == (5, None)
    pub = B.publish("plant/t1", b"7", qos=1, retain=True, pid=3, properties=b"\x00")
    st, out = run(core, C, pub * 3, 2.0, 2)
    assert out == [(REC_MSG, C, 2.0, 2, (spec.MSG_PUBLISH, "plant/t1"), pub, (5, "plant/t1"))]
    assert seen[(spec.MSG_PUBLISH, "plant/t1")] == [3, 3 * len(pub), 2.0, 2.0, 3, 3 * len(pub), 2, 2]
    # always detailed: a repeated SUBSCRIBE is reported again; a repeated PUBACK is not
    sub = B.subscribe(1, [("a/#", 0), ("b", 1)], b"\x00")
    for _ in range(2):
        st, out = run(core, C, sub + B.ack(4, 3), 3.0, 3)
    assert [r[4] for r in out] == [(spec.MSG_SUBSCRIBE, "a/#", 2)]
    assert core.messages == 8 and core.bytes_decoded == len(B.connect(level=5)) + 3 * len(pub) + 2 * len(sub) + 8


def test_mqtt_kernel_reads_only_start_to_end_of_any_buffer(kernels):
    m = kernels("mqtt")
    wire = b"JUNK" + B.connect() + B.publish("t", b"x") + b"MORE"
    for buf in (wire, bytearray(wire), memoryview(wire)):
        core = m.MQTTCore({}, True)
        out = []
        assert core.feed(C, buf, 4, len(wire) - 4, 0.0, 1, out) == FEED_OK
        assert [r[4][0] for r in out] == [1, 3]


def test_mqtt_probe(kernels):
    m = kernels("mqtt")
    c = B.connect(level=3)
    assert m.probe(c, 0, len(c)) == 2
    assert m.probe(b"xx" + B.connect(level=5), 2, 200) == 2
    assert m.probe(B.connack(0), 0, 4) == 1
    assert m.probe(B.publish("t", b"1") + B.packet(12, 0, b""), 0, 100) == 1
    assert m.probe(b"GET / HTTP/1.1\r\n", 0, 16) == 0
    assert m.probe(b"\x16\x03\x01\x02\x00\x01", 0, 6) == 0
    assert m.probe(b"", 0, 0) == 0


# ------------------------------------------------------------------ truncation
SMALL = Limits(mqtt_max_message=64)


def test_mqtt_truncated_packet_is_reported_and_skipped_without_losing_the_next(impl):
    big = B.publish("plant/blob", b"B" * 300, qos=1, pid=9)
    small = B.publish("plant/t", b"1")
    expected = [
        MQTTTruncated(side=C, original_type=3, original_name="PUBLISH", size=len(big), skipped=len(big) - 3),
        MQTTPublish(side=C, topic="plant/t", payload_length=1, payload_preview="1"),
    ]
    assert_decodes(lambda: MQTTConnection(SMALL, impl), C, big + small, expected, prime=[(C, B.connect())])
    conn = MQTTConnection(SMALL, impl)
    conn.feed(B.connect(), C)
    conn.feed(big + small, C)
    assert conn.core.bytes_skipped == len(big) - 3


def test_mqtt_truncated_record_key_and_raw(kernels):
    m = kernels("mqtt")
    core = m.MQTTCore({}, False, SMALL)
    big = B.packet(3, 0, B.s("t") + b"x" * 200)
    st, out = run(core, C, big[:50])
    assert out[-1][4] == (spec.MSG_TRUNCATED, 3, len(big)) and out[-1][5] == big[:3] and out[-1][6] == (0, None)
    assert describe(out[-1][4]) == ("mqtt.truncated", "publish", "type=PUBLISH size=%d" % len(big))


def test_mqtt_varint_claiming_256mb_is_never_buffered(kernels):
    import tracemalloc

    m = kernels("mqtt")
    core = m.MQTTCore({}, True)
    header = b"\x30\xff\xff\xff\x7f"
    tracemalloc.start()
    run(core, C, header)
    chunk = b"\x00" * 65536
    for _ in range(64):  # 4 MiB of body
        run(core, C, chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 512 * 1024
    assert core.bytes_skipped == 64 * 65536 and core.messages == 1


def test_mqtt_packet_just_under_the_limit_is_decoded(impl):
    lim = Limits(mqtt_max_message=200)
    wire = B.publish("t", b"p" * (200 - 6))
    assert len(wire) == 200
    got = MQTTConnection(lim, impl).feed(B.connect() + wire, C)
    assert isinstance(got[1], MQTTPublish) and got[1].payload_length == 194


# ------------------------------------------------------------------ violations
@pytest.mark.parametrize("junk", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01",    # Modbus/TCP
    b"HEL\x00\x00\x00\x00\x00",                     # OPC UA hello
    b"\x30\xff\xff\xff\xff\x01",                    # 5-byte varint
    b"\x10\x0c\x00\x04HTTP\x04\x02\x00\x3c\x00\x00",  # CONNECT with a wrong protocol name
    b"\x20\x04\x00\x00\x05\x00",                    # CONNACK: v5 inferred, property block overruns
    b"\xc0\x01\x00",                                # PINGREQ with a body
])
def test_mqtt_violation_on_non_mqtt_bytes(impl, junk):
    conn = MQTTConnection(implementation=impl)
    got = conn.feed(junk + b"\xff\xff\xff\xff\xff", C)
    assert got[-1].id == "mqtt.protocol_violation" and conn.violation
    assert all(isinstance(e, Anomaly) or not e.malformed for e in got)
    assert conn.feed(B.connect(), C) == []
    assert conn.core.feed(C, B.connect(), 0, 20, 0.0, 0, []) == FEED_VIOLATION


def test_mqtt_tls_stream_is_counted_as_encrypted(kernels):
    m = kernels("mqtt")
    ch = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    for chunks in ([ch], [ch[:1], ch[1:2], ch[2:]]):
        core = m.MQTTCore({}, True)
        out = []
        for c in chunks:
            assert core.feed(C, c, 0, len(c), 0.0, 1, out) == FEED_OK
        assert core.feed(S, b"\x16\x03\x03\x00\x01\x02", 0, 6, 0.0, 2, out) == FEED_OK
        assert out == [] and core.bytes_encrypted == len(ch) + 6 and not core.confirmed


def test_mqtt_invalid_header_on_confirmed_connection_then_resync(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(), C)
    got = conn.feed(B.publish("a", b"1") + b"\x00garbage", C)
    assert got[0] == MQTTPublish(side=C, topic="a", payload_length=1, payload_preview="1")
    assert got[1] == Anomaly("mqtt.invalid_header", C, "reserved packet type")
    assert conn.feed(b"more garbage \x00", C) == []
    got = conn.feed(B.publish("b", b"2") + B.packet(12, 0, b""), C)
    assert got == [Anomaly("mqtt.resynchronised", C, "after 22 bytes skipped"),
                   MQTTPublish(side=C, topic="b", payload_length=1, payload_preview="2"), MQTTPingReq(side=C)]
    assert conn.core.bytes_skipped == 22


# ------------------------------------------------------------------------ gaps
def test_mqtt_gap_inside_a_packet_loses_only_that_packet(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(), C)
    p1 = B.publish("a", b"x" * 40)
    assert conn.feed(p1[:10], C) == []
    assert conn.gap(20, C) == [Anomaly("mqtt.lost_packet", C, "PUBLISH of %d bytes, 20 missing" % len(p1))]
    got = conn.feed(p1[30:] + B.publish("b", b"1"), C)
    assert got == [MQTTPublish(side=C, topic="b", payload_length=1, payload_preview="1")]


def test_mqtt_gap_inside_a_truncated_packet_is_silent(impl):
    conn = MQTTConnection(SMALL, impl)
    conn.feed(B.connect(), C)
    big = B.publish("a", b"x" * 100)
    assert isinstance(conn.feed(big[:10], C)[0], MQTTTruncated)
    assert conn.gap(50, C) == []
    assert conn.feed(big[60:] + B.packet(12, 0, b""), C) == [MQTTPingReq(side=C)]


def test_mqtt_gap_at_boundary_desynchronises_until_a_clean_segment(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(), C)
    assert conn.gap(7, C) == [Anomaly("mqtt.desynchronised", C, "7 bytes missing at a packet boundary")]
    p = B.publish("a", b"123456")
    assert conn.feed(p[3:], C) == []            # tail of an unknown packet
    got = conn.feed(p, C)
    assert got[0].id == "mqtt.resynchronised" and got[1].topic == "a"


def test_mqtt_eof_inside_a_packet(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(), C)
    p = B.publish("a", b"123456")
    conn.feed(p[:5], C)
    assert conn.eof(C) == [Anomaly("mqtt.truncated_at_eof", C, "PUBLISH: 5 of %d bytes" % len(p))]
    assert conn.eof(C) == []


# --------------------------------------------------------------------- aliases
def test_mqtt_unknown_and_invalid_topic_alias(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(level=5), C)
    got = conn.feed(B.publish("", b"1", properties=B.props((0x23, 4))), C)
    assert got == [Anomaly("mqtt.unknown_topic_alias", C, "alias 4"),
                   MQTTPublish(side=C, topic="", topic_alias=4, payload_length=1, payload_preview="1",
                               properties=(("topic_alias", 4),))]
    got = conn.feed(B.publish("t", b"1", properties=B.props((0x23, 0))), C)
    assert got[0] == Anomaly("mqtt.invalid_topic_alias", C, "topic alias 0")


def test_mqtt_aliases_are_per_direction(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(level=5), C)
    conn.feed(B.publish("c/t", b"", properties=B.props((0x23, 1))), C)
    got = conn.feed(B.publish("", b"", properties=B.props((0x23, 1))), S)
    assert got[0] == Anomaly("mqtt.unknown_topic_alias", S, "alias 1")


def test_mqtt_alias_table_is_bounded(impl):
    conn = MQTTConnection(Limits(mqtt_max_aliases=2), impl)
    conn.feed(B.connect(level=5), C)
    wire = b"".join(B.publish("t/%d" % i, b"", properties=B.props((0x23, i))) for i in range(1, 5))
    got = conn.feed(wire, C)
    assert [e for e in got if isinstance(e, Anomaly)] == [Anomaly("mqtt.topic_alias_limit", C, "more than 2 aliases")]
    got = conn.feed(B.publish("", b"", properties=B.props((0x23, 2))) + B.publish("", b"", properties=B.props((0x23, 3))), C)
    assert got[0].topic == "t/2" and got[1].id == "mqtt.unknown_topic_alias"


def test_mqtt_v5_inferred_from_connack_with_properties(impl):
    conn = MQTTConnection(implementation=impl)
    assert conn.feed(B.connack(0, False, b"\x00"), S) == [MQTTConnAck(side=S, return_code=0, return_name="success")]
    assert conn.core.level == 5
    got = conn.feed(B.publish("x", b"1", properties=B.props((0x23, 1))), S)
    assert got == [MQTTPublish(side=S, topic="x", topic_alias=1, payload_length=1, payload_preview="1",
                               properties=(("topic_alias", 1),))]


def test_mqtt_wrong_direction_reported_once(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(B.connect(), C)
    got = conn.feed(B.connack(0) * 2, C)
    assert [e for e in got if isinstance(e, Anomaly)] == [Anomaly("mqtt.wrong_direction", C, "CONNACK sent by the client")]


# ------------------------------------------------------------------ credentials
def _all_text(events):
    return repr(events) + json.dumps([to_dict(e) for e in events])


@pytest.mark.parametrize("level", [3, 4, 5])
def test_mqtt_password_never_appears(kernels, impl, level):
    pw = B.PASSWORD
    wire = B.connect(level=level, username="op", password=pw, will=("w", b"bye", 0, False))
    events = MQTTConnection(implementation=impl).feed(wire, C)
    assert events[0].password_present and events[0].password_length == len(pw) and events[0].username == "op"
    text = _all_text(events)
    for needle in (pw.decode(), pw.hex(), repr(pw)[2:-1]):
        assert needle not in text
    core = kernels("mqtt").MQTTCore({}, False)
    _, out = run(core, C, wire)
    assert pw not in repr(out).encode() and all(pw not in r[5] for r in out if r[0] == REC_MSG)
    assert len(out[0][5]) == len(wire)


def test_mqtt_password_blanked_in_malformed_connect(kernels):
    pw = B.PASSWORD
    good = B.connect(username="op", password=pw)
    core = kernels("mqtt").MQTTCore({}, True)
    run(core, C, B.connect())  # confirmed: a malformed CONNECT is then recorded
    # user name length claims more than there is: the password position is unknown
    body = bytearray(good[2:])
    i = body.index(b"op") - 2
    body[i : i + 2] = (200).to_bytes(2, "big")
    bad = good[:2] + bytes(body)
    _, out = run(core, C, bad)
    recs = [r for r in out if r[0] == REC_MSG]
    assert recs and pw not in recs[0][5]
    assert [r[4] for r in out if r[0] == REC_ANOMALY] == ["mqtt.double_connect", "mqtt.malformed"]
    ev = decode(recs[0][4], recs[0][5], recs[0][6], C)
    assert ev.malformed and pw.decode() not in repr(ev)


# ------------------------------------------------------------------ decoding
@pytest.mark.parametrize("raw,level,reason", [
    (B.packet(1, 0, b"\x00\x04MQTT\x04"), 4, "connect flags overruns the packet"),
    (B.packet(2, 0, b"\x00"), 4, "return code overruns the packet"),
    (B.packet(3, 2, b"\x00\x05ab"), 4, "topic overruns the packet"),
    (B.packet(3, 0, B.s("t") + b"\x02\x63\x00"), 5, "PUBLISH: unknown property id 0x63"),
    (B.packet(8, 2, b"\x00\x01"), 4, "SUBSCRIBE without a topic filter"),
    (B.packet(9, 0, b"\x00\x01"), 4, "SUBACK without a return code"),
    (B.packet(12, 0, b"\x00"), 4, "1 bytes after the PINGREQ body"),
    (B.packet(3, 0, B.s("a/#") + b"x"), 4, "wildcard in a topic name"),
    (B.connect(reserved=True), 4, "reserved connect flag set"),
    (B.subscribe(1, [("a", 0x04)]), 4, "reserved subscription option bits set"),
    (b"\x30\x05\x00", 4, "remaining length 5 but 1 bytes"),
])
def test_mqtt_decode_malformed_never_raises(raw, level, reason):
    typ = raw[0] >> 4
    key = (typ, "", 0, 0) if typ == 3 else (typ,)
    ev = decode(key, raw, (level, None), C)
    assert ev.malformed == reason


def test_mqtt_decode_keeps_fields_read_before_the_fault():
    raw = B.packet(8, 2, b"\x00\x07" + B.s("ok/#") + b"\x01" + b"\x00\x09x")
    ev = decode((8,), raw, (4, None), C)
    assert ev == MQTTSubscribe(side=C, packet_id=7, subscriptions=(replace(ev.subscriptions[0]),),
                               malformed="topic filter overruns the packet")
    assert ev.subscriptions[0].filter == "ok/#"


def test_mqtt_describe():
    assert describe((3, "plant/t1")) == ("mqtt.publish", "publish", "topic=plant/t1")
    assert describe((3, "a\x1bb")) == ("mqtt.publish", "publish", "topic=a\\x1bb")
    assert describe((1, 5)) == ("mqtt.connect", "connect", "protocol=5.0")
    assert describe((2, 5)) == ("mqtt.connack", "connect", "code=not_authorized")
    assert describe((2, 0x87)) == ("mqtt.connack", "connect", "code=not_authorized")
    assert describe((8, "a/#", 3)) == ("mqtt.subscribe", "subscribe", "topic=a/# (+2)")
    assert describe((12,)) == ("mqtt.pingreq", "session", "")
    assert describe((14, 0x8E)) == ("mqtt.disconnect", "session", "code=session_taken_over")
    assert describe((99,)) == ("mqtt.unknown", "other", "")
    assert describe((3,))[0] == "mqtt.publish"


def test_mqtt_to_dict_is_json_ready():
    ev = decode((3, "t", 0, 0), B.publish("t", b"\x01", properties=B.props((0x09, b"\xab"))), (5, "t"), C)
    d = to_dict(ev)
    assert d["event"] == "MQTTPublish" and d["properties"] == [["correlation_data", "ab"]]
    json.dumps(d)
    sub = to_dict(MQTTSubscribe(subscriptions=(B_sub := __import__("otwatch.parsers.mqtt.events", fromlist=["x"])
                                               .MQTTSubscription(filter="a", qos=1),)))
    assert sub["subscriptions"] == [{"filter": "a", "qos": 1, "no_local": False, "retain_as_published": False,
                                     "retain_handling": 0}] and B_sub.qos == 1


def test_mqtt_anomaly_ids_are_documented():
    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "protocols" / "mqtt.md").read_text()
    src = (pathlib.Path(__file__).resolve().parents[3] / "ext" / "mqtt.py").read_text()
    import re

    used = set(re.findall(r'"(mqtt\.[a-z_]+)"', src)) | {"mqtt.protocol_violation"}
    assert used <= set(spec.ANOMALIES)
    for aid in spec.ANOMALIES:
        assert f"`{aid}`" in doc, aid


@pytest.mark.parametrize("wire,reason", [
    (lambda: B.packet(1, 0, B.s(b"MQTT") + bytes([4, 0x03]) + (30).to_bytes(2, "big") + B.s(b"c")),
     "CONNECT reserved flag set"),
    (lambda: B.packet(1, 0, B.s(b"MQTT") + bytes([4, 0x1E]) + (30).to_bytes(2, "big") + B.s(b"c") + B.s(b"w")
                      + B.s(b"x")), "CONNECT will QoS 3"),
    (lambda: B.packet(1, 0, B.s(b"MQTT") + bytes([4, 0x22]) + (30).to_bytes(2, "big") + B.s(b"c")),
     "CONNECT will QoS or retain without a will"),
    (lambda: B.packet(1, 0, B.s(b"MQTT") + bytes([4, 0x42]) + (30).to_bytes(2, "big") + B.s(b"c") + B.s(b"pw")),
     "CONNECT password without a user name"),
])
def test_mqtt_connect_flags_a_broker_must_refuse_are_malformed(kernels, wire, reason):
    """MQTT 3.1.1 §3.1.2.3-3.1.2.9: what MQTT fuzzers (MQTTSA) send; the CONNECT is still recorded."""
    core = kernels("mqtt").MQTTCore({}, True)
    core.port_bound = True
    status, out = run(core, C, wire())
    assert status == FEED_OK
    assert [r[5] for r in out if r[0] == REC_ANOMALY] == [reason]
    assert [r for r in out if r[0] == REC_MSG]


@pytest.mark.parametrize("topic,reason", [
    (b"plant/\xff\xfe", "PUBLISH topic is not UTF-8"),
    (b"plant\x00x", "PUBLISH topic contains U+0000"),
    (b"plant/#", "PUBLISH topic contains a wildcard"),
    (b"plant/+/t", "PUBLISH topic contains a wildcard"),
])
def test_mqtt_publish_topic_names_that_are_malformed(kernels, topic, reason):
    core = kernels("mqtt").MQTTCore({}, True)
    run(core, C, B.connect())
    _, out = run(core, C, B.packet(3, 0, B.s(topic) + b"v"))
    assert [r[5] for r in out if r[0] == REC_ANOMALY] == [reason]
    # a valid name with a backslash and control characters is not
    _, out = run(core, C, B.publish("plant\\line\x1b[0m", b"v"))
    assert not [r for r in out if r[0] == REC_ANOMALY]
