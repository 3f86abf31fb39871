"""Identity facts from protocol events: what a device says it is.

``facts(msg) -> list[Fact]`` turns one ``observations.Message`` into the
identity attributes it reveals, each tied to the asset side that revealed it
(``"server"`` or ``"client"``).  Pure functions, no state: the store decides
whether a fact is new, confirmed or changed.

Sources (feature-anchors §3):

* Modbus FC 43/14 Read Device Identification: every object (VendorName,
  ProductCode, MajorMinorRevision, VendorUrl, ProductName, ModelName,
  UserApplicationName, private 0x80-0xFF) and the conformity level;
  FC 17 Report Server ID: server id, run indicator, additional data.
* OPC UA GetEndpoints response: the server's ApplicationUri, ProductUri,
  ApplicationName, ApplicationType, certificate; the endpoints and security
  policies offered.  CreateSession request: the client's application
  description.  OPN: the sender's certificate (subject, issuer, validity, key).
* MQTT CONNECT: client id, user name (never the password: only whether one was
  sent), protocol level; ``$SYS/broker/...`` PUBLISHes: broker version etc.

Event classes are read by attribute name (``getattr``) so that the inventory
keeps working while the parsers grow fields; an absent attribute is no fact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import MAX_VALUE

SYS_TOPICS = {
    "$SYS/broker/version": "broker_version",
    "$SYS/broker/timestamp": "broker_build",
}
"""``$SYS`` topics kept as broker identity (Mosquitto publishes these; counters such as
uptime or clients/total are state, not identity, and are not kept)."""


@dataclass(frozen=True)
class Fact:
    side: str         # "server" | "client": whose identity this is
    protocol: str
    attribute: str
    value: str


def attr(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of *names* that *obj* has and that is not None."""
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return default


def text(v: Any) -> str:
    """A value as text: LocalizedText-like objects give their text; bytes are hex; capped."""
    if v is None:
        return ""
    t = getattr(v, "text", None)
    if t is not None and not isinstance(v, str):
        v = t
    if isinstance(v, (bytes, bytearray, memoryview)):
        v = bytes(v).hex()
    if hasattr(v, "name") and not isinstance(v, (str, int)):  # enums
        v = v.name
    s = str(v)
    return s[:MAX_VALUE]


def event_name(ev: Any) -> str:
    return type(ev).__name__.lower() if ev is not None else ""


# ---------------------------------------------------------------------------
# Modbus

def modbus_facts(ev: Any) -> list[Fact]:
    out: list[Fact] = []
    objects = getattr(ev, "objects", None)
    if objects:
        for o in objects:
            name = attr(o, "name", default=f"Object_0x{getattr(o, 'object_id', 0):02x}")
            out.append(Fact("server", "modbus", name, text(attr(o, "value", default=""))))
        lvl = attr(ev, "conformity_level_name", "conformity_level")
        if lvl is not None:
            out.append(Fact("server", "modbus", "ConformityLevel", text(lvl)))
    if getattr(ev, "function", None) == 17 and getattr(ev, "side", 1) == 1 and getattr(ev, "server_id", None) is not None:
        out.append(Fact("server", "modbus", "ServerId", "0x%02x" % ev.server_id))
        run = getattr(ev, "run_indicator", None)
        if run is not None:
            out.append(Fact("server", "modbus", "RunIndicator", "on" if run else "off"))
        # The server id's length is device-specific: keep the whole body as text
        # when it reads as text (many devices put "vendor-product-revision" there).
        body = bytes(getattr(ev, "data", b"") or getattr(ev, "additional_data", b"") or b"")
        if body:
            t = body.rstrip(b"\x00\xff").decode("latin-1")
            value = t if t and t.isprintable() else body.hex()
            out.append(Fact("server", "modbus", "ServerIdData", value[:MAX_VALUE]))
    return out


# ---------------------------------------------------------------------------
# OPC UA

def application_facts(app: Any, side: str) -> list[Fact]:
    """Facts of an ApplicationDescription (server in endpoints, client in CreateSession)."""
    if app is None:
        return []
    out = []
    for a, names in (("ApplicationUri", ("application_uri", "applicationuri", "ApplicationUri")),
                     ("ProductUri", ("product_uri", "ProductUri")),
                     ("ApplicationName", ("application_name", "ApplicationName")),
                     ("ApplicationType", ("application_type_name", "application_type", "ApplicationType"))):
        v = attr(app, *names)
        if v is not None and text(v) != "":
            out.append(Fact(side, "opcua", a, text(v)))
    return out


def certificate(obj: Any) -> Any:
    """A certificate summary (``parsers.opcua.certs.CertificateSummary``-like) from a summary or DER bytes."""
    if obj is None:
        return None
    if isinstance(obj, (bytes, bytearray, memoryview)):
        if not obj:
            return None
        try:
            from otwatch.parsers.opcua.certs import summarize
        except ImportError:   # pragma: no cover
            return None
        return summarize(bytes(obj))
    return obj


def certificate_facts(cert: Any, side: str) -> list[Fact]:
    cert = certificate(cert)
    if cert is None or getattr(cert, "error", None):
        return []
    out = []
    for a, n in (("CertificateSubject", "subject"), ("CertificateIssuer", "issuer"),
                 ("CertificateNotBefore", "not_before"), ("CertificateNotAfter", "not_after"),
                 ("CertificateKey", None), ("CertificateThumbprint", "thumbprint_sha1"),
                 ("CertificateSignature", "signature_algorithm")):
        if n is None:
            kt, ks = getattr(cert, "key_type", None), getattr(cert, "key_size", None)
            if kt or ks:
                out.append(Fact(side, "opcua", a, f"{kt or '?'} {ks or '?'}"))
            continue
        v = getattr(cert, n, None)
        if v is not None:
            out.append(Fact(side, "opcua", a, text(v)))
    ss = getattr(cert, "self_signed", None)
    if ss is not None:
        out.append(Fact(side, "opcua", "CertificateSelfSigned", "yes" if ss else "no"))
    return out


def endpoints(ev: Any) -> list[Any]:
    return list(attr(ev, "endpoints", "server_endpoints", default=()) or ())


def endpoint_policy(ep: Any) -> str:
    uri = text(attr(ep, "security_policy_uri", "SecurityPolicyUri", "security_policy", default=""))
    return uri.rsplit("#", 1)[-1] if uri else ""


def endpoint_mode(ep: Any) -> str:
    m = attr(ep, "security_mode_name", "security_mode", "SecurityMode")
    if isinstance(m, int) and not isinstance(m, bool):
        return {0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"}.get(m, str(m))
    s = text(m)
    return "None" if s in ("None_", "NONE") else s


def token_types(ep: Any) -> list[str]:
    out = []
    for t in attr(ep, "user_identity_tokens", "UserIdentityTokens", "user_tokens", default=()) or ():
        tt = attr(t, "token_type_name", "token_type", "TokenType")
        if isinstance(tt, int) and not isinstance(tt, bool):
            tt = {0: "Anonymous", 1: "UserName", 2: "Certificate", 3: "IssuedToken"}.get(tt, str(tt))
        out.append(text(tt))
    return out


def token_policies(ep: Any) -> list[tuple[str, str]]:
    """[(token type, token security policy short name)] of one endpoint."""
    out = []
    for t, tok in zip(token_types(ep), attr(ep, "user_identity_tokens", "UserIdentityTokens", "user_tokens",
                                              default=()) or ()):
        uri = text(attr(tok, "security_policy_uri", "SecurityPolicyUri", default=""))
        out.append((t, uri.rsplit("#", 1)[-1] if uri else ""))
    return out


def endpoint_summary(ep: Any) -> str:
    url = text(attr(ep, "endpoint_url", "EndpointUrl", default=""))
    return f"{url} {endpoint_policy(ep) or '?'}/{endpoint_mode(ep) or '?'} tokens={','.join(token_types(ep)) or '-'}"


def opcua_facts(ev: Any) -> list[Fact]:
    name = event_name(ev)
    out: list[Fact] = []
    eps = endpoints(ev)
    if eps:
        first = eps[0]
        out += application_facts(attr(first, "server", "Server", "application"), "server")
        out += certificate_facts(attr(first, "server_certificate", "ServerCertificate"), "server")
        for i, ep in enumerate(eps[:16]):
            out.append(Fact("server", "opcua", f"Endpoint[{i}]", endpoint_summary(ep)))
        pols = sorted({endpoint_policy(ep) for ep in eps if endpoint_policy(ep)})
        out.append(Fact("server", "opcua", "SecurityPolicies", ",".join(pols)))
        modes = sorted({endpoint_mode(ep) for ep in eps if endpoint_mode(ep)})
        out.append(Fact("server", "opcua", "SecurityModes", ",".join(modes)))
        toks = sorted({t for ep in eps for t in token_types(ep)})
        out.append(Fact("server", "opcua", "UserTokenTypes", ",".join(toks)))
    if "createsession" in name and "request" in name:
        app = attr(ev, "client_description", "client", "application")
        uri = text(attr(app, "application_uri", default="")) if app is not None else ""
        group = f"client[{uri or '?'}]."
        out += [Fact(f.side, f.protocol, group + f.attribute, f.value) for f in application_facts(app, "client")]
        sn = attr(ev, "session_name")
        if sn:
            out.append(Fact("client", "opcua", group + "SessionName", text(sn)))
    if "createsession" in name and "response" in name:
        out += certificate_facts(attr(ev, "server_certificate"), "server")
    if _is_opn(ev):
        side = "client" if _is_request(ev) else "server"
        cert = certificate(attr(ev, "sender_certificate", "certificate"))
        cf = certificate_facts(cert, side)
        if side == "client" and cf:     # a host may run several client applications: one group per certificate
            group = f"client-cert[{(getattr(cert, 'thumbprint_sha1', '') or '?')[:16]}]."
            cf = [Fact(f.side, f.protocol, group + f.attribute, f.value) for f in cf]
        out += cf
    if "hello" in name or name.endswith("hel"):
        url = attr(ev, "endpoint_url")
        if url:
            out.append(Fact("server", "opcua", "EndpointUrl(asked)", text(url)))
    if "buildinfo" in name or attr(ev, "software_version") is not None:
        for a, n in (("ManufacturerName", "manufacturer_name"), ("ProductName", "product_name"),
                     ("SoftwareVersion", "software_version"), ("BuildNumber", "build_number")):
            v = getattr(ev, n, None)
            if v:
                out.append(Fact("server", "opcua", a, text(v)))
    return out


def _is_opn(ev: Any) -> bool:
    n = event_name(ev)
    return "opensecurechannel" in n or n.endswith("opn") or "opn" in n.replace("opcua", "")


def _is_request(ev: Any) -> bool:
    n = event_name(ev)
    if "request" in n:
        return True
    if "response" in n:
        return False
    return getattr(ev, "side", 0) == 0


# ---------------------------------------------------------------------------
# MQTT

def protocol_level_name(level: Any) -> str:
    try:
        lv = int(level) & 0x7F
    except (TypeError, ValueError):
        return text(level)
    return {3: "3.1", 4: "3.1.1", 5: "5.0"}.get(lv, str(lv))


def mqtt_facts(ev: Any) -> list[Fact]:
    name = event_name(ev)
    out: list[Fact] = []
    if "connect" in name and "ack" not in name and "disconnect" not in name:
        cid = text(attr(ev, "client_id", "clientid", default=""))
        group = f"client[{cid}]."          # one host may run several MQTT clients
        out.append(Fact("client", "mqtt", group + "ClientId", cid))
        user = attr(ev, "username", "user_name")
        if user is not None:
            out.append(Fact("client", "mqtt", group + "Username", text(user)))
        lvl = attr(ev, "protocol_level", "level", "protocol_version")
        if lvl is not None:
            out.append(Fact("client", "mqtt", group + "ProtocolLevel", protocol_level_name(lvl)))
    if "publish" in name:
        topic = text(attr(ev, "topic", default=""))
        if topic in SYS_TOPICS:
            payload = attr(ev, "payload_preview", "payload", "payload_text", default=b"")
            if isinstance(payload, (bytes, bytearray, memoryview)):
                payload = bytes(payload).decode("utf-8", "backslashreplace")
            out.append(Fact("server", "mqtt", SYS_TOPICS[topic], text(payload)))
    return out


def facts(protocol: str, ev: Any) -> list[Fact]:
    if ev is None:
        return []
    if protocol == "modbus":
        return modbus_facts(ev)
    if protocol == "opcua":
        return opcua_facts(ev)
    if protocol == "mqtt":
        return mqtt_facts(ev)
    return []
