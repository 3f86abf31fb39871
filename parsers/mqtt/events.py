"""Typed, frozen MQTT events: one class per control packet, plus anomalies.

Every event carries ``side`` (0 client, 1 server) and ``malformed``: ``None``,
or the reason the body did not parse (the fields parsed before that point are
kept).  v5 properties are ``properties``: ``(name, value)`` pairs in wire order
(names from ``spec.PROPERTIES``; binary values as bytes, except authentication
data, kept only as its length), and ``user_properties``: ``(key, value)`` pairs.
Versions before 5.0 have neither (empty tuples).

Text fields are the wire's UTF-8 with invalid bytes shown as ``\\xNN`` (the
kernel's key text), not cut and not escaped: sinks escape for display
(``parsers.common.escape``).  ``payload_preview`` is already escaped.

Credentials: ``MQTTConnect`` records that a password was sent and its length,
never the password itself.
"""
from __future__ import annotations

from dataclasses import dataclass

Properties = tuple  # tuple[tuple[str, int | str | bytes], ...]
UserProperties = tuple  # tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class MQTTEvent:
    """Base of every MQTT event."""

    side: int = 0
    """0: sent by the client (TCP initiator), 1: by the server."""
    malformed: str | None = None
    """Why the body did not parse, or None."""


@dataclass(frozen=True, kw_only=True)
class MQTTConnect(MQTTEvent):
    """CONNECT [3.1.1 §3.1, 5 §3.1]."""

    protocol_name: str = ""
    """"MQTT" (3.1.1, 5.0) or "MQIsdp" (3.1)."""
    protocol_level: int = 0
    """3, 4 or 5, with the bridge bit (0x80) removed."""
    version: str = ""
    """"3.1", "3.1.1", "5.0", or "unknown"."""
    bridge: bool = False
    """The level had the Mosquitto bridge bit 0x80 set."""
    clean_start: bool = False
    """Clean session (3.x) / clean start (5.0) flag."""
    keep_alive: int = 0
    """Seconds."""
    client_id: str = ""
    """Client identifier."""
    will: bool = False
    """Will flag."""
    will_topic: str | None = None
    """Will topic; None without a will."""
    will_qos: int = 0
    will_retain: bool = False
    will_payload_length: int | None = None
    """Length of the will message; its content is not kept."""
    will_properties: Properties = ()
    """v5 will properties."""
    will_user_properties: UserProperties = ()
    """v5 will user properties."""
    username: str | None = None
    """User name; None when the user name flag is clear."""
    password_present: bool = False
    """The password flag was set.  The password itself is never kept."""
    password_length: int | None = None
    """Length of the password field, None when absent or unreadable."""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTConnAck(MQTTEvent):
    """CONNACK [3.1.1 §3.2, 5 §3.2]."""

    session_present: bool = False
    return_code: int = 0
    """3.x return code or 5.0 reason code."""
    return_name: str = ""
    """Its name (spec.CONNACK_RETURN_CODES / spec.REASON_CODES)."""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTPublish(MQTTEvent):
    """PUBLISH [3.1.1 §3.3, 5 §3.3]."""

    topic: str = ""
    """Topic name; in 5.0 resolved from the topic alias when the packet's is empty."""
    topic_alias: int | None = None
    """v5 topic alias property, if present."""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    """Packet identifier (QoS 1 and 2 only)."""
    payload_length: int = 0
    payload_preview: str = ""
    """The first limits.payload_preview payload bytes, escaped (parsers.common.escape)."""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class _MQTTPubResponse(MQTTEvent):
    packet_id: int = 0
    reason_code: int = 0
    """v5 reason code; 0 (success) before 5.0 or when omitted."""
    reason_name: str = ""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTPubAck(_MQTTPubResponse):
    """PUBACK: QoS 1 acknowledgement [3.1.1 §3.4, 5 §3.4]."""


@dataclass(frozen=True, kw_only=True)
class MQTTPubRec(_MQTTPubResponse):
    """PUBREC: QoS 2, part 1 [3.1.1 §3.5, 5 §3.5]."""


@dataclass(frozen=True, kw_only=True)
class MQTTPubRel(_MQTTPubResponse):
    """PUBREL: QoS 2, part 2 [3.1.1 §3.6, 5 §3.6]."""


@dataclass(frozen=True, kw_only=True)
class MQTTPubComp(_MQTTPubResponse):
    """PUBCOMP: QoS 2, part 3 [3.1.1 §3.7, 5 §3.7]."""


@dataclass(frozen=True, kw_only=True)
class MQTTSubscription:
    """One topic filter of a SUBSCRIBE with its options [5 §3.8.3.1]."""

    filter: str = ""
    """Topic filter."""
    qos: int = 0
    """Maximum QoS requested."""
    no_local: bool = False
    """v5: do not send my own publications back."""
    retain_as_published: bool = False
    """v5: keep the RETAIN flag as published."""
    retain_handling: int = 0
    """v5: 0 send retained on subscribe, 1 only for new subscriptions, 2 never."""


@dataclass(frozen=True, kw_only=True)
class MQTTSubscribe(MQTTEvent):
    """SUBSCRIBE [3.1.1 §3.8, 5 §3.8]."""

    packet_id: int = 0
    subscriptions: tuple = ()
    """tuple[MQTTSubscription, ...] in wire order."""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTSubAck(MQTTEvent):
    """SUBACK [3.1.1 §3.9, 5 §3.9]."""

    packet_id: int = 0
    reason_codes: tuple = ()
    """Granted QoS (0-2) or failure (>= 0x80), one per filter."""
    reason_names: tuple = ()
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTUnsubscribe(MQTTEvent):
    """UNSUBSCRIBE [3.1.1 §3.10, 5 §3.10]."""

    packet_id: int = 0
    filters: tuple = ()
    """tuple[str, ...]: topic filters."""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTUnsubAck(MQTTEvent):
    """UNSUBACK [3.1.1 §3.11, 5 §3.11]."""

    packet_id: int = 0
    reason_codes: tuple = ()
    """v5: one per filter; empty before 5.0."""
    reason_names: tuple = ()
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTPingReq(MQTTEvent):
    """PINGREQ [3.1.1 §3.12]."""


@dataclass(frozen=True, kw_only=True)
class MQTTPingResp(MQTTEvent):
    """PINGRESP [3.1.1 §3.13]."""


@dataclass(frozen=True, kw_only=True)
class MQTTDisconnect(MQTTEvent):
    """DISCONNECT [3.1.1 §3.14, 5 §3.14] (from either side in 5.0)."""

    reason_code: int = 0
    reason_name: str = ""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTAuth(MQTTEvent):
    """AUTH, 5.0 only [5 §3.15]: enhanced authentication exchange."""

    reason_code: int = 0
    reason_name: str = ""
    properties: Properties = ()
    user_properties: UserProperties = ()


@dataclass(frozen=True, kw_only=True)
class MQTTTruncated(MQTTEvent):
    """A packet over limits.mqtt_max_message: reported, not decoded (Suricata TRUNCATED)."""

    original_type: int = 0
    """Its packet type."""
    original_name: str = ""
    """Its packet type name (spec.PACKET_NAMES)."""
    size: int = 0
    """Whole packet size in bytes (fixed header + remaining length)."""
    skipped: int = 0
    """Bytes not decoded (the body)."""


@dataclass(frozen=True)
class Anomaly:
    """A protocol anomaly of one connection (ids: spec.ANOMALIES)."""

    id: str
    """Stable dotted id, e.g. "mqtt.double_connect"."""
    side: int
    """Side whose bytes raised it."""
    detail: str
    """Human-readable detail (escaped where it quotes the wire)."""


EVENT_TYPES = (
    MQTTConnect, MQTTConnAck, MQTTPublish, MQTTPubAck, MQTTPubRec, MQTTPubRel, MQTTPubComp,
    MQTTSubscribe, MQTTSubAck, MQTTUnsubscribe, MQTTUnsubAck, MQTTPingReq, MQTTPingResp,
    MQTTDisconnect, MQTTAuth, MQTTTruncated,
)
