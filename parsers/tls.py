"""TLS handshake metadata, for MQTT over TLS (8883) and any other TLS flow.

The engine hands over the first payload bytes of each direction;
``parse_client_hello`` / ``parse_server_hello`` read what the hello exposes in
clear: record and handshake versions, the supported_versions extension (how TLS
1.3 is negotiated), SNI, ALPN and the cipher suites.  Plain Python (this runs
once per flow, not per packet).  Never raises: ``None`` when the bytes are not
that hello; ``truncated=True`` when the hello continues past the bytes given
(the fields read so far are kept).

Layout (RFC 8446 §5.1, §4.1.2)::

    record:     type(1)=22  version(2)  length(2)  fragment
    handshake:  type(1)=1|2  length(3)  body
    ClientHello body: version(2) random(32) session_id<0..32> cipher_suites<2..2^16-2>
                      compression<1..2^8-1> extensions<0..2^16-1>
    ServerHello body: version(2) random(32) session_id<0..32> cipher_suite(2)
                      compression(1) extensions<0..2^16-1>
"""
from __future__ import annotations

from dataclasses import dataclass

RECORD_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
EXT_SERVER_NAME = 0          # RFC 6066 §3
EXT_ALPN = 16                # RFC 7301
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1
SNI_HOST_NAME = 0
MAX_RECORDS = 16             # handshake records joined to rebuild one hello (a hello is < 64 KiB)

VERSION_NAMES = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def version_name(version: int | None) -> str | None:
    if version is None:
        return None
    return VERSION_NAMES.get(version, "0x%04x" % version)


def is_grease(value: int) -> bool:
    """RFC 8701 reserved values (0x0A0A, 0x1A1A, ...), sent to keep peers tolerant."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass(frozen=True)
class TLSClientHello:
    record_version: int
    """Version in the record header (usually 0x0301 or 0x0303)."""
    handshake_version: int | None = None
    """legacy_version of the ClientHello (0x0303 for TLS 1.2 and 1.3)."""
    supported_versions: tuple = ()
    """supported_versions extension, GREASE removed; offers TLS 1.3 when it holds 0x0304."""
    sni: str | None = None
    """server_name host name (UTF-8, invalid bytes as \\xNN; escape before display)."""
    alpn: tuple = ()
    """ALPN protocol names offered (e.g. "mqtt", "x-amzn-mqtt-ca")."""
    cipher_suites: int = 0
    """Number of cipher suites offered, GREASE excluded."""
    truncated: bool = False
    """The hello continues past the bytes given."""

    @property
    def max_version(self) -> str | None:
        """Highest version offered, as a name."""
        return version_name(max(self.supported_versions) if self.supported_versions else self.handshake_version)


@dataclass(frozen=True)
class TLSServerHello:
    record_version: int
    handshake_version: int | None = None
    """legacy_version of the ServerHello (0x0303 for TLS 1.3)."""
    selected_version: int | None = None
    """supported_versions extension (TLS 1.3), else None."""
    cipher_suite: int | None = None
    alpn: str | None = None
    """ALPN protocol selected."""
    truncated: bool = False

    @property
    def version(self) -> str | None:
        """Negotiated version, as a name."""
        return version_name(self.selected_version or self.handshake_version)


class _Short(Exception):
    pass


class _R:
    __slots__ = ("b", "p", "e")

    def __init__(self, b: bytes, p: int = 0, e: int | None = None) -> None:
        self.b, self.p, self.e = b, p, len(b) if e is None else e

    def take(self, n: int) -> bytes:
        if self.p + n > self.e:
            raise _Short
        out = self.b[self.p : self.p + n]
        self.p += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vec(self, lensize: int) -> "_R":
        n = int.from_bytes(self.take(lensize), "big")
        if self.p + n > self.e:
            raise _Short
        sub = _R(self.b, self.p, self.p + n)
        self.p += n
        return sub


def _handshake(data, want: int):
    """Join the handshake records at the start of *data*: (record version, body, truncated) or None."""
    try:
        data = bytes(data)
    except (TypeError, ValueError):
        return None
    if len(data) < 6 or data[0] != RECORD_HANDSHAKE or data[1] != 3 or data[5] != want:
        return None
    record_version = int.from_bytes(data[1:3], "big")
    frags = []
    p = 0
    for _ in range(MAX_RECORDS):
        if p + 5 > len(data) or data[p] != RECORD_HANDSHAKE:
            break
        n = int.from_bytes(data[p + 3 : p + 5], "big")
        frags.append(data[p + 5 : p + 5 + n])
        p += 5 + n
        hs = b"".join(frags)
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            break
    hs = b"".join(frags)
    total = int.from_bytes(hs[1:4], "big") if len(hs) >= 4 else 0
    return record_version, hs[4 : 4 + total], len(hs) < 4 + total


def _text(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def parse_client_hello(data) -> TLSClientHello | None:
    """ClientHello metadata from the first client bytes, or None if they are not one."""
    hs = _handshake(data, HANDSHAKE_CLIENT_HELLO)
    if hs is None:
        return None
    record_version, body, truncated = hs
    f: dict = {}
    try:
        r = _R(body)
        f["handshake_version"] = r.u16()
        r.take(32)
        r.vec(1)
        suites = r.vec(2)
        n = 0
        while suites.e - suites.p >= 2:
            if not is_grease(suites.u16()):
                n += 1
        f["cipher_suites"] = n
        r.vec(1)
        if r.p == r.e:
            return TLSClientHello(record_version, truncated=truncated, **f)
        exts = r.vec(2)
        while exts.p < exts.e:
            etype = exts.u16()
            ext = exts.vec(2)
            if etype == EXT_SERVER_NAME:
                names = ext.vec(2)
                while names.p < names.e:
                    ntype = names.u8()
                    name = names.vec(2)
                    if ntype == SNI_HOST_NAME and "sni" not in f:
                        f["sni"] = _text(name.take(name.e - name.p))
            elif etype == EXT_ALPN:
                protos = ext.vec(2)
                alpn = []
                while protos.p < protos.e:
                    proto = protos.vec(1)
                    alpn.append(_text(proto.take(proto.e - proto.p)))
                f["alpn"] = tuple(alpn)
            elif etype == EXT_SUPPORTED_VERSIONS:
                vers = ext.vec(1)
                out = []
                while vers.e - vers.p >= 2:
                    v = vers.u16()
                    if not is_grease(v):
                        out.append(v)
                f["supported_versions"] = tuple(out)
    except _Short:
        truncated = True
    return TLSClientHello(record_version, truncated=truncated, **f)


def parse_server_hello(data) -> TLSServerHello | None:
    """ServerHello metadata from the first server bytes, or None if they are not one."""
    hs = _handshake(data, HANDSHAKE_SERVER_HELLO)
    if hs is None:
        return None
    record_version, body, truncated = hs
    f: dict = {}
    try:
        r = _R(body)
        f["handshake_version"] = r.u16()
        r.take(32)
        r.vec(1)
        f["cipher_suite"] = r.u16()
        r.u8()
        if r.p == r.e:
            return TLSServerHello(record_version, truncated=truncated, **f)
        exts = r.vec(2)
        while exts.p < exts.e:
            etype = exts.u16()
            ext = exts.vec(2)
            if etype == EXT_SUPPORTED_VERSIONS:
                f["selected_version"] = ext.u16()
            elif etype == EXT_ALPN:
                protos = ext.vec(2)
                proto = protos.vec(1)
                f["alpn"] = _text(proto.take(proto.e - proto.p))
    except _Short:
        truncated = True
    return TLSServerHello(record_version, truncated=truncated, **f)
