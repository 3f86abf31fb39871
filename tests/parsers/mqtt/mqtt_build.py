"""Test-side MQTT packet builder (independent of the code under test, except
for reading property types from spec, the one definition of the format)."""
from __future__ import annotations

import importlib.util
import pathlib

from otwatch.parsers.mqtt import spec

_h = importlib.util.spec_from_file_location(
    "otwatch_test_parsers_helpers", pathlib.Path(__file__).resolve().parents[1] / "helpers.py"
)
helpers = importlib.util.module_from_spec(_h)
_h.loader.exec_module(helpers)

PASSWORD = b"S3cr3t-Pa55w0rd!"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(v) -> bytes:
    """Length-prefixed string or binary."""
    b = v.encode() if isinstance(v, str) else bytes(v)
    return len(b).to_bytes(2, "big") + b


def packet(typ: int, flags: int, body: bytes) -> bytes:
    return bytes([(typ << 4) | flags]) + varint(len(body)) + body


def props(*items) -> bytes:
    """v5 property block from (id, value) pairs; user property value is (k, v)."""
    out = bytearray()
    for pid, value in items:
        ptype = spec.PROPERTIES[pid][1]
        out.append(pid)
        if ptype == spec.PropType.BYTE:
            out.append(value)
        elif ptype == spec.PropType.TWO_BYTE_INT:
            out += value.to_bytes(2, "big")
        elif ptype == spec.PropType.FOUR_BYTE_INT:
            out += value.to_bytes(4, "big")
        elif ptype == spec.PropType.VARINT:
            out += varint(value)
        elif ptype == spec.PropType.UTF8_PAIR:
            out += s(value[0]) + s(value[1])
        else:
            out += s(value)
    return varint(len(out)) + bytes(out)


def connect(level=4, client_id="client-1", clean=True, keep_alive=60, will=None, username=None, password=None,
            properties=b"", name=None, reserved=False):
    """will: (topic, payload, qos, retain[, will_props_bytes])."""
    flags = (0x02 if clean else 0) | (0x01 if reserved else 0)
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    name = name or ("MQIsdp" if level == 3 else "MQTT")
    body = s(name) + bytes([level, flags]) + keep_alive.to_bytes(2, "big")
    if level == 5:
        body += properties or b"\x00"
    body += s(client_id)
    if will:
        if level == 5:
            body += will[4] if len(will) > 4 else b"\x00"
        body += s(will[0]) + s(will[1])
    if username is not None:
        body += s(username)
    if password is not None:
        body += s(password)
    return packet(1, 0, body)


def connack(code=0, session_present=False, properties=None):
    return packet(2, 0, bytes([1 if session_present else 0, code]) + (properties if properties is not None else b""))


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, properties=None):
    flags = (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = s(topic)
    if qos:
        body += (pid or 1).to_bytes(2, "big")
    if properties is not None:
        body += properties
    return packet(3, flags, body + payload)


def ack(typ, pid, code=None, properties=None):
    body = pid.to_bytes(2, "big")
    if code is not None:
        body += bytes([code])
    if properties is not None:
        body += properties
    return packet(typ, 0x02 if typ == 6 else 0, body)


def subscribe(pid, filters, properties=None, flags=0x02):
    """filters: [(filter, options_byte)]."""
    body = pid.to_bytes(2, "big") + (properties if properties is not None else b"")
    for f, o in filters:
        body += s(f) + bytes([o])
    return packet(8, flags, body)


def suback(pid, codes, properties=None):
    return packet(9, 0, pid.to_bytes(2, "big") + (properties if properties is not None else b"") + bytes(codes))


def unsubscribe(pid, filters, properties=None):
    body = pid.to_bytes(2, "big") + (properties if properties is not None else b"")
    for f in filters:
        body += s(f)
    return packet(10, 0x02, body)


def unsuback(pid, codes=None, properties=None):
    return packet(11, 0, pid.to_bytes(2, "big") + (properties if properties is not None else b"")
                  + bytes(codes or ()))


def reason_packet(typ, code=None, properties=None):
    body = b"" if code is None else bytes([code]) + (properties if properties is not None else b"")
    return packet(typ, 0, body)
