"""Device class: a best guess from behaviour, with its confidence and the reason.

``classify(asset_row, roles, behaviour, identity) -> (class, confidence, reason)``
reads what the store has gathered and applies the rules below, first match
wins.  Confidences are on a 0..1 scale (GRASSMARLIN's 1–5 / 5).  The roles
themselves (``modbus.server`` …) are set by the store from message direction:
a server that answered is certain (0.95), one that was only asked is likely
(0.6), a client that sent requests is certain.

Rules (the reason string says which fired):

1. gateway: the MAC fronts several IPs it never claimed by ARP, some of them
   off-link or active at the same time (router; the store decides), or a
   Modbus server answers for more than one unit id (TCP→RTU gateway), or a
   device is an OPC UA server and a Modbus client at once (protocol gateway);
2. scanner: a Modbus client that tried ``SCAN_MIN_FUNCTIONS`` or more
   function codes, or a host refused on ``SCAN_MIN_PORTS`` or more ports;
3. plc: a Modbus server (more certain with device identification or an
   automation vendor's OUI);
4. broker: an MQTT broker;
5. engineering workstation: a Modbus client that writes, reads device
   identification, runs diagnostics or programs;
6. hmi/scada: a Modbus client that only reads (polling), or an OPC UA client
   that reads, browses, subscribes or calls;
7. historian: an MQTT client with wildcard subscriptions that does not
   publish, or an OPC UA client doing history reads;
8. field device: an MQTT client that only publishes;
9. server: any other asset offering a service (OPC UA server, DNS …);
10. unknown.
"""
from __future__ import annotations

from .model import ICS_VENDOR_WORDS

SCAN_MIN_FUNCTIONS = 16
"""Distinct Modbus function codes from one client that mark a sweep (an HMI uses 2–4, an EWS < 12)."""
SCAN_MIN_PORTS = 8
"""Distinct refused TCP ports (RST without data) that mark a port scan."""
ENGINEERING_OPS = ("write", "diagnostic", "program", "device_id")


def _is_ics_vendor(vendor: str) -> bool:
    v = vendor.lower()
    return any(w in v for w in ICS_VENDOR_WORDS)


def classify(asset: dict, roles: dict, behaviour: dict, identity: dict, services: dict) -> tuple[str, float, str]:
    mb_srv = roles.get("modbus.server")
    mb_cli = roles.get("modbus.client")
    ua_srv = roles.get("opcua.server")
    ua_cli = roles.get("opcua.client")
    mq_brk = roles.get("mqtt.broker")
    mq_cli = roles.get("mqtt.client")
    vendor = asset.get("vendor") or ""
    b = behaviour or {}

    if asset.get("gateway"):
        why = b.get("gateway_evidence")
        return "gateway", 0.9, "one MAC in front of several IP addresses (router or gateway)" + (f": {why}" if why else "")
    if mb_srv:
        units = [u for u in (mb_srv.get("detail") or {}).get("units", []) if u not in (0, 255)]
        if len(units) > 1:
            return "gateway", 0.7, f"Modbus server answering for {len(units)} unit ids (TCP/RTU gateway)"
    if ua_srv and mb_cli:
        return "gateway", 0.7, "OPC UA server that is also a Modbus client (protocol gateway)"

    fcs = b.get("modbus_fcs") or []
    if mb_cli and len(fcs) >= SCAN_MIN_FUNCTIONS:
        return "scanner", 0.8, f"tried {len(fcs)} different Modbus function codes (function-code sweep)"
    refused = b.get("refused_ports", 0)
    if refused >= SCAN_MIN_PORTS:
        return "scanner", 0.7, f"refused on {refused} TCP ports (port scan)"

    if mb_srv:
        has_id = any(k[0] == "modbus" for k in identity)
        conf = 0.7 + (0.15 if has_id else 0) + (0.1 if _is_ics_vendor(vendor) else 0)
        why = ["Modbus server"]
        if has_id:
            prod = identity.get(("modbus", "ProductName")) or identity.get(("modbus", "VendorName"))
            why.append("device identification" + (f" ({prod['value']})" if prod else ""))
        if _is_ics_vendor(vendor):
            why.append(f"automation vendor OUI ({vendor})")
        return "plc", round(min(conf, 0.95), 2), ", ".join(why)
    if mq_brk:
        return "broker", round(mq_brk.get("confidence", 0.6), 2), "accepts MQTT connections"

    mops = b.get("modbus_ops") or {}
    if mb_cli:
        eng = {k: v for k, v in mops.items() if k in ENGINEERING_OPS and v}
        if eng:
            what = ", ".join(f"{k} x{v}" for k, v in sorted(eng.items()))
            return "engineering workstation", 0.7, f"Modbus client that changes or inspects controllers ({what})"
        reads = mops.get("read", 0)
        return "hmi/scada", 0.7 if reads >= 10 else 0.5, f"Modbus client that only reads ({reads} reads: polling)"
    uops = b.get("opcua_ops") or {}
    if ua_cli and uops.get("history_read"):
        return "historian", 0.6, "OPC UA client doing history reads"
    if ua_cli and any(uops.get(k) for k in ("read", "browse", "subscribe", "publish", "call", "write")):
        used = ", ".join(sorted(k for k in ("read", "browse", "subscribe", "write", "call") if uops.get(k)))
        return "hmi/scada", 0.6, f"OPC UA client ({used})"
    if mq_cli:
        pubs, subs, wild = b.get("mqtt_pub", 0), b.get("mqtt_sub", 0), b.get("mqtt_wildcard", 0)
        if wild and not pubs:
            return "historian", 0.6, f"MQTT client with wildcard subscriptions ({subs} filters), publishes nothing"
        if pubs and not subs:
            return "field device", 0.5, f"MQTT client that only publishes ({pubs} topics)"
    if ua_cli:
        return "hmi/scada", 0.4, "OPC UA client"
    if ua_srv or services:
        what = ", ".join(sorted({f"{k[0]} ({k[1]}/{k[2]})" for k in services}))[:120] or "opcua"
        return "server", 0.5, f"offers {what}"
    if mq_cli:
        return "unknown", 0.2, "MQTT client that publishes and subscribes"
    return "unknown", 0.0, "no protocol behaviour seen"
