"""Evidence pcaps: one small capture per alert with the packets behind it (``analyze --evidence DIR``).

Contract
--------
``write_evidence(alerts, out_dir)`` re-reads each capture named in the
alerts' evidence (pcap or pcapng, gzip-compressed or not) and writes
``<severity>-<rule>-<id12>.pcap`` (classic pcap, microseconds) per alert:

* every evidence frame of the alert (frame numbers are the capture's own, as
  Wireshark counts them), and
* the packets of the flows those frames belong to (same transport and
  address/port pair, either direction) within ``CONTEXT_FRAMES`` frames of an
  evidence frame, at most ``MAX_PACKETS`` per alert besides the evidence.

Two passes per capture: the first reads the evidence frames' flow keys, the
second copies.  Memory is bounded (``MAX_ALERTS`` alerts, most severe first,
each buffering at most ``BUFFER`` bytes before it is appended to its file).
Captures that cannot be read (standard input, a file gone) are skipped and
reported in the result; packets of a link type other than the file's first
are counted, not written.  Returns ``EvidenceReport`` (files written, skips,
files that could not be written and why).

File names and writing
----------------------
An alert's severity, rule and id may come from a database another program
wrote (``otwatch tui --db``), so every part of the name is reduced to
``[A-Za-z0-9._-]`` (``_name``; a leading dot becomes ``_``) and the result is
checked to sit directly in *out_dir*.  A file is written as a temporary file
in *out_dir* (``O_EXCL``, never following a link) and renamed over the final
name when complete: a link planted under that name is replaced, never written
through, and a failed write leaves nothing behind.  An alert with evidence in
several captures gets one file per capture (``…-<id12>-2.pcap`` for the
second).
"""
from __future__ import annotations

import gzip
import os
import re
import struct
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator

from .model import Alert, severity_rank

MAX_ALERTS = 1000
"""Evidence files written per run (most severe alerts first)."""
MAX_PACKETS = 256
"""Flow packets per alert besides its evidence frames: enough for a scan or a session's start, small to share."""
CONTEXT_FRAMES = 5000
"""How far (in frames) from an evidence frame a flow packet may be to be copied."""
BUFFER = 64 * 1024

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
MAX_BLOCK = 16 * 1024 * 1024
"""pcapng blocks (and pcap records) larger than this end the read (the engine's own bound)."""
SNAPLEN = 262144


@dataclass
class EvidenceReport:
    files: list[str] = field(default_factory=list)
    skipped_sources: dict[str, str] = field(default_factory=dict)
    packets: int = 0
    other_linktype: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """Output path -> why it could not be written (read-only folder, disk full …)."""


def _open(path: str) -> BinaryIO:
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    f.seek(0)
    return f


def records(path: str) -> Iterator[tuple[int, int, int, int, int, bytes]]:
    """(frame, linktype, ts_sec, ts_usec, wirelen, data) for every packet of a pcap/pcapng file."""
    with _open(path) as f:
        head = f.read(4)
        if len(head) < 4:
            return
        if struct.unpack("<I", head)[0] == PCAPNG_SHB:
            yield from _pcapng(f, head)
            return
        rest = f.read(20)
        if len(rest) < 20:
            return
        for e in "<>":
            magic = struct.unpack(e + "I", head)[0]
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                break
        else:
            raise ValueError(f"{path}: not a pcap or pcapng file")
        ns = magic == PCAP_MAGIC_NS
        linktype = struct.unpack(e + "I", rest[16:20])[0] & 0x0FFFFFFF
        rh = struct.Struct(e + "IIII")
        frame = 0
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, caplen, wirelen = rh.unpack(h)
            if caplen > MAX_BLOCK:
                return
            data = f.read(caplen)
            if len(data) < caplen:
                return
            frame += 1
            yield frame, linktype, sec, frac // 1000 if ns else frac, wirelen, data


def _pcapng(f: BinaryIO, first: bytes) -> Iterator[tuple[int, int, int, int, int, bytes]]:
    e = "<"
    ifaces: list[tuple[int, int]] = []      # (linktype, ticks per second)
    frame = 0
    btype_raw = first
    while True:
        hdr = btype_raw + f.read(4) if btype_raw else f.read(8)
        btype_raw = b""
        if len(hdr) < 8:
            return
        btype = struct.unpack(e + "I", hdr[:4])[0]
        if btype == PCAPNG_SHB:
            bom = f.read(4)
            if len(bom) < 4:
                return
            e = "<" if struct.unpack("<I", bom)[0] == 0x1A2B3C4D else ">"
            blen = struct.unpack(e + "I", hdr[4:8])[0]
            if blen < 16 or blen > MAX_BLOCK:
                return
            f.read(blen - 12)
            ifaces = []
            continue
        blen = struct.unpack(e + "I", hdr[4:8])[0]
        if blen < 12 or blen > MAX_BLOCK:
            return
        body = f.read(blen - 8)
        if len(body) < blen - 8:
            return
        body = body[:-4]
        if btype == 1:                    # IDB
            lt = struct.unpack(e + "H", body[:2])[0]
            tps = 1_000_000
            opts = body[8:]
            while len(opts) >= 4:
                code, olen = struct.unpack(e + "HH", opts[:4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:   # if_tsresol
                    v = opts[4]
                    tps = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
                opts = opts[4 + ((olen + 3) & ~3):]
            ifaces.append((lt, tps))
        elif btype in (6, 3):             # EPB, SPB
            frame += 1
            if btype == 6:
                if len(body) < 20:
                    continue
                iid, hi, lo, caplen, wirelen = struct.unpack(e + "IIIII", body[:20])
                data = body[20:20 + caplen]
                if iid >= len(ifaces):
                    continue
                lt, tps = ifaces[iid]
                ticks = (hi << 32) | lo
                sec, rem = divmod(ticks, tps)
                usec = rem * 1_000_000 // tps
            else:
                if not ifaces or len(body) < 4:
                    continue
                wirelen = struct.unpack(e + "I", body[:4])[0]
                data = body[4:4 + wirelen]
                lt, sec, usec = ifaces[0][0], 0, 0
            yield frame, lt, sec, usec, wirelen, bytes(data)


def flow_key(linktype: int, data: bytes) -> tuple | None:
    """(transport, endpoint, endpoint) with the endpoints sorted, or None when not IP."""
    off = 0
    if linktype == 1:                     # Ethernet
        if len(data) < 14:
            return None
        et = int.from_bytes(data[12:14], "big")
        off = 14
        while et in (0x8100, 0x88A8, 0x9100) and len(data) >= off + 4:
            et = int.from_bytes(data[off + 2:off + 4], "big")
            off += 4
    elif linktype == 113:                 # Linux cooked
        if len(data) < 16:
            return None
        et, off = int.from_bytes(data[14:16], "big"), 16
    elif linktype in (101, 12, 228, 229, 14):   # raw IP
        et = 0x86DD if data[:1] and data[0] >> 4 == 6 else 0x0800
    else:
        return None
    if et == 0x0800:
        if len(data) < off + 20:
            return None
        ihl = (data[off] & 0x0F) * 4
        proto = data[off + 9]
        src, dst = data[off + 12:off + 16], data[off + 16:off + 20]
        l4 = off + ihl
    elif et == 0x86DD:
        if len(data) < off + 40:
            return None
        proto = data[off + 6]
        src, dst = data[off + 8:off + 24], data[off + 24:off + 40]
        l4 = off + 40
    else:
        return None
    sp = dp = 0
    if proto in (6, 17) and len(data) >= l4 + 4:
        sp, dp = struct.unpack("!HH", data[l4:l4 + 4])
    a, b = (src, sp), (dst, dp)
    return (proto,) + ((a, b) if a <= b else (b, a))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
NAME_PART_MAX = 80
"""Characters kept of the severity and of the rule in a file name (ids are cut at 12)."""


def _part(text: str, limit: int) -> str:
    """*text* as a file-name part: ASCII letters, digits, ``._-`` only, no leading dot, never empty."""
    p = _UNSAFE.sub("_", str(text))[:limit]
    if p.startswith("."):
        p = "_" + p[1:]
    return p or "_"


def _name(a: Alert, n: int = 1) -> str:
    """``<severity>-<rule>-<id12>.pcap`` (``-<n>`` before ``.pcap`` for an alert's n-th capture)."""
    more = f"-{n}" if n > 1 else ""
    return f"{_part(a.severity, NAME_PART_MAX)}-{_part(a.rule, NAME_PART_MAX)}-{_part(a.id[:12], 12)}{more}.pcap"


def out_path(out_dir: str, a: Alert, n: int = 1) -> str:
    """Where alert *a*'s evidence (its *n*-th capture) is written: a file directly in *out_dir*."""
    path = os.path.join(out_dir, _name(a, n))
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(out_dir):     # cannot happen: checked anyway
        raise ValueError(f"evidence file name {path!r} leaves {out_dir!r}")
    return path


class _Out:
    """One evidence file being written: a temporary file in the output folder, renamed when done."""

    __slots__ = ("alert", "path", "frames", "keys", "lo", "hi", "extra", "buf", "linktype", "written", "tmp",
                 "error")

    def __init__(self, alert: Alert, path: str, frames: set[int]):
        self.alert, self.path, self.frames = alert, path, frames
        self.keys: set = set()
        self.lo, self.hi = min(frames) - CONTEXT_FRAMES, max(frames) + CONTEXT_FRAMES
        self.extra = 0
        self.buf: list[bytes] = []
        self.linktype: int | None = None
        self.written = 0
        self.tmp: str | None = None
        self.error = ""

    def add(self, linktype: int, sec: int, usec: int, wirelen: int, data: bytes, report: EvidenceReport) -> None:
        if self.error:
            return
        if self.linktype is None:
            self.linktype = linktype
            self.buf.append(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, linktype))
        elif linktype != self.linktype:
            report.other_linktype += 1
            return
        self.buf.append(struct.pack("<IIII", sec, usec, len(data), wirelen) + data)
        self.written += 1
        report.packets += 1
        if sum(map(len, self.buf)) >= BUFFER:
            self.flush()

    def flush(self) -> None:
        if not self.buf or self.error:
            return
        try:
            if self.tmp is None:
                # mkstemp: O_CREAT | O_EXCL in the output folder, so nothing planted there is written through
                fd, self.tmp = tempfile.mkstemp(prefix=".evidence-", suffix=".part", dir=os.path.dirname(self.path))
                os.close(fd)
            with open(self.tmp, "ab") as f:
                f.write(b"".join(self.buf))
        except OSError as exc:
            self.fail(exc)
        self.buf = []

    def fail(self, exc: OSError) -> None:
        self.error = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
        self.discard()

    def discard(self) -> None:
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None

    def finish(self, report: EvidenceReport) -> None:
        """Rename the complete file over its name (replacing a file or link there, never writing through it)."""
        self.flush()
        if self.error:
            report.failed[self.path] = self.error
            return
        if self.tmp is None:
            return
        try:
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
            self.tmp = None
        except OSError as exc:
            self.fail(exc)
            report.failed[self.path] = self.error
            return
        if self.path not in report.files:
            report.files.append(self.path)


def write_evidence(alerts: Iterable[Alert], out_dir: str) -> EvidenceReport:
    os.makedirs(out_dir, exist_ok=True)
    report = EvidenceReport()
    chosen = sorted((a for a in alerts if a.evidence), key=lambda a: (-severity_rank(a.severity), a.first_ts))
    by_source: dict[str, list[_Out]] = {}
    for a in chosen[:MAX_ALERTS]:
        srcs: dict[str, set[int]] = {}
        for e in a.evidence:
            srcs.setdefault(e.source, set()).add(e.frame)
        for n, (src, frames) in enumerate(srcs.items(), 1):
            by_source.setdefault(src, []).append(_Out(a, out_path(out_dir, a, n), frames))
    for src, outs in by_source.items():
        if not src or src == "-" or src.startswith("iface:") or not os.path.isfile(src):
            report.skipped_sources[src] = "not a capture file that can be read again"
            continue
        try:
            _copy(src, outs, report)
        except (OSError, ValueError, EOFError, struct.error) as exc:
            report.skipped_sources[src] = str(exc)
        for o in outs:
            o.finish(report)
    return report


def _copy(src: str, outs: list[_Out], report: EvidenceReport) -> None:
    want: dict[int, list[_Out]] = {}
    for o in outs:
        for fr in o.frames:
            want.setdefault(fr, []).append(o)
    last = max(want)
    # pass 1: the flows of the evidence frames
    for frame, lt, _s, _u, _w, data in records(src):
        if frame in want:
            k = flow_key(lt, data)
            if k is not None:
                for o in want[frame]:
                    o.keys.add(k)
        if frame >= last:
            break
    index: dict[tuple, list[_Out]] = {}
    for o in outs:
        for k in o.keys:
            index.setdefault(k, []).append(o)
    lo = min((o.lo for o in outs), default=0)
    hi = max((o.hi for o in outs), default=0)
    # pass 2: copy
    for frame, lt, sec, usec, wirelen, data in records(src):
        if frame > hi:
            break
        hit = want.get(frame)
        if hit:
            for o in hit:
                o.add(lt, sec, usec, wirelen, data, report)
        if frame < lo or not index:
            continue
        group = index.get(flow_key(lt, data))
        if group:
            for o in group:
                if o.lo <= frame <= o.hi and o.extra < MAX_PACKETS and not (hit and o in hit):
                    o.extra += 1
                    o.add(lt, sec, usec, wirelen, data, report)
