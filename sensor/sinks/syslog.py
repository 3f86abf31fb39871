"""Syslog destinations: URL parsing and the UDP, TCP (RFC 6587) and TLS (RFC 5425) transports.

A destination is a URL::

    udp://collector:514?format=rfc5424
    tcp://collector:6514?format=cef&min_severity=medium
    tls://collector:6514?format=leef&ca=/etc/otwatch/ca.pem&cert=/etc/otwatch/me.pem&key=/etc/otwatch/me.key
    file:///var/log/otwatch/alerts.jsonl?max_mb=100&keep=5        (JSON lines, rotated; format=json default)

Query keys: ``format`` (rfc5424 | cef | leef | json; default rfc5424),
``min_severity`` (info .. critical; default info), ``facility`` (default
local4), ``hostname`` (what the header says; default this host's name),
``sd_id`` (default ``otwatch@32473``), and for TLS ``ca`` (CA bundle; default
the system store), ``cert``/``key`` (client certificate), ``servername`` (the
name checked in the server's certificate; default the URL host).  TLS always
verifies the server's certificate.

Transports never block the capture: they are used only by a destination's own
delivery thread (sensor/sinks/deliver.py), with connect and send timeouts.
"""
from __future__ import annotations

import fcntl
import socket
import ssl
import struct
import termios
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ..alerts.model import SEVERITIES
from .formats import DEFAULT_FACILITY, FACILITIES, FORMATS, PEN, SD_NAME

SCHEMES = ("udp", "tcp", "tls", "file")
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}   # RFC 5426, RFC 6587 (customary), RFC 5425
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a collector's TCP/TLS handshake before trying again later."""
SEND_TIMEOUT = 5.0
"""Seconds a send may block on a full socket buffer (a slow collector) before the
connection is dropped and the records resent later."""
UDP_MAX = 65000
"""Largest datagram sent (RFC 5426 §3.2: IPv4 UDP payload limit); longer messages are cut."""


class DestinationError(ValueError):
    """A destination URL that cannot be used (said in one line)."""


@dataclass(frozen=True)
class Destination:
    url: str
    scheme: str
    host: str
    port: int
    format: str = "rfc5424"
    min_severity: str = "info"
    facility: str = DEFAULT_FACILITY
    hostname: str = ""
    sd_id: str = f"{SD_NAME}@{PEN}"
    ca: str = ""
    cert: str = ""
    key: str = ""
    servername: str = ""
    path: str = ""          # file://
    max_bytes: int = 100 * 1024 * 1024
    keep: int = 5

    @property
    def name(self) -> str:
        """The cursor name in the outbox (stable across restarts for the same URL)."""
        return ("file:" if self.scheme == "file" else "syslog:") + self.url


def _parse_file(url: str, u) -> Destination:
    q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    unknown = sorted(set(q) - {"format", "min_severity", "max_mb", "keep"})
    if unknown:
        raise DestinationError(f"{url}: unknown option(s) {', '.join(unknown)} (known: format, keep, max_mb, min_severity)")
    if not u.path or u.netloc:
        raise DestinationError(f"{url}: a file destination is file:///absolute/path")
    fmt = q.get("format", "json")
    if fmt not in FORMATS:
        raise DestinationError(f"{url}: format must be one of {', '.join(FORMATS)}")
    sev = q.get("min_severity", "info")
    if sev not in SEVERITIES:
        raise DestinationError(f"{url}: min_severity must be one of {', '.join(SEVERITIES)}")
    try:
        max_mb = float(q.get("max_mb", "100"))
        keep = int(q.get("keep", "5"))
        if max_mb <= 0 or not 0 <= keep <= 1000:
            raise ValueError
    except ValueError:
        raise DestinationError(f"{url}: max_mb must be a positive number and keep 0..1000") from None
    return Destination(url, "file", "", 0, fmt, sev, path=u.path, max_bytes=int(max_mb * 1024 * 1024), keep=keep)


def parse(url: str) -> Destination:
    u = urlsplit(url)
    if u.scheme not in SCHEMES:
        raise DestinationError(f"{url}: scheme must be one of {', '.join(SCHEMES)}")
    if u.scheme == "file":
        return _parse_file(url, u)
    if not u.hostname:
        raise DestinationError(f"{url}: no host")
    try:
        port = u.port or DEFAULT_PORTS[u.scheme]
    except ValueError:
        raise DestinationError(f"{url}: bad port") from None
    q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    known = {"format", "min_severity", "facility", "hostname", "sd_id", "ca", "cert", "key", "servername"}
    unknown = sorted(set(q) - known)
    if unknown:
        raise DestinationError(f"{url}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    fmt = q.get("format", "rfc5424")
    if fmt not in FORMATS:
        raise DestinationError(f"{url}: format must be one of {', '.join(FORMATS)}")
    sev = q.get("min_severity", "info")
    if sev not in SEVERITIES:
        raise DestinationError(f"{url}: min_severity must be one of {', '.join(SEVERITIES)}")
    fac = q.get("facility", DEFAULT_FACILITY)
    if fac not in FACILITIES:
        raise DestinationError(f"{url}: facility must be one of {', '.join(FACILITIES)}")
    if u.scheme != "tls" and any(k in q for k in ("ca", "cert", "key", "servername")):
        raise DestinationError(f"{url}: ca/cert/key/servername only apply to tls://")
    if bool(q.get("cert")) != bool(q.get("key")):
        raise DestinationError(f"{url}: a client certificate needs both cert and key")
    return Destination(url, u.scheme, u.hostname, port, fmt, sev, fac, q.get("hostname", ""),
                       q.get("sd_id", f"{SD_NAME}@{PEN}"), q.get("ca", ""), q.get("cert", ""), q.get("key", ""),
                       q.get("servername", ""))


class UDPTransport:
    """One datagram per message.  Delivery is best effort by nature (RFC 5426): a
    collector that is down is noticed only through ICMP port-unreachable, which a
    connected UDP socket reports as ConnectionRefusedError on a later send."""

    def __init__(self, d: Destination):
        self.d = d
        self.sock: socket.socket | None = None

    def connect(self) -> None:
        info = socket.getaddrinfo(self.d.host, self.d.port, type=socket.SOCK_DGRAM)[0]
        s = socket.socket(info[0], socket.SOCK_DGRAM)
        s.settimeout(SEND_TIMEOUT)
        s.connect(info[4])
        self.sock = s

    def send(self, msg: str) -> None:
        data = msg.encode("utf-8", "backslashreplace")[:UDP_MAX]
        self.sock.send(data)

    def drained(self) -> bool:
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class TCPTransport:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG`` (no newline framing)."""

    def __init__(self, d: Destination):
        self.d = d
        self.sock: socket.socket | None = None
        self._raw: socket.socket | None = None

    def _open(self) -> socket.socket:
        s = socket.create_connection((self.d.host, self.d.port), timeout=CONNECT_TIMEOUT)
        s.settimeout(SEND_TIMEOUT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return s

    def connect(self) -> None:
        self._raw = self.sock = self._open()

    def send(self, msg: str) -> None:
        data = msg.encode("utf-8", "backslashreplace")
        self.sock.sendall(b"%d " % len(data) + data)

    def drained(self) -> bool:
        """True when the peer's TCP stack has acknowledged every byte we sent (Linux
        SIOCOUTQ: bytes in the send queue not yet acknowledged).  Only then may the
        cursor move: a collector that dies loses nothing we count as delivered."""
        try:
            n = struct.unpack("i", fcntl.ioctl(self._raw.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return False
        return n == 0

    def alive(self) -> bool:
        """False when the peer has closed the connection (a readable socket with no data)."""
        try:
            self._raw.setblocking(False)
            try:
                data = self._raw.recv(1, socket.MSG_PEEK)
                return data != b""
            except BlockingIOError:
                return True
            finally:
                self._raw.settimeout(SEND_TIMEOUT)
        except OSError:
            return False

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = self._raw = None


class TLSTransport(TCPTransport):
    """RFC 5425: octet-counted syslog over TLS 1.2+, the server's certificate verified."""

    def connect(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.d.ca or None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.d.cert:
            ctx.load_cert_chain(self.d.cert, self.d.key)
        raw = self._open()
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=self.d.servername or self.d.host)
        except BaseException:
            raw.close()
            raise
        self._raw = self.sock          # same descriptor: SIOCOUTQ counts the TLS records' bytes

    def alive(self) -> bool:
        """An SSL socket cannot peek; a non-blocking read consumes only TLS housekeeping
        (TLS 1.3 session tickets) — a syslog collector sends no application data."""
        s = self.sock
        if s is None:
            return False
        try:
            s.setblocking(False)
            try:
                return s.recv(1) != b""
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            finally:
                s.settimeout(SEND_TIMEOUT)
        except (OSError, ssl.SSLError):
            return False


class FileTransport:
    """JSON lines (or any format, one record a line) appended to a file, rotated by size:
    ``alerts.jsonl`` → ``alerts.jsonl.1`` → … → ``.keep`` (the oldest deleted).  A record
    counts as delivered once flushed and fsync'ed."""

    def __init__(self, d: Destination):
        self.d = d
        self.fh = None
        self._dirty = False

    def connect(self) -> None:
        import os

        os.makedirs(os.path.dirname(self.d.path) or ".", exist_ok=True)
        self.fh = open(self.d.path, "a", encoding="utf-8")

    def _rotate(self) -> None:
        import os

        self.fh.close()
        p, keep = self.d.path, self.d.keep
        if keep == 0:
            os.remove(p)
        else:
            for i in range(keep - 1, 0, -1):
                if os.path.exists(f"{p}.{i}"):
                    os.replace(f"{p}.{i}", f"{p}.{i + 1}")
            os.replace(p, f"{p}.1")
        self.fh = open(p, "a", encoding="utf-8")

    def send(self, msg: str) -> None:
        if self.fh.tell() + len(msg) + 1 > self.d.max_bytes and self.fh.tell() > 0:
            self.drained()
            self._rotate()
        self.fh.write(msg + "\n")
        self._dirty = True

    def drained(self) -> bool:
        import os

        if self._dirty:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self._dirty = False
        return True

    def close(self) -> None:
        if self.fh is not None:
            try:
                self.drained()
            finally:
                self.fh.close()
                self.fh = None


def transport(d: Destination):
    return {"udp": UDPTransport, "tcp": TCPTransport, "tls": TLSTransport, "file": FileTransport}[d.scheme](d)
