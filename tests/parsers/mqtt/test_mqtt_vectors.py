"""Vector tables: every MQTT 3.1 / 3.1.1 / 5.0 control packet, fed whole, byte by
byte and split at every point (helpers.assert_decodes), through both kernels."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from otwatch.parsers.mqtt import MQTTConnection
from otwatch.parsers.mqtt.events import (
    Anomaly,
    MQTTAuth,
    MQTTConnAck,
    MQTTConnect,
    MQTTDisconnect,
    MQTTPingReq,
    MQTTPingResp,
    MQTTPubAck,
    MQTTPubComp,
    MQTTPublish,
    MQTTPubRec,
    MQTTPubRel,
    MQTTSubAck,
    MQTTSubscribe,
    MQTTSubscription,
    MQTTUnsubAck,
    MQTTUnsubscribe,
)

_b = importlib.util.spec_from_file_location("otwatch_test_mqtt_build", pathlib.Path(__file__).with_name("mqtt_build.py"))
B = importlib.util.module_from_spec(_b)
_b.loader.exec_module(B)
assert_decodes = B.helpers.assert_decodes

C, S = 0, 1
CONNECT_31 = B.connect(level=3, client_id="old")
CONNECT_311 = B.connect(level=4)
CONNECT_5 = B.connect(level=5)
PRIME = {3: [(C, CONNECT_31)], 4: [(C, CONNECT_311)], 5: [(C, CONNECT_5)]}

V5_PUBLISH_PROPS = B.props(
    (0x01, 1), (0x02, 3600), (0x03, "application/json"), (0x08, "reply/to"), (0x09, b"\x01\x02"),
    (0x0B, 300), (0x26, ("site", "plant-1")), (0x23, 7),
)

# (id, level, side, wire, expected events)
VECTORS = [
    # ---------------------------------------------------------------- CONNECT
    ("connect_311_will_user_password", None, C,
     B.connect(level=4, client_id="plc-17", keep_alive=30, will=("status/plc-17", b"offline", 1, True),
               username="operator", password=B.PASSWORD),
     [MQTTConnect(side=C, protocol_name="MQTT", protocol_level=4, version="3.1.1", clean_start=True,
                  keep_alive=30, client_id="plc-17", will=True, will_topic="status/plc-17", will_qos=1,
                  will_retain=True, will_payload_length=7, username="operator", password_present=True,
                  password_length=len(B.PASSWORD))]),
    ("connect_31_mqisdp", None, C, CONNECT_31,
     [MQTTConnect(side=C, protocol_name="MQIsdp", protocol_level=3, version="3.1", clean_start=True,
                  keep_alive=60, client_id="old")]),
    ("connect_311_anonymous_bridge", None, C,
     B.connect(level=0x84, client_id="bridge-a", clean=False),
     [MQTTConnect(side=C, protocol_name="MQTT", protocol_level=4, version="3.1.1", bridge=True,
                  keep_alive=60, client_id="bridge-a")]),
    ("connect_5_properties_will_props", None, C,
     B.connect(level=5, client_id="", username="svc", password=B.PASSWORD,
               will=("w/t", b"", 0, False, B.props((0x18, 10), (0x26, ("k", "v")))),
               properties=B.props((0x11, 120), (0x21, 20), (0x22, 10), (0x26, ("region", "eu")),
                                  (0x15, "SCRAM-SHA-256"), (0x16, b"client-first"))),
     [MQTTConnect(side=C, protocol_name="MQTT", protocol_level=5, version="5.0", clean_start=True,
                  keep_alive=60, client_id="", will=True, will_topic="w/t", will_payload_length=0,
                  will_properties=(("will_delay_interval", 10),), will_user_properties=(("k", "v"),),
                  username="svc", password_present=True, password_length=len(B.PASSWORD),
                  properties=(("session_expiry_interval", 120), ("receive_maximum", 20),
                              ("topic_alias_maximum", 10), ("authentication_method", "SCRAM-SHA-256"),
                              ("authentication_data_length", 12)),
                  user_properties=(("region", "eu"),))]),
    # ---------------------------------------------------------------- CONNACK
    ("connack_311_accepted_session", 4, S, B.connack(0, True),
     [MQTTConnAck(side=S, session_present=True, return_code=0, return_name="accepted")]),
    ("connack_311_bad_credentials", 4, S, B.connack(4),
     [MQTTConnAck(side=S, return_code=4, return_name="bad_user_name_or_password")]),
    ("connack_31_not_authorized", 3, S, B.connack(5),
     [MQTTConnAck(side=S, return_code=5, return_name="not_authorized")]),
    ("connack_5_props", 5, S,
     B.connack(0x86, False, B.props((0x12, "auto-1"), (0x22, 16), (0x1F, "denied"), (0x26, ("a", "b")))),
     [MQTTConnAck(side=S, return_code=0x86, return_name="bad_user_name_or_password",
                  properties=(("assigned_client_identifier", "auto-1"), ("topic_alias_maximum", 16),
                              ("reason_string", "denied")), user_properties=(("a", "b"),))]),
    ("connack_5_success", 5, S, B.connack(0, False, b"\x00"),
     [MQTTConnAck(side=S, return_code=0, return_name="success")]),
    # ---------------------------------------------------------------- PUBLISH
    ("publish_311_qos0", 4, C, B.publish("plant/line1/temp", b"21.5"),
     [MQTTPublish(side=C, topic="plant/line1/temp", payload_length=4, payload_preview="21.5")]),
    ("publish_311_qos1_retain_server", 4, S, B.publish("cmd/valve", b"\x00\x01open\x1b[2J", qos=1, retain=True, pid=10),
     [MQTTPublish(side=S, topic="cmd/valve", qos=1, retain=True, packet_id=10, payload_length=10,
                  payload_preview="\\x00\\x01open\\x1b[2J")]),
    ("publish_311_qos2_dup", 4, C, B.publish("a", b"x", qos=2, dup=True, pid=65535),
     [MQTTPublish(side=C, topic="a", qos=2, dup=True, packet_id=65535, payload_length=1, payload_preview="x")]),
    ("publish_311_long_payload_preview", 4, C, B.publish("big", b"A" * 100),
     [MQTTPublish(side=C, topic="big", payload_length=100, payload_preview="A" * 64)]),
    ("publish_31", 3, C, B.publish("spBv1.0/g1/NDATA/edge1", b"\x08\x01"),
     [MQTTPublish(side=C, topic="spBv1.0/g1/NDATA/edge1", payload_length=2, payload_preview="\\x08\\x01")]),
    ("publish_5_props", 5, C, B.publish("t/1", b"{}", qos=1, pid=2, properties=V5_PUBLISH_PROPS),
     [MQTTPublish(side=C, topic="t/1", topic_alias=7, qos=1, packet_id=2, payload_length=2, payload_preview="{}",
                  properties=(("payload_format_indicator", 1), ("message_expiry_interval", 3600),
                              ("content_type", "application/json"), ("response_topic", "reply/to"),
                              ("correlation_data", b"\x01\x02"), ("subscription_identifier", 300),
                              ("topic_alias", 7)),
                  user_properties=(("site", "plant-1"),))]),
    ("publish_5_alias_resolution", 5, C,
     B.publish("plant/a", b"1", properties=B.props((0x23, 3))) + B.publish("", b"2", properties=B.props((0x23, 3))),
     [MQTTPublish(side=C, topic="plant/a", topic_alias=3, payload_length=1, payload_preview="1",
                  properties=(("topic_alias", 3),)),
      MQTTPublish(side=C, topic="plant/a", topic_alias=3, payload_length=1, payload_preview="2",
                  properties=(("topic_alias", 3),))]),
    ("publish_5_no_props", 5, S, B.publish("x/y", b"", properties=b"\x00"),
     [MQTTPublish(side=S, topic="x/y")]),
    # --------------------------------------------------- PUBACK .. PUBCOMP
    ("puback_311", 4, C, B.ack(4, 10), [MQTTPubAck(side=C, packet_id=10, reason_name="success")]),
    ("pubrec_311", 4, S, B.ack(5, 11), [MQTTPubRec(side=S, packet_id=11, reason_name="success")]),
    ("pubrel_311", 4, C, B.ack(6, 11), [MQTTPubRel(side=C, packet_id=11, reason_name="success")]),
    ("pubcomp_311", 4, S, B.ack(7, 11), [MQTTPubComp(side=S, packet_id=11, reason_name="success")]),
    ("puback_5_short", 5, S, B.ack(4, 1), [MQTTPubAck(side=S, packet_id=1, reason_name="success")]),
    ("puback_5_no_subscribers", 5, S, B.ack(4, 2, 0x10),
     [MQTTPubAck(side=S, packet_id=2, reason_code=0x10, reason_name="no_matching_subscribers")]),
    ("pubrec_5_props", 5, C, B.ack(5, 3, 0x97, B.props((0x1F, "quota"), (0x26, ("x", "y")))),
     [MQTTPubRec(side=C, packet_id=3, reason_code=0x97, reason_name="quota_exceeded",
                 properties=(("reason_string", "quota"),), user_properties=(("x", "y"),))]),
    ("pubrel_5_not_found", 5, S, B.ack(6, 4, 0x92),
     [MQTTPubRel(side=S, packet_id=4, reason_code=0x92, reason_name="packet_identifier_not_found")]),
    ("pubcomp_5", 5, C, B.ack(7, 4, 0, b"\x00"), [MQTTPubComp(side=C, packet_id=4, reason_name="success")]),
    # ------------------------------------------------------------ SUBSCRIBE
    ("subscribe_311", 4, C, B.subscribe(5, [("plant/#", 1), ("$SYS/broker/version", 0)]),
     [MQTTSubscribe(side=C, packet_id=5, subscriptions=(MQTTSubscription(filter="plant/#", qos=1),
                                                        MQTTSubscription(filter="$SYS/broker/version")))]),
    ("subscribe_31_dup_flag", 3, C, B.subscribe(6, [("a/+", 2)], flags=0x0A),
     [MQTTSubscribe(side=C, packet_id=6, subscriptions=(MQTTSubscription(filter="a/+", qos=2),))]),
    ("subscribe_5_options", 5, C,
     B.subscribe(7, [("cmd/#", 0x2D), ("$share/g/t", 0x01)], B.props((0x0B, 42), (0x26, ("u", "1")))),
     [MQTTSubscribe(side=C, packet_id=7,
                    subscriptions=(MQTTSubscription(filter="cmd/#", qos=1, no_local=True, retain_as_published=True,
                                                    retain_handling=2),
                                   MQTTSubscription(filter="$share/g/t", qos=1)),
                    properties=(("subscription_identifier", 42),), user_properties=(("u", "1"),))]),
    ("suback_311", 4, S, B.suback(5, [1, 0, 0x80]),
     [MQTTSubAck(side=S, packet_id=5, reason_codes=(1, 0, 0x80),
                 reason_names=("granted_qos_1", "granted_qos_0", "failure"))]),
    ("suback_5", 5, S, B.suback(7, [0, 0x87], B.props((0x1F, "acl"))),
     [MQTTSubAck(side=S, packet_id=7, reason_codes=(0, 0x87), reason_names=("granted_qos_0", "not_authorized"),
                 properties=(("reason_string", "acl"),))]),
    ("unsubscribe_311", 4, C, B.unsubscribe(8, ["plant/#", "x"]),
     [MQTTUnsubscribe(side=C, packet_id=8, filters=("plant/#", "x"))]),
    ("unsubscribe_5", 5, C, B.unsubscribe(9, ["a"], B.props((0x26, ("k", "v")))),
     [MQTTUnsubscribe(side=C, packet_id=9, filters=("a",), user_properties=(("k", "v"),))]),
    ("unsuback_311", 4, S, B.unsuback(8), [MQTTUnsubAck(side=S, packet_id=8)]),
    ("unsuback_5", 5, S, B.unsuback(9, [0, 0x11], b"\x00"),
     [MQTTUnsubAck(side=S, packet_id=9, reason_codes=(0, 0x11), reason_names=("success", "no_subscription_existed"))]),
    # --------------------------------------------------------- PING, DISCONNECT, AUTH
    ("pingreq", 4, C, B.packet(12, 0, b""), [MQTTPingReq(side=C)]),
    ("pingresp", 4, S, B.packet(13, 0, b""), [MQTTPingResp(side=S)]),
    ("pingreq_31", 3, C, B.packet(12, 0, b""), [MQTTPingReq(side=C)]),
    ("disconnect_311", 4, C, B.packet(14, 0, b""), [MQTTDisconnect(side=C, reason_name="success")]),
    ("disconnect_5_empty", 5, C, B.packet(14, 0, b""), [MQTTDisconnect(side=C, reason_name="normal_disconnection")]),
    ("disconnect_5_will", 5, C, B.reason_packet(14, 0x04, B.props((0x11, 0))),
     [MQTTDisconnect(side=C, reason_code=4, reason_name="disconnect_with_will_message",
                     properties=(("session_expiry_interval", 0),))]),
    ("disconnect_5_server_takeover", 5, S, B.reason_packet(14, 0x8E),
     [MQTTDisconnect(side=S, reason_code=0x8E, reason_name="session_taken_over")]),
    ("auth_5_continue", 5, C, B.reason_packet(15, 0x18, B.props((0x15, "SCRAM-SHA-1"), (0x16, b"nonce"))),
     [MQTTAuth(side=C, reason_code=0x18, reason_name="continue_authentication",
               properties=(("authentication_method", "SCRAM-SHA-1"), ("authentication_data_length", 5)))]),
    ("auth_5_success_server", 5, S, B.reason_packet(15, 0x00, b"\x00"),
     [MQTTAuth(side=S, reason_code=0, reason_name="success")]),
    ("auth_5_empty", 5, S, B.packet(15, 0, b""), [MQTTAuth(side=S, reason_code=0, reason_name="success")]),
]


@pytest.mark.parametrize("vid,level,side,wire,expected", VECTORS, ids=[v[0] for v in VECTORS])
def test_mqtt_vector(impl, vid, level, side, wire, expected):
    # CONNECT vectors are primed with an empty server feed: three CONNECTs back
    # to back are two double_connect anomalies, not three equal events.
    prime = PRIME[level] if level else [(S, b"")]
    assert_decodes(lambda: MQTTConnection(implementation=impl), side, wire, expected, prime=prime)


BACK_TO_BACK = [v for v in VECTORS if v[1] and v[2] == S and v[0] != "connack_5_props"]


@pytest.mark.parametrize("vid,level,side,wire,expected", BACK_TO_BACK, ids=[v[0] for v in BACK_TO_BACK])
def test_mqtt_vector_three_back_to_back(impl, vid, level, side, wire, expected):
    conn = MQTTConnection(implementation=impl)
    conn.feed(PRIME[level][0][1], C)
    assert conn.feed(wire * 3, side) == expected * 3


def test_mqtt_vectors_cover_every_packet_type_and_version():
    from otwatch.parsers.mqtt.events import EVENT_TYPES, MQTTTruncated

    seen = {type(e) for v in VECTORS for e in v[4]}
    assert seen == set(EVENT_TYPES) - {MQTTTruncated}
    assert {v[1] for v in VECTORS} >= {None, 3, 4, 5}


def test_mqtt_missing_connect_reported_once(impl):
    conn = MQTTConnection(implementation=impl)
    wire = B.publish("a", b"1") * 2
    assert conn.feed(wire, C) == [
        Anomaly("mqtt.missing_connect", C, "first client packet is PUBLISH"),
        MQTTPublish(side=C, topic="a", payload_length=1, payload_preview="1"),
        MQTTPublish(side=C, topic="a", payload_length=1, payload_preview="1"),
    ]
    assert conn.feed(B.connect(), C)[0] == MQTTConnect(
        side=C, protocol_name="MQTT", protocol_level=4, version="3.1.1", clean_start=True, keep_alive=60,
        client_id="client-1")


def test_mqtt_double_connect(impl):
    conn = MQTTConnection(implementation=impl)
    conn.feed(CONNECT_311, C)
    got = conn.feed(CONNECT_311, C)
    assert got[0] == Anomaly("mqtt.double_connect", C, "CONNECT number 2")
    assert isinstance(got[1], MQTTConnect)
