"""MQTT 3.1, 3.1.1 and 5.0: the one definition of the wire format.

Read by the kernel (``ext/mqtt.py``), the full decoder (``decode.py``), the docs
(``docs/protocols/mqtt.md``) and the tests.  Section numbers cite OASIS MQTT
Version 3.1.1 (``[3.1.1 §x]``), MQTT Version 5.0 (``[5 §x]``) and the IBM
MQTT V3.1 Protocol Specification (``[3.1 §x]``).

Fixed header, every control packet [3.1.1 §2.2, 5 §2.1.1]::

      7   6   5   4   3   2   1   0
    +---------------+---------------+
    | packet type   | flags         |   byte 1
    +---------------+---------------+
    | remaining length (varint)     |   1..4 bytes, 7 bits each, LSB group first,
    +-------------------------------+   bit 7 = "another byte follows"
    | variable header | payload     |   exactly "remaining length" bytes

    PUBLISH flags:  bit 3 DUP | bits 2-1 QoS (3 is malformed) | bit 0 RETAIN

Strings are a 2-byte big-endian length and UTF-8 text; binary data is a 2-byte
length and bytes; v5 properties are a varint byte count and (id, value) pairs.
"""
from __future__ import annotations

from enum import IntEnum


class PacketType(IntEnum):
    """Control packet type, the high nibble of byte 1 [3.1.1 §2.2.1, 5 §2.1.2]."""

    RESERVED = 0      # forbidden in every version
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15         # v5 only; reserved in 3.1 and 3.1.1


PACKET_NAMES = {int(t): t.name for t in PacketType}

# --- message type codes used as key[0] --------------------------------------
# The key of a complete packet starts with its packet type; a packet over the
# size limit gets MSG_TRUNCATED, one past the 4-bit packet type range.
MSG_CONNECT = int(PacketType.CONNECT)
MSG_CONNACK = int(PacketType.CONNACK)
MSG_PUBLISH = int(PacketType.PUBLISH)
MSG_PUBACK = int(PacketType.PUBACK)
MSG_PUBREC = int(PacketType.PUBREC)
MSG_PUBREL = int(PacketType.PUBREL)
MSG_PUBCOMP = int(PacketType.PUBCOMP)
MSG_SUBSCRIBE = int(PacketType.SUBSCRIBE)
MSG_SUBACK = int(PacketType.SUBACK)
MSG_UNSUBSCRIBE = int(PacketType.UNSUBSCRIBE)
MSG_UNSUBACK = int(PacketType.UNSUBACK)
MSG_PINGREQ = int(PacketType.PINGREQ)
MSG_PINGRESP = int(PacketType.PINGRESP)
MSG_DISCONNECT = int(PacketType.DISCONNECT)
MSG_AUTH = int(PacketType.AUTH)
MSG_TRUNCATED = 16

# Key layouts (what makes "the same message again"), by key[0]:
#   (MSG_CONNECT, protocol_level)
#   (MSG_CONNACK, return_or_reason_code)
#   (MSG_PUBLISH, topic, qos, retain)                 topic: str, alias resolved
#   (MSG_PUBACK|PUBREC|PUBREL|PUBCOMP, reason_code)   0 before v5
#   (MSG_SUBSCRIBE, first_filter, filter_count)
#   (MSG_SUBACK, highest_return_code)                 >= 0x80 means a refusal
#   (MSG_UNSUBSCRIBE, first_filter, filter_count)
#   (MSG_UNSUBACK, highest_reason_code)               0 before v5
#   (MSG_PINGREQ,) (MSG_PINGRESP,)
#   (MSG_DISCONNECT, reason_code) (MSG_AUTH, reason_code)
#   (MSG_TRUNCATED, original_packet_type, packet_size)

ALWAYS_DETAILED = frozenset(
    {
        MSG_CONNECT, MSG_CONNACK, MSG_SUBSCRIBE, MSG_SUBACK, MSG_UNSUBSCRIBE,
        MSG_UNSUBACK, MSG_DISCONNECT, MSG_AUTH, MSG_TRUNCATED,
    }
)
"""Key types reported on every occurrence, not only the first (session and
subscription changes are rare and each one matters)."""

# --- fixed header flags ---------------------------------------------------------
FLAG_DUP = 0x08
FLAG_QOS_MASK = 0x06
FLAG_QOS_SHIFT = 1
FLAG_RETAIN = 0x01
QOS_INVALID = 3   # [3.1.1 §3.3.1.2] "MUST NOT have both QoS bits set to 1"

REQUIRED_FLAGS = {
    int(t): (0x02 if t in (PacketType.PUBREL, PacketType.SUBSCRIBE, PacketType.UNSUBSCRIBE) else 0x00)
    for t in PacketType
    if t not in (PacketType.RESERVED, PacketType.PUBLISH)
}
"""Flags each non-PUBLISH type must carry [3.1.1 §2.2.2 table 2.2, 5 §2.1.3].
3.1 (MQIsdp) used the DUP/QoS/RETAIN bits on every type and left them unchecked;
like Mosquitto we accept any flags there.  Before the protocol level is known we
accept DUP on the QoS-1 types (3.1 clients set it on retransmission)."""

# --- remaining length ----------------------------------------------------------
VARINT_MAX_BYTES = 4                  # [3.1.1 §2.2.3]
VARINT_MAX = 268_435_455              # 0xFF 0xFF 0xFF 0x7F

# --- protocol names and levels ------------------------------------------------
LEVEL_UNKNOWN = 0       # no CONNECT seen (capture started mid-stream)
LEVEL_31 = 3            # "MQIsdp", MQTT 3.1
LEVEL_311 = 4           # "MQTT", MQTT 3.1.1
LEVEL_5 = 5             # "MQTT", MQTT 5.0
LEVEL_BRIDGE_BIT = 0x80  # Mosquitto bridges set the top bit ("try_private")
PROTOCOL_NAMES = {b"MQIsdp": LEVEL_31, b"MQTT": LEVEL_311}
"""Protocol name -> lowest level using it [3.1 §3.1, 3.1.1 §3.1.2.1, 5 §3.1.2.1]."""
PROTOCOL_VERSIONS = {LEVEL_31: "3.1", LEVEL_311: "3.1.1", LEVEL_5: "5.0"}

# --- direction ------------------------------------------------------------------
CLIENT_TYPES = frozenset(
    {MSG_CONNECT, MSG_PUBLISH, MSG_PUBACK, MSG_PUBREC, MSG_PUBREL, MSG_PUBCOMP,
     MSG_SUBSCRIBE, MSG_UNSUBSCRIBE, MSG_PINGREQ, MSG_DISCONNECT, MSG_AUTH}
)
SERVER_TYPES = frozenset(
    {MSG_CONNACK, MSG_PUBLISH, MSG_PUBACK, MSG_PUBREC, MSG_PUBREL, MSG_PUBCOMP,
     MSG_SUBACK, MSG_UNSUBACK, MSG_PINGRESP, MSG_DISCONNECT, MSG_AUTH}
)
"""Packet types each side may send [3.1.1 §2.2.1, 5 §2.1.2] (server DISCONNECT is v5)."""

# --- CONNECT flags [3.1.1 §3.1.2.3, 5 §3.1.2.3] --------------------------------
CONNECT_RESERVED = 0x01
CONNECT_CLEAN = 0x02          # "clean session" (3.x), "clean start" (5)
CONNECT_WILL = 0x04
CONNECT_WILL_QOS_MASK = 0x18
CONNECT_WILL_QOS_SHIFT = 3
CONNECT_WILL_RETAIN = 0x20
CONNECT_PASSWORD = 0x40
CONNECT_USERNAME = 0x80
CONNACK_SESSION_PRESENT = 0x01   # [3.1.1 §3.2.2.2]

# --- SUBSCRIBE options [5 §3.8.3.1]; 3.x uses only the QoS bits ----------------
SUBOPT_QOS_MASK = 0x03
SUBOPT_NO_LOCAL = 0x04
SUBOPT_RETAIN_AS_PUBLISHED = 0x08
SUBOPT_RETAIN_HANDLING_MASK = 0x30
SUBOPT_RETAIN_HANDLING_SHIFT = 4
SUBOPT_RESERVED = 0xC0

# --- CONNACK return codes, 3.1 and 3.1.1 [3.1.1 §3.2.2.3] ----------------------
CONNACK_RETURN_CODES = {
    0: "accepted",
    1: "unacceptable_protocol_version",
    2: "identifier_rejected",
    3: "server_unavailable",
    4: "bad_user_name_or_password",
    5: "not_authorized",
}

SUBACK_FAILURE = 0x80   # [3.1.1 §3.9.3]

# --- reason codes, 5.0 [5 §2.4 table 2-6] ------------------------------------------
REASON_CODES = {
    0x00: "success",
    0x01: "granted_qos_1",
    0x02: "granted_qos_2",
    0x04: "disconnect_with_will_message",
    0x10: "no_matching_subscribers",
    0x11: "no_subscription_existed",
    0x18: "continue_authentication",
    0x19: "re_authenticate",
    0x80: "unspecified_error",
    0x81: "malformed_packet",
    0x82: "protocol_error",
    0x83: "implementation_specific_error",
    0x84: "unsupported_protocol_version",
    0x85: "client_identifier_not_valid",
    0x86: "bad_user_name_or_password",
    0x87: "not_authorized",
    0x88: "server_unavailable",
    0x89: "server_busy",
    0x8A: "banned",
    0x8B: "server_shutting_down",
    0x8C: "bad_authentication_method",
    0x8D: "keep_alive_timeout",
    0x8E: "session_taken_over",
    0x8F: "topic_filter_invalid",
    0x90: "topic_name_invalid",
    0x91: "packet_identifier_in_use",
    0x92: "packet_identifier_not_found",
    0x93: "receive_maximum_exceeded",
    0x94: "topic_alias_invalid",
    0x95: "packet_too_large",
    0x96: "message_rate_too_high",
    0x97: "quota_exceeded",
    0x98: "administrative_action",
    0x99: "payload_format_invalid",
    0x9A: "retain_not_supported",
    0x9B: "qos_not_supported",
    0x9C: "use_another_server",
    0x9D: "server_moved",
    0x9E: "shared_subscriptions_not_supported",
    0x9F: "connection_rate_exceeded",
    0xA0: "maximum_connect_time",
    0xA1: "subscription_identifiers_not_supported",
    0xA2: "wildcard_subscriptions_not_supported",
}
# 0x00 is named after the packet [5 §2.4]: "Normal disconnection", "Granted QoS 0".
REASON_ZERO_NAMES = {
    MSG_DISCONNECT: "normal_disconnection",
    MSG_SUBACK: "granted_qos_0",
}
SUBACK_V3_CODES = {0: "granted_qos_0", 1: "granted_qos_1", 2: "granted_qos_2", 0x80: "failure"}


def reason_name(packet_type: int, code: int, level: int) -> str:
    """Name of a return/reason code as carried by *packet_type* at protocol *level*.

    Unknown codes are named ``unknown_0xNN`` (the number is always kept beside the name)."""
    if level != LEVEL_5:
        if packet_type == MSG_CONNACK:
            name = CONNACK_RETURN_CODES.get(code)
        elif packet_type == MSG_SUBACK:
            name = SUBACK_V3_CODES.get(code)
        else:
            name = "success" if code == 0 else None
    elif code == 0:
        name = REASON_ZERO_NAMES.get(packet_type, "success")
    else:
        name = REASON_CODES.get(code)
    return name if name is not None else "unknown_0x%02x" % code


# --- properties, 5.0 [5 §2.2.2.2 table 2-4] -------------------------------------
class PropType(IntEnum):
    """Wire type of a property value [5 §1.5]."""

    BYTE = 1
    TWO_BYTE_INT = 2
    FOUR_BYTE_INT = 3
    VARINT = 4
    UTF8 = 5
    BINARY = 6
    UTF8_PAIR = 7


PROP_TOPIC_ALIAS = 0x23
PROP_USER_PROPERTY = 0x26
PROP_AUTHENTICATION_DATA = 0x16

PROPERTIES = {
    0x01: ("payload_format_indicator", PropType.BYTE),
    0x02: ("message_expiry_interval", PropType.FOUR_BYTE_INT),
    0x03: ("content_type", PropType.UTF8),
    0x08: ("response_topic", PropType.UTF8),
    0x09: ("correlation_data", PropType.BINARY),
    0x0B: ("subscription_identifier", PropType.VARINT),
    0x11: ("session_expiry_interval", PropType.FOUR_BYTE_INT),
    0x12: ("assigned_client_identifier", PropType.UTF8),
    0x13: ("server_keep_alive", PropType.TWO_BYTE_INT),
    0x15: ("authentication_method", PropType.UTF8),
    0x16: ("authentication_data", PropType.BINARY),
    0x17: ("request_problem_information", PropType.BYTE),
    0x18: ("will_delay_interval", PropType.FOUR_BYTE_INT),
    0x19: ("request_response_information", PropType.BYTE),
    0x1A: ("response_information", PropType.UTF8),
    0x1C: ("server_reference", PropType.UTF8),
    0x1F: ("reason_string", PropType.UTF8),
    0x21: ("receive_maximum", PropType.TWO_BYTE_INT),
    0x22: ("topic_alias_maximum", PropType.TWO_BYTE_INT),
    0x23: ("topic_alias", PropType.TWO_BYTE_INT),
    0x24: ("maximum_qos", PropType.BYTE),
    0x25: ("retain_available", PropType.BYTE),
    0x26: ("user_property", PropType.UTF8_PAIR),
    0x27: ("maximum_packet_size", PropType.FOUR_BYTE_INT),
    0x28: ("wildcard_subscription_available", PropType.BYTE),
    0x29: ("subscription_identifier_available", PropType.BYTE),
    0x2A: ("shared_subscription_available", PropType.BYTE),
}
"""Property id -> (name, value type).  An unknown id makes the rest of the
property block unreadable (its length is unknown): the packet is malformed."""

PROP_TYPE_TABLE = tuple(int(PROPERTIES[i][1]) if i in PROPERTIES else 0 for i in range(256))
"""Property id -> PropType value, 0 for unknown: the kernel's lookup table."""

# --- describe(): stable kind ids and operation classes ----------------------------
KIND_NAMES = {int(t): "mqtt." + t.name.lower() for t in PacketType if t != PacketType.RESERVED}
KIND_NAMES[MSG_TRUNCATED] = "mqtt.truncated"

OPS = {
    MSG_CONNECT: "connect", MSG_CONNACK: "connect", MSG_AUTH: "connect",
    MSG_PUBLISH: "publish", MSG_PUBACK: "publish", MSG_PUBREC: "publish",
    MSG_PUBREL: "publish", MSG_PUBCOMP: "publish",
    MSG_SUBSCRIBE: "subscribe", MSG_SUBACK: "subscribe",
    MSG_UNSUBSCRIBE: "subscribe", MSG_UNSUBACK: "subscribe",
    MSG_PINGREQ: "session", MSG_PINGRESP: "session", MSG_DISCONNECT: "session",
}

# --- anomaly ids (stable, never renamed) -------------------------------------------
KEY_OVERFLOW = -2
"""Second field of the overflow key ``(packet type, -2)``: the bucket of a link direction whose
keys reached ``limits.link_keys_max`` (docs/protocols/mqtt.md)."""

ANOMALIES = {
    "mqtt.key_overflow": "a link direction reached limits.link_keys_max distinct keys; new ones are counted in its overflow key",
    "mqtt.missing_connect": "the first client packet is not CONNECT (normal once when a capture starts mid-session)",
    "mqtt.double_connect": "a second CONNECT on one connection [3.1.1 §3.1.0-2]",
    "mqtt.wrong_direction": "a packet type the sending side may not send (reported once per side)",
    "mqtt.unknown_protocol_level": "CONNECT names MQTT/MQIsdp with a level other than 3, 4 or 5",
    "mqtt.malformed": "a packet whose body does not parse; framing is kept",
    "mqtt.invalid_header": "invalid flags, reserved type or bad remaining length on a confirmed connection; "
    "the direction is ignored until it resynchronises",
    "mqtt.unknown_topic_alias": "v5 PUBLISH with an empty topic and an alias never set in that direction",
    "mqtt.invalid_topic_alias": "v5 topic alias 0 [5 §3.3.2.3.4]",
    "mqtt.topic_alias_limit": "more topic aliases than limits.mqtt_max_aliases in one direction",
    "mqtt.lost_packet": "a stream gap fell inside a packet: the packet is lost, framing is kept",
    "mqtt.desynchronised": "a stream gap at or across a packet boundary: the direction is ignored until it resynchronises",
    "mqtt.resynchronised": "a segment after a desynchronisation parsed as whole valid packets; decoding resumes",
    "mqtt.truncated_at_eof": "the stream ended inside a packet",
    "mqtt.protocol_violation": "bytes that are not MQTT before any valid packet (MQTTConnection only; the "
    "kernel returns FEED_VIOLATION and the engine detaches it)",
}
