"""What an operation is, in the terms a conduit rule speaks: observations → hashable op keys.

``op_key(protocol, kind, op, key, event)`` turns a client's request (a
``Message`` or an ``Aggregate``; responses are the server's and are not checked)
into a small tuple that, with the zone pair and port, decides its verdict.
Equal tuples get equal verdicts, which is what lets ``verdict.Verdicts`` cache
them.  Shapes:

* Modbus: ``("modbus", op, unit, fc, accesses)`` where ``accesses`` is a tuple of
  ``(table, first, last)`` for the register tables touched (FC 23 gives two:
  its read and its write range; ``first = -1`` when the address is unknown).
  Built from the kernel key ``(type, unit, fc, a, b[, c, d])``.
* MQTT: ``("publish", topic)``, ``("subscribe", (filter, ...))``, or
  ``("session", kind)`` for everything else (CONNECT, PING, acks: allowed
  wherever MQTT is).  A SUBSCRIBE seen as a Message gives all its filters; as
  an Aggregate only its first (that is all the key holds).
* OPC UA: ``("service", name)`` for a service request (also past the key cap:
  the overflow key keeps its service), ``("session", kind)`` for framing (HEL,
  OPN, CLO) and ``("encrypted", kind)`` for a SignAndEncrypt body nobody can
  read (never denied: its service is unknown).
* Modbus requests counted under a link's lump key (``(type, unit, fc, -4, -4)``,
  parsers/modbus/spec.py ``KEY_COVERED``): ``("covered", "modbus", op, unit, fc,
  table)``.  Their ranges are not known one by one, but every address they name
  was named before on the link, with that unit and function code, by a request
  with a key of its own, which was judged (docs/rules.md, "Ranges counted
  together"); ``Verdicts.operation`` decides whether that settles them.
* Operations not distinguished past the key cap: ``("overflow", protocol,
  what)``.  A link direction that holds ``limits.link_keys_max`` keys counts
  new ones under one overflow key (Modbus ``(type, -2, -2, -2, -2)``, MQTT
  ``(type, -2)``), whose unit, function code, registers or topic are unknown.
  ``what`` is ``"operations"`` for Modbus requests, ``"publish"`` or
  ``"subscribe"`` for MQTT.  The verdict is conservative (``verdict``): only a
  rule that allows every such operation allows it, so an attacker cannot hide a
  write behind thousands of junk keys.  MQTT acknowledgements and pings past the
  cap are ``("session", kind)``.
"""
from __future__ import annotations

from otwatch.parsers.modbus import spec as mb
from otwatch.parsers.mqtt import spec as mq
from otwatch.parsers.opcua import spec as ua

from .model import MODBUS_TABLES

MQTT_PUBLISH = "mqtt.publish"
MQTT_SUBSCRIBE = "mqtt.subscribe"
OVERFLOW = "overflow"
"""``op_key``'s first field for operations counted under a kernel overflow key."""
COVERED = "covered"
"""``op_key``'s first field for Modbus requests counted under a link's lump key."""
_MB_COVERED = mb.KEY_COVERED
_MB_OVERFLOW = mb.KEY_OVERFLOW
_MQ_OVERFLOW = mq.KEY_OVERFLOW
_MQ_PUBLISH = int(mq.PacketType.PUBLISH)
_MQ_SUBSCRIBE = int(mq.PacketType.SUBSCRIBE)
_TABLES = frozenset(MODBUS_TABLES)


def _access(table: str, a: int, b: int) -> tuple:
    if a is None or a < 0 or b is None or b < 0:
        return (table, -1, -1)
    return (table, a, a + max(b, 1) - 1)


def modbus_key(op: str, key: tuple) -> tuple:
    try:
        unit, fc = key[1], key[2] & 0x7F
    except (IndexError, TypeError):
        return ("modbus", op, -1, -1, ())
    if unit == _MB_OVERFLOW:
        return (OVERFLOW, "modbus", "operations")
    table = mb.table(fc)
    if len(key) == 5 and key[3] == _MB_COVERED:
        return (COVERED, "modbus", op, unit, fc, table)
    accesses: tuple = ()
    if table in _TABLES and len(key) >= 5:
        if fc == 23 and len(key) >= 7:
            accesses = (_access(table, key[3], key[4]), _access(table, key[5], key[6]))
        else:
            accesses = (_access(table, key[3], key[4]),)
    return ("modbus", op, unit, fc, accesses)


def mqtt_key(kind: str, key: tuple, event) -> tuple:
    if len(key) == 2 and key[1] == _MQ_OVERFLOW:
        if key[0] == _MQ_PUBLISH:
            return (OVERFLOW, "mqtt", "publish")
        if key[0] == _MQ_SUBSCRIBE:
            return (OVERFLOW, "mqtt", "subscribe")
        return ("session", kind)
    if kind == MQTT_PUBLISH:
        topic = getattr(event, "topic", None)
        if topic is None:
            topic = key[1] if len(key) > 1 and isinstance(key[1], str) else ""
        return ("publish", topic)
    if kind == MQTT_SUBSCRIBE:
        subs = getattr(event, "subscriptions", None)
        if subs:
            return ("subscribe", tuple(s.filter for s in subs))
        return ("subscribe", (key[1],) if len(key) > 1 and isinstance(key[1], str) else ())
    return ("session", kind)


def opcua_key(kind: str, key: tuple) -> tuple:
    if key and key[0] == ua.MSG_SERVICE and len(key) > 1:
        info = ua.SERVICES.get(key[1])
        return ("service", info.service if info is not None else f"type_id={key[1]}")
    if kind == "opcua.encrypted_message":
        return ("encrypted", kind)
    return ("session", kind)


def op_key(protocol: str, kind: str, op: str, key: tuple, event=None) -> tuple | None:
    """The operation of a client request, or None when the protocol has no operation rules."""
    if protocol == "modbus":
        return modbus_key(op, key)
    if protocol == "mqtt":
        return mqtt_key(kind, key, event)
    if protocol == "opcua":
        return opcua_key(kind, key)
    return None


def describe(k: tuple) -> str:
    """A short human text of an op key (for finding messages)."""
    if k[0] == "modbus":
        _, op, unit, fc, acc = k
        where = "".join(f" {t} {'?' if a < 0 else a if a == b else f'{a}-{b}'}" for t, a, b in acc)
        return f"Modbus {op} FC {fc} unit {unit}{where}"
    if k[0] == "publish":
        return f"MQTT publish to {k[1]!r}"
    if k[0] == "subscribe":
        return "MQTT subscribe to " + ", ".join(repr(f) for f in k[1])
    if k[0] == "service":
        return f"OPC UA {k[1]}"
    if k[0] == COVERED:
        return f"Modbus {k[2]} FC {k[4]} unit {k[3]} {k[5]} inside what the link requested before"
    if k[0] == OVERFLOW:
        name = {"modbus": "Modbus", "mqtt": "MQTT"}.get(k[1], k[1])
        return f"{name} {k[2]} not distinguished past the key cap (unit, function, registers or topic unknown)"
    return str(k[1])


__all__ = ["OVERFLOW", "COVERED", "op_key", "modbus_key", "mqtt_key", "opcua_key", "describe"]
