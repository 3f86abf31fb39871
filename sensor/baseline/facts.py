"""Observations → facts: the one place that says what a baseline learns from each observation.

Contract: ``FactReader.read(obs)`` returns a list of ``Fact`` for one
observation (most give none).  The learner adds every learnable fact to the
model; the detector checks the same facts against it, so what is learned and
what is checked cannot drift apart.  Kinds:

* ``asset``        value = IP (``field`` = MAC or "")
* ``pair``         a flow or link between ``pair.client`` and ``pair.server``
* ``set``          ``field`` in ``model.FIELDS``, a value seen on ``pair``
* ``coverage``     ``field`` = ``"read unit=1/holding_registers"``, value = (lo, hi)
* ``identity``     value = (asset IP, attribute name, text): device identification
* ``certificate``  value = (asset IP, SHA-1 thumbprint)
* ``event``        not learnable, for the detector's windows: ``field`` is
                   ``flow``, ``exception``, ``connack_refused``

Per-flow state (the OPC UA security mode of each channel) is bounded and
dropped at the flow's end.
"""
from __future__ import annotations

import ipaddress
from typing import NamedTuple

from otwatch.parsers.modbus import spec

from .model import PairKey

REGISTER_TABLES = frozenset({"coils", "discrete_inputs", "holding_registers", "input_registers"})
MAX_FLOW_STATE = 65_536
"""OPC UA channels whose security mode is remembered; beyond it the oldest are forgotten."""
IDENTITY_OBJECTS = ("VendorName", "ProductCode", "MajorMinorRevision", "ProductName", "ModelName")
"""Device identification objects (Modbus Application Protocol §6.21, basic + regular) that
name the device and its firmware; UserApplicationName and VendorUrl are left out."""
SECURITY_RANK = {"None": 1, "Sign": 2, "SignAndEncrypt": 3}
"""MessageSecurityMode (OPC UA Part 4 §7.20): the order a downgrade is measured in."""


class Fact(NamedTuple):
    kind: str
    pair: PairKey | None
    field: str
    value: object
    ts: float
    frame: int
    flow_id: int
    info: dict | None = None     # what the detector puts in a finding's details


_HOST_IP: dict = {}
_HOST_IP_MAX = 65_536
"""Addresses whose answer is remembered (parsing an address costs ~30 µs; a flow has two)."""


def _host_ip(ip: str) -> bool:
    """An address that names one host (not multicast, broadcast or unspecified)."""
    r = _HOST_IP.get(ip)
    if r is None:
        try:
            a = ipaddress.ip_address(ip)
            r = not (a.is_multicast or a.is_unspecified or str(a) == "255.255.255.255")
        except ValueError:
            r = False
        if len(_HOST_IP) >= _HOST_IP_MAX:
            _HOST_IP.clear()
        _HOST_IP[ip] = r
    return r


class FactReader:
    def __init__(self) -> None:
        self._chan: dict[int, str] = {}     # flow id -> security policy of its OPN

    def read(self, obs) -> list[Fact]:
        t = obs.type
        if t == "message":
            p = obs.protocol
            if p == "modbus":
                return self._modbus(obs)
            if p == "mqtt":
                return self._mqtt(obs)
            if p == "opcua":
                return self._opcua(obs)
            return []
        if t == "flow.start":
            return self._flow(obs)
        if t == "link.seen":
            pk = PairKey(obs.client, obs.server, obs.protocol, obs.server_port)
            return [Fact("pair", pk, "", None, obs.ts, obs.frame, 0)]
        if t == "host.seen":
            if obs.how == "ip" and _host_ip(obs.ip):
                return [Fact("asset", None, obs.mac, obs.ip, obs.ts, obs.frame, 0)]
            return []
        if t == "flow.end":
            self._chan.pop(obs.flow_id, None)
        return []

    # -- flows -------------------------------------------------------------
    def _flow(self, o) -> list[Fact]:
        out = []
        for ip, mac in ((o.client, o.client_mac), (o.server, o.server_mac)):
            if _host_ip(ip):
                out.append(Fact("asset", None, mac, ip, o.ts, o.frame, o.flow_id))
        if _host_ip(o.client) and _host_ip(o.server):
            proto = o.protocol if o.protocol not in ("none", "") else o.transport
            pk = PairKey(o.client, o.server, proto, o.server_port)
            out.append(Fact("pair", pk, "", None, o.ts, o.frame, o.flow_id))
            out.append(Fact("event", pk, "flow", None, o.ts, o.frame, o.flow_id))
        return out

    # -- Modbus --------------------------------------------------------------
    def _modbus(self, o) -> list[Fact]:
        ev = o.event
        pk = PairKey(o.client, o.server, "modbus", o.server_port)
        F = lambda kind, field, value, info=None: Fact(kind, pk, field, value, o.ts, o.frame, o.flow_id, info)  # noqa: E731
        if o.direction == "request":
            fc = getattr(ev, "function", None)
            unit = getattr(ev, "unit", None)
            if fc is None or unit is None:
                return []
            op = spec.op_class(fc)
            info = {"unit": unit, "function_code": fc, "function": getattr(ev, "function_name", ""), "op": op,
                    "target": o.target}
            out = [F("set", "units", unit, info), F("set", "function_codes", fc, info), F("set", "op_classes", op, info)]
            if getattr(ev, "umas_function_name", None):
                info["umas_function"] = ev.umas_function_name
                info["umas_class"] = ev.umas_class
                out.append(F("set", "umas_functions", ev.umas_function_name, info))
            table = spec.table(fc)
            # a malformed request still names its unit and function code; its addresses are not trusted
            if table in REGISTER_TABLES and getattr(ev, "malformed", None):
                out.append(F("set", "unreadable_addresses", table, info))
            elif table in REGISTER_TABLES:
                rw = "write" if op == spec.OP_WRITE else "read"
                addr, qty = ev.address, ev.quantity
                if fc == 23 and ev.read_address is not None and ev.read_quantity:
                    out.append(F("coverage", f"read unit={unit}/{table}",
                                 (ev.read_address, ev.read_address + ev.read_quantity - 1), info))
                if addr is not None and qty:
                    out.append(F("coverage", f"{rw} unit={unit}/{table}", (addr, addr + qty - 1), info))
            return out
        # responses
        if o.kind == "modbus.exception":
            return [F("event", "exception", getattr(ev, "exception_code", None), {"target": o.target})]
        objs = getattr(ev, "objects", None)
        if objs:
            return [F("identity", "", (o.server, ob.name, ob.value)) for ob in objs if ob.name in IDENTITY_OBJECTS]
        if getattr(ev, "function", None) == 17 and getattr(ev, "additional_data", b""):
            text = bytes(ev.additional_data).decode("latin-1")
            return [F("identity", "", (o.server, "ServerId", text))]
        return []

    # -- MQTT ----------------------------------------------------------------
    def _mqtt(self, o) -> list[Fact]:
        ev = o.event
        pk = PairKey(o.client, o.server, "mqtt", o.server_port)
        F = lambda kind, field, value, info=None: Fact(kind, pk, field, value, o.ts, o.frame, o.flow_id, info)  # noqa: E731
        if getattr(ev, "malformed", None):
            return []
        name = type(ev).__name__
        if o.direction == "request":
            if name == "MQTTConnect":
                user = ev.username
                cred = "anonymous" if user is None and not ev.password_present else \
                    ("username+password" if ev.password_present else "username")
                info = {"client_id": ev.client_id, "protocol_level": ev.protocol_level, "credentials": cred}
                out = [F("set", "protocol_levels", ev.protocol_level, info), F("set", "credentials", cred, info)]
                if user is not None:
                    out.append(F("set", "usernames", user, info))
                return out
            if name == "MQTTPublish" and ev.topic:
                info = {"topic": ev.topic, "qos": ev.qos, "retain": ev.retain}
                return [F("set", "publish", ev.topic, info), F("set", "qos", ev.qos, info),
                        F("set", "retain", bool(ev.retain), info)]
            if name == "MQTTSubscribe":
                out = []
                for s in ev.subscriptions:
                    info = {"filter": s.filter, "qos": s.qos}
                    out += [F("set", "subscribe", s.filter, info), F("set", "qos", s.qos, info)]
                return out
            return []
        if name == "MQTTConnAck" and ev.return_code != 0:
            return [F("event", "connack_refused", ev.return_code, {"code": ev.return_code, "reason": ev.return_name})]
        return []

    # -- OPC UA --------------------------------------------------------------
    def _opcua(self, o) -> list[Fact]:
        ev = o.event
        pk = PairKey(o.client, o.server, "opcua", o.server_port)
        F = lambda kind, field, value, info=None: Fact(kind, pk, field, value, o.ts, o.frame, o.flow_id, info)  # noqa: E731
        name = type(ev).__name__
        out: list[Fact] = []
        cert = None
        if name == "OPCUAOpenSecureChannel":
            cert = ev.sender_certificate
            if o.direction == "request":
                # Sign and SignAndEncrypt OPNs are RSA-encrypted: only the policy shows.  The
                # mode is told by what follows (readable services: Sign; encrypted MSG: SignAndEncrypt).
                policy = ev.security_policy or "?"
                if len(self._chan) >= MAX_FLOW_STATE:
                    self._chan.pop(next(iter(self._chan)))
                self._chan[o.flow_id] = policy
            if cert is not None and getattr(cert, "thumbprint_sha1", None):
                owner = o.client if o.direction == "request" else o.server
                out.append(F("certificate", "", (owner, cert.thumbprint_sha1), {"subject": cert.subject or ""}))
            return out
        if name == "OPCUAEncryptedMessage":
            policy = self._chan.get(o.flow_id)
            if policy is not None and o.direction == "request":
                out.append(F("set", "session_security", f"SignAndEncrypt/{policy}",
                             {"mode": "SignAndEncrypt", "policy": policy}))
            return out
        service = getattr(ev, "service", "") or ""
        if service.endswith("Request"):
            service = service[:-7]
        elif service.endswith("Response"):
            service = service[:-8]
        if not service or getattr(ev, "malformed", None):
            return out
        if o.direction == "request":
            info = {"service": service, "op": o.op}
            out.append(F("set", "services", service, info))
            if name == "OPCUAWriteRequest":
                for n in ev.nodes:
                    out.append(F("set", "nodes_written", n.node_id, {"service": service, "node": n.node_id}))
            elif name == "OPCUACallRequest":
                for m in ev.methods:
                    out.append(F("set", "methods_called", m.method_id,
                                 {"service": service, "method": m.method_id, "object": m.object_id}))
            elif name in ("OPCUACreateSessionRequest", "OPCUAActivateSessionRequest"):
                policy = self._chan.get(o.flow_id)
                if policy is not None:
                    mode = "None" if policy == "None" else "Sign"    # readable, so not encrypted
                    out.append(F("set", "session_security", f"{mode}/{policy}",
                                 {"service": service, "mode": mode, "policy": policy}))
                if name == "OPCUAActivateSessionRequest" and ev.user_token_type_name:
                    out.append(F("set", "user_tokens", ev.user_token_type_name, {"service": service}))
                cc = getattr(ev, "client_certificate", None)
                if cc is not None and getattr(cc, "thumbprint_sha1", None):
                    out.append(F("certificate", "", (o.client, cc.thumbprint_sha1), {"subject": cc.subject or ""}))
        else:
            sc = getattr(ev, "server_certificate", None)
            if sc is not None and getattr(sc, "thumbprint_sha1", None):
                out.append(F("certificate", "", (o.server, sc.thumbprint_sha1), {"subject": sc.subject or ""}))
        return out
