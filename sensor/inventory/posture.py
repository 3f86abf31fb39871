"""Security posture findings: facts about how exposed a device is, each with evidence.

``FINDINGS`` is the catalogue (stable ids, never renamed once shipped; the docs
test checks each is in docs/inventory.md).  The functions here are pure: they
look at one message (plus the small per-connection state the store keeps) and
return ``Hit``s; the store attaches them to assets with the message's frame
and time as evidence.

Certificate validity is judged against *packet* time, never the wall clock, so
a capture gives the same findings whenever it is analysed.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from . import identity as I

FINDINGS: dict[str, tuple[str, str]] = {
    # id: (severity, title)
    "modbus.no_authentication": ("medium", "Modbus/TCP server: no authentication by design; anyone who reaches it can write"),
    "modbus.cross_zone": ("high", "Modbus/TCP reached from outside its zone"),
    "mqtt.anonymous_access": ("high", "MQTT broker accepts anonymous clients"),
    "mqtt.cleartext_credentials": ("high", "MQTT user name and password sent in clear (no TLS)"),
    "mqtt.wildcard_subscription": ("medium", "MQTT client subscribes to '#' (every topic)"),
    "opcua.security_policy_none": ("medium", "OPC UA endpoint with SecurityPolicy None (no signing, no encryption)"),
    "opcua.deprecated_policy": ("medium", "OPC UA deprecated SHA-1 security policy (Basic128Rsa15, Basic256)"),
    "opcua.anonymous_token": ("medium", "OPC UA anonymous user token offered or used"),
    "opcua.cleartext_username": ("high", "OPC UA user name token sent over an unencrypted channel"),
    "opcua.cleartext_username_offered": ("high", "OPC UA endpoint offers a user name token without encryption"),
    "opcua.certificate_expired": ("high", "OPC UA application certificate outside its validity period"),
    "opcua.certificate_self_signed": ("low", "OPC UA application certificate is self-signed"),
    "opcua.certificate_weak_key": ("medium", "OPC UA application certificate key shorter than 2048 bits"),
    "opcua.certificate_weak_signature": ("medium", "OPC UA application certificate signed with SHA-1 or MD5"),
}

DEPRECATED_POLICIES = frozenset({"Basic128Rsa15", "Basic256"})
"""SHA-1 policies, deprecated in OPC UA 1.04 (Part 7 §6.6.163)."""
MIN_RSA_BITS = 2048
"""Part 7 Basic256Sha256 requires 2048..4096 bit keys; shorter ones are weak."""


@dataclass(frozen=True)
class Hit:
    side: str          # "server" | "client": whose finding
    finding: str       # FINDINGS id
    subject: str       # what it is about (endpoint url, user name, topic filter); "" for the asset as a whole
    detail: str


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_hits(cert: Any, side: str, ts: float, subject: str = "") -> list[Hit]:
    cert = I.certificate(cert)
    if cert is None or getattr(cert, "error", None):
        return []
    hits = []
    subj = subject or I.text(getattr(cert, "subject", "") or getattr(cert, "thumbprint_sha1", ""))
    nb, na = getattr(cert, "not_before", None), getattr(cert, "not_after", None)
    now = _iso(ts)
    if na and now > str(na):
        hits.append(Hit(side, "opcua.certificate_expired", subj, f"expired {na}, packet time {now}"))
    elif nb and now < str(nb):
        hits.append(Hit(side, "opcua.certificate_expired", subj, f"not valid before {nb}, packet time {now}"))
    if getattr(cert, "self_signed", None):
        hits.append(Hit(side, "opcua.certificate_self_signed", subj, f"issuer = subject ({I.text(cert.issuer)})"))
    kt, ks = getattr(cert, "key_type", None), getattr(cert, "key_size", None)
    if kt in ("RSA", "DSA") and ks and ks < MIN_RSA_BITS:
        hits.append(Hit(side, "opcua.certificate_weak_key", subj, f"{kt} {ks} bits"))
    sig = (getattr(cert, "signature_algorithm", "") or "").lower()
    if "sha1" in sig or "md5" in sig:
        hits.append(Hit(side, "opcua.certificate_weak_signature", subj, sig))
    return hits


def endpoint_hits(ev: Any, ts: float) -> list[Hit]:
    """Findings from what a server offers (GetEndpoints / CreateSession response endpoints)."""
    hits: list[Hit] = []
    seen_certs = set()
    for ep in I.endpoints(ev):
        url = I.text(I.attr(ep, "endpoint_url", "EndpointUrl", default=""))
        pol, mode = I.endpoint_policy(ep), I.endpoint_mode(ep)
        if pol == "None" or mode == "None":
            hits.append(Hit("server", "opcua.security_policy_none", url, f"offers {pol}/{mode}"))
        if pol in DEPRECATED_POLICIES:
            hits.append(Hit("server", "opcua.deprecated_policy", f"{url} {pol}", f"offers {pol}/{mode}"))
        for tt, tpol in I.token_policies(ep):
            if tt == "Anonymous":
                hits.append(Hit("server", "opcua.anonymous_token", url, f"anonymous token offered on {pol}/{mode}"))
            if tt == "UserName" and (pol == "None" or mode == "None") and tpol in ("", "None"):
                hits.append(Hit("server", "opcua.cleartext_username_offered", url,
                                f"user name token on {pol}/{mode} without token encryption (password in clear)"))
        cert = I.attr(ep, "server_certificate", "ServerCertificate")
        if cert is not None:
            key = bytes(cert) if isinstance(cert, (bytes, bytearray, memoryview)) else id(cert)
            if key not in seen_certs:
                seen_certs.add(key)
                hits += certificate_hits(cert, "server", ts)
    return hits


def _channel_policy(ev: Any) -> str:
    uri = I.text(I.attr(ev, "security_policy_uri", "policy_uri", "security_policy", default=""))
    return uri.rsplit("#", 1)[-1] if uri else ""


def opcua_hits(msg: Any, channel: dict) -> list[Hit]:
    """*channel*: the store's per-connection memory ({"policy": …, "mode": …})."""
    ev = msg.event
    name = I.event_name(ev)
    hits: list[Hit] = []
    if I.endpoints(ev):
        hits += endpoint_hits(ev, msg.ts)
    if I._is_opn(ev):
        pol = _channel_policy(ev)
        if pol:
            channel["policy"] = pol
        mode = I.attr(ev, "security_mode_name", "security_mode")
        if mode is not None:
            channel["mode"] = I.endpoint_mode(ev)
        if pol in DEPRECATED_POLICIES:
            hits.append(Hit("server", "opcua.deprecated_policy", pol, f"secure channel opened with {pol}"))
        side = "client" if I._is_request(ev) else "server"
        hits += certificate_hits(I.attr(ev, "sender_certificate", "certificate"), side, msg.ts)
    if "createsession" in name and "response" in name:
        hits += certificate_hits(I.attr(ev, "server_certificate"), "server", msg.ts)
    if "activatesession" in name and "request" in name:
        tok = I.text(getattr(ev, "user_token_type_name", "") or getattr(ev, "identity_token", ""))
        tok_l = tok.lower()
        mode = channel.get("mode", "")
        pol = channel.get("policy", "")
        plain = pol == "None" or mode == "None"
        user = I.text(I.attr(ev, "user_name", default=""))
        if "anonymous" in tok_l:
            hits.append(Hit("server", "opcua.anonymous_token", "session",
                            f"anonymous session activated on a {pol or '?'} channel"))
        if "username" in tok_l:
            sent = I.attr(ev, "password_present", default=False)
            enc = I.attr(ev, "password_encrypted", default=None)
            if sent and enc is False:
                detail = f"user {user!r}: password sent unencrypted on a {pol or '?'}/{mode or '?'} channel"
            elif plain:
                detail = f"user {user!r} on an unencrypted ({pol or mode}) channel; password encrypted with " \
                         f"{I.text(I.attr(ev, 'encryption_algorithm', default='?'))}"
            else:
                detail = ""
            if detail:
                hits.append(Hit("server", "opcua.cleartext_username", user or "session", detail))
                hits.append(Hit("client", "opcua.cleartext_username", user or "session", detail))
    return hits


def mqtt_hits(msg: Any, conn: dict) -> list[Hit]:
    """*conn*: per-connection memory (the CONNECT waiting for its CONNACK)."""
    ev = msg.event
    name = I.event_name(ev)
    hits: list[Hit] = []
    if "connect" in name and "ack" not in name and "disconnect" not in name:
        user = I.attr(ev, "username", "user_name")
        pw = I.attr(ev, "password_present", "password_flag", "has_password")
        if pw is None:
            pw = bool(I.attr(ev, "password"))
        conn["connect"] = (I.text(I.attr(ev, "client_id", default="")), user, msg.frame)
        if pw:   # a decoded CONNECT was readable on the wire: the password crossed it in clear
            subj = I.text(user) if user is not None else I.text(I.attr(ev, "client_id", default=""))
            d = f"CONNECT from client id {I.text(I.attr(ev, 'client_id', default=''))!r} with user name and password on tcp/{msg.server_port}"
            hits.append(Hit("server", "mqtt.cleartext_credentials", subj, d))
            hits.append(Hit("client", "mqtt.cleartext_credentials", subj, d))
    elif "connack" in name or ("connect" in name and "ack" in name):
        code = I.attr(ev, "return_code", "reason_code", "code")
        pending = conn.pop("connect", None)
        if pending is not None and code in (0, None) and pending[1] is None:
            hits.append(Hit("server", "mqtt.anonymous_access", "",
                            f"CONNECT without user name from client id {pending[0]!r} (frame {pending[2]}) accepted"))
    elif "subscribe" in name and "unsub" not in name and "ack" not in name:
        for f in _filters(ev):
            if f == "#":
                hits.append(Hit("client", "mqtt.wildcard_subscription", f, "SUBSCRIBE '#': receives every message"))
    return hits


def _filters(ev: Any) -> list[str]:
    out = []
    for s in I.attr(ev, "subscriptions", "topics", "filters", "topic_filters", default=()) or ():
        if isinstance(s, (tuple, list)):
            s = s[0]
        f = I.attr(s, "topic_filter", "topic", "filter")
        out.append(I.text(f if f is not None else s))
    return out


def message_hits(msg: Any, conn: dict) -> list[Hit]:
    if msg.event is None:
        return []
    if msg.protocol == "opcua":
        return opcua_hits(msg, conn)
    if msg.protocol == "mqtt":
        return mqtt_hits(msg, conn)
    return []
