"""Full MQTT decoder: one complete control packet -> one frozen event.

``decode(key, raw, ctx, side)`` takes a kernel record's key, raw bytes (the whole
packet, fixed header included) and ctx ``(protocol_level, topic)`` and never
raises: a body that does not parse gives the event with the fields read so far
and ``malformed`` set.  Layouts are those of ``spec``; the level decides the v5
parts (properties, reason codes).  ``describe(key)`` names a key for aggregates,
``to_dict(event)`` makes an event JSON-ready.

Passwords are never read: only the password flag and the field's length are
kept (the kernel has already overwritten the bytes).
"""
from __future__ import annotations

import dataclasses

from ..common import escape
from ..limits import DEFAULT_LIMITS, Limits
from . import spec
from .events import (
    MQTTAuth,
    MQTTConnAck,
    MQTTConnect,
    MQTTDisconnect,
    MQTTEvent,
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
    MQTTTruncated,
    MQTTUnsubAck,
    MQTTUnsubscribe,
)

_PUB_RESPONSES = {
    spec.MSG_PUBACK: MQTTPubAck,
    spec.MSG_PUBREC: MQTTPubRec,
    spec.MSG_PUBREL: MQTTPubRel,
    spec.MSG_PUBCOMP: MQTTPubComp,
}


class _Malformed(Exception):
    pass


class _Reader:
    """Bounds-checked reads over raw[pos:end]; a short read raises _Malformed."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise _Malformed(f"{what} overruns the packet")
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def u8(self, what: str) -> int:
        pos = self.pos
        if pos >= self.end:
            raise _Malformed(f"{what} overruns the packet")
        self.pos = pos + 1
        return self.buf[pos]

    def u16(self, what: str) -> int:
        pos = self.pos
        if pos + 2 > self.end:
            raise _Malformed(f"{what} overruns the packet")
        self.pos = pos + 2
        buf = self.buf
        return (buf[pos] << 8) | buf[pos + 1]

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def varint(self, what: str) -> int:
        value = 0
        for i in range(spec.VARINT_MAX_BYTES):
            b = self.u8(what)
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return value
        raise _Malformed(f"{what}: variable byte integer over {spec.VARINT_MAX_BYTES} bytes")

    def binary(self, what: str) -> bytes:
        return self.take(self.u16(what), what)

    def string(self, what: str) -> str:
        return text(self.binary(what))

    def skip_binary(self, what: str) -> int:
        n = self.u16(what)
        self.take(n, what)
        return n

    def properties(self, what: str) -> tuple[tuple, tuple]:
        """A v5 property block: (properties, user_properties)."""
        n = self.varint(f"{what} property length")
        if not n:
            return (), ()
        end = self.pos + n
        if end > self.end:
            raise _Malformed(f"{what} properties overrun the packet")
        buf, pos = self.buf, self.pos
        self.pos = end
        props, users = [], []
        kinds = _PROPERTY_KINDS
        # Inlined reads (this runs for every v5 PUBLISH and acknowledgement): the same checks, the same
        # messages as the _Reader methods ("<field> overruns the packet").
        while pos < end:
            pid = buf[pos]
            pos += 1
            entry = kinds.get(pid)
            if entry is None:
                raise _Malformed(f"{what}: unknown property id 0x{pid:02x}")
            name, kind = entry
            if kind == _P_UTF8 or kind == _P_BINARY or kind == _P_AUTH or kind == _P_PAIR:
                if pos + 2 > end:
                    raise _Malformed(f"{name} overruns the packet")
                ln = (buf[pos] << 8) | buf[pos + 1]
                pos += 2
                if ln > end - pos:
                    raise _Malformed(f"{name} overruns the packet")
                b = buf[pos : pos + ln]
                pos += ln
                if kind == _P_UTF8:
                    props.append((name, text(b)))
                elif kind == _P_BINARY:
                    props.append((name, b))
                elif kind == _P_AUTH:  # may be a credential: keep its length only
                    props.append(("authentication_data_length", ln))
                else:
                    if pos + 2 > end:
                        raise _Malformed(f"{name} overruns the packet")
                    ln = (buf[pos] << 8) | buf[pos + 1]
                    pos += 2
                    if ln > end - pos:
                        raise _Malformed(f"{name} overruns the packet")
                    users.append((text(b), text(buf[pos : pos + ln])))
                    pos += ln
            elif kind == _P_BYTE:
                if pos >= end:
                    raise _Malformed(f"{name} overruns the packet")
                props.append((name, buf[pos]))
                pos += 1
            elif kind == _P_U16:
                if pos + 2 > end:
                    raise _Malformed(f"{name} overruns the packet")
                props.append((name, (buf[pos] << 8) | buf[pos + 1]))
                pos += 2
            elif kind == _P_U32:
                if pos + 4 > end:
                    raise _Malformed(f"{name} overruns the packet")
                props.append((name, int.from_bytes(buf[pos : pos + 4], "big")))
                pos += 4
            else:  # _P_VARINT
                sub = _Reader(buf, pos, end)
                props.append((name, sub.varint(name)))
                pos = sub.pos
        return tuple(props), tuple(users)


# spec.PROPERTIES as (name, one of the small ints below): one dict lookup and int compares per property
_P_BYTE, _P_U16, _P_U32, _P_VARINT, _P_UTF8, _P_PAIR, _P_AUTH, _P_BINARY = range(8)
_PROPERTY_KINDS = {
    pid: (name, _P_AUTH if pid == spec.PROP_AUTHENTICATION_DATA else
          {spec.PropType.BYTE: _P_BYTE, spec.PropType.TWO_BYTE_INT: _P_U16, spec.PropType.FOUR_BYTE_INT: _P_U32,
           spec.PropType.VARINT: _P_VARINT, spec.PropType.UTF8: _P_UTF8,
           spec.PropType.UTF8_PAIR: _P_PAIR}.get(ptype, _P_BINARY))
    for pid, (name, ptype) in spec.PROPERTIES.items()
}


def text(b: bytes) -> str:
    """Wire text as str: UTF-8, invalid bytes as \\xNN (the kernel's key text)."""
    return bytes(b).decode("utf-8", "backslashreplace")


def _prop(props: tuple, name: str):
    for k, v in props:
        if k == name:
            return v
    return None


def decode(key: tuple, raw: bytes, ctx, side: int, *, limits: Limits = DEFAULT_LIMITS) -> MQTTEvent:
    """Decode one kernel record into its event.  Never raises."""
    level = ctx[0] if ctx else spec.LEVEL_UNKNOWN
    typ = key[0] if key else -1
    if typ == spec.MSG_TRUNCATED:
        return MQTTTruncated(
            side=side,
            original_type=key[1],
            original_name=spec.PACKET_NAMES.get(key[1], "UNKNOWN"),
            size=key[2],
            skipped=key[2] - len(raw),
        )
    cls = _CLASSES.get(typ)
    if cls is None:
        return MQTTEvent(side=side, malformed=f"unknown packet type {typ!r}")
    fields: dict = {}
    try:
        r = _Reader(raw, 0, len(raw))
        b0 = r.u8("fixed header")
        remaining = r.varint("remaining length")
        if remaining != r.left():
            raise _Malformed(f"remaining length {remaining} but {r.left()} bytes")
        _DECODERS[typ](r, b0 & 0x0F, level, ctx, fields, limits)
        if r.left():
            raise _Malformed(f"{r.left()} bytes after the {spec.PACKET_NAMES.get(typ)} body")
        malformed = fields.pop("_invalid", None)
    except _Malformed as exc:
        fields.pop("_invalid", None)
        malformed = str(exc)
    except Exception as exc:  # a decoder bug must not stop the pipeline
        fields.pop("_invalid", None)
        malformed = f"decoder error: {type(exc).__name__}"
    return cls(side=side, malformed=malformed, **fields)


def _invalid(fields: dict, reason: str) -> None:
    """Note a rule violation found in a body that still parses (the first one wins)."""
    fields.setdefault("_invalid", reason)


def _connect(r: _Reader, flags_hdr: int, level: int, ctx, f: dict, limits: Limits) -> None:
    name = r.binary("protocol name")
    f["protocol_name"] = text(name)
    if name not in spec.PROTOCOL_NAMES:
        raise _Malformed("protocol name is not MQTT or MQIsdp")
    raw_level = r.u8("protocol level")
    level = raw_level & ~spec.LEVEL_BRIDGE_BIT & 0xFF
    f["protocol_level"] = level
    f["bridge"] = bool(raw_level & spec.LEVEL_BRIDGE_BIT)
    f["version"] = spec.PROTOCOL_VERSIONS.get(level, "unknown")
    flags = r.u8("connect flags")
    will = bool(flags & spec.CONNECT_WILL)
    f["clean_start"] = bool(flags & spec.CONNECT_CLEAN)
    f["will"] = will
    f["will_qos"] = (flags & spec.CONNECT_WILL_QOS_MASK) >> spec.CONNECT_WILL_QOS_SHIFT
    f["will_retain"] = bool(flags & spec.CONNECT_WILL_RETAIN)
    f["password_present"] = bool(flags & spec.CONNECT_PASSWORD)
    if flags & spec.CONNECT_RESERVED:
        _invalid(f, "reserved connect flag set")
    if f["will_qos"] == 3:
        _invalid(f, "will QoS 3")
    if not will and (f["will_qos"] or f["will_retain"]):
        _invalid(f, "will QoS or retain without a will")
    if level != spec.LEVEL_5 and f["password_present"] and not flags & spec.CONNECT_USERNAME:
        _invalid(f, "password without a user name")
    f["keep_alive"] = r.u16("keep alive")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("CONNECT")
    f["client_id"] = r.string("client identifier")
    if will:
        if level == spec.LEVEL_5:
            f["will_properties"], f["will_user_properties"] = r.properties("will")
        f["will_topic"] = r.string("will topic")
        f["will_payload_length"] = r.skip_binary("will payload")
    if flags & spec.CONNECT_USERNAME:
        f["username"] = r.string("user name")
    if flags & spec.CONNECT_PASSWORD:
        f["password_length"] = r.skip_binary("password")


def _connack(r: _Reader, flags_hdr: int, level: int, ctx, f: dict, limits: Limits) -> None:
    ack = r.u8("acknowledge flags")
    f["session_present"] = bool(ack & spec.CONNACK_SESSION_PRESENT)
    code = r.u8("return code")
    f["return_code"] = code
    f["return_name"] = spec.reason_name(spec.MSG_CONNACK, code, level)
    if ack & ~spec.CONNACK_SESSION_PRESENT:
        _invalid(f, "reserved acknowledge flags set")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("CONNACK")


def _publish(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
    qos = (flags & spec.FLAG_QOS_MASK) >> spec.FLAG_QOS_SHIFT
    f["qos"] = qos
    f["retain"] = bool(flags & spec.FLAG_RETAIN)
    f["dup"] = bool(flags & spec.FLAG_DUP)
    if qos == spec.QOS_INVALID:
        raise _Malformed("QoS 3")
    if qos == 0 and flags & spec.FLAG_DUP:
        _invalid(f, "DUP set on a QoS 0 PUBLISH")
    topic = r.string("topic")
    f["topic"] = topic
    if qos:
        f["packet_id"] = r.u16("packet identifier")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("PUBLISH")
        f["topic_alias"] = _prop(f["properties"], "topic_alias")
    if not topic and ctx and ctx[1]:
        f["topic"] = ctx[1]
    payload = r.take(r.left(), "payload")
    f["payload_length"] = len(payload)
    n = limits.payload_preview
    f["payload_preview"] = escape(payload[:n], limit=4 * n + 4)
    if "+" in topic or "#" in topic:
        _invalid(f, "wildcard in a topic name")


def _pub_response(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits, typ: int) -> None:
    f["packet_id"] = r.u16("packet identifier")
    code = 0
    if level == spec.LEVEL_5 and r.left():
        code = r.u8("reason code")
        if r.left():
            f["properties"], f["user_properties"] = r.properties(spec.PACKET_NAMES[typ])
    f["reason_code"] = code
    f["reason_name"] = spec.reason_name(typ, code, level)


def _subscribe(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
    f["packet_id"] = r.u16("packet identifier")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("SUBSCRIBE")
    subs = []
    reserved = spec.SUBOPT_RESERVED if level == spec.LEVEL_5 else 0xFF & ~spec.SUBOPT_QOS_MASK
    while r.left():
        flt = r.string("topic filter")
        opts = r.u8("subscription options")
        subs.append(
            MQTTSubscription(
                filter=flt,
                qos=opts & spec.SUBOPT_QOS_MASK,
                no_local=bool(opts & spec.SUBOPT_NO_LOCAL),
                retain_as_published=bool(opts & spec.SUBOPT_RETAIN_AS_PUBLISHED),
                retain_handling=(opts & spec.SUBOPT_RETAIN_HANDLING_MASK) >> spec.SUBOPT_RETAIN_HANDLING_SHIFT,
            )
        )
        f["subscriptions"] = tuple(subs)
        if opts & reserved:
            _invalid(f, "reserved subscription option bits set")
        if opts & spec.SUBOPT_QOS_MASK == 3 or subs[-1].retain_handling == 3:
            _invalid(f, "invalid subscription QoS or retain handling")
    if not subs:
        raise _Malformed("SUBSCRIBE without a topic filter")


def _codes(r: _Reader, f: dict, typ: int, level: int) -> None:
    codes = tuple(r.take(r.left(), "reason codes"))
    f["reason_codes"] = codes
    f["reason_names"] = tuple(spec.reason_name(typ, c, level) for c in codes)


def _suback(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
    f["packet_id"] = r.u16("packet identifier")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("SUBACK")
    _codes(r, f, spec.MSG_SUBACK, level)
    if not f["reason_codes"]:
        raise _Malformed("SUBACK without a return code")


def _unsubscribe(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
    f["packet_id"] = r.u16("packet identifier")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("UNSUBSCRIBE")
    filters = []
    while r.left():
        filters.append(r.string("topic filter"))
        f["filters"] = tuple(filters)
    if not filters:
        raise _Malformed("UNSUBSCRIBE without a topic filter")


def _unsuback(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
    f["packet_id"] = r.u16("packet identifier")
    if level == spec.LEVEL_5:
        f["properties"], f["user_properties"] = r.properties("UNSUBACK")
        _codes(r, f, spec.MSG_UNSUBACK, level)
        if not f["reason_codes"]:
            raise _Malformed("UNSUBACK without a reason code")


def _empty(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
    pass


def _reason_props(typ: int):
    def dec(r: _Reader, flags: int, level: int, ctx, f: dict, limits: Limits) -> None:
        code = 0
        if r.left() and (level == spec.LEVEL_5 or typ == spec.MSG_AUTH):
            code = r.u8("reason code")
            if r.left():
                f["properties"], f["user_properties"] = r.properties(spec.PACKET_NAMES[typ])
        f["reason_code"] = code
        f["reason_name"] = spec.reason_name(typ, code, spec.LEVEL_5 if typ == spec.MSG_AUTH else level)

    return dec


_CLASSES = {
    spec.MSG_CONNECT: MQTTConnect,
    spec.MSG_CONNACK: MQTTConnAck,
    spec.MSG_PUBLISH: MQTTPublish,
    **_PUB_RESPONSES,
    spec.MSG_SUBSCRIBE: MQTTSubscribe,
    spec.MSG_SUBACK: MQTTSubAck,
    spec.MSG_UNSUBSCRIBE: MQTTUnsubscribe,
    spec.MSG_UNSUBACK: MQTTUnsubAck,
    spec.MSG_PINGREQ: MQTTPingReq,
    spec.MSG_PINGRESP: MQTTPingResp,
    spec.MSG_DISCONNECT: MQTTDisconnect,
    spec.MSG_AUTH: MQTTAuth,
}

_DECODERS = {
    spec.MSG_CONNECT: _connect,
    spec.MSG_CONNACK: _connack,
    spec.MSG_PUBLISH: _publish,
    **{t: (lambda t: lambda *a: _pub_response(*a, t))(t) for t in _PUB_RESPONSES},
    spec.MSG_SUBSCRIBE: _subscribe,
    spec.MSG_SUBACK: _suback,
    spec.MSG_UNSUBSCRIBE: _unsubscribe,
    spec.MSG_UNSUBACK: _unsuback,
    spec.MSG_PINGREQ: _empty,
    spec.MSG_PINGRESP: _empty,
    spec.MSG_DISCONNECT: _reason_props(spec.MSG_DISCONNECT),
    spec.MSG_AUTH: _reason_props(spec.MSG_AUTH),
}


# ----------------------------------------------------------------- describe
def _code_name(typ: int, code: int) -> str:
    if typ == spec.MSG_CONNACK and code in spec.CONNACK_RETURN_CODES:
        return spec.CONNACK_RETURN_CODES[code]  # 3.x codes 0-5; v5 refusals are >= 0x80
    return spec.reason_name(typ, code, spec.LEVEL_5)


def describe(key: tuple) -> tuple[str, str, str]:
    """(kind, op, target) of a key, without its bytes (docs/architecture.md)."""
    typ = key[0] if key else -1
    kind = spec.KIND_NAMES.get(typ, "mqtt.unknown")
    op = spec.OPS.get(typ, "other")
    target = ""
    try:
        if len(key) == 2 and key[1] == spec.KEY_OVERFLOW:
            target = "overflow"
        elif typ == spec.MSG_PUBLISH:
            target = "topic=" + escape(key[1])
        elif typ in (spec.MSG_SUBSCRIBE, spec.MSG_UNSUBSCRIBE):
            target = "topic=" + escape(key[1]) + (" (+%d)" % (key[2] - 1) if key[2] > 1 else "")
        elif typ == spec.MSG_CONNECT:
            target = "protocol=" + spec.PROTOCOL_VERSIONS.get(key[1], "level%d" % key[1])
        elif typ == spec.MSG_TRUNCATED:
            op = spec.OPS.get(key[1], "other")
            target = "type=%s size=%d" % (spec.PACKET_NAMES.get(key[1], key[1]), key[2])
        elif len(key) > 1:
            target = "code=" + _code_name(typ, key[1])
    except (IndexError, TypeError):
        target = "malformed_key"
    return kind, op, target


# ------------------------------------------------------------------ to_dict
def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def to_dict(event) -> dict:
    """A JSON-ready dict of *event*: ``{"event": class name, field: value, ...}``,
    bytes as hex, tuples as lists.  Holds nothing the event does not (no password)."""
    d = {"event": type(event).__name__}
    d.update(_jsonable(event))
    return d
