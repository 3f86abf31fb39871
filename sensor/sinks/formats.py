"""Wire formats for the outbox records: RFC 5424 with structured data, CEF, LEEF 2.0, JSON lines.

Each formatter takes a ``Record`` and returns ``str`` (no framing: the
transport adds RFC 6587 octet counting or sends one datagram).  Every string
that can come from the wire (a topic, a device name, a client id, a capture
file name) is first made inert with ``parsers.common.escape`` — control
characters, DEL, C1, U+2028/2029 and backslashes become ``\\xNN`` text, so no
raw newline, ESC or NUL ever reaches a collector — and then escaped for the
format's own syntax:

* RFC 5424 §6.3.3: inside a PARAM-VALUE, ``"``, ``\\`` and ``]`` are escaped
  with a backslash; header fields are printable US-ASCII with fixed maximum
  lengths (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32), ``-`` when empty.
* CEF (ArcSight Common Event Format rev. 25): header fields escape ``\\`` and
  ``|``; extension values escape ``\\`` and ``=`` (newlines cannot occur after
  ``escape``).
* LEEF 2.0 (IBM QRadar): attributes separated by a declared delimiter; ours is
  ``^`` (LEEF's default tab would put a control character on the line), and a
  ``^`` inside a value is written ``\\x5e``; header fields escape ``|``.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from otwatch.parsers.common import escape

from .record import Record

PEN = 32473
"""Enterprise number for the SD-ID: 32473 is reserved for documentation (RFC 5612);
a site with its own IANA number configures it (``sd_id``)."""
SD_NAME = "otwatch"
VENDOR = "otwatch"
PRODUCT = "otwatch"
FIELD_LIMIT = 1024
"""Characters kept per field after escaping (a 1 MiB topic does not make a 1 MiB syslog line)."""

# syslog severities (RFC 5424 table 2) and CEF/LEEF 0-10 scales for ours
SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
CEF_SEVERITY = {"critical": 10, "high": 8, "medium": 5, "low": 3, "info": 1}
FACILITIES = {"kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "local0": 16, "local1": 17, "local2": 18,
              "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23}
DEFAULT_FACILITY = "local4"

_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")
_SD_NAME_BAD = re.compile(r'[^\x21-\x7e]|[= \]"]')


def _inert(v) -> str:
    if isinstance(v, float):
        return repr(v)
    return escape(str(v), FIELD_LIMIT)


def _header(v: str, limit: int) -> str:
    v = _PRINTUSASCII.sub("_", v)[:limit]
    return v or "-"


def _sd_value(v) -> str:
    return _inert(v).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _sd_name(v: str) -> str:
    return _SD_NAME_BAD.sub("_", v)[:32] or "_"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fields(r: Record) -> dict:
    """The flat fields every syslog-like format carries, in a fixed order."""
    b = r.body
    out = {"id": r.id, "seq": r.seq, "kind": r.kind, "severity": r.severity}
    if r.kind == "alert":
        if b.get("id"):
            out["alert_id"] = b["id"]
        ev = (b.get("evidence") or [{}])
        first = ev[0] if ev else {}
        for k in ("rule", "category", "src", "dst", "src_zone", "dst_zone", "src_asset", "dst_asset",
                  "protocol", "port", "technique", "count", "first_ts", "last_ts", "status"):
            v = b.get(k)
            if v not in (None, ""):
                out[k] = v
        if first:
            out["source"] = first.get("source", "")
            out["frame"] = first.get("frame", 0)
            out["flow_id"] = first.get("flow_id", 0)
        out["frames"] = ",".join(str(e.get("frame", "")) for e in ev)
    else:
        for k, v in sorted(b.items()):
            if k != "message" and isinstance(v, (str, int, float)):
                out[k] = v
    return out


def message(r: Record) -> str:
    m = r.body.get("message")
    return r.kind if m is None else m


def rfc5424(r: Record, hostname: str = "-", app: str = "otwatch", procid: str = "-",
            facility: str = DEFAULT_FACILITY, sd_id: str = f"{SD_NAME}@{PEN}") -> str:
    pri = FACILITIES.get(facility, 20) * 8 + SYSLOG_SEVERITY.get(r.severity, 6)
    params = " ".join(f'{_sd_name(k)}="{_sd_value(v)}"' for k, v in fields(r).items())
    sd = f"[{_sd_name(sd_id) if '@' not in sd_id else sd_id} {params}]"
    msg = _inert(message(r))
    return (f"<{pri}>1 {_iso(r.ts)} {_header(hostname, 255)} {_header(app, 48)} {_header(procid, 128)} "
            f"{_header(r.kind, 32)} {sd} \ufeff{msg}")


def _cef_hdr(v) -> str:
    return _inert(v).replace("\\", "\\\\").replace("|", "\\|")


def _cef_val(v) -> str:
    return _inert(v).replace("\\", "\\\\").replace("=", "\\=")


_CEF_KEYS = {"src": "src", "dst": "dst", "port": "dpt", "protocol": "app", "category": "cat", "count": "cnt",
             "id": "externalId"}
_CEF_CUSTOM = (("src_zone", "cs1", "srcZone"), ("dst_zone", "cs2", "dstZone"), ("technique", "cs3", "attackTechnique"),
               ("source", "cs4", "evidenceSource"), ("frames", "cs5", "evidenceFrames"), ("rule", "cs6", "rule"))


_CEF_ASSET = (("asset_id", "cs1", "assetId"), ("attribute", "cs2", "attribute"), ("old", "cs3", "oldValue"),
              ("capture", "cs4", "evidenceSource"), ("new_value", "cs5", "newValue"), ("event", "cs6", "event"))
"""An ``asset`` record's own fields in CEF's custom string slots (each labelled, as CEF asks)."""


def event_id(r: Record, f: dict) -> str:
    """What happened, for CEF's Signature ID and LEEF's EventID: the alert's rule, an asset record's
    change (``asset.new``, ``identity.changed`` …), else the record's kind."""
    if "rule" in f:
        return str(f["rule"])
    if r.kind == "asset" and f.get("event"):
        return str(f["event"])
    return r.kind


def _cef_asset(f: dict, ext: list) -> None:
    f = dict(f)
    f["new_value"] = next((f[k] for k in ("new", "value", "role") if k in f), None)
    if f.get("ip"):
        ext.append(f"src={_cef_val(f['ip'])}")
    if f.get("mac"):
        ext.append(f"smac={_cef_val(f['mac'])}")
    if f.get("frame"):
        ext.append(f"cn2Label=frame cn2={int(f['frame'])}")
    for k, slot, label in _CEF_ASSET:
        if f.get(k) not in (None, ""):
            ext.append(f"{slot}Label={label}")
            ext.append(f"{slot}={_cef_val(f[k])}")


def cef(r: Record, version: str = "0") -> str:
    f = fields(r)
    sig = event_id(r, f)
    name = message(r)
    ext = [f"rt={int(r.ts * 1000)}"]
    if r.kind == "asset":
        _cef_asset(f, ext)
        f = {k: v for k, v in f.items() if k in ("id", "protocol", "port")}
    for k, ck in _CEF_KEYS.items():
        if k in f:
            ext.append(f"{ck}={_cef_val(f[k])}")
    if "first_ts" in f:
        ext.append(f"start={int(float(f['first_ts']) * 1000)}")
    if "last_ts" in f:
        ext.append(f"end={int(float(f['last_ts']) * 1000)}")
    for k, slot, label in _CEF_CUSTOM:
        if k in f:
            ext.append(f"{slot}Label={label}")
            ext.append(f"{slot}={_cef_val(f[k])}")
    ext.append(f"cn1Label=seq cn1={r.seq}")
    ext.append(f"msg={_cef_val(name)}")
    return (f"CEF:0|{VENDOR}|{PRODUCT}|{_cef_hdr(version)}|{_cef_hdr(sig)}|{_cef_hdr(name)}|"
            f"{CEF_SEVERITY.get(r.severity, 1)}|" + " ".join(ext))


_LEEF_KEYS = {"src": "src", "dst": "dst", "port": "dstPort", "protocol": "proto", "category": "cat"}


LEEF_DELIMITER = "^"


def _leef_val(v) -> str:
    return _inert(v).replace(LEEF_DELIMITER, "\\x5e")   # control characters are already \xNN text


def leef(r: Record, version: str = "0") -> str:
    f = fields(r)
    attrs = [("devTime", str(int(r.ts * 1000))), ("devTimeFormat", "epoch"),   # QRadar: epoch in milliseconds
             ("sev", str(CEF_SEVERITY.get(r.severity, 1)))]
    for k, lk in _LEEF_KEYS.items():
        if k in f:
            attrs.append((lk, _leef_val(f[k])))
    for k, v in f.items():
        if k not in _LEEF_KEYS:
            attrs.append((k, _leef_val(v)))
    attrs.append(("msg", _leef_val(message(r))))
    event = event_id(r, f)
    return (f"LEEF:2.0|{VENDOR}|{PRODUCT}|{_cef_hdr(version)}|{_cef_hdr(event)}|{LEEF_DELIMITER}|"
            + LEEF_DELIMITER.join(f"{k}={v}" for k, v in attrs))


def jsonl(r: Record) -> str:
    """One JSON object: the record with its body; non-ASCII kept, C1 and U+2028/2029 as \\u escapes."""
    s = json.dumps({"seq": r.seq, "id": r.id, "kind": r.kind, "severity": r.severity, "ts": r.ts, "body": r.body},
                   ensure_ascii=False, separators=(",", ":"), default=str)
    return re.sub("[\u0080-\u009f\u2028\u2029]", lambda m: "\\u%04x" % ord(m.group()), s)


def syslog_line(fmt: str, r: Record, hostname: str = "-", app: str = "otwatch",
                facility: str = DEFAULT_FACILITY, sd_id: str = f"{SD_NAME}@{PEN}") -> str:
    """The syslog message for *r* in *fmt*: RFC 5424 as it is; CEF, LEEF and JSON as the
    MSG of an RFC 5424 message with no structured data (how collectors expect them)."""
    if fmt == "rfc5424":
        return rfc5424(r, hostname, app, facility=facility, sd_id=sd_id)
    pri = FACILITIES.get(facility, 20) * 8 + SYSLOG_SEVERITY.get(r.severity, 6)
    return (f"<{pri}>1 {_iso(r.ts)} {_header(hostname, 255)} {_header(app, 48)} - {_header(r.kind, 32)} - "
            + FORMATS[fmt](r))


FORMATS = {"rfc5424": rfc5424, "cef": cef, "leef": leef, "json": jsonl}
