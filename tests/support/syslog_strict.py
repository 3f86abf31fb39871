"""Strict parsers for what the collector receives, written from the specs (not from our formatter).

* RFC 5424 §6 ABNF: HEADER SP STRUCTURED-DATA [SP MSG].
* CEF (ArcSight CEF rev. 25): 7 header fields split on unescaped ``|``; the
  extension is ``key=value`` pairs, a value ends where the next `` key=`` starts;
  only ``\\\\``, ``\\=``, ``\\n``, ``\\r`` (values) and ``\\\\``, ``\\|`` (header) are legal escapes.
* LEEF 2.0: ``LEEF:2.0|Vendor|Product|Version|EventID|Delim|attrs``.
Each raises ValueError on anything the spec does not allow, and returns fields with escapes undone.
"""
from __future__ import annotations

import re

_HDR = re.compile(r"<(\d{1,3})>1 (\S+) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) ")
_TS = re.compile(r"-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$")
_SDNAME = re.compile(r'[\x21-\x7e]{1,32}')


def _sdname_ok(s: str) -> bool:
    return bool(_SDNAME.fullmatch(s)) and not any(c in s for c in '= ]"')


def parse_rfc5424(line: str) -> dict:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in line):
        raise ValueError("control character in message")
    m = _HDR.match(line)
    if not m:
        raise ValueError(f"bad header: {line[:80]!r}")
    pri = int(m.group(1))
    if pri > 191:
        raise ValueError("PRI out of range")
    if not _TS.match(m.group(2)):
        raise ValueError(f"bad timestamp {m.group(2)!r}")
    for h in m.groups()[2:]:
        if any(not (0x21 <= ord(c) <= 0x7E) for c in h):
            raise ValueError(f"non-printable header field {h!r}")
    rest = line[m.end():]
    sd: dict = {}
    if rest.startswith("-"):
        i = 1
    else:
        i = 0
        if not rest.startswith("["):
            raise ValueError("no structured data")
        while i < len(rest) and rest[i] == "[":
            j = i + 1
            k = j
            while k < len(rest) and rest[k] not in " ]":
                k += 1
            sdid = rest[j:k]
            if not _sdname_ok(sdid.split("@")[0]) or ("@" in sdid and not sdid.split("@", 1)[1]):
                raise ValueError(f"bad SD-ID {sdid!r}")
            params: dict = {}
            i = k
            while rest[i] == " ":
                i += 1
                eq = rest.index("=", i)
                name = rest[i:eq]
                if not _sdname_ok(name):
                    raise ValueError(f"bad PARAM-NAME {name!r}")
                if rest[eq + 1] != '"':
                    raise ValueError("PARAM-VALUE not quoted")
                p = eq + 2
                val = []
                while True:
                    c = rest[p]
                    if c == "\\":
                        nxt = rest[p + 1]
                        if nxt in '"\\]':
                            val.append(nxt)
                            p += 2
                            continue
                        val.append(c)   # RFC: a backslash before another char is kept as is
                        p += 1
                        continue
                    if c == '"':
                        break
                    if c == "]":
                        raise ValueError("unescaped ] in PARAM-VALUE")
                    val.append(c)
                    p += 1
                params[name] = "".join(val)
                i = p + 1
            if rest[i] != "]":
                raise ValueError("SD-ELEMENT not closed")
            sd[sdid] = params
            i += 1
    msg = rest[i:]
    if msg:
        if not msg.startswith(" "):
            raise ValueError("no space before MSG")
        msg = msg[1:]
    return {"pri": pri, "timestamp": m.group(2), "hostname": m.group(3), "app": m.group(4), "procid": m.group(5),
            "msgid": m.group(6), "sd": sd, "msg": msg}


def _split_unescaped(s: str, sep: str, n: int) -> list[str]:
    out, cur, i = [], [], 0
    while i < len(s) and len(out) < n:
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\|":
                raise ValueError(f"illegal header escape at {i}")
            cur.append(s[i + 1])
            i += 2
            continue
        if c == sep:
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    out.append(s[i:] if len(out) == n else "".join(cur))
    return out


_KEY = re.compile(r"(?:^| )([A-Za-z0-9_]+)=")


def parse_cef(s: str) -> dict:
    if not s.startswith("CEF:0|"):
        raise ValueError("not CEF:0")
    parts = _split_unescaped(s[6:], "|", 6)
    if len(parts) != 7:
        raise ValueError("CEF needs 7 header fields")
    vendor, product, version, sig, name, sev, ext = parts
    if not sev.isdigit() or not 0 <= int(sev) <= 10:
        raise ValueError(f"bad severity {sev!r}")
    # find keys: a key is [A-Za-z0-9_]+ followed by an unescaped '=' at the start or after a space
    fields: dict = {}
    positions = []
    i = 0
    while i < len(ext):
        m = _KEY.match(ext, i) if i == 0 else None
        if ext[i] == "\\":
            i += 2
            continue
        if i == 0 or ext[i] == " ":
            m = _KEY.match(ext, i)
            if m:
                positions.append((m.start(1), m.end(), m.group(1)))
                i = m.end()
                continue
        i += 1
    for n, (ks, vs, key) in enumerate(positions):
        ve = positions[n + 1][0] - 1 if n + 1 < len(positions) else len(ext)
        raw = ext[vs:ve]
        val, j = [], 0
        while j < len(raw):
            c = raw[j]
            if c == "\\":
                if j + 1 >= len(raw) or raw[j + 1] not in "\\=nr":
                    raise ValueError(f"illegal extension escape in {key}")
                val.append({"n": "\n", "r": "\r"}.get(raw[j + 1], raw[j + 1]))
                j += 2
                continue
            if c == "=":
                raise ValueError(f"unescaped = in value of {key}")
            val.append(c)
            j += 1
        if key in fields:
            raise ValueError(f"duplicate key {key}")
        fields[key] = "".join(val)
    return {"vendor": vendor, "product": product, "version": version, "signature": sig, "name": name,
            "severity": int(sev), "ext": fields}


def parse_leef(s: str) -> dict:
    if not s.startswith("LEEF:2.0|"):
        raise ValueError("not LEEF:2.0")
    parts = _split_unescaped(s[9:], "|", 5)
    if len(parts) != 6:
        raise ValueError("LEEF 2.0 needs 6 header fields")
    vendor, product, version, event, delim, attrs = parts
    if delim.startswith(("x", "0x")):
        d = chr(int(delim.split("x", 1)[1], 16))
    elif len(delim) == 1:
        d = delim
    else:
        raise ValueError(f"bad delimiter {delim!r}")
    fields: dict = {}
    for a in attrs.split(d):
        if "=" not in a:
            raise ValueError(f"attribute without =: {a!r}")
        k, v = a.split("=", 1)
        if not re.fullmatch(r"[A-Za-z0-9_]+", k):
            raise ValueError(f"bad key {k!r}")
        if any(ord(c) < 0x20 for c in v):
            raise ValueError("control character in value")
        if k in fields:
            raise ValueError(f"duplicate key {k}")
        fields[k] = v
    return {"vendor": vendor, "product": product, "version": version, "event": event, "attrs": fields}
