"""The per-packet engine: record walking, L2–L4 decode, flows, reassembly, dispatch.

Written in Cython's pure-Python mode: this file runs as ordinary Python (the
pure path) and is compiled by setup.py into ``otwatch.ext._engine`` (the fast
path).  Rules that keep the two identical:

* byte buffers are ``bytes`` or a ``bytearray`` (the source reuses one), read
  with ``buf[i]`` and ``len()`` (and, interpreted only, the header ``struct``s
  below); anything kept or reported is copied out as ``bytes`` (``_bytes``);
* every integer that could exceed its C type is masked explicitly;
* no C-only constructs in the code both paths run.  ``cython.compiled`` is
  tested in these places, each with the reason beside it: the flow hash (any
  hash will do; the interpreted path uses CPython's), the pcap record, Ethernet
  type, IPv4 and TCP headers (one ``struct`` call each when interpreted, the same fields
  as the byte reads beside them: ``STRUCT_READS``, checked both ways by
  tests/ext/test_engine_equivalence.py) and the kernels' C entry (compiled
  only: ``_c_feed``).  The C declarations the compiled build needs are in
  ext/include/otwatch/ext/_engine.pxd.

Contract (see docs/architecture.md):

    eng = Engine(kernels, limits, port_map, tls_ports, detail_all, interval)
    used = eng.feed(buf, final, end) # walk capture records in buf[0:end], return bytes consumed
    eng.packet(ts, linktype, data)   # one packet (live capture)
    eng.finish()                     # end of input: flush flows, aggregates
    records = eng.take()             # drain the output records (tuples, R_* below)
    eng.stats()                      # counters, dict

Protocol kernels are called through ``core.feed(...)``, or, when both the
engine and the kernel are compiled, through the C function whose address
``core.c_feed()`` returns (no Python call, no boxed arguments per segment).

Memory is bounded: flows are capped and evicted on packet time, reassembly
buffers are capped per direction, and records accumulate only until take().
"""
from __future__ import annotations

import struct
import typing

import cython

from otwatch.parsers.common import KEY_SCAN

# ---------------------------------------------------------------------------
# Output records.  Every record is a tuple whose first item is its tag.
# ---------------------------------------------------------------------------
R_FLOW_NEW = cython.declare(cython.int, 10)   # (tag, flow_id, ts, frame, ipproto, vlan, cip, cport, sip, sport, cmac, smac, guessed, app, link_id)
R_FLOW_END = cython.declare(cython.int, 11)   # (tag, flow_id, ts, frame, reason, first_ts, pkts_c, pkts_s, bytes_c, bytes_s,
                  #  payload_c, payload_s, app, tcp_state, guessed, decoded, skipped, encrypted, gap_bytes, messages)
R_HOST = cython.declare(cython.int, 12)       # (tag, ts, frame, mac, ip, vlan, how)           first sighting of (mac, ip, vlan)
R_HOSTSTAT = cython.declare(cython.int, 13)   # (tag, mac, ip, vlan, pkts_tx, bytes_tx, pkts_rx, bytes_rx, first_ts, last_ts)  deltas per interval
R_LINK = cython.declare(cython.int, 14)       # (tag, link_id, ts, frame, app, vlan, cip, sip, sport, quiet)
                  #  quiet: made by a flow held back by _Scans (link.seen waits for its first record)
R_MSG = cython.declare(cython.int, 15)        # (tag, app, link_id, flow_id, side, ts, frame, key, raw, ctx)
R_ANOMALY = cython.declare(cython.int, 16)    # (tag, app, link_id, flow_id, side, ts, frame, anomaly_id, detail)
R_AGG = cython.declare(cython.int, 17)        # (tag, app, link_id, key, count, bytes, first_ts, last_ts, int_count, int_bytes, side,
                  #  first_frame, last_frame)
R_AUX = cython.declare(cython.int, 18)        # (tag, kind, flow_id, side, ts, frame, src_mac, src_ip, dst_ip, payload)
R_INTERVAL = cython.declare(cython.int, 19)   # (tag, start_ts, end_ts, horizon)                marks an aggregate flush
R_LINK_END = cython.declare(cython.int, 20)   # (tag, link_id, ts, reason)                      link state evicted (memory budget)
R_SCAN = cython.declare(cython.int, 21)       # (tag, start_ts, end_ts, src, dst, port, first_ts, first_frame, last_ts,
                  #  last_frame, flows, flows_unreported, hosts, ports, keys, keys_unreported, units, codes, apps, capped,
                  #  held: ((cip, sip, ipproto, port), ...) of the flows held back, held_more: those not listed)
                  #  one per scanning source (dst b"") or flooded target (src b"") per interval: see _Scans

# Applications (protocols) a flow can be dispatched to.
APP_NONE = cython.declare(cython.int, 0)
APP_MODBUS = cython.declare(cython.int, 1)
APP_MQTT = cython.declare(cython.int, 2)
APP_OPCUA = cython.declare(cython.int, 3)
APP_TLS = cython.declare(cython.int, 4)
APP_NAMES = ("none", "modbus", "mqtt", "opcua", "tls")

# Flow end reasons.
END_IDLE = "idle"
END_CAP = "cap"
END_CLOSED = "closed"
END_EOF = "end_of_capture"
END_REUSED = "reused"      # a new SYN with a new ISN on the same ports: the next connection began

# TCP state bits kept per flow.
ST_SYN = cython.declare(cython.int, 1)
ST_SYNACK = cython.declare(cython.int, 2)
ST_FIN_C = cython.declare(cython.int, 4)
ST_FIN_S = cython.declare(cython.int, 8)
ST_RST = cython.declare(cython.int, 16)
ST_DATA = cython.declare(cython.int, 32)

# Capture container formats.
FMT_UNKNOWN = cython.declare(cython.int, 0)
FMT_PCAP = cython.declare(cython.int, 1)
FMT_PCAPNG = cython.declare(cython.int, 2)

# Link types (tcpdump.org/linktypes.html).
LT_NULL = cython.declare(cython.int, 0)
LT_ETHERNET = cython.declare(cython.int, 1)
LT_RAW = cython.declare(cython.int, 101)
LT_RAW12 = cython.declare(cython.int, 12)
LT_RAW14 = cython.declare(cython.int, 14)
LT_LOOP = cython.declare(cython.int, 108)
LT_SLL = cython.declare(cython.int, 113)
LT_SLL2 = cython.declare(cython.int, 276)
LT_IPV4 = cython.declare(cython.int, 228)
LT_IPV6 = cython.declare(cython.int, 229)

ETH_IPV4 = cython.declare(cython.int, 0x0800)
ETH_IPV6 = cython.declare(cython.int, 0x86DD)
ETH_ARP = cython.declare(cython.int, 0x0806)
ETH_VLAN = cython.declare(cython.int, 0x8100)
ETH_QINQ = cython.declare(cython.int, 0x88A8)
ETH_QINQ_OLD = cython.declare(cython.int, 0x9100)
ETH_LLDP = cython.declare(cython.int, 0x88CC)

MASK64 = cython.declare(cython.ulonglong, 0xFFFFFFFFFFFFFFFF)
MASK32 = cython.declare(cython.ulonglong, 0xFFFFFFFF)
V4_MAPPED = cython.declare(cython.ulonglong, 0xFFFF00000000)

# A pcap or pcapng record larger than this is corruption, not a packet
# (the largest snaplen any tool writes is 256 KiB; jumbo frames are 9 KiB).
MAX_RECORD = cython.declare(cython.ulonglong, 16 * 1024 * 1024)

# UDP ports whose payloads are handed to Python for hostname evidence.
AUX_UDP = {67: "dhcp", 68: "dhcp", 53: "dns", 5353: "mdns", 137: "nbns", 5355: "llmnr"}
# Payloads larger than this are not handed over (a DNS zone transfer is not evidence we need).
AUX_MAX = cython.declare(cython.int, 1500)

# On a port we do not know, a kernel's "plausible" (probe score 1) counts only once a side
# has sent at least this many bytes: a few bytes of Telnet option negotiation (ff fd 18)
# are "plausible" for anything.  8 is a Modbus MBAP header and function code, an OPC UA
# message header, and more than any MQTT fixed header.
PROBE_MIN_BYTES = cython.declare(cython.Py_ssize_t, 8)
# While a flow has sent fewer bytes than this, a side's probe reads everything it sent so far
# (joined); past it, each segment alone (a join per segment of a bulk transfer would cost).
PROBE_JOIN_BYTES = cython.declare(cython.longlong, 256)

# First bytes that are certainly not an OT protocol on its own port: an HTTP request or
# status line, or a TLS record header (content type 20-23, version 3.x).  A port-bound
# kernel never refuses a stream by itself (bad content is an anomaly and a resync), so the
# engine checks a side's first payload for these before the kernel sees it.
HTTP_STARTS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ",
               b"TRACE ", b"HTTP/1.", b"PRI * HTTP/2")


# Multiplying by these unsigned 64-bit constants widens before shifting, so a byte
# moved to bit 24 cannot overflow a C int (and costs nothing on the pure path,
# unlike cython.cast, which is a Python call when not compiled).
SHIFT16 = cython.declare(cython.ulonglong, 1 << 16)
SHIFT24 = cython.declare(cython.ulonglong, 1 << 24)
# Overlap checks: a fingerprint of the last delivered segment of each direction (its last
# FP_MAX_BYTES bytes: every Modbus ADU, and the part of a longer segment a retransmission
# is compared on) tells a retransmission that carries different bytes (tcp.overlap_inconsistent)
FP_MAX_BYTES = cython.declare(cython.Py_ssize_t, 256)
FNV_OFFSET = cython.declare(cython.ulonglong, 0xCBF29CE484222325)
FNV_PRIME = cython.declare(cython.ulonglong, 0x100000001B3)
MIX1 = cython.declare(cython.ulonglong, 0xBF58476D1CE4E5B9)
MIX2 = cython.declare(cython.ulonglong, 0x94D049BB133111EB)

# Interpreted, one ``struct`` call reads a header's fields faster than the byte
# arithmetic the compiled path uses (~0.1 us against ~1 us a header); compiled, the
# branch is removed (``not cython.compiled`` is a constant there).  Each Struct reads
# exactly the fields of the arithmetic beside it; tests/ext/test_engine.py runs the
# interpreted engine both ways (STRUCT_READS False/True) and compares the records.
STRUCT_READS = True
# Ethernet II header: the type after the two MACs
_ETH_TYPE = struct.Struct(">12xH")
# pcap record header: ts seconds, ts fraction, captured length, wire length
_REC_LE = struct.Struct("<IIII")
_REC_BE = struct.Struct(">IIII")
# IPv4 header (RFC 791): version+IHL, total length, flags+fragment offset, protocol,
# source, destination (TOS, id, TTL and checksum skipped)
_IPV4_HDR = struct.Struct(">BxHxxHxBxxII")
# TCP header (RFC 9293): ports, sequence number, data offset byte, flags (ack skipped)
_TCP_HDR = struct.Struct(">HHI4xBB")

# Pieces one IP datagram (IPv4 or IPv6) may arrive in before further ones are dropped (counted): 64 KiB in
# 8-byte fragments would be 8192, and each piece is compared with those held (overlaps), so an
# attacker's tiny fragments are cut off here; real stacks send a handful (MTU-sized).
MAX_FRAG_PIECES = cython.declare(cython.Py_ssize_t, 128)

# Counters of the memory budget (parsers/budget.py): when one moves, the interval's end reports
# one memcap.evicted anomaly with how much each moved (_report_budget).
BUDGET_COUNTERS = ("flows.evicted_emergency", "flows.evicted_cap", "flows.evicted_half_open", "hosts.evicted",
                   "hosts.over_cap", "links.evicted", "links.evicted_keys", "links.over_cap", "reassembly.memcap_drains")

# Held-back flows a scan summary lists by (client, server, IP protocol, port), so that the policy can
# still judge them (the rest are counted): 256 distinct endpoints a summary.
SCAN_HELD_MAX = cython.declare(cython.Py_ssize_t, 256)

# Flow lookup cache: one slot per hash value modulo its size (a fixed 4096-entry list).
FLOW_CACHE_SIZE = cython.declare(cython.Py_ssize_t, 4096)

# What one held out-of-order segment costs besides its bytes, for the global reassembly bound
# (Engine.ooo_total): its (seq, data, plen) tuple, the bytes object's header and the list slot.
OOO_SEGMENT_COST = cython.declare(cython.longlong, 128)
FLOW_CACHE_MASK = cython.declare(cython.ulonglong, 4095)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _min_block_len(btype: cython.ulonglong) -> cython.Py_ssize_t:
    """Smallest total length of a pcapng block of this type that holds its fixed fields
    (type, length, fields, trailing length); pcapng spec section 4."""
    if btype == 6 or btype == 2:        # EPB / obsolete PB: interface, timestamp x2, caplen, wirelen
        return 32
    if btype == 1:                      # IDB: link type, reserved, snaplen
        return 20
    if btype == 3:                      # SPB: original length
        return 16
    return 12


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _mix64(h: cython.ulonglong, v: cython.ulonglong) -> cython.ulonglong:
    # splitmix64 finaliser over (h ^ v); masked so the pure path equals the compiled one
    h = (h ^ v) & MASK64
    h = ((h ^ (h >> 30)) * MIX1) & MASK64
    h = ((h ^ (h >> 27)) * MIX2) & MASK64
    return (h ^ (h >> 31)) & MASK64


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _rd32(p: cython.p_const_uchar, big: cython.bint) -> cython.ulonglong:
    """The 32-bit word at *p*, compiled only: no bounds check (the caller has made sure the four
    bytes are there) and no error check, where ``Engine._u32`` costs four and one."""
    if big:
        return (cython.cast(cython.ulonglong, p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]
    return p[0] | (p[1] << 8) | (p[2] << 16) | (cython.cast(cython.ulonglong, p[3]) << 24)


@cython.cfunc
def _fp(data, s: cython.Py_ssize_t, e: cython.Py_ssize_t) -> cython.ulonglong:
    """A fingerprint of data[s:e] (bytes or bytearray) for the overlap check: equal bytes give
    equal fingerprints.  Compiled, FNV-1a over 8-byte words read in place; interpreted,
    CPython's bytes hash (a loop per byte would cost more than the packet).  The two differ,
    but only their equality is ever used, within one run."""
    if not cython.compiled:
        return hash(bytes(data[s:e])) & MASK64
    p: cython.p_const_uchar = data
    h: cython.ulonglong = FNV_OFFSET
    i: cython.Py_ssize_t = s
    while i + 8 <= e:
        h = (h ^ cython.cast(cython.p_ulonglong, p + i)[0]) * FNV_PRIME
        i += 8
    while i < e:
        h = (h ^ p[i]) * FNV_PRIME
        i += 1
    return h ^ (e - s)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _seqdiff(a: cython.longlong, b: cython.longlong) -> cython.longlong:
    """a - b in 32-bit sequence space, as a signed number."""
    d: cython.longlong = (a - b) & MASK32
    if d >= 0x80000000:
        d -= 0x100000000
    return d


@cython.final
@cython.cclass
class Host:
    """One (MAC, IP, VLAN) as seen on the wire; counters are deltas since the last flush.

    Packets of a flow reach its two hosts' counters in bulk (``_push_flow``: when the
    interval is flushed and when the flow ends), not one by one; ``last_frame`` says
    which packet ``last_ts`` came from, so the newest packet wins whatever the order of
    the pushes.
    """

    mac: bytes
    ip: bytes
    vlan: cython.int
    pkts_tx: cython.longlong
    bytes_tx: cython.longlong
    pkts_rx: cython.longlong
    bytes_rx: cython.longlong
    first_ts: cython.double
    last_ts: cython.double
    last_frame: cython.longlong
    dirty: cython.bint
    nflows: cython.longlong   # flows in the table that count into this host (evictable at 0)
    quiet: cython.bint        # first seen in a flow held back by _Scans: no host.seen/host.traffic yet
    data: cython.bint         # seen other than as the client of TCP flows without data (see _expire_idle)

    def __init__(self, mac: bytes, ip: bytes, vlan: cython.int, ts: cython.double):
        self.mac = mac
        self.ip = ip
        self.vlan = vlan
        self.pkts_tx = 0
        self.bytes_tx = 0
        self.pkts_rx = 0
        self.bytes_rx = 0
        self.first_ts = ts
        self.last_ts = ts
        self.last_frame = 0
        self.dirty = False
        self.quiet = False
        self.nflows = 0
        self.data = False


@cython.final
@cython.cclass
class Link:
    """A (protocol, VLAN, client, server, server port) and its message tallies per direction
    (the dicts every connection's kernel of this link shares).  ``nflows`` counts the flows in
    the table bound to it: a link at 0 is idle and may be evicted (memory budget), its
    aggregates flushed first."""

    lid: cython.longlong
    app: cython.int
    key: tuple
    seen_c: dict
    seen_s: dict
    nflows: cython.longlong
    last_ts: cython.double
    anom_iv: cython.double       # interval (its start) anom_n counts in
    anom_n: cython.longlong      # anomalies of its flows reported in that interval
    data: cython.bint            # one of its flows carried data (or was not TCP): see _expire_idle

    def __init__(self, lid: cython.longlong, app: cython.int, key: tuple, ts: cython.double):
        self.lid = lid
        self.app = app
        self.key = key
        self.seen_c = {}
        self.seen_s = {}
        self.nflows = 0
        self.last_ts = ts
        self.anom_iv = -2.0
        self.anom_n = 0
        self.data = False


@cython.final
@cython.cclass
class Flow:
    """A bidirectional L4 flow, oriented client (a) → server (b)."""

    fid: cython.longlong
    h: cython.ulonglong
    chain: object          # next Flow with the same hash, or None
    ipproto: cython.int
    vlan: cython.int
    a_hi: cython.ulonglong
    a_lo: cython.ulonglong
    b_hi: cython.ulonglong
    b_lo: cython.ulonglong
    a_port: cython.int
    b_port: cython.int
    guessed: cython.bint
    state: cython.int
    first_ts: cython.double
    last_ts: cython.double
    last_frame: cython.longlong
    pkts_c: cython.longlong
    pkts_s: cython.longlong
    bytes_c: cython.longlong
    bytes_s: cython.longlong
    payload_c: cython.longlong
    payload_s: cython.longlong
    host_c: Host
    host_s: Host
    # packets and bytes already added to the hosts' counters (see Host)
    pushed_pkts_c: cython.longlong
    pushed_pkts_s: cython.longlong
    pushed_bytes_c: cython.longlong
    pushed_bytes_s: cython.longlong
    app: cython.int
    rejected: cython.int   # bit mask of apps that refused this flow
    core: object           # protocol kernel, or None
    lazy: cython.bint      # port-bound: the kernel is made at the first payload (a SYN-only flow has none)
    link: object           # the Link this flow counts into, or None
    quiet: cython.bint     # held back by _Scans: no flow.start/flow.end (counted in a scan.summary)
    cfeed: cython.Py_ssize_t   # the kernel's C-level feed entry (compiled engine and kernels), else 0
    link_id: cython.longlong
    # reassembly, per side (c = client, s = server); next_* < 0 means unknown
    next_c: cython.longlong
    next_s: cython.longlong
    ooo_c: list
    ooo_s: list
    ooo_bytes_c: cython.longlong
    ooo_bytes_s: cython.longlong
    eof_c: cython.bint
    eof_s: cython.bint
    fin_c: cython.longlong   # sequence number of the side's FIN, -1 none seen: the stream ends
    fin_s: cython.longlong   # only once every byte before it arrived (RFC 9293 3.10.7.4)
    syn_c: cython.longlong   # the client's ISN + 1 from its SYN, -1 none seen (port reuse test)
    # the last delivered segment's fingerprinted tail, per side: first sequence number,
    # length (0 none) and fingerprint (_fp)
    fseq_c: cython.longlong
    fseq_s: cython.longlong
    flen_c: cython.Py_ssize_t
    flen_s: cython.Py_ssize_t
    fp_c: cython.ulonglong
    fp_s: cython.ulonglong
    gap_bytes: cython.longlong
    # probing, for flows on ports we do not know
    probing: cython.bint
    probe_buf: list
    probe_bytes: cython.longlong
    probe_hint_c: cython.int
    probe_hint_s: cython.int
    tls_seen_c: cython.bint
    tls_seen_s: cython.bint
    encrypted: cython.longlong
    anoms: dict              # anomaly id -> how many this flow raised (None until the first)
    hidden: dict             # anomaly id -> how many of those were not reported (None until the first)
    fresh: cython.int        # port-bound flow: bit (1 << side) until that side's first payload was checked

    def __init__(self):
        self.chain = None
        self.anoms = None
        self.hidden = None
        self.core = None
        self.lazy = False
        self.link = None
        self.quiet = False
        self.cfeed = 0
        self.ooo_c = []
        self.ooo_s = []
        self.probe_buf = []
        self.next_c = -1
        self.next_s = -1
        self.ooo_bytes_c = 0
        self.ooo_bytes_s = 0
        self.eof_c = False
        self.eof_s = False
        self.fin_c = -1
        self.fin_s = -1
        self.syn_c = -1
        self.fseq_c = 0
        self.fseq_s = 0
        self.flen_c = 0
        self.flen_s = 0
        self.fp_c = 0
        self.fp_s = 0
        self.gap_bytes = 0
        self.probing = False
        self.probe_bytes = 0
        self.probe_hint_c = 0
        self.probe_hint_s = 0
        self.tls_seen_c = False
        self.tls_seen_s = False
        self.encrypted = 0
        self.fresh = 0
        self.rejected = 0
        self.app = APP_NONE
        self.link_id = 0
        self.state = 0
        self.pkts_c = 0
        self.pkts_s = 0
        self.pushed_pkts_c = 0
        self.pushed_pkts_s = 0
        self.pushed_bytes_c = 0
        self.pushed_bytes_s = 0
        self.bytes_c = 0
        self.bytes_s = 0
        self.payload_c = 0
        self.payload_s = 0


@cython.final
@cython.cclass
class _HalfOpen:
    """A TCP connection seen only as a bare SYN (and the SYN-ACK, RST or retransmissions that
    follow, none with payload) whose flow ``_Scans`` held back: a flood's bulk.  It stands for the
    Flow it would have been (its flow id is taken), in the engine's half-open table instead of the
    flow table, and makes no Host, Link or kernel: no attribute can hold a reference cycle, so the
    cyclic collector never tracks it (only bytes and C numbers; Cython gives such a class no GC).
    The first packet it cannot absorb (payload, FIN, a bare ACK) makes it a held-back Flow with
    these fields (``Engine._promote``), as if that Flow had existed from the SYN on; until then its
    packets reach the hosts that are in the table at the interval's flush and when it ends."""

    h: cython.ulonglong
    fid: cython.longlong
    vlan: cython.int
    a_hi: cython.ulonglong
    a_lo: cython.ulonglong
    b_hi: cython.ulonglong
    b_lo: cython.ulonglong
    a_port: cython.int
    b_port: cython.int
    cip: bytes
    sip: bytes
    cmac: bytes
    smac: bytes
    state: cython.int
    syn_c: cython.longlong
    next_c: cython.longlong
    next_s: cython.longlong
    first_ts: cython.double
    first_frame: cython.longlong
    last_ts: cython.double
    last_frame: cython.longlong
    pkts_c: cython.longlong
    pkts_s: cython.longlong
    bytes_c: cython.longlong
    bytes_s: cython.longlong
    pushed_pkts_c: cython.longlong
    pushed_pkts_s: cython.longlong
    pushed_bytes_c: cython.longlong
    pushed_bytes_s: cython.longlong

    def __init__(self):
        self.state = 0
        self.syn_c = -1
        self.next_c = -1
        self.next_s = -1
        self.pkts_c = 0
        self.pkts_s = 0
        self.bytes_c = 0
        self.bytes_s = 0
        self.pushed_pkts_c = 0
        self.pushed_pkts_s = 0
        self.pushed_bytes_c = 0
        self.pushed_bytes_s = 0


@cython.cfunc
@cython.exceptval(check=False)
def _ho_side(ho: _HalfOpen, shi: cython.ulonglong, slo: cython.ulonglong, sport: cython.int,
             dhi: cython.ulonglong, dlo: cython.ulonglong, dport: cython.int) -> cython.int:
    """The packet's side on half-open *ho* (0 client, 1 server), -1 when it is another connection
    (another 4-tuple with the same hash)."""
    if ho.a_lo == slo and ho.a_hi == shi and ho.a_port == sport and ho.b_lo == dlo and ho.b_hi == dhi \
            and ho.b_port == dport:
        return 0
    if ho.a_lo == dlo and ho.a_hi == dhi and ho.a_port == dport and ho.b_lo == slo and ho.b_hi == shi \
            and ho.b_port == sport:
        return 1
    return -1


@cython.cfunc
@cython.exceptval(check=False)
def _push_flow(f: Flow) -> cython.void:
    """Add the flow's packets and bytes since the last push to its two hosts."""
    dpc: cython.longlong = f.pkts_c - f.pushed_pkts_c
    dps: cython.longlong = f.pkts_s - f.pushed_pkts_s
    if dpc == 0 and dps == 0:
        return
    _push_hosts(f.host_c, f.host_s, dpc, dps, f.bytes_c - f.pushed_bytes_c, f.bytes_s - f.pushed_bytes_s,
                f.last_ts, f.last_frame)
    f.pushed_pkts_c = f.pkts_c
    f.pushed_pkts_s = f.pkts_s
    f.pushed_bytes_c = f.bytes_c
    f.pushed_bytes_s = f.bytes_s


@cython.cfunc
@cython.exceptval(check=False)
def _push_hosts(hc: typing.Optional[Host], hs: typing.Optional[Host], dpc: cython.longlong, dps: cython.longlong,
                dbc: cython.longlong, dbs: cython.longlong, last_ts: cython.double, last_frame: cython.longlong) -> cython.void:
    """Add packets and bytes (c: client to server, s: back) to the client's and server's hosts;
    either may be None (a half-open record's host that is not in the table: nothing to count into)."""
    if hc is not None:
        _push_host(hc, dpc, dbc, dps, dbs, last_ts, last_frame)
    if hs is not None:
        _push_host(hs, dps, dbs, dpc, dbc, last_ts, last_frame)


@cython.cfunc
@cython.exceptval(check=False)
def _push_host(h: Host, ptx: cython.longlong, btx: cython.longlong, prx: cython.longlong, brx: cython.longlong,
               last_ts: cython.double, last_frame: cython.longlong) -> cython.void:
    h.pkts_tx += ptx
    h.bytes_tx += btx
    h.pkts_rx += prx
    h.bytes_rx += brx
    if last_frame > h.last_frame:      # the newest packet wins, whatever the order of the pushes
        h.last_ts = last_ts
        h.last_frame = last_frame
    h.dirty = True


@cython.cfunc
def _ip_bytes(hi: cython.ulonglong, lo: cython.ulonglong) -> bytes:
    """The address as 4 bytes (IPv4-mapped) or 16 bytes."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return bytes(((lo >> 24) & 255, (lo >> 16) & 255, (lo >> 8) & 255, lo & 255))
    out = bytearray(16)
    i: cython.int
    for i in range(8):
        out[i] = (hi >> (56 - 8 * i)) & 255
        out[8 + i] = (lo >> (56 - 8 * i)) & 255
    return bytes(out)


@cython.cfunc
def _c_feed(core) -> cython.Py_ssize_t:
    """The kernel's C-level feed entry, when both it and this engine are compiled; else 0.

    A compiled kernel core offers ``c_feed()``, the address of a C function with the
    ``kernel_feed_fn`` signature (ext/include/otwatch/ext/_engine.pxd): calling it skips a Python method
    call and the boxing of five arguments per segment.  Interpreted, there is no
    address to call, so the engine always uses ``core.feed``.
    """
    if not cython.compiled:
        return 0
    fn = getattr(core, "c_feed", None)
    if fn is None:
        return 0
    return fn()


@cython.cfunc
@cython.exceptval(-99, check=True)
def _call_feed(fn: cython.Py_ssize_t, core, side: cython.int, data, s: cython.Py_ssize_t,
               e: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
    """core.feed(side, data, s, e, ts, frame, out) through the kernel's C entry (compiled only)."""
    buf: cython.p_const_uchar = data      # bytes or bytearray: no copy
    return cython.cast(kernel_feed_fn, fn)(core, side, buf, s, e, ts, frame, out)


@cython.cfunc
def _bytes(buf, a: cython.Py_ssize_t, b: cython.Py_ssize_t) -> bytes:
    """buf[a:b] as bytes (the walked buffer may be a bytearray the source reuses)."""
    v = buf[a:b]
    if type(v) is bytes:
        return v
    return bytes(v)


@cython.final
@cython.cclass
class _Scan:
    """What one source (or one target) did in the current interval: new flows and new message
    keys, distinct targets (or sources), ports, Modbus unit ids and codes, first and last frame.
    Sets are bounded together by ``_Scans.entries``."""

    src: bytes
    dst: bytes
    port: cython.int
    first_ts: cython.double
    last_ts: cython.double
    first_frame: cython.longlong
    last_frame: cython.longlong
    flows: cython.longlong
    flows_quiet: cython.longlong
    keys: cython.longlong
    keys_quiet: cython.longlong
    hosts: set
    ports: set
    units: set
    codes: set
    held: set                 # distinct (client, server, ipproto, port) of flows held back (SCAN_HELD_MAX)
    held_more: cython.longlong    # held-back flows of other (client, server, ipproto, port) not listed
    apps: cython.int          # bit per APP_* with new keys

    def __init__(self, src: bytes, dst: bytes, port: cython.int, ts: cython.double, frame: cython.longlong):
        self.src = src
        self.dst = dst
        self.port = port
        self.first_ts = ts
        self.last_ts = ts
        self.first_frame = frame
        self.last_frame = frame
        self.flows = 0
        self.flows_quiet = 0
        self.keys = 0
        self.keys_quiet = 0
        self.hosts = set()
        self.ports = set()
        self.units = set()
        self.codes = set()
        self.held = set()
        self.held_more = 0
        self.apps = 0


@cython.final
@cython.cclass
class _Scans:
    """Scans and floods arrive aggregated (issue 12): per interval of packet time, new flows and
    new message keys are counted per source address (and new flows per target address and port).
    The first ``limits.scan_flows_per_source`` flows of a source (``scan_flows_per_target`` to a
    target, ``scan_flows_per_interval`` in all) and its first ``scan_keys_per_source`` new keys
    (``scan_keys_per_interval`` in all) are reported one by one as before; the rest are only
    counted here, and at the interval's end each source or target that had anything held back
    becomes one ``R_SCAN`` record (``scan.summary``): distinct targets/sources, ports, unit ids
    and codes, counts, first and last frame.  At most ``scan_tracked_max`` sources and targets
    per interval; items of others are held back too and counted (``scans.untracked``)."""

    srcs: dict                 # client address -> _Scan
    dsts: dict                 # (server address, port) -> _Scan
    per_src: cython.longlong
    per_dst: cython.longlong
    per_interval: cython.longlong
    keys_per_src: cython.longlong
    keys_per_interval: cython.longlong
    tracked_max: cython.Py_ssize_t
    distinct_max: cython.longlong
    entries: cython.longlong   # distinct items remembered this interval
    capped: cython.bint
    flows: cython.longlong     # new flows this interval
    flows_reported: cython.longlong
    keys_reported: cython.longlong
    quiet_hosts: cython.longlong
    untracked: cython.longlong
    flows_quiet: cython.longlong   # held back by the interval's budget alone (this interval)
    first_ts: cython.double        # of those
    first_frame: cython.longlong

    def __init__(self, limits):
        self.srcs = {}
        self.dsts = {}
        self.per_src = getattr(limits, "scan_flows_per_source", 1024)
        self.per_dst = getattr(limits, "scan_flows_per_target", 1024)
        self.per_interval = getattr(limits, "scan_flows_per_interval", 16384)
        self.keys_per_src = getattr(limits, "scan_keys_per_source", 256)
        self.keys_per_interval = getattr(limits, "scan_keys_per_interval", 16384)
        self.tracked_max = getattr(limits, "scan_tracked_max", 4096)
        self.distinct_max = getattr(limits, "scan_distinct_max", 65536)
        self.entries = 0
        self.capped = False
        self.flows = 0
        self.flows_reported = 0
        self.keys_reported = 0
        self.quiet_hosts = 0
        self.untracked = 0
        self.flows_quiet = 0
        self.first_ts = 0.0
        self.first_frame = 0

    @cython.cfunc
    def _add(self, s: set, item) -> cython.void:
        if item in s:
            return
        if self.entries >= self.distinct_max:
            self.capped = True
            return
        self.entries += 1
        s.add(item)

    @cython.cfunc
    def _src(self, cip: bytes, ts: cython.double, frame: cython.longlong) -> _Scan:
        o = self.srcs.get(cip)
        if o is None:
            if len(self.srcs) >= self.tracked_max:
                return None
            o = _Scan(cip, b"", 0, ts, frame)
            self.srcs[cip] = o
        sc: _Scan = o
        sc.last_ts = ts
        sc.last_frame = frame
        return sc

    @cython.cfunc
    def _hold(self, sc: _Scan, item: tuple) -> cython.void:
        if item in sc.held:
            return
        if len(sc.held) >= SCAN_HELD_MAX or self.entries >= self.distinct_max:
            sc.held_more += 1
            return
        self.entries += 1
        sc.held.add(item)

    @cython.cfunc
    def flow(self, cip: bytes, sip: bytes, ipproto: cython.int, port: cython.int, ts: cython.double,
             frame: cython.longlong) -> cython.bint:
        """A new flow cip → sip:port: True when it is reported one by one."""
        quiet: cython.bint = False
        self.flows += 1
        s: _Scan = self._src(cip, ts, frame)
        d: _Scan = None
        k = (sip, port)
        o = self.dsts.get(k)
        if o is None and len(self.dsts) < self.tracked_max:
            o = _Scan(b"", sip, port, ts, frame)
            self.dsts[k] = o
        if o is not None:
            d = o
            d.last_ts = ts
            d.last_frame = frame
            d.flows += 1
            self._add(d.hosts, cip)
            if d.flows > self.per_dst:
                quiet = True
        if s is not None:
            s.flows += 1
            self._add(s.hosts, sip)
            self._add(s.ports, port)
            if s.flows > self.per_src:
                quiet = True
        if s is None or d is None:
            quiet = True
            self.untracked += 1
        if not quiet and self.flows_reported >= self.per_interval:
            quiet = True
            self.flows_quiet += 1       # past the interval's budget: in the interval's own summary
        if quiet:
            item = (cip, sip, ipproto, port)
            if s is not None:
                s.flows_quiet += 1
                self._hold(s, item)
            if d is not None:
                d.flows_quiet += 1
                self._hold(d, item)
            return False
        self.flows_reported += 1
        return True

    def key(self, cip: bytes, sip: bytes, app: cython.int, unit: cython.int, code: cython.int, ts: cython.double,
            frame: cython.longlong) -> bool:
        """A message key new to a link of client *cip* and server *sip*: True when it is reported
        one by one."""
        s: _Scan = self._src(cip, ts, frame)
        if s is None:
            self.untracked += 1
            return False
        s.keys += 1
        self._add(s.hosts, sip)
        s.apps |= 1 << app
        if unit >= 0:
            self._add(s.units, unit)
        if code >= 0:
            self._add(s.codes, (app << 16) | code)
        if s.keys > self.keys_per_src or self.keys_reported >= self.keys_per_interval:
            s.keys_quiet += 1
            return False
        self.keys_reported += 1
        return True

    @cython.cfunc
    def flush(self, out: list, start: cython.double, end: cython.double) -> cython.void:
        """One R_SCAN per source past its own budget of flows or keys and per target past its
        budget of flows; one for the interval (source and target b"") when its own budget held
        flows back; then a new interval."""
        sc: _Scan
        for o in self.srcs.values():
            sc = o
            if sc.flows > self.per_src or sc.keys_quiet > 0:
                out.append(_scan_record(sc, start, end, self.capped))
        for o in self.dsts.values():
            sc = o
            if sc.flows > self.per_dst:
                out.append(_scan_record(sc, start, end, self.capped))
        if self.flows_quiet > 0:
            out.append((R_SCAN, start, end, b"", b"", 0, start, 0, end, 0, self.flows,
                        self.flows_quiet, 0, 0, 0, 0, 0, 0, (), self.capped, (), self.flows_quiet))
        self.flows_quiet = 0
        self.srcs = {}
        self.dsts = {}
        self.entries = 0
        self.capped = False
        self.flows = 0
        self.flows_reported = 0
        self.keys_reported = 0


@cython.cfunc
def _scan_record(sc: _Scan, start: cython.double, end: cython.double, capped: cython.bint) -> tuple:
    apps = tuple(APP_NAMES[a] for a in range(len(APP_NAMES)) if (sc.apps >> a) & 1)
    dst: bytes = sc.dst
    if sc.src and len(sc.hosts) == 1:
        dst = next(iter(sc.hosts))      # a source that reached one target names it
    return (R_SCAN, start, end, sc.src, dst, sc.port, sc.first_ts, sc.first_frame, sc.last_ts,
            sc.last_frame, sc.flows, sc.flows_quiet, len(sc.hosts), len(sc.ports), sc.keys, sc.keys_quiet,
            len(sc.units), len(sc.codes), apps, capped, tuple(sorted(sc.held)), sc.held_more)


@cython.final
@cython.cclass
class _LinkScan:
    """The scan hook a link's tally dicts hold under ``parsers.common.KEY_SCAN``: kernels ask it
    before reporting a new key (``new_key``); it answers from the client's budget in ``_Scans``.
    ``int_count`` is 0: the interval flush skips it."""

    scans: _Scans
    cip: bytes
    sip: bytes
    app: cython.int
    int_count = cython.declare(cython.longlong, visibility="readonly")

    def __init__(self, scans: _Scans, cip: bytes, sip: bytes, app: cython.int):
        self.scans = scans
        self.cip = cip
        self.sip = sip
        self.app = app
        self.int_count = 0

    def new_key(self, unit, code, ts, frame) -> bool:
        """*unit*: Modbus unit id, else -1; *code*: function code, packet type or service id."""
        return self.scans.key(self.cip, self.sip, self.app, unit, code, ts, frame)

    def as_list(self) -> list:
        return []

    def __eq__(self, other):
        return hasattr(other, "new_key")

    def __repr__(self):
        return "_LinkScan()"


@cython.final
@cython.cclass
class Engine:
    # configuration
    kernels: dict          # app -> (CoreClass, probe function[, side_hint function or None])
    port_map: dict         # server port -> app
    tls_ports: dict        # server port -> app carried inside TLS
    limits: object
    detail_all: cython.bint
    interval: cython.double
    max_flows: cython.longlong
    max_hosts: cython.longlong
    max_links: cython.longlong
    host_limit: cython.longlong    # table size that triggers the next host eviction (>= max_hosts)
    link_limit: cython.longlong    # the same for links
    keys_total: cython.longlong    # limits.link_keys_total: tallies of all links together
    idle: cython.double
    new_idle: cython.double        # limits.flow_new_timeout
    link_idle: cython.double       # limits.link_idle_timeout (< 0: never)
    host_idle: cython.double       # limits.host_idle_timeout (< 0: never)
    emerg_new: cython.double       # limits.flow_emergency_new_timeout
    emerg_idle: cython.double      # limits.flow_emergency_idle_timeout
    linger: cython.double
    max_ooo_segs: cython.longlong
    max_ooo_bytes: cython.longlong
    ooo_total: cython.longlong     # out-of-order bytes held by all flows, OOO_SEGMENT_COST a segment included
    ooo_total_max: cython.longlong  # limits.reassembly_total_bytes (the memcap's reassembly share)
    probe_max: cython.longlong
    # container state
    fmt: cython.int
    big: cython.bint               # byte order of the current file/section
    nanos: cython.bint             # pcap: nanosecond timestamps
    linktype: cython.int           # pcap: the file's link type
    fcs_len: cython.Py_ssize_t     # pcap: bytes of frame check sequence ending every frame (0 none)
    ifaces: list                   # pcapng: (linktype, ts_divisor, ts_offset, FCS bytes) per interface
    header_done: cython.bint
    skip_rest: cython.bint   # a corrupt record/block length: the rest of the input is not walked
    anom_report: cython.longlong   # limits.anomalies_reported_per_flow
    anom_sample: cython.longlong   # limits.anomaly_sample_rate
    anom_link: cython.longlong     # limits.anomalies_reported_per_link_interval
    # state
    frags: dict                    # (src, dst, proto, IPv4 id) or (IPv6 src hi, lo, dst hi, lo, id) -> incomplete
                                   # datagram (see _frag_add)
    frag_bytes: cython.longlong    # bytes held in frags
    frag_max: cython.Py_ssize_t
    frag_max_bytes: cython.longlong
    frag_timeout: cython.double
    flows: dict                    # hash -> Flow (chained)
    half_open: dict                # hash -> _HalfOpen (not chained: a colliding one is a Flow), creation order
    max_half_open: cython.longlong
    fcache: list                   # hash & FLOW_CACHE_MASK -> a Flow with that hash, or None
    nflows: cython.longlong
    hosts: dict                    # (mac, ip, vlan) -> Host
    links: dict                    # (app, vlan, cip, sip, sport) -> Link
    link_seen: dict                # link_id -> Link (its tallies per direction)
    reported: dict                 # memory-budget counter -> value at the last memcap.evicted report
    out: list
    cur: object                    # the buffer being walked (bytes or bytearray; records get copies)
    kbuf: list                     # records appended by protocol kernels during one call
    frame: cython.longlong
    frames_before: cython.longlong  # packets of the sources before the current one (new_source)
    now: cython.double
    last_sweep: cython.double
    interval_start: cython.double
    next_fid: cython.longlong
    next_link: cython.longlong
    # counters (hot ones as C fields; rare ones in a dict)
    bytes: cython.longlong
    n_ipv4: cython.longlong
    n_ipv6: cython.longlong
    n_tcp: cython.longlong
    n_udp: cython.longlong
    n_arp: cython.longlong
    n_other_l3: cython.longlong
    n_other_l4: cython.longlong
    n_vlan: cython.longlong
    ot_bytes: cython.longlong
    counters: dict
    scans: _Scans
    quiet_ctx: cython.bint         # hosts made now belong to a flow held back (see _host)

    def __init__(self, kernels: dict, limits, port_map: dict, tls_ports: dict,
                 detail_all: cython.bint = False, interval: cython.double = 60.0):
        self.kernels = kernels
        self.port_map = port_map
        self.tls_ports = tls_ports
        self.limits = limits
        self.detail_all = detail_all
        self.interval = interval
        self.max_flows = limits.max_flows
        self.max_hosts = limits.max_hosts
        self.max_links = limits.max_links
        self.host_limit = self.max_hosts
        self.link_limit = self.max_links
        self.keys_total = limits.link_keys_total
        self.idle = limits.flow_idle_timeout
        self.new_idle = getattr(limits, "flow_new_timeout", limits.flow_idle_timeout)
        self.link_idle = getattr(limits, "link_idle_timeout", -1.0)
        self.host_idle = getattr(limits, "host_idle_timeout", -1.0)
        self.emerg_new = limits.flow_emergency_new_timeout
        self.emerg_idle = limits.flow_emergency_idle_timeout
        self.linger = limits.tcp_closed_linger
        self.max_ooo_segs = limits.reassembly_max_ooo_segments
        self.max_ooo_bytes = limits.reassembly_max_ooo_bytes
        self.ooo_total = 0
        self.ooo_total_max = limits.reassembly_total_bytes
        self.probe_max = limits.probe_max_bytes
        self.anom_report = limits.anomalies_reported_per_flow
        self.anom_sample = max(1, limits.anomaly_sample_rate)
        self.anom_link = limits.anomalies_reported_per_link_interval
        self.fmt = FMT_UNKNOWN
        self.big = False
        self.nanos = False
        self.linktype = -1
        self.fcs_len = 0
        self.ifaces = []
        self.header_done = False
        self.skip_rest = False
        self.flows = {}
        self.half_open = {}
        self.max_half_open = getattr(limits, "max_half_open", 0)
        self.frags = {}
        self.frag_bytes = 0
        self.frag_max = limits.ip_frag_max_datagrams
        self.frag_max_bytes = limits.ip_frag_max_bytes
        self.frag_timeout = limits.ip_frag_timeout
        self.fcache = [None] * FLOW_CACHE_SIZE
        self.nflows = 0
        self.hosts = {}
        self.links = {}
        self.link_seen = {}
        self.reported = {}
        self.out = []
        self.cur = b""
        self.kbuf = []
        self.frame = 0
        self.frames_before = 0
        self.now = 0.0
        self.last_sweep = -1.0
        self.interval_start = -1.0
        self.next_fid = 1
        self.next_link = 1
        self.bytes = 0
        self.n_ipv4 = 0
        self.n_ipv6 = 0
        self.n_tcp = 0
        self.n_udp = 0
        self.n_arp = 0
        self.n_other_l3 = 0
        self.n_other_l4 = 0
        self.n_vlan = 0
        self.ot_bytes = 0
        self.counters = {}
        self.scans = _Scans(limits)
        self.quiet_ctx = False

    # ------------------------------------------------------------------
    # small helpers
    # ------------------------------------------------------------------
    @cython.cfunc
    def _count(self, name: str, n: cython.longlong = 1):
        self.counters[name] = self.counters.get(name, 0) + n

    @cython.cfunc
    def _anomaly(self, app: cython.int, link_id: cython.longlong, fid: cython.longlong, side: cython.int,
                 aid: str, detail: str):
        self._count("anomaly." + aid)
        self.out.append((R_ANOMALY, app, link_id, fid, side, self.now, self.frame, aid, detail))

    @cython.cfunc
    @cython.inline
    def _u16(self, buf: cython.const[cython.uchar][::1], i: cython.Py_ssize_t) -> cython.uint:
        if self.big:
            return (buf[i] << 8) | buf[i + 1]
        return buf[i] | (buf[i + 1] << 8)

    @cython.cfunc
    @cython.inline
    def _u32(self, buf: cython.const[cython.uchar][::1], i: cython.Py_ssize_t) -> cython.ulonglong:
        if self.big:
            return (buf[i] * SHIFT24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]
        return buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] * SHIFT24)

    def take(self) -> list:
        out = self.out
        self.out = []
        return out

    def stats(self) -> dict:
        d = dict(self.counters)
        d.update({
            "capture.packets": self.frames_before + self.frame,
            "capture.bytes": self.bytes,
            "decode.ipv4": self.n_ipv4,
            "decode.ipv6": self.n_ipv6,
            "decode.tcp": self.n_tcp,
            "decode.udp": self.n_udp,
            "decode.arp": self.n_arp,
            "decode.other_l3": self.n_other_l3,
            "decode.other_l4": self.n_other_l4,
            "decode.vlan_tagged": self.n_vlan,
            "flows.active": self.nflows,
            "flows.half_open": len(self.half_open),
            "flows.created": self.next_fid - 1,
            "hosts.active": len(self.hosts),
            "links.active": len(self.links),
            "ot.stream_bytes": self.ot_bytes,
            "scans.untracked": self.scans.untracked,
            # hosts first seen in held-back flows; an address only ever in half-open records counts
            # once a record (it has no Host to remember it by)
            "scans.hosts_unreported": self.scans.quiet_hosts,
        })
        return d

    def state_sizes(self) -> dict:
        """How much state the engine holds now, entry by entry (what the memory budget bounds;
        tests compare it at two lengths of a flood).  Walks every table: not for the hot path."""
        f: Flow
        lk: Link
        kernels: cython.longlong = 0
        held: cython.longlong = 0
        keys: cython.longlong = 0
        for f in self._all_flows():
            if f.core is not None:
                kernels += 1
            held += f.ooo_bytes_c + f.ooo_bytes_s
        for v in self.link_seen.values():
            lk = v
            keys += _nkeys(lk)
        return {"flows": self.nflows, "half_open": len(self.half_open), "kernels": kernels, "hosts": len(self.hosts),
                "links": len(self.links), "keys": keys, "reassembly_bytes": held, "reassembly_held": self.ooo_total,
                "fragment_bytes": self.frag_bytes}

    def new_source(self):
        """The next bytes fed are a new capture (file or interface): its container header is read
        again and frame numbers restart at 1, as Wireshark numbers each file's frames.  Flows, hosts,
        links, tallies and counters carry on (``capture.packets`` counts every source)."""
        self.frames_before += self.frame
        self.frame = 0
        self.header_done = False
        self.skip_rest = False
        self.fmt = FMT_UNKNOWN
        self.big = False
        self.nanos = False
        self.linktype = -1
        self.ifaces = []

    # ------------------------------------------------------------------
    # capture containers
    # ------------------------------------------------------------------
    def feed(self, buf, final: cython.bint = False, end: cython.Py_ssize_t = -1) -> cython.Py_ssize_t:
        """Walk the capture records in buf[:end] (all of *buf* when *end* < 0); return how
        many bytes were consumed.

        *buf* is bytes or a bytearray (the source reuses one); nothing keeps a reference
        into it after the call.  The caller keeps ``buf[consumed:end]`` and puts it in
        front of the next bytes.  With *final*, a partial record at the end is reported
        as truncated.  Raises ValueError for input that is not a capture at all (bad magic).
        """
        if type(buf) is not bytes and type(buf) is not bytearray:
            buf = bytes(buf)        # kernels read bytes or a bytearray in place
        n: cython.Py_ssize_t = len(buf)
        pos: cython.Py_ssize_t = 0
        if 0 <= end < n:
            n = end
        if self.skip_rest:
            # after a corrupt record nothing marks where the next one starts: everything
            # that follows, in this chunk and the next ones, is skipped (and counted)
            self._count("capture.skipped_bytes", n)
            return n
        mv: cython.const[cython.uchar][::1] = buf
        self.cur = buf
        if not self.header_done:
            if n < 4:
                if final:
                    raise ValueError("empty file" if n == 0 else "file too short to be a capture (%d bytes)" % n)
                return 0
            if mv[0] == 0x0A and mv[1] == 0x0D and mv[2] == 0x0D and mv[3] == 0x0A:
                self.fmt = FMT_PCAPNG
                self.header_done = True
            else:
                if n < 24:
                    if final:
                        raise ValueError("file too short to be a pcap (%d bytes)" % n)
                    return 0
                m: cython.ulonglong = (mv[0] * SHIFT24) | (mv[1] << 16) | (mv[2] << 8) | mv[3]
                if m == 0xA1B2C3D4:
                    self.big, self.nanos = True, False
                elif m == 0xD4C3B2A1:
                    self.big, self.nanos = False, False
                elif m == 0xA1B23C4D:
                    self.big, self.nanos = True, True
                elif m == 0x4D3CB2A1:
                    self.big, self.nanos = False, True
                else:
                    raise ValueError("not a pcap or pcapng file (magic %08x)" % m)
                self.fmt = FMT_PCAP
                lt_raw: cython.ulonglong = self._u32(mv, 20)
                # the link type is the low 16 bits; bit 26 says the top 4 bits give the FCS
                # length in 16-bit words (libpcap LT_FCS_LENGTH, draft-ietf-opsawg-pcap 4)
                self.linktype = lt_raw & 0xFFFF
                if lt_raw & 0x04000000:
                    self.fcs_len = ((lt_raw >> 28) & 0xF) * 2
                self.header_done = True
                pos = 24
        if self.fmt == FMT_PCAP:
            return self._walk_pcap(mv, pos, n, final)
        return self._walk_pcapng(mv, pos, n, final)

    @cython.cfunc
    def _walk_pcap(self, buf: cython.const[cython.uchar][::1], pos: cython.Py_ssize_t, n: cython.Py_ssize_t,
                   final: cython.bint) -> cython.Py_ssize_t:
        caplen: cython.Py_ssize_t
        wirelen: cython.Py_ssize_t
        sec: cython.ulonglong
        frac: cython.ulonglong
        ts: cython.double
        # the file's byte order, time unit and link type, read once per call, not per record
        rec = _REC_BE if self.big else _REC_LE
        unit: cython.double = 1e-9 if self.nanos else 1e-6
        lt: cython.int = self.linktype
        body: cython.Py_ssize_t
        rec_end: cython.Py_ssize_t
        big: cython.bint = self.big
        hp: cython.p_const_uchar
        last: cython.Py_ssize_t = n - 16     # where the last whole record header can start
        # (the loop compares offsets without computing new ones: interpreted, an offset
        # into a 4 MiB buffer is a new int object each time it is computed)
        while pos <= last:
            if not cython.compiled and STRUCT_READS:
                sec, frac, caplen, wirelen = rec.unpack_from(buf, pos)
            elif cython.compiled:
                # pos <= n - 16 and n <= len(buf): the 16-byte header is in buf, read in place
                hp = cython.address(buf[pos])
                sec = _rd32(hp, big)
                frac = _rd32(hp + 4, big)
                caplen = _rd32(hp + 8, big)
                wirelen = _rd32(hp + 12, big)
            else:
                sec = self._u32(buf, pos)
                frac = self._u32(buf, pos + 4)
                caplen = self._u32(buf, pos + 8)
                wirelen = self._u32(buf, pos + 12)
            if caplen > MAX_RECORD:
                self._anomaly(APP_NONE, 0, 0, -1, "capture.corrupt_record",
                              "record at offset %d claims %d bytes; rest of file skipped" % (pos, caplen))
                self.skip_rest = True
                self._count("capture.skipped_bytes", n - pos)
                return n
            body = pos + 16
            rec_end = body + caplen
            if rec_end > n:
                break
            ts = sec + frac * unit
            if self.fcs_len != 0:
                self._packet_fcs(buf, body, caplen, wirelen, ts, lt, self.fcs_len)
            else:
                self._packet(buf, body, rec_end, wirelen, ts, lt)
            pos = rec_end
        if final and pos < n:
            self._count("capture.truncated_records")
            self._anomaly(APP_NONE, 0, 0, -1, "capture.truncated_record",
                          "last record cut short: %d bytes left at end of file" % (n - pos))
            return n
        return pos

    @cython.cfunc
    def _walk_pcapng(self, buf: cython.const[cython.uchar][::1], pos: cython.Py_ssize_t, n: cython.Py_ssize_t,
                     final: cython.bint) -> cython.Py_ssize_t:
        btype: cython.ulonglong
        blen: cython.Py_ssize_t
        body: cython.Py_ssize_t
        iface: cython.Py_ssize_t
        caplen: cython.Py_ssize_t
        wirelen: cython.Py_ssize_t
        tsraw: cython.ulonglong
        ts: cython.double
        lt: cython.int
        div: cython.double
        off: cython.double
        fcs: cython.Py_ssize_t
        while pos + 12 <= n:
            if buf[pos] == 0x0A and buf[pos + 1] == 0x0D and buf[pos + 2] == 0x0D and buf[pos + 3] == 0x0A:
                # Section Header Block: the byte-order magic decides the section's endianness
                if buf[pos + 8] == 0x1A and buf[pos + 9] == 0x2B:
                    self.big = True
                elif buf[pos + 8] == 0x4D and buf[pos + 9] == 0x3C:
                    self.big = False
                else:
                    raise ValueError("corrupt pcapng section header at offset %d" % pos)
                self.ifaces = []
            btype = self._u32(buf, pos)
            blen = self._u32(buf, pos + 4)
            if blen < 12 or blen % 4 != 0 or blen > MAX_RECORD:
                self._anomaly(APP_NONE, 0, 0, -1, "capture.corrupt_record",
                              "pcapng block at offset %d has length %d; rest of file skipped" % (pos, blen))
                self.skip_rest = True
                self._count("capture.skipped_bytes", n - pos)
                return n
            if pos + blen > n:
                break
            body = pos + 8
            if blen < _min_block_len(btype):
                # shorter than the block type's fixed fields: its length field lies, but it
                # still says where the next block starts, so only this block is skipped
                self._anomaly(APP_NONE, 0, 0, -1, "capture.corrupt_record",
                              "pcapng block type %d at offset %d has length %d, shorter than its fields"
                              % (btype, pos, blen))
            elif btype == 1:  # Interface Description Block
                self.ifaces.append(self._idb(buf, body, pos + blen - 4))
            elif btype == 6 or btype == 2:  # Enhanced / obsolete Packet Block
                if btype == 6:
                    iface = self._u32(buf, body)
                    body += 4
                else:
                    iface = self._u16(buf, body)
                    body += 4
                tsraw = (self._u32(buf, body) << 32) | self._u32(buf, body + 4)
                caplen = self._u32(buf, body + 8)
                wirelen = self._u32(buf, body + 12)
                if iface >= len(self.ifaces):
                    self._anomaly(APP_NONE, 0, 0, -1, "capture.unknown_interface",
                                  "packet block at offset %d names interface %d" % (pos, iface))
                elif body + 16 + caplen > pos + blen - 4:
                    self._anomaly(APP_NONE, 0, 0, -1, "capture.corrupt_record",
                                  "packet block at offset %d: captured length %d exceeds the block" % (pos, caplen))
                else:
                    lt, div, off, fcs = self.ifaces[iface]
                    ts = tsraw / div + off
                    if fcs != 0:
                        self._packet_fcs(buf, body + 16, caplen, wirelen, ts, lt, fcs)
                    else:
                        self._packet(buf, body + 16, body + 16 + caplen, wirelen, ts, lt)
            elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
                if len(self.ifaces) == 0:
                    self._anomaly(APP_NONE, 0, 0, -1, "capture.unknown_interface",
                                  "simple packet block at offset %d before any interface" % pos)
                else:
                    wirelen = self._u32(buf, body)
                    caplen = blen - 16
                    if caplen > wirelen:
                        caplen = wirelen
                    lt, div, off, fcs = self.ifaces[0]
                    if fcs != 0:
                        self._packet_fcs(buf, body + 4, caplen, wirelen, self.now, lt, fcs)
                    else:
                        self._packet(buf, body + 4, body + 4 + caplen, wirelen, self.now, lt)
            pos += blen
        if final and pos < n:
            self._count("capture.truncated_records")
            self._anomaly(APP_NONE, 0, 0, -1, "capture.truncated_record",
                          "last block cut short: %d bytes left at end of file" % (n - pos))
            return n
        return pos

    @cython.cfunc
    def _packet_fcs(self, buf: cython.const[cython.uchar][::1], body: cython.Py_ssize_t, caplen: cython.Py_ssize_t,
                    wirelen: cython.Py_ssize_t, ts: cython.double, lt: cython.int, fcs: cython.Py_ssize_t):
        """A packet whose frames end in *fcs* bytes of frame check sequence (pcap: the FCS bits of the
        link type; pcapng: the interface's if_fcslen): the FCS is no part of the packet, so it is cut
        when the frame was captured whole (a snaplen cut took it already)."""
        if caplen >= wirelen and caplen >= fcs:
            self._packet(buf, body, body + caplen - fcs, wirelen - fcs, ts, lt)
        else:
            self._packet(buf, body, body + caplen, wirelen, ts, lt)

    @cython.cfunc
    def _idb(self, buf: cython.const[cython.uchar][::1], body: cython.Py_ssize_t, end: cython.Py_ssize_t) -> tuple:
        lt: cython.int = self._u16(buf, body)
        div: cython.double = 1e6
        off: cython.double = 0.0
        fcs: cython.Py_ssize_t = 0
        p: cython.Py_ssize_t = body + 8
        code: cython.uint
        olen: cython.Py_ssize_t
        v: cython.int
        hi: cython.ulonglong
        lo: cython.ulonglong
        while p + 4 <= end:
            code = self._u16(buf, p)
            olen = self._u16(buf, p + 2)
            if code == 0 or p + 4 + olen > end:
                break
            if code == 9 and olen >= 1:  # if_tsresol
                v = buf[p + 4]
                if v & 0x80:
                    div = 2.0 ** (v & 0x7F)
                else:
                    div = 10.0 ** v
            elif code == 14 and olen >= 8:  # if_tsoffset: seconds, a *signed* 64-bit integer
                if self.big:
                    hi = self._u32(buf, p + 4)
                    lo = self._u32(buf, p + 8)
                else:
                    lo = self._u32(buf, p + 4)
                    hi = self._u32(buf, p + 8)
                if hi & 0x80000000:
                    off = (hi - 4294967296.0) * 4294967296.0 + lo
                else:
                    off = hi * 4294967296.0 + lo
            elif code == 13 and olen >= 1:  # if_fcslen: frames end in a frame check sequence
                # the spec says bits, its example ('4') and Wireshark say octets (pcapng issue 60):
                # up to 4 is octets (no FCS is 3 bits long), a multiple of 8 up to 32 is bits
                v = buf[p + 4]
                if v <= 4:
                    fcs = v
                elif v % 8 == 0 and v <= 32:
                    fcs = v // 8
                else:
                    fcs = 0
                    self._count("capture.fcslen_unknown")
            p += 4 + ((olen + 3) & ~3)
        return (lt, div, off, fcs)

    # ------------------------------------------------------------------
    # one packet: L2 → L3 → L4
    # ------------------------------------------------------------------
    def packet(self, ts: cython.double, linktype: cython.int, data, wirelen: cython.Py_ssize_t = -1):
        """Process one packet (live capture): *data* as captured, *wirelen* its length on the wire."""
        if type(data) is not bytes and type(data) is not bytearray:
            data = bytes(data)      # kernels read bytes or a bytearray in place
        if wirelen < 0:
            wirelen = len(data)
        mv: cython.const[cython.uchar][::1] = data
        self.cur = data
        self._packet(mv, 0, len(data), wirelen, ts, linktype)

    @cython.cfunc
    def _packet(self, buf: cython.const[cython.uchar][::1], p: cython.Py_ssize_t, end: cython.Py_ssize_t, wirelen: cython.Py_ssize_t,
                ts: cython.double, lt: cython.int):
        etype: cython.uint = 0
        vlan: cython.int = 0
        smac: cython.Py_ssize_t = -1     # offset of the source MAC in buf, or -1
        dmac: cython.Py_ssize_t = -1
        fam: cython.uint
        ihl: cython.Py_ssize_t
        vihl: cython.uint
        total: cython.Py_ssize_t
        frag: cython.uint
        proto: cython.int
        src: cython.ulonglong
        dst: cython.ulonglong
        capend: cython.Py_ssize_t
        realend: cython.Py_ssize_t
        self.frame += 1     # (also the packet count: capture.packets)
        self.bytes += wirelen
        self.now = ts
        if self.interval_start < 0:
            self.interval_start = ts
            self.last_sweep = ts
        elif ts - self.interval_start >= self.interval:
            self._flush_interval(ts)
        if ts - self.last_sweep >= 10.0:
            self._sweep(ts)
        if lt == LT_ETHERNET:
            if end - p < 14:
                self._count("decode.truncated_l2")
                return
            dmac = p
            smac = p + 6
            if not cython.compiled and STRUCT_READS:
                etype = _ETH_TYPE.unpack_from(buf, p)[0]   # interpreted: one call, not two byte reads
            else:
                etype = (buf[p + 12] << 8) | buf[p + 13]
            p += 14
        elif lt == LT_SLL:
            if end - p < 16:
                self._count("decode.truncated_l2")
                return
            if ((buf[p + 4] << 8) | buf[p + 5]) == 6:
                smac = p + 6
            etype = (buf[p + 14] << 8) | buf[p + 15]
            p += 16
        elif lt == LT_SLL2:
            if end - p < 20:
                self._count("decode.truncated_l2")
                return
            etype = (buf[p] << 8) | buf[p + 1]
            if buf[p + 11] == 6:
                smac = p + 12
            p += 20
        elif lt == LT_RAW or lt == LT_RAW12 or lt == LT_RAW14 or lt == LT_IPV4 or lt == LT_IPV6:
            if end - p < 1:
                self._count("decode.truncated_l3")
                return
            etype = ETH_IPV4 if (buf[p] >> 4) == 4 else ETH_IPV6
        elif lt == LT_NULL or lt == LT_LOOP:
            if end - p < 4:
                self._count("decode.truncated_l2")
                return
            if lt == LT_LOOP:
                fam = (buf[p] * SHIFT24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]
            elif buf[p] == 0 and buf[p + 1] == 0:
                fam = (buf[p + 2] << 8) | buf[p + 3]           # written big-endian
            else:
                fam = buf[p] | (buf[p + 1] << 8)               # written little-endian
            if fam == 2:
                etype = ETH_IPV4
            elif fam == 24 or fam == 28 or fam == 30 or fam == 10:
                etype = ETH_IPV6
            p += 4
        else:
            self._count("decode.unsupported_linktype.%d" % lt)
            return
        if etype == ETH_VLAN or etype == ETH_QINQ or etype == ETH_QINQ_OLD:
            # 802.1Q/802.1ad tags: after Ethernet, and after Linux cooked headers too
            # (``tcpdump -i any`` on a tagged interface writes SLL protocol 0x8100 + the tag)
            self.n_vlan += 1
            while etype == ETH_VLAN or etype == ETH_QINQ or etype == ETH_QINQ_OLD:
                if end - p < 4:
                    self._count("decode.truncated_l2")
                    return
                vlan = ((buf[p] << 8) | buf[p + 1]) & 0x0FFF   # innermost tag wins
                etype = (buf[p + 2] << 8) | buf[p + 3]
                p += 4
        if etype == ETH_IPV4:
            # IPv4 (RFC 791), written out here, its only caller: a call costs more than
            # the header when interpreted
            if end - p < 20:
                self._count("decode.truncated_l3")
                return
            if not cython.compiled and STRUCT_READS:
                vihl, total, frag, proto, src, dst = _IPV4_HDR.unpack_from(buf, p)
                src |= V4_MAPPED
                dst |= V4_MAPPED
            else:
                vihl = buf[p]
                total = (buf[p + 2] << 8) | buf[p + 3]
                frag = (buf[p + 6] << 8) | buf[p + 7]
                proto = buf[p + 9]
                src = V4_MAPPED | (buf[p + 12] * SHIFT24) | (buf[p + 13] << 16) | (buf[p + 14] << 8) | buf[p + 15]
                dst = V4_MAPPED | (buf[p + 16] * SHIFT24) | (buf[p + 17] << 16) | (buf[p + 18] << 8) | buf[p + 19]
            if (vihl >> 4) != 4:
                self._count("decode.bad_ip_version")
                return
            self.n_ipv4 += 1
            ihl = (vihl & 15) * 4
            if total == 0 and ihl >= 20 and end - p >= ihl:
                # total length 0: a segment the capturing host's NIC was to split (TSO); the
                # frame is the datagram (tshark: "presumed to be because of TSO")
                self._count("decode.ipv4_tso_length0")
                total = end - p
            if ihl < 20 or total < ihl:
                self._count("decode.bad_ipv4_header")
                return
            realend = p + total
            # a snaplen cut ends the captured bytes first; the IP header still says how long
            # the datagram was
            capend = realend if realend < end else end
            if frag & 0x3FFF:
                self._count("decode.ipv4_fragments")
                self._fragment(buf, p, ihl, capend, realend, wirelen, vlan, smac, dmac, proto, src, dst, frag)
                return
            self._l4(buf, proto, p + ihl, capend, realend, wirelen, vlan, smac, dmac, 0, src, 0, dst)
        elif etype == ETH_IPV6:
            self._ipv6(buf, p, end, wirelen, vlan, smac, dmac)
        elif etype == ETH_ARP:
            self._arp(buf, p, end, wirelen, vlan, smac)
        else:
            self.n_other_l3 += 1
            if smac >= 0:
                h = self._host(_bytes(self.cur, smac, smac + 6), b"", vlan, "l2")
                h.pkts_tx += 1
                h.bytes_tx += wirelen
                h.last_ts = self.now
                h.last_frame = self.frame
                h.dirty = True
            if etype == ETH_LLDP and smac >= 0 and end - p <= AUX_MAX:
                self.out.append((R_AUX, "lldp", 0, 0, self.now, self.frame, _bytes(self.cur, smac, smac + 6),
                                 b"", b"", _bytes(self.cur, p, end)))

    @cython.cfunc
    def _arp(self, buf: cython.const[cython.uchar][::1], p: cython.Py_ssize_t, end: cython.Py_ssize_t, wirelen: cython.Py_ssize_t,
             vlan: cython.int, smac: cython.Py_ssize_t):
        self.n_arp += 1
        if end - p < 28:
            self._count("decode.truncated_arp")
            return
        if ((buf[p] << 8) | buf[p + 1]) != 1 or ((buf[p + 2] << 8) | buf[p + 3]) != ETH_IPV4 \
                or buf[p + 4] != 6 or buf[p + 5] != 4:
            self._count("decode.arp_not_ethernet_ipv4")
            return
        sha = _bytes(self.cur, p + 8, p + 14)
        spa = _bytes(self.cur, p + 14, p + 18)
        if spa == b"\x00\x00\x00\x00":      # ARP probe (RFC 5227): no address claimed yet
            h = self._host(sha, b"", vlan, "arp")
        else:
            h = self._host(sha, spa, vlan, "arp")
        h.pkts_tx += 1
        h.bytes_tx += wirelen
        h.last_ts = self.now
        h.last_frame = self.frame
        h.dirty = True

    @cython.cfunc
    def _host(self, mac: bytes, ip: bytes, vlan: cython.int, how: str) -> Host:
        k = (mac, ip, vlan)
        h = self.hosts.get(k)
        hh: Host
        if h is None:
            if len(self.hosts) >= self.host_limit:
                self._evict_hosts()
            hh = Host(mac, ip, vlan, self.now)
            hh.data = how != "ip"
            self.hosts[k] = hh
            if self.quiet_ctx:
                hh.quiet = True
                self.scans.quiet_hosts += 1
            else:
                self.out.append((R_HOST, self.now, self.frame, mac, ip, vlan, how))
            return hh
        hh = h
        if how != "ip":
            hh.data = True
        if hh.quiet and not self.quiet_ctx:
            # first seen in a flow held back by a scan summary; now in one reported: seen now
            hh.quiet = False
            self.out.append((R_HOST, self.now, self.frame, mac, ip, vlan, how))
        return hh

    @cython.cfunc
    def _fragment(self, buf: cython.const[cython.uchar][::1], p: cython.Py_ssize_t, ihl: cython.Py_ssize_t,
                  capend: cython.Py_ssize_t, realend: cython.Py_ssize_t, wirelen: cython.Py_ssize_t,
                  vlan: cython.int, smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t, proto: cython.int,
                  src: cython.ulonglong, dst: cython.ulonglong, frag: cython.uint):
        """One IPv4 fragment (RFC 791): kept (_frag_add) until its datagram is whole, which then
        goes to _l4 as one packet."""
        off: cython.Py_ssize_t = (frag & 0x1FFF) * 8
        n: cython.Py_ssize_t = realend - p - ihl
        ident: cython.uint
        if capend < realend:
            self._count("decode.ipv4_fragments_cut")     # snaplen cut: cannot be reassembled
            return
        if off + n > 65535 - ihl:
            self._count("decode.ipv4_fragments_too_long")
            self._anomaly(APP_NONE, 0, 0, -1, "ip.fragment_too_long",
                          "IPv4 fragment at offset %d makes a datagram longer than 65535 bytes" % off)
            return
        ident = (buf[p + 4] << 8) | buf[p + 5]
        r = self._frag_add((src, dst, proto, ident), False, ident, off, (frag & 0x2000) != 0, p + ihl, realend,
                           wirelen, smac, dmac, proto)
        if r is None:
            return
        whole: bytes = r[0]
        m: cython.Py_ssize_t = r[1]
        saved = self.cur
        self.cur = whole
        mv: cython.const[cython.uchar][::1] = whole
        self._l4(mv, proto, m, len(whole), len(whole), r[3], vlan, 6 if m else -1, 0 if m else -1,
                 0, src, 0, dst)
        self.cur = saved

    @cython.cfunc
    def _frag6(self, buf: cython.const[cython.uchar][::1], base: cython.Py_ssize_t, q: cython.Py_ssize_t,
               capend: cython.Py_ssize_t, end_real: cython.Py_ssize_t, wirelen: cython.Py_ssize_t, vlan: cython.int,
               smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t,
               shi: cython.ulonglong, slo: cython.ulonglong, dhi: cython.ulonglong, dlo: cython.ulonglong):
        """One IPv6 fragment (RFC 8200 4.5; its Fragment header at *q*, the extension headers before it
        from *base*): kept (_frag_add, keyed by source, destination and Identification) until the
        packet is whole; the reassembled fragmentable part (next header: the first fragment's) then
        has its remaining extension headers walked and goes to _l4 as one packet."""
        fo: cython.uint = (buf[q + 2] << 8) | buf[q + 3]
        off: cython.Py_ssize_t = fo & 0xFFF8                # 13-bit offset in 8-octet units, in place
        more: cython.bint = (fo & 1) != 0
        ps: cython.Py_ssize_t = q + 8
        n: cython.Py_ssize_t = end_real - ps
        ident: cython.ulonglong
        if n < 0:
            self._count("decode.truncated_l3")          # the payload length ends inside the header
            return
        if capend < end_real:
            self._count("decode.ipv6_fragments_cut")     # snaplen cut: cannot be reassembled
            return
        if more and (n & 7) != 0:
            # RFC 8200 4.5: a fragment other than the last whose length is not a multiple of 8
            # octets is discarded
            self._count("decode.ipv6_fragments_bad_length")
            return
        if (q - base) + off + n > 65535:
            # the reassembled payload (the extension headers before the Fragment header, then the
            # fragmentable part) would be longer than the Payload Length can say: discarded (4.5)
            self._count("decode.ipv6_fragments_too_long")
            self._anomaly(APP_NONE, 0, 0, -1, "ip.fragment_too_long",
                          "IPv6 fragment at offset %d makes a packet longer than 65535 bytes" % off)
            return
        ident = (buf[q + 4] * SHIFT24) | (buf[q + 5] << 16) | (buf[q + 6] << 8) | buf[q + 7]
        r = self._frag_add((shi, slo, dhi, dlo, ident), True, ident, off, more, ps, end_real, wirelen, smac, dmac,
                           buf[q])
        if r is None:
            return
        whole: bytes = r[0]
        m: cython.Py_ssize_t = r[1]
        saved = self.cur
        self.cur = whole
        mv: cython.const[cython.uchar][::1] = whole
        self._ipv6_ext(mv, r[2], m, len(whole), len(whole), r[3], vlan, 6 if m else -1, 0 if m else -1,
                       shi, slo, dhi, dlo, -1)
        self.cur = saved

    @cython.cfunc
    def _frag_add(self, key: tuple, v6: cython.bint, ident: cython.ulonglong, off: cython.Py_ssize_t,
                  more: cython.bint, ps: cython.Py_ssize_t, pe: cython.Py_ssize_t, wirelen: cython.Py_ssize_t,
                  smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t, nh: cython.int) -> list:
        """Hold the fragment ``cur[ps:pe]`` at byte *off* of the datagram *key* (IPv4 or IPv6, one
        table); return ``[MAC bytes + whole datagram, len(MAC bytes), next protocol, wire bytes of its
        fragments]`` once every byte up to the last fragment's end is held, else None.

        Bounded by limits.ip_frag_* (datagrams, bytes held in all: the oldest incomplete datagrams go
        first, their fragments counted dropped; seconds of packet time, _frag_expire) and by
        MAX_FRAG_PIECES a datagram.  Where fragments overlap with different bytes the first copy wins
        and ``ip.fragment_overlap`` is raised (the Teardrop/Rose family, the IDS evasion of RFC 1858;
        RFC 5722 has an IPv6 host drop such a packet: we decode the first copy and report it).
        *nh* is the next protocol; for IPv6 the first fragment's (offset 0) counts (RFC 8200 4.5)."""
        n: cython.Py_ssize_t = pe - ps
        a: cython.Py_ssize_t
        lo: cython.Py_ssize_t
        hi: cython.Py_ssize_t
        fam: str = "decode.ipv6_" if v6 else "decode.ipv4_"
        if n > self.frag_max_bytes:
            self._count(fam + "fragments_dropped")
            return None
        # room first: every byte held counts against limits.ip_frag_max_bytes, whichever datagram
        # it belongs to (the oldest go first; that may be this one)
        while self.frags and (self.frag_bytes + n > self.frag_max_bytes
                              or (len(self.frags) >= self.frag_max and key not in self.frags)):
            self._frag_evict()
        d = self.frags.get(key)
        if d is None:
            # [first ts, pieces [(offset, bytes)], total length or -1, bytes held, wire bytes,
            #  MAC bytes of the first fragment seen, IPv6?, next protocol or -1]
            d = [self.now, [], -1, 0, 0, b"", v6, -1]
            self.frags[key] = d
        pieces: list = d[1]
        if len(pieces) >= MAX_FRAG_PIECES:
            self._count(fam + "fragments_dropped")
            return None
        data = _bytes(self.cur, ps, pe)
        for pc in pieces:
            a = pc[0] - off                  # where the held piece starts in data
            lo = a if a > 0 else 0
            hi = a + len(pc[1])
            if hi > n:
                hi = n
            if lo < hi and data[lo:hi] != pc[1][lo - a:hi - a]:
                self._count(fam + "fragment_overlaps")
                self._anomaly(APP_NONE, 0, 0, -1, "ip.fragment_overlap",
                              "%s id %d: %d byte(s) at offset %d sent again with different data; "
                              "the first copy is kept" % ("IPv6" if v6 else "IPv4", ident, hi - lo, off + lo))
                data = data[:lo] + pc[1][lo - a:hi - a] + data[hi:]
        pieces.append((off, data))
        d[3] += n
        d[4] += wirelen
        self.frag_bytes += n
        if not more:
            d[2] = off + n
        if off == 0:
            d[7] = nh
        if smac >= 0 and dmac >= 0 and (off == 0 or len(d[5]) == 0):
            d[5] = _bytes(self.cur, dmac, dmac + 6) + _bytes(self.cur, smac, smac + 6)
        if d[2] < 0:
            return None
        # whole? walk the pieces in offset order
        pieces.sort(key=_by_offset)
        out = bytearray()
        for pc in pieces:
            if pc[0] > len(out):
                return None                  # a hole still
            if pc[0] + len(pc[1]) > len(out):
                out += pc[1][len(out) - pc[0]:]
        if len(out) < d[2]:
            return None
        del self.frags[key]
        self.frag_bytes -= d[3]
        self._count(fam + "reassembled")
        macs: bytes = d[5]
        return [macs + bytes(out[:d[2]]), len(macs), d[7], d[4]]

    @cython.cfunc
    def _frag_evict(self):
        """Make room: drop the oldest incomplete datagram (its fragments counted dropped)."""
        for k in self.frags:
            d = self.frags.pop(k)
            self.frag_bytes -= d[3]
            self._count("decode.ipv6_fragments_dropped" if d[6] else "decode.ipv4_fragments_dropped", len(d[1]))
            return

    @cython.cfunc
    def _frag_expire(self, now: cython.double):
        """Drop incomplete datagrams older than limits.ip_frag_timeout (packet time)."""
        old = [k for k, d in self.frags.items() if now - d[0] > self.frag_timeout]
        for k in old:
            d = self.frags.pop(k)
            self.frag_bytes -= d[3]
            self._count("decode.ipv6_fragments_timeout" if d[6] else "decode.ipv4_fragments_timeout", len(d[1]))

    @cython.cfunc
    def _ipv6(self, buf: cython.const[cython.uchar][::1], p: cython.Py_ssize_t, end: cython.Py_ssize_t, wirelen: cython.Py_ssize_t,
              vlan: cython.int, smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t):
        plen: cython.Py_ssize_t
        k: cython.int
        shi: cython.ulonglong = 0
        slo: cython.ulonglong = 0
        dhi: cython.ulonglong = 0
        dlo: cython.ulonglong = 0
        if end - p < 40:
            self._count("decode.truncated_l3")
            return
        if (buf[p] >> 4) != 6:
            self._count("decode.bad_ip_version")
            return
        self.n_ipv6 += 1
        plen = (buf[p + 4] << 8) | buf[p + 5]
        for k in range(8):
            shi = ((shi << 8) | buf[p + 8 + k]) & MASK64
            slo = ((slo << 8) | buf[p + 16 + k]) & MASK64
            dhi = ((dhi << 8) | buf[p + 24 + k]) & MASK64
            dlo = ((dlo << 8) | buf[p + 32 + k]) & MASK64
        end_real: cython.Py_ssize_t = p + 40 + plen
        capend: cython.Py_ssize_t = end_real if end_real < end else end
        self._ipv6_ext(buf, buf[p + 6], p + 40, capend, end_real, wirelen, vlan, smac, dmac, shi, slo, dhi, dlo,
                       p + 40)

    @cython.cfunc
    def _ipv6_ext(self, buf: cython.const[cython.uchar][::1], nh: cython.int, q: cython.Py_ssize_t,
                  capend: cython.Py_ssize_t, end_real: cython.Py_ssize_t, wirelen: cython.Py_ssize_t, vlan: cython.int,
                  smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t,
                  shi: cython.ulonglong, slo: cython.ulonglong, dhi: cython.ulonglong, dlo: cython.ulonglong,
                  base: cython.Py_ssize_t):
        """Walk the IPv6 extension headers from *q* (next header *nh*) to L4.  *base* is where the
        packet's extension headers start, or -1 for the fragmentable part of a reassembled packet
        (where a Fragment header that is not atomic is a nested fragment: counted, dropped)."""
        i: cython.int
        nh2: cython.int
        for i in range(8):   # extension headers, bounded
            if nh == 0 or nh == 43 or nh == 60:
                if capend - q < 8:
                    self._count("decode.truncated_l3")
                    return
                nh2 = buf[q]
                q += (buf[q + 1] + 1) * 8
                nh = nh2
            elif nh == 44:
                if capend - q < 8:
                    self._count("decode.truncated_l3")
                    return
                if (((buf[q + 2] << 8) | buf[q + 3]) & 0xFFF9) == 0:
                    # an atomic fragment (offset 0, M=0) is a whole packet (RFC 6946)
                    self._count("decode.ipv6_atomic_fragments")
                elif base < 0:
                    self._count("decode.ipv6_fragments_nested")
                    return
                else:
                    self._count("decode.ipv6_fragments")
                    self._frag6(buf, base, q, capend, end_real, wirelen, vlan, smac, dmac, shi, slo, dhi, dlo)
                    return
                nh = buf[q]
                q += 8
            elif nh == 51:
                if capend - q < 8:
                    self._count("decode.truncated_l3")
                    return
                nh2 = buf[q]
                q += (buf[q + 1] + 2) * 4
                nh = nh2
            else:
                break
        if q > capend:
            self._count("decode.truncated_l3")
            return
        self._l4(buf, nh, q, capend, end_real, wirelen, vlan, smac, dmac, shi, slo, dhi, dlo)

    # ------------------------------------------------------------------
    # L4 and flows
    # ------------------------------------------------------------------
    @cython.cfunc
    def _l4(self, buf: cython.const[cython.uchar][::1], ipproto: cython.int, l4: cython.Py_ssize_t, capend: cython.Py_ssize_t,
            realend: cython.Py_ssize_t, wirelen: cython.Py_ssize_t, vlan: cython.int,
            smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t,
            shi: cython.ulonglong, slo: cython.ulonglong, dhi: cython.ulonglong, dlo: cython.ulonglong):
        sport: cython.int
        dport: cython.int
        flags: cython.int
        seq: cython.longlong
        off: cython.int
        pay: cython.Py_ssize_t
        h: cython.ulonglong
        side: cython.int
        f: Flow
        ho: _HalfOpen
        plen: cython.Py_ssize_t
        if ipproto == 6:
            if capend - l4 < 20:
                self._count("decode.truncated_l4")
                return
            self.n_tcp += 1
            if not cython.compiled and STRUCT_READS:
                sport, dport, seq, off, flags = _TCP_HDR.unpack_from(buf, l4)
            else:
                sport = (buf[l4] << 8) | buf[l4 + 1]
                dport = (buf[l4 + 2] << 8) | buf[l4 + 3]
                seq = (buf[l4 + 4] * SHIFT24) | (buf[l4 + 5] << 16) | (buf[l4 + 6] << 8) | buf[l4 + 7]
                off = buf[l4 + 12]
                flags = buf[l4 + 13]
            pay = l4 + (off >> 4) * 4
            if off < 0x50 or pay > capend:      # (off < 0x50: a data offset under 5 words)
                self._count("decode.bad_tcp_header")
                return
        elif ipproto == 17:
            if capend - l4 < 8:
                self._count("decode.truncated_l4")
                return
            self.n_udp += 1
            sport = (buf[l4] << 8) | buf[l4 + 1]
            dport = (buf[l4 + 2] << 8) | buf[l4 + 3]
            pay = l4 + 8
            flags = 0
            seq = 0
        else:
            self.n_other_l4 += 1
            sport = dport = flags = 0
            seq = 0
            pay = capend
        # the flow key is direction-free: hash the two endpoints in a canonical order.  The
        # VLAN is no part of it (as in Zeek): a connection whose two directions are tagged
        # differently (a router on a stick, a SPAN of both VLANs) is one flow; the flow keeps
        # the VLAN of its first packet.
        # Only equality of hashes matters (nothing reports them), so the interpreted path
        # uses CPython's tuple hash: five _mix64 calls would cost ~2.5 us a packet there.
        # It is not masked to 64 bits (a new int object a packet): a negative h is as good a
        # dict key, and h & FLOW_CACHE_MASK is a slot index either way.
        if shi < dhi or (shi == dhi and (slo < dlo or (slo == dlo and sport <= dport))):
            if cython.compiled:
                h = _mix64(_mix64(_mix64(_mix64(_mix64(ipproto, shi), slo), dhi), dlo),
                           (sport * SHIFT16) | dport)
            else:
                h = hash((ipproto, shi, slo, dhi, dlo, sport, dport))
        else:
            if cython.compiled:
                h = _mix64(_mix64(_mix64(_mix64(_mix64(ipproto, dhi), dlo), shi), slo),
                           (dport * SHIFT16) | sport)
            else:
                h = hash((ipproto, dhi, dlo, shi, slo, dport, sport))
        # the last flow seen in this hash's cache slot, else the table (a dict keyed by the
        # hash: a Python int per lookup, so the slot saves it for the packets of busy flows)
        slot: cython.Py_ssize_t = h & FLOW_CACHE_MASK
        f = self.fcache[slot]
        cached: cython.bint = True
        if f is None:
            f = self.flows.get(h)
            cached = False
        side = -1
        while f is not None:
            # the packet's side on flow f (0 client -> server, 1 server -> client), if it is
            # f's; written out in the loop, not a call: it runs for every packet
            if f.ipproto == ipproto:
                if f.a_lo == slo and f.a_hi == shi and f.a_port == sport and f.b_lo == dlo \
                        and f.b_hi == dhi and f.b_port == dport:
                    side = 0
                    break
                if f.a_lo == dlo and f.a_hi == dhi and f.a_port == dport and f.b_lo == slo \
                        and f.b_hi == shi and f.b_port == sport:
                    side = 1
                    break
            if cached:
                f = self.flows.get(h)      # not the slot's flow: walk the table's chain
                cached = False
            else:
                f = f.chain
        if f is not None and not cached:
            self.fcache[slot] = f
        if f is None and ipproto == 6 and len(self.half_open) > 0:
            o = self.half_open.get(h)
            if o is not None:
                ho = o
                side = _ho_side(ho, shi, slo, sport, dhi, dlo, dport)
                if side == 0 and (flags & 0x12) == 0x02 and (ho.state & ST_RST) != 0:
                    self._end_half_open(ho)      # a new connection reusing the 4-tuple of a reset one
                    side = -1
                elif side >= 0:
                    if realend <= pay and (flags & 0x01) == 0:
                        self._absorb(ho, side, flags, seq, wirelen)
                        return
                    f = self._promote(ho)
        if f is not None and ipproto == 6 and (flags & 0x12) == 0x02:
            if side == 0 and (f.state & (ST_RST | ST_FIN_C | ST_FIN_S)) != 0:
                # a new connection reusing the 4-tuple of a closed one
                self._end_flow(f, END_CLOSED)
                f = None
            elif (f.payload_c > 0 or f.payload_s > 0) and ((seq + 1) & MASK32) != f.syn_c:
                # a SYN with a new ISN (higher or lower) after data, no FIN or RST seen: the
                # next connection on these ports (Zeek and Suricata do the same); its bytes are
                # neither retransmissions nor a multi-megabyte gap of the old one
                self._count("flows.port_reused")
                self._end_flow(f, END_REUSED)
                f = None
        if f is None:
            f = self._new_flow(buf, h, ipproto, vlan, smac, dmac, shi, slo, sport, dhi, dlo, dport, flags,
                               pay, capend, ipproto == 6 and (flags & 0x17) == 0x02 and realend <= pay)
            if f is None:       # a half-open record stands for it
                self._absorb(self.half_open[h], 0, flags, seq, wirelen)
                return
            side = 0 if (f.a_lo == slo and f.a_hi == shi and f.a_port == sport) else 1
        f.last_ts = self.now
        f.last_frame = self.frame
        if side == 0:          # the hosts get these in bulk (_push_flow)
            f.pkts_c += 1
            f.bytes_c += wirelen
        else:
            f.pkts_s += 1
            f.bytes_s += wirelen
        if ipproto == 6:
            # TCP state and reassembly, written out here, its only caller: a call costs
            # more than the checks when interpreted
            plen = realend - pay
            if plen < 0:
                plen = 0
            if flags & 0x02:
                f.state |= ST_SYNACK if (flags & 0x10) else ST_SYN
                seq = (seq + 1) & MASK32
                if side == 0:
                    if (flags & 0x10) == 0 and f.syn_c < 0:
                        f.syn_c = seq
                    if f.next_c < 0 or (f.state & ST_DATA) == 0:
                        f.next_c = seq
                elif f.next_s < 0 or (f.state & ST_DATA) == 0:
                    f.next_s = seq
            if flags & 0x04:
                f.state |= ST_RST
            if plen > 0:
                if side == 0:
                    f.payload_c += plen
                else:
                    f.payload_s += plen
                if flags & 0x04:
                    # data on a RST is a diagnostic at most (RFC 9293 3.5.3), never stream data
                    self._count("tcp.rst_payload_ignored")
                elif f.core is not None or f.probing or f.app == APP_TLS or f.lazy:
                    if f.lazy:
                        self._wake(f)
                    f.state |= ST_DATA
                    if seq == (f.next_c if side == 0 else f.next_s) and capend == realend \
                            and not (f.ooo_c if side == 0 else f.ooo_s):
                        # the usual segment: exactly the next bytes, all captured, nothing held
                        # (the first case of _in_order, tested here without a call; seq and next
                        # are both in 0..2**32-1, so this is _seqdiff(seq, next) == 0, and plen > 0
                        # is realend - pay, so all captured is capend == realend)
                        self._deliver(f, side, self.cur, pay, capend)
                        if f.core is not None:
                            self._remember(f, side, self.cur, seq, pay, capend)
                        if side == 0:
                            f.next_c = (seq + plen) & MASK32
                            if (f.state & ST_FIN_C) != 0:
                                self._drain_ooo(f, 0, False)    # (only a FIN needs it)
                        else:
                            f.next_s = (seq + plen) & MASK32
                            if (f.state & ST_FIN_S) != 0:
                                self._drain_ooo(f, 1, False)
                    else:
                        self._segment(f, side, self.cur, seq, pay, capend, plen)
            if flags & 0x01:
                # the FIN ends the stream only once every byte before it has arrived: a FIN
                # overtaking the last data must not end the stream early
                if side == 0:
                    f.state |= ST_FIN_C
                    f.fin_c = (seq + plen) & MASK32
                else:
                    f.state |= ST_FIN_S
                    f.fin_s = (seq + plen) & MASK32
                self._drain_ooo(f, side, False)
        elif ipproto == 17:
            plen = capend - pay
            if side == 0:
                f.payload_c += plen
            else:
                f.payload_s += plen
            if plen > 0 and plen <= AUX_MAX:
                kind = AUX_UDP.get(sport)
                if kind is None:
                    kind = AUX_UDP.get(dport)
                if kind is not None:
                    if (kind == "dns" or kind == "mdns") and (plen < 12 or (buf[pay + 2] & 0x80) == 0):
                        return    # only answers carry name → address evidence
                    self.out.append((R_AUX, kind, f.fid, side, self.now, self.frame,
                                     _bytes(self.cur, smac, smac + 6) if smac >= 0 else b"",
                                     _ip_bytes(shi, slo), _ip_bytes(dhi, dlo), _bytes(self.cur, pay, capend)))

    @cython.cfunc
    def _new_flow(self, buf: cython.const[cython.uchar][::1], h: cython.ulonglong, ipproto: cython.int, vlan: cython.int,
                  smac: cython.Py_ssize_t, dmac: cython.Py_ssize_t,
                  shi: cython.ulonglong, slo: cython.ulonglong, sport: cython.int,
                  dhi: cython.ulonglong, dlo: cython.ulonglong, dport: cython.int, flags: cython.int,
                  pay: cython.Py_ssize_t, capend: cython.Py_ssize_t, bare: cython.bint) -> Flow:
        """The flow this packet begins; None when it is a bare SYN (*bare*) held back by ``_Scans``:
        then a half-open record (``_HalfOpen``) under hash *h* stands for it, its packet not counted yet."""
        sender_is_client: cython.bint = True
        guessed: cython.bint = False
        quiet: cython.bint
        if ipproto == 6:
            if (flags & 0x12) == 0x02:
                sender_is_client = True
            elif (flags & 0x12) == 0x12:
                sender_is_client = False
            else:
                guessed = True
                sender_is_client = self._orient(sport, dport, pay, capend)
        elif ipproto == 17:
            # UDP: the first sender is the client (Zeek's convention), unless it answers from a service port
            if (sport in AUX_UDP and dport not in AUX_UDP) or \
                    (sport in self.port_map and dport not in self.port_map):
                sender_is_client = False
        smac_b = _bytes(self.cur, smac, smac + 6) if smac >= 0 else b""
        dmac_b = _bytes(self.cur, dmac, dmac + 6) if dmac >= 0 else b""
        sip = _ip_bytes(shi, slo)
        dip = _ip_bytes(dhi, dlo)
        # scans and floods: past the source's, target's or interval's budget the flow is tracked
        # but reported only in the interval's scan summary (_Scans)
        if sender_is_client:
            quiet = not self.scans.flow(sip, dip, ipproto, dport, self.now, self.frame)
        else:
            quiet = not self.scans.flow(dip, sip, ipproto, sport, self.now, self.frame)
        fid: cython.longlong = self.next_fid
        self.next_fid += 1
        if quiet and bare and self.max_half_open > 0 and h not in self.half_open:
            self._half_open(h, fid, vlan, shi, slo, sport, dhi, dlo, dport, sip, dip, smac_b, dmac_b)
            return None
        if self.nflows >= self.max_flows:
            self._make_room()
        if sender_is_client:
            return self._build_flow(h, fid, ipproto, vlan, guessed, quiet, shi, slo, sport, dhi, dlo, dport,
                                    sip, dip, smac_b, dmac_b)
        return self._build_flow(h, fid, ipproto, vlan, guessed, quiet, dhi, dlo, dport, shi, slo, sport,
                                dip, sip, dmac_b, smac_b)

    @cython.cfunc
    def _build_flow(self, h: cython.ulonglong, fid: cython.longlong, ipproto: cython.int, vlan: cython.int,
                    guessed: cython.bint, quiet: cython.bint,
                    a_hi: cython.ulonglong, a_lo: cython.ulonglong, a_port: cython.int,
                    b_hi: cython.ulonglong, b_lo: cython.ulonglong, b_port: cython.int,
                    cip: bytes, sip: bytes, cmac: bytes, smac: bytes) -> Flow:
        """Flow *fid* of client a to server b, in the table, bound to its hosts, link and kernel (the
        flow table has room: the caller made it)."""
        f: Flow = Flow()
        f.fid = fid
        f.h = h
        f.ipproto = ipproto
        f.vlan = vlan
        f.guessed = guessed
        f.first_ts = self.now
        f.quiet = quiet
        f.a_hi, f.a_lo, f.a_port, f.b_hi, f.b_lo, f.b_port = a_hi, a_lo, a_port, b_hi, b_lo, b_port
        self.quiet_ctx = quiet
        f.host_c = self._host(cmac, cip, vlan, "ip")
        f.host_c.nflows += 1
        f.host_s = self._host(smac, sip, vlan, "ip")
        f.host_s.nflows += 1
        f.chain = self.flows.get(h)
        self.flows[h] = f
        self.nflows += 1
        if ipproto == 6:
            app = self.port_map.get(b_port)
            if app is not None and app in self.kernels:
                self._attach(f, app, True)
            elif b_port in self.tls_ports:
                f.app = APP_TLS
                f.link_id = self._link(f, APP_TLS, cip, sip)
            elif len(self.kernels) > 0:
                f.probing = True
        self.quiet_ctx = False
        if not quiet:
            self.out.append((R_FLOW_NEW, fid, self.now, self.frame, ipproto, vlan, cip, a_port, sip, b_port,
                             cmac, smac, guessed, APP_NAMES[f.app], f.link_id))
        return f

    # ------------------------------------------------------------------
    # half-open records (_HalfOpen): a flood's bare SYNs, without Flow, Host or Link
    # ------------------------------------------------------------------
    @cython.cfunc
    def _half_open(self, h: cython.ulonglong, fid: cython.longlong, vlan: cython.int,
                   a_hi: cython.ulonglong, a_lo: cython.ulonglong, a_port: cython.int,
                   b_hi: cython.ulonglong, b_lo: cython.ulonglong, b_port: cython.int,
                   cip: bytes, sip: bytes, cmac: bytes, smac: bytes):
        """Record a new half-open connection (the table full: its oldest tenth ends first)."""
        ho: _HalfOpen = _HalfOpen()
        if len(self.half_open) >= self.max_half_open:
            self._half_open_room()
        ho.h = h
        ho.fid = fid
        ho.vlan = vlan
        ho.a_hi, ho.a_lo, ho.a_port, ho.b_hi, ho.b_lo, ho.b_port = a_hi, a_lo, a_port, b_hi, b_lo, b_port
        ho.cip = cip
        ho.sip = sip
        ho.cmac = cmac
        ho.smac = smac
        ho.first_ts = self.now
        ho.first_frame = self.frame
        self.half_open[h] = ho

    @cython.cfunc
    def _absorb(self, ho: _HalfOpen, side: cython.int, flags: cython.int, seq: cython.longlong,
                wirelen: cython.Py_ssize_t):
        """A packet without payload or FIN on half-open *ho*: what _l4 does to a Flow's counters and
        TCP state for it (a record never carries data, so a SYN always sets the next sequence number)."""
        ho.last_ts = self.now
        ho.last_frame = self.frame
        if side == 0:
            ho.pkts_c += 1
            ho.bytes_c += wirelen
        else:
            ho.pkts_s += 1
            ho.bytes_s += wirelen
        if flags & 0x02:
            ho.state |= ST_SYNACK if (flags & 0x10) else ST_SYN
            seq = (seq + 1) & MASK32
            if side == 1:
                ho.next_s = seq
            else:
                ho.next_c = seq
                if (flags & 0x10) == 0 and ho.syn_c < 0:
                    ho.syn_c = seq
        if flags & 0x04:
            ho.state |= ST_RST

    @cython.cfunc
    def _promote(self, ho: _HalfOpen) -> Flow:
        """Half-open *ho* carries more than a handshake: the held-back Flow it stands for, made as at
        its SYN (hosts, link and their first sighting at the SYN's time and frame) with its counters."""
        del self.half_open[ho.h]
        if self.nflows >= self.max_flows:
            self._make_room()
        now: cython.double = self.now
        frame: cython.longlong = self.frame
        self.now = ho.first_ts
        self.frame = ho.first_frame
        f: Flow = self._build_flow(ho.h, ho.fid, 6, ho.vlan, False, True, ho.a_hi, ho.a_lo, ho.a_port,
                                   ho.b_hi, ho.b_lo, ho.b_port, ho.cip, ho.sip, ho.cmac, ho.smac)
        self.now = now
        self.frame = frame
        f.last_ts = ho.last_ts
        f.last_frame = ho.last_frame
        f.pkts_c, f.pkts_s, f.bytes_c, f.bytes_s = ho.pkts_c, ho.pkts_s, ho.bytes_c, ho.bytes_s
        f.pushed_pkts_c, f.pushed_pkts_s = ho.pushed_pkts_c, ho.pushed_pkts_s
        f.pushed_bytes_c, f.pushed_bytes_s = ho.pushed_bytes_c, ho.pushed_bytes_s
        f.state = ho.state
        f.syn_c = ho.syn_c
        f.next_c = ho.next_c
        f.next_s = ho.next_s
        self._count("flows.half_open_promoted")
        return f

    @cython.cfunc
    def _push_half_open(self, ho: _HalfOpen, end: cython.bint):
        """Its packets since the last push to its hosts, those in the table (``_push_flow``).  At its
        *end*, an endpoint not in the table was never reported: counted (scans.hosts_unreported)."""
        dpc: cython.longlong = ho.pkts_c - ho.pushed_pkts_c
        dps: cython.longlong = ho.pkts_s - ho.pushed_pkts_s
        if (dpc == 0 and dps == 0) and not end:
            return
        hc = self.hosts.get((ho.cmac, ho.cip, ho.vlan))
        hs = self.hosts.get((ho.smac, ho.sip, ho.vlan))
        if end:
            self.scans.quiet_hosts += (hc is None) + (hs is None)
        _push_hosts(hc, hs, dpc, dps, ho.bytes_c - ho.pushed_bytes_c, ho.bytes_s - ho.pushed_bytes_s,
                    ho.last_ts, ho.last_frame)
        ho.pushed_pkts_c = ho.pkts_c
        ho.pushed_pkts_s = ho.pkts_s
        ho.pushed_bytes_c = ho.bytes_c
        ho.pushed_bytes_s = ho.bytes_s

    @cython.cfunc
    def _end_half_open(self, ho: _HalfOpen):
        """*ho* ends (held back: no flow.end, as its Flow would have ended): its packets to its hosts."""
        self._push_half_open(ho, True)
        del self.half_open[ho.h]

    @cython.cfunc
    def _half_open_room(self):
        """The half-open table is full (limits.max_half_open): its oldest tenth (the dict keeps
        creation order) ends, counted in flows.evicted_half_open."""
        ho: _HalfOpen
        k: cython.Py_ssize_t = len(self.half_open) // 10 + 1
        old = []
        for v in self.half_open.values():
            old.append(v)
            if len(old) >= k:
                break
        for v in old:
            ho = v
            self._end_half_open(ho)
        self._count("flows.evicted_half_open", len(old))

    @cython.cfunc
    def _sweep_half_open(self, now: cython.double):
        """The flow timeouts of _sweep, for half-open records: reset ones after tcp_closed_linger,
        the others after flow_new_timeout (counted as flows are)."""
        ho: _HalfOpen
        dead = []
        for v in self.half_open.values():
            ho = v
            if (ho.state & ST_RST) != 0:
                if now - ho.last_ts > self.linger:
                    dead.append(ho)
            elif now - ho.last_ts > self.new_idle:
                dead.append(ho)
        for v in dead:
            ho = v
            self._count("flows.ended_closed" if (ho.state & ST_RST) != 0 else "flows.evicted_idle")
            self._end_half_open(ho)

    @cython.cfunc
    def _orient(self, sport: cython.int, dport: cython.int, pay: cython.Py_ssize_t,
                capend: cython.Py_ssize_t) -> cython.bint:
        """Mid-stream orientation (the flow is marked guessed): is the sender the client?
        When both ports are protocols' ports (a client whose ephemeral port is 4840 talking
        to 502), the payload says which protocol this is, and that protocol's port is the
        server's; otherwise the port rules of _client_by_port."""
        ad = self.port_map.get(dport)
        asrc = self.port_map.get(sport)
        sd: cython.int = 0
        ss: cython.int = 0
        if ad is not None and ad == asrc and capend > pay and ad in self.kernels \
                and len(self.kernels[ad]) > 2 and self.kernels[ad][2] is not None:
            # the same protocol's port on both sides (502 to 502): the shape of the message
            # (a request's or a response's) says who sent it
            sd = self.kernels[ad][2](self.cur, pay, capend)
            if sd >= 0:
                self._count("flows.oriented_by_content")
                return sd == 0
        if ad is not None and asrc is not None and ad != asrc and capend > pay:
            if ad in self.kernels:
                sd = self.kernels[ad][1](self.cur, pay, capend)
            if asrc in self.kernels:
                ss = self.kernels[asrc][1](self.cur, pay, capend)
            if ss > sd:
                self._count("flows.oriented_by_content")
                return False
            if sd > ss:
                self._count("flows.oriented_by_content")
                return True
        return self._client_by_port(sport, dport)

    @cython.cfunc
    def _client_by_port(self, sport: cython.int, dport: cython.int) -> cython.bint:
        """Mid-stream orientation: is the sender of this packet the client?"""
        if dport in self.port_map or dport in self.tls_ports:
            return True
        if sport in self.port_map or sport in self.tls_ports:
            return False
        if dport < 1024 <= sport:
            return True
        if sport < 1024 <= dport:
            return False
        return dport <= sport

    @cython.cfunc
    def _link(self, f: Flow, app: cython.int, cip: bytes, sip: bytes) -> cython.longlong:
        """Bind flow *f* to the link of (app, VLAN, client, server, server port), made when new;
        return its id."""
        lk: Link
        k = (app, f.vlan, cip, sip, f.b_port)
        v = self.links.get(k)
        if v is None:
            if len(self.links) >= self.link_limit:
                self._evict_links(0)
            lk = Link(self.next_link, app, k, self.now)
            self.next_link += 1
            hook = _LinkScan(self.scans, cip, sip, app)      # the client's scan budget (parsers.common.KEY_SCAN)
            lk.seen_c[KEY_SCAN] = hook
            lk.seen_s[KEY_SCAN] = hook
            self.links[k] = lk
            self.link_seen[lk.lid] = lk
            self.out.append((R_LINK, lk.lid, self.now, self.frame, APP_NAMES[app], f.vlan, cip, sip, f.b_port,
                             self.quiet_ctx))
        else:
            lk = v
        self._unbind_link(f)
        lk.nflows += 1
        f.link = lk
        return lk.lid

    @cython.cfunc
    def _unbind_link(self, f: Flow):
        lk: Link
        if f.link is not None:
            lk = f.link
            lk.nflows -= 1
            lk.last_ts = self.now
            if f.ipproto != 6 or (f.state & ST_DATA) != 0:
                lk.data = True
            f.link = None

    @cython.cfunc
    def _attach(self, f: Flow, app: cython.int, by_port: cython.bint):
        """Give flow *f* a kernel of *app*.  *by_port*: the server port is the protocol's (its
        well-known port or one given with --port), so the kernel is port-bound: framing
        confirms it and bad content is reported, not a reason to let the stream go."""
        cip = _ip_bytes(f.a_hi, f.a_lo)
        sip = _ip_bytes(f.b_hi, f.b_lo)
        f.app = app
        f.link_id = self._link(f, app, cip, sip)
        f.probing = False
        if by_port:
            # the kernel is made at the first payload (_wake): a SYN that is never answered
            # with data, the bulk of a flood, costs no kernel
            f.lazy = True
            f.fresh = 3
        else:
            self._wake(f)

    @cython.cfunc
    def _wake(self, f: Flow):
        """Make flow *f*'s kernel (its link's tallies, port-bound when the flow was lazy)."""
        lk: Link = f.link
        cls = self.kernels[f.app][0]
        f.core = cls(lk.seen_c, self.detail_all, self.limits, lk.seen_s)
        f.cfeed = _c_feed(f.core)
        if f.lazy:
            f.lazy = False
            f.core.port_bound = True

    @cython.cfunc
    def _foreign(self, f: Flow, side: cython.int, data, s: cython.Py_ssize_t, e: cython.Py_ssize_t) -> cython.bint:
        """The first payload of *side* on a port-bound flow: True (and the kernel rejected)
        when it is HTTP or TLS, which no OT protocol here starts with (HTTP_STARTS)."""
        f.fresh &= ~(1 << side)
        head = _bytes(data, s, e if e - s <= 16 else s + 16)
        foreign: cython.bint = head.startswith(HTTP_STARTS)
        if not foreign and len(head) >= 3 and 0x14 <= head[0] <= 0x17 and head[1] == 3 and head[2] <= 4:
            # a TLS record header; an OT message could start the same way only by chance,
            # so the protocol's own probe decides when it is plausible
            foreign = self.kernels[f.app][1](data, s, e) == 0
        if foreign:
            self._count("dispatch.foreign_on_port")
            self._reject(f, side, data, s, e)
        return foreign

    # ------------------------------------------------------------------
    # TCP: state and reassembly
    # ------------------------------------------------------------------
    @cython.cfunc
    def _segment(self, f: Flow, side: cython.int, buf, seq: cython.longlong,
                 s: cython.Py_ssize_t, e: cython.Py_ssize_t, plen: cython.Py_ssize_t):
        """A payload that is not simply the next bytes (_l4 delivers those itself): the
        first of a stream, a retransmission, an overlap, a snaplen cut, or ahead of a hole."""
        nxt: cython.longlong = f.next_c if side == 0 else f.next_s
        rel: cython.longlong
        i: cython.Py_ssize_t
        if nxt < 0:
            if plen <= 1:
                # a keep-alive (RFC 1122 4.2.3.6: one garbage byte at SND.NXT - 1) is what a
                # capture most often starts with; the stream starts at the next segment
                self._count("tcp.keepalives")
                return
            nxt = seq            # capture started mid-stream: take the stream from here
            if side == 0:
                f.next_c = nxt
            else:
                f.next_s = nxt
            if f.core is not None:
                # the kernel must look for a message boundary before decoding
                rs = getattr(f.core, "resync", None)
                if rs is not None:
                    rs(side)
        ooo: list = f.ooo_c if side == 0 else f.ooo_s
        rel = _seqdiff(seq, nxt)
        if rel <= 0:
            if len(ooo) > 0:
                # bytes held ahead were there first: where this segment covers them with other
                # bytes, the held ones win (and the difference is reported)
                data = self._patch_held(f, side, ooo, seq, _bytes(buf, s, e))
                self._in_order(f, side, data, seq, 0, len(data), plen, -rel)
            else:
                self._in_order(f, side, buf, seq, s, e, plen, -rel)
            if len(ooo) > 0 or (f.state & (ST_FIN_C if side == 0 else ST_FIN_S)) != 0:
                self._drain_ooo(f, side, False)    # nothing to do without queued segments or a FIN
            return
        # ahead of what we expect: keep it until the hole fills, within bounds
        held: cython.longlong = f.ooo_bytes_c if side == 0 else f.ooo_bytes_s
        self._count("reassembly.out_of_order")
        data = _bytes(buf, s, e)
        if len(ooo) > 0:
            data = self._patch_held(f, side, ooo, seq, data)
        i = 0
        while i < len(ooo) and _seqdiff(ooo[i][0], nxt) <= rel:
            i += 1
        ooo.insert(i, (seq, data, plen))
        held += e - s
        self.ooo_total += (e - s) + OOO_SEGMENT_COST
        if side == 0:
            f.ooo_bytes_c = held
        else:
            f.ooo_bytes_s = held
        if len(ooo) > self.max_ooo_segs or held > self.max_ooo_bytes:
            self._count("reassembly.buffer_full")
            self._drain_ooo(f, side, True)
        elif self.ooo_total > self.ooo_total_max:
            # all flows together hold the memcap's reassembly share: the flow that went over gives
            # up what it holds on this side (its holes become gaps, as at its own bound)
            self._count("reassembly.memcap_drains")
            while len(ooo) > 0 and self.ooo_total > self.ooo_total_max:
                self._drain_ooo(f, side, True)

    @cython.cfunc
    def _in_order(self, f: Flow, side: cython.int, data, seq: cython.longlong,
                  s: cython.Py_ssize_t, e: cython.Py_ssize_t, plen: cython.Py_ssize_t, skip: cython.Py_ssize_t):
        """Deliver a segment that starts at or before the next expected byte."""
        cap: cython.Py_ssize_t = e - s
        if plen == 1 and skip == 1:
            # a keep-alive (RFC 1122 4.2.3.6: one garbage byte at SND.NXT - 1): not stream
            # data, and its byte is not compared with the one it repeats
            self._count("tcp.keepalives")
            return
        if skip > 0:
            self._check_overlap(f, side, data, seq, s, e if skip >= cap else s + skip)
        if skip >= plen:
            self._count("reassembly.retransmitted_segments")
            return
        if skip > 0:
            self._count("reassembly.overlap_bytes", skip)
        if skip < cap:
            self._deliver(f, side, data, s + skip, e)
            if f.core is not None:
                self._remember(f, side, data, (seq + skip) & MASK32, s + skip, e)
        if cap < plen:     # snaplen cut the segment: the rest is a hole in the stream
            self._count("capture.snaplen_cut_segments")
            self._gap(f, side, plen - (cap if cap > skip else skip))
        if side == 0:
            f.next_c = (seq + plen) & MASK32
        else:
            f.next_s = (seq + plen) & MASK32

    @cython.cfunc
    def _remember(self, f: Flow, side: cython.int, data, seq: cython.longlong,
                  s: cython.Py_ssize_t, e: cython.Py_ssize_t):
        """Fingerprint the tail (FP_MAX_BYTES) of the segment data[s:e] just delivered at *seq*."""
        if e - s > FP_MAX_BYTES:
            seq = (seq + (e - s - FP_MAX_BYTES)) & MASK32
            s = e - FP_MAX_BYTES
        if side == 0:
            f.fseq_c = seq
            f.flen_c = e - s
            f.fp_c = _fp(data, s, e)
        else:
            f.fseq_s = seq
            f.flen_s = e - s
            f.fp_s = _fp(data, s, e)

    @cython.cfunc
    def _check_overlap(self, f: Flow, side: cython.int, data, seq: cython.longlong,
                       s: cython.Py_ssize_t, e: cython.Py_ssize_t):
        """data[s:e], at *seq*, repeats bytes already delivered: when it covers the last
        delivered segment's fingerprinted tail, it must carry the same bytes.  The copy
        delivered first stands (the kernels saw it); a different one is reported."""
        flen: cython.Py_ssize_t = f.flen_c if side == 0 else f.flen_s
        fseq: cython.longlong = f.fseq_c if side == 0 else f.fseq_s
        off: cython.longlong
        if flen == 0:
            return
        off = _seqdiff(fseq, seq)
        if off < 0 or off + flen > e - s:
            return
        if _fp(data, s + off, s + off + flen) != (f.fp_c if side == 0 else f.fp_s):
            self._overlap_anomaly(f, side, fseq, flen)

    @cython.cfunc
    def _overlap_anomaly(self, f: Flow, side: cython.int, seq: cython.longlong, n: cython.Py_ssize_t):
        self._flow_anomaly(f, (0, side, self.now, self.frame, "tcp.overlap_inconsistent",
                               "%d byte(s) at sequence number %d retransmitted with different data; "
                               "the first copy is kept" % (n, seq)))

    @cython.cfunc
    def _patch_held(self, f: Flow, side: cython.int, ooo: list, seq: cython.longlong, data: bytes) -> bytes:
        """*data* at *seq* overlaps segments held out of order: where it carries other bytes
        than a held segment, the held (first) copy wins and the difference is reported."""
        a: cython.longlong
        lo: cython.Py_ssize_t
        hi: cython.Py_ssize_t
        n: cython.Py_ssize_t = len(data)
        for h in ooo:
            hdata: bytes = h[1]
            a = _seqdiff(h[0], seq)          # where the held segment starts in data
            lo = a if a > 0 else 0
            hi = a + len(hdata)
            if hi > n:
                hi = n
            if lo < hi and data[lo:hi] != hdata[lo - a:hi - a]:
                self._overlap_anomaly(f, side, (seq + lo) & MASK32, hi - lo)
                data = data[:lo] + hdata[lo - a:hi - a] + data[hi:]
        return data

    @cython.cfunc
    def _drain_ooo(self, f: Flow, side: cython.int, force: cython.bint):
        """Deliver buffered segments that have become in order; with *force*, skip holes."""
        ooo: list = f.ooo_c if side == 0 else f.ooo_s
        nxt: cython.longlong
        rel: cython.longlong
        while len(ooo) > 0:
            nxt = f.next_c if side == 0 else f.next_s
            seq, data, plen = ooo[0]
            rel = _seqdiff(seq, nxt)
            if rel > 0:
                if not force:
                    break
                self._gap(f, side, rel)
                rel = 0
            ooo.pop(0)
            self.ooo_total -= len(data) + OOO_SEGMENT_COST
            if side == 0:
                f.ooo_bytes_c -= len(data)
            else:
                f.ooo_bytes_s -= len(data)
            self._in_order(f, side, data, seq, 0, len(data), plen, -rel)
            if force and len(ooo) <= self.max_ooo_segs // 2 and \
                    (f.ooo_bytes_c if side == 0 else f.ooo_bytes_s) <= self.max_ooo_bytes // 2:
                force = False
        nxt = f.next_c if side == 0 else f.next_s
        fin: cython.longlong = f.fin_c if side == 0 else f.fin_s
        if (f.state & (ST_FIN_C if side == 0 else ST_FIN_S)) and len(ooo) == 0 \
                and (force or nxt < 0 or fin < 0 or _seqdiff(nxt, fin) >= 0):
            if side == 0 and not f.eof_c:
                f.eof_c = True
                if f.core is not None:
                    f.core.eof(0, self.now, self.frame, self.kbuf)
                    self._drain_kernel(f)
            elif side == 1 and not f.eof_s:
                f.eof_s = True
                if f.core is not None:
                    f.core.eof(1, self.now, self.frame, self.kbuf)
                    self._drain_kernel(f)

    @cython.cfunc
    def _gap(self, f: Flow, side: cython.int, n: cython.longlong):
        f.gap_bytes += n
        self._count("reassembly.gaps")
        self._count("reassembly.gap_bytes", n)
        if side == 0:
            f.next_c = (f.next_c + n) & MASK32
        else:
            f.next_s = (f.next_s + n) & MASK32
        if f.core is not None:
            f.core.gap(side, n, self.now, self.frame, self.kbuf)
            self._drain_kernel(f)
        elif f.probing:
            f.probing = False          # a hole before we know the protocol: stop guessing
            f.probe_buf = []
            self._count("dispatch.probe_abandoned_gap")

    # ------------------------------------------------------------------
    # dispatch to protocol kernels
    # ------------------------------------------------------------------
    @cython.cfunc
    def _deliver(self, f: Flow, side: cython.int, data, s: cython.Py_ssize_t, e: cython.Py_ssize_t):
        n: cython.Py_ssize_t = e - s
        st: cython.int
        if n <= 0:
            return
        if f.fresh != 0 and f.core is not None and (f.fresh & (1 << side)) != 0:
            if self._foreign(f, side, data, s, e):
                return
        if f.core is not None:
            self.ot_bytes += n
            if f.cfeed != 0:
                st = _call_feed(f.cfeed, f.core, side, data, s, e, self.now, self.frame, self.kbuf)
            else:
                st = f.core.feed(side, data, s, e, self.now, self.frame, self.kbuf)
            if self.kbuf:     # (a truth test: len() is a builtin call when interpreted)
                self._drain_kernel(f)
            if st < 0 and not f.core.confirmed:
                self._reject(f, side, data, s, e)
        elif f.probing:
            self._probe(f, side, data, s, e)
        elif f.app == APP_TLS:
            self.ot_bytes += n
            f.encrypted += n
            if (side == 0 and not f.tls_seen_c) or (side == 1 and not f.tls_seen_s):
                if side == 0:
                    f.tls_seen_c = True
                else:
                    f.tls_seen_s = True
                self.out.append((R_AUX, "tls", f.fid, side, self.now, self.frame, b"",
                                 _ip_bytes(f.a_hi, f.a_lo), _ip_bytes(f.b_hi, f.b_lo),
                                 _bytes(data, s, e if n <= 16384 else s + 16384)))

    @cython.cfunc
    def _drain_kernel(self, f: Flow):
        for r in self.kbuf:
            if r[0] == 1:
                self.out.append((R_MSG, f.app, f.link_id, f.fid, r[1], r[2], r[3], r[4], r[5], r[6]))
            else:
                self._flow_anomaly(f, r)
        del self.kbuf[:]

    @cython.cfunc
    def _flow_anomaly(self, f: Flow, r: tuple):
        """A kernel's anomaly on flow *f*: reported, sampled or only counted
        (limits.anomalies_reported_per_flow, anomaly_sample_rate); and whatever the flow, at most
        limits.anomalies_reported_per_link_interval of its link's flows' are reported an interval
        (a peer that reconnects gets no fresh per-flow budget)."""
        aid = r[4]
        n: cython.longlong
        lk: Link
        self._count("anomaly." + aid)
        if f.anoms is None:
            f.anoms = {}
        n = f.anoms.get(aid, 0) + 1
        f.anoms[aid] = n
        report: cython.int = 0
        if n <= self.anom_report:
            report = 1
        elif (n - self.anom_report) % self.anom_sample == 0:
            report = 2
        if report != 0 and f.link is not None:
            lk = f.link
            if lk.anom_iv != self.interval_start:
                lk.anom_iv = self.interval_start
                lk.anom_n = 0
            if lk.anom_n >= self.anom_link:
                report = 0
                self._count("anomalies.over_link_budget")
            else:
                lk.anom_n += 1
        if report == 1:
            self.out.append((R_ANOMALY, f.app, f.link_id, f.fid, r[1], r[2], r[3], aid, r[5]))
        elif report == 2:
            self.out.append((R_ANOMALY, f.app, f.link_id, f.fid, r[1], r[2], r[3], aid,
                             "%s [sampled: 1 of %d reported; %d so far on this flow]" % (r[5], self.anom_sample, n)))
        else:
            self._count("anomaly.suppressed")
            if f.hidden is None:
                f.hidden = {}
            f.hidden[aid] = f.hidden.get(aid, 0) + 1

    @cython.cfunc
    def _suppressed_summary(self, f: Flow):
        """At a flow's end: one ``flow.anomalies_suppressed`` listing what sampling or the link budget did
        not report."""
        parts: list = []
        for aid in sorted(f.hidden):
            parts.append("%s: %d of %d not reported" % (aid, f.hidden[aid], f.anoms[aid]))
        if len(parts) > 0:
            self._count("anomaly.flow.anomalies_suppressed")
            self.out.append((R_ANOMALY, f.app, f.link_id, f.fid, -1, f.last_ts, f.last_frame,
                             "flow.anomalies_suppressed", "; ".join(parts)))

    @cython.cfunc
    def _reject(self, f: Flow, side: cython.int, data, s: cython.Py_ssize_t, e: cython.Py_ssize_t):
        name = APP_NAMES[f.app]
        self._count("dispatch.rejected." + name)
        self._anomaly(f.app, f.link_id, f.fid, side, "dispatch.rejected",
                      "port %d: traffic is not %s; not decoded as %s" % (f.b_port, name, name))
        f.rejected |= 1 << f.app
        f.fresh = 0
        f.core = None
        f.cfeed = 0
        f.app = APP_NONE
        f.link_id = 0
        self._unbind_link(f)
        f.probing = True
        self._probe(f, side, data, s, e)

    @cython.cfunc
    def _probe(self, f: Flow, side: cython.int, data, s: cython.Py_ssize_t, e: cython.Py_ssize_t):
        """Content detection on a flow whose port is no protocol's: each kernel's probe reads
        everything this side has sent so far; "certainly" (2) attaches the kernel, "plausible"
        (1) on both sides does, once each side sent PROBE_MIN_BYTES."""
        score: cython.int
        chunk = _bytes(data, s, e)
        f.probe_buf.append((side, chunk, self.now, self.frame))
        f.probe_bytes += e - s
        acc = chunk
        if f.probe_bytes - (e - s) < PROBE_JOIN_BYTES:
            # the first bytes of a flow: what this side sent so far, as one buffer (a message
            # may come a few bytes a segment); later segments are probed alone
            acc = b"".join([c[1] for c in f.probe_buf if c[0] == side])
        for app, v in self.kernels.items():
            if f.rejected & (1 << app):
                continue
            score = v[1](acc, 0, len(acc))
            if score == 1 and len(acc) < PROBE_MIN_BYTES:
                score = 0
            if score == 1:
                if side == 0:
                    f.probe_hint_c |= 1 << app
                else:
                    f.probe_hint_s |= 1 << app
            if score >= 2 or (f.probe_hint_c & f.probe_hint_s & (1 << app)):
                self._count("dispatch.detected." + APP_NAMES[app])
                replay = f.probe_buf
                f.probe_buf = []
                self._attach(f, app, False)
                self.out.append((R_ANOMALY, app, f.link_id, f.fid, side, self.now, self.frame,
                                 "dispatch.detected_by_content",
                                 "%s found on port %d by content" % (APP_NAMES[app], f.b_port)))
                now = self.now
                frame = self.frame
                for sd, chunk, ts, fr in replay:
                    self.now = ts
                    self.frame = fr
                    self._deliver(f, sd, chunk, 0, len(chunk))
                self.now = now
                self.frame = frame
                return
        if f.probe_bytes >= self.probe_max:
            f.probing = False
            f.probe_buf = []
            self._count("dispatch.unidentified_flows")

    # ------------------------------------------------------------------
    # flow ends, sweeps, intervals
    # ------------------------------------------------------------------
    @cython.cfunc
    def _end_flow(self, f: Flow, reason: str):
        if f.core is not None or len(f.ooo_c) > 0 or len(f.ooo_s) > 0:
            self._drain_ooo(f, 0, True)
            self._drain_ooo(f, 1, True)
            if len(f.ooo_c) > 0 or len(f.ooo_s) > 0:
                # what the drains left (segments past a second hole) goes with the flow
                self.ooo_total -= (f.ooo_bytes_c + f.ooo_bytes_s
                                   + OOO_SEGMENT_COST * (len(f.ooo_c) + len(f.ooo_s)))
                f.ooo_c = []
                f.ooo_s = []
                f.ooo_bytes_c = 0
                f.ooo_bytes_s = 0
        decoded: cython.longlong = 0
        skipped: cython.longlong = 0
        encrypted: cython.longlong = f.encrypted
        messages: cython.longlong = 0
        if f.core is not None:
            if not f.eof_c:
                f.eof_c = True
                f.core.eof(0, self.now, self.frame, self.kbuf)
            if not f.eof_s:
                f.eof_s = True
                f.core.eof(1, self.now, self.frame, self.kbuf)
            self._drain_kernel(f)
            decoded = f.core.bytes_decoded
            skipped = f.core.bytes_skipped
            encrypted += f.core.bytes_encrypted
            messages = f.core.messages
        if f.hidden is not None:
            self._suppressed_summary(f)
        _push_flow(f)
        if self.fcache[f.h & FLOW_CACHE_MASK] is f:
            self.fcache[f.h & FLOW_CACHE_MASK] = None
        head = self.flows.get(f.h)
        if head is f:
            if f.chain is None:
                del self.flows[f.h]
            else:
                self.flows[f.h] = f.chain
        else:
            prev: Flow = head
            while prev.chain is not f:
                prev = prev.chain
            prev.chain = f.chain
        f.chain = None
        self.nflows -= 1
        f.host_c.nflows -= 1
        f.host_s.nflows -= 1
        f.host_s.data = True        # a server is never a flood's bare source (_expire_idle)
        if f.ipproto != 6 or (f.state & ST_DATA) != 0:
            f.host_c.data = True
        self._unbind_link(f)
        if not f.quiet:
            self.out.append((R_FLOW_END, f.fid, f.last_ts, f.last_frame, reason, f.first_ts,
                             f.pkts_c, f.pkts_s, f.bytes_c, f.bytes_s, f.payload_c, f.payload_s,
                             APP_NAMES[f.app], f.state, f.guessed, decoded, skipped, encrypted, f.gap_bytes,
                             messages))
        f.core = None
        f.cfeed = 0

    @cython.cfunc
    def _all_flows(self) -> list:
        f: Flow
        out = []
        for head in self.flows.values():
            f = head
            while f is not None:
                out.append(f)
                f = f.chain
        return out

    @cython.cfunc
    def _sweep(self, now: cython.double):
        f: Flow
        self.last_sweep = now
        if self.frags:
            self._frag_expire(now)
        if len(self.half_open) > 0:
            self._sweep_half_open(now)
        dead = []
        for head in self.flows.values():
            f = head
            while f is not None:
                if (f.state & ST_RST) or ((f.state & (ST_FIN_C | ST_FIN_S)) == (ST_FIN_C | ST_FIN_S)):
                    if now - f.last_ts > self.linger:
                        dead.append(f)
                elif now - f.last_ts > (self.new_idle if f.ipproto == 6 and (f.state & ST_DATA) == 0 else self.idle):
                    dead.append(f)
                f = f.chain
        dead.sort(key=_by_fid)
        for f in dead:
            closed = (f.state & ST_RST) or ((f.state & (ST_FIN_C | ST_FIN_S)) == (ST_FIN_C | ST_FIN_S))
            self._count("flows.ended_closed" if closed else "flows.evicted_idle")
            self._end_flow(f, END_CLOSED if closed else END_IDLE)

    @cython.cfunc
    def _make_room(self):
        """The flow table is full (limits.max_flows).  Like Suricata's flow emergency mode:
        first the normal timeouts; then the emergency ones (a flow that never carried data
        idle for flow_emergency_new_timeout, any flow idle for flow_emergency_idle_timeout:
        flows.evicted_emergency); then, a tenth of the table at once so that a flood does not
        pay this per packet, the flows that never carried data (a SYN flood's half-open
        flows), oldest first, then the oldest of all (flows.evicted_cap)."""
        f: Flow
        self._sweep(self.now)
        if self.nflows < self.max_flows:
            return
        k: cython.Py_ssize_t = self.nflows // 10 + 1
        flows = self._all_flows()
        dead = []
        for f in flows:
            if self.now - f.last_ts > (self.emerg_new if (f.state & ST_DATA) == 0 else self.emerg_idle):
                dead.append(f)
        if len(dead) > 0:
            dead.sort(key=_by_fid)
            for f in dead:
                self._count("flows.evicted_emergency")
                self._end_flow(f, END_IDLE)
            if self.nflows + k <= self.max_flows:
                return
            flows = self._all_flows()
        flows.sort(key=_by_data_last)
        for f in flows[:k]:
            self._count("flows.evicted_cap")
            self._end_flow(f, END_CAP)

    @cython.cfunc
    def _evict_hosts(self):
        """The host table is full (limits.max_hosts): forget a tenth of it, hosts no flow in the
        table counts into, least recently seen first, their traffic since the last interval
        reported first (hosts.evicted).  Hosts that flows count into stay: there are at most two
        a flow, so the flow cap bounds them."""
        h: Host
        idle = []
        for v in self.hosts.values():
            h = v
            if h.nflows == 0:
                idle.append(h)
        idle.sort(key=_by_host_last)
        k: cython.Py_ssize_t = len(self.hosts) // 10 + 1
        for h in idle[:k]:
            if h.dirty and not h.quiet:
                self.out.append((R_HOSTSTAT, h.mac, h.ip, h.vlan, h.pkts_tx, h.bytes_tx, h.pkts_rx, h.bytes_rx,
                                 h.first_ts, h.last_ts))
            del self.hosts[(h.mac, h.ip, h.vlan)]
            self._count("hosts.evicted")
        # not enough idle hosts (live flows hold them): let the table grow a tenth before the
        # next look, so that a full table of busy hosts is not scanned for every new one
        self.host_limit = self.max_hosts
        if len(self.hosts) >= self.max_hosts:
            self._count("hosts.over_cap")
            self.host_limit = len(self.hosts) + self.max_hosts // 10 + 1

    @cython.cfunc
    def _evict_links(self, want: cython.longlong):
        """Links no flow in the table is bound to, least recently used first: their aggregates
        since the last interval flushed, then ``R_LINK_END``; their tallies are forgotten (a key
        seen again on a new link is new again).  *want* 0: the link table is full
        (limits.max_links), a tenth of it goes (links.evicted); *want* > 0: tallies to free for
        limits.link_keys_total (links.evicted_keys)."""
        lk: Link
        idle = []
        for v in self.links.values():
            lk = v
            if lk.nflows == 0:
                idle.append(lk)
        idle.sort(key=_by_link_last)
        k: cython.Py_ssize_t = len(self.links) // 10 + 1
        freed: cython.longlong = 0
        n: cython.Py_ssize_t = 0
        for lk in idle:
            if want > 0:
                if freed >= want:
                    break
            elif n >= k:
                break
            n += 1
            freed += _nkeys(lk)
            self._flush_link(lk)
            del self.links[lk.key]
            del self.link_seen[lk.lid]
            self.out.append((R_LINK_END, lk.lid, self.now, "evicted"))
            self._count("links.evicted_keys" if want > 0 else "links.evicted")
        self.link_limit = self.max_links
        if len(self.links) >= self.max_links:
            self._count("links.over_cap")
            self.link_limit = len(self.links) + self.max_links // 10 + 1

    @cython.cfunc
    def _flush_link(self, lk: Link):
        """One R_AGG per key and direction of link *lk* counted since the last flush."""
        side: cython.int
        for side in range(2):
            for key, t in (lk.seen_c if side == 0 else lk.seen_s).items():
                if t.int_count > 0:
                    self.out.append((R_AGG, lk.app, lk.lid, key, t.count, t.nbytes, t.first_ts, t.last_ts,
                                     t.int_count, t.int_bytes, side, t.first_frame, t.last_frame))
                    t.int_count = 0
                    t.int_bytes = 0

    @cython.cfunc
    def _expire_idle(self, now: cython.double):
        """At an interval flush (links before the interval's aggregates, so that the memory they free
        serves that flush's records; hosts after their traffic was reported): forget the links no flow
        is bound to and the hosts no flow counts into that went quiet (links.expired_idle,
        hosts.expired_idle; a link goes with ``R_LINK_END``, a host's traffic was just reported).
        Those whose every flow was a TCP handshake without data (a flood's reported SYNs; ``data``
        never set) go sooner: such a link at the first flush after its last flow ended (the flow
        itself waited flow_new_timeout), such a host once idle flow_new_timeout (so that half-open
        records still counting into it keep it).  The others after limits.link_idle_timeout /
        host_idle_timeout seconds of packet time since their last flow ended / their last packet
        (< 0: never).  A host that was the server of a flow, or seen by ARP or L2, always counts
        as one with data (a flooded PLC stays).  Seen again, they are new again (``LinkSeen``,
        ``HostSeen``, a link's keys ``Message``s), as after the memory budget's evictions."""
        lk: Link
        gone = []
        for v in self.links.values():
            lk = v
            if lk.nflows == 0 and (not lk.data or (self.link_idle >= 0 and now - lk.last_ts > self.link_idle)):
                gone.append(lk)
        for v in gone:
            lk = v
            self._flush_link(lk)
            del self.links[lk.key]
            del self.link_seen[lk.lid]
            self.out.append((R_LINK_END, lk.lid, now, "idle"))
        if len(gone) > 0:
            self._count("links.expired_idle", len(gone))

    @cython.cfunc
    def _expire_hosts(self, now: cython.double):
        """The hosts' half of ``_expire_idle``, after the interval's host traffic was reported."""
        h: Host
        if len(self.half_open) > 0:
            # records idle past flow_new_timeout end first (as the next sweep would): they count
            # into hosts of the table, and a host's last_ts covers the records pushed into it
            self._sweep_half_open(now)
        gone = []
        for v in self.hosts.values():
            h = v
            if h.nflows == 0:
                if h.data:
                    if self.host_idle >= 0 and now - h.last_ts > self.host_idle:
                        gone.append(h)
                elif now - h.last_ts > self.new_idle:
                    gone.append(h)
        for v in gone:
            h = v
            if h.dirty and not h.quiet:
                self.out.append((R_HOSTSTAT, h.mac, h.ip, h.vlan, h.pkts_tx, h.bytes_tx, h.pkts_rx, h.bytes_rx,
                                 h.first_ts, h.last_ts))
            del self.hosts[(h.mac, h.ip, h.vlan)]
        if len(gone) > 0:
            self._count("hosts.expired_idle", len(gone))

    @cython.cfunc
    def _report_budget(self):
        """Once per interval: one ``memcap.evicted`` anomaly when a memory-budget counter moved
        (evictions and overflows of this interval; the counters hold every one)."""
        parts: list = []
        for name in BUDGET_COUNTERS:
            n = self.counters.get(name, 0)
            d = n - self.reported.get(name, 0)
            if d > 0:
                parts.append("%s %d" % (name, d))
                self.reported[name] = n
        if len(parts) > 0:
            self._anomaly(0, 0, 0, -1, "memcap.evicted",
                          "this interval: " + ", ".join(parts) +
                          " (tables: %d flows, %d hosts, %d links)" % (self.nflows, len(self.hosts), len(self.links)))

    @cython.cfunc
    def _flush_interval(self, now: cython.double):
        h: Host
        f: Flow
        ho: _HalfOpen
        # the horizon: the earliest packet time a later record can carry (a flow alive now, or a
        # half-open record promoted later, is reported with its first packet's time; anything newer
        # with a later packet's, packet time moving forward): the consumers forget windows that end
        # before it (sensor.alerts.stage.AlertStage.horizon)
        horizon: cython.double = now
        for head in self.flows.values():
            f = head
            while f is not None:
                _push_flow(f)
                if f.first_ts < horizon:
                    horizon = f.first_ts
                f = f.chain
        for v in self.half_open.values():
            ho = v
            self._push_half_open(ho, False)
            if ho.first_ts < horizon:
                horizon = ho.first_ts
        keys: cython.longlong = 0
        lk: Link
        self._expire_idle(now)
        for v in self.link_seen.values():
            lk = v
            self._flush_link(lk)
            keys += _nkeys(lk)
        if keys > self.keys_total:
            self._evict_links(keys - self.keys_total)
        self._report_budget()
        for h in self.hosts.values():
            if h.dirty:
                if not h.quiet:     # (a host only seen in flows held back: in the scan summary)
                    self.out.append((R_HOSTSTAT, h.mac, h.ip, h.vlan, h.pkts_tx, h.bytes_tx, h.pkts_rx,
                                     h.bytes_rx, h.first_ts, h.last_ts))
                h.pkts_tx = 0
                h.bytes_tx = 0
                h.pkts_rx = 0
                h.bytes_rx = 0
                h.dirty = False
        self._expire_hosts(now)
        start = self.interval_start
        self.scans.flush(self.out, start, now)
        if now - self.interval_start >= self.interval:
            # whole intervals elapsed; q >= 1 here, so truncation is the floor on both paths
            # (a double `//` differs compiled vs interpreted when the quotient rounds)
            q: cython.double = (now - self.interval_start) / self.interval
            steps: cython.longlong = int(q)
            self.interval_start += self.interval * steps
        self.out.append((R_INTERVAL, start, now, horizon))

    def finish(self):
        """End of input: end every flow (in creation order) and flush the last interval."""
        f: Flow
        flows = self._all_flows()
        flows.sort(key=_by_fid)
        for f in flows:
            closed = (f.state & ST_RST) or ((f.state & (ST_FIN_C | ST_FIN_S)) == (ST_FIN_C | ST_FIN_S))
            self._end_flow(f, END_CLOSED if closed else END_EOF)
        for v in list(self.half_open.values()):
            self._end_half_open(v)
        self._flush_interval(self.now)


def _by_fid(f: Flow):
    return f.fid


def _by_offset(piece):
    return piece[0]


def _by_last(f: Flow):
    return (f.last_ts, f.fid)


def _nkeys(lk: Link) -> cython.longlong:
    """Message tallies link *lk* holds (its scan hook, parsers.common.KEY_SCAN, is none)."""
    n: cython.longlong = len(lk.seen_c) + len(lk.seen_s)
    if KEY_SCAN in lk.seen_c:
        n -= 1
    if KEY_SCAN in lk.seen_s:
        n -= 1
    return n


def _by_data_last(f: Flow):
    # flows that never carried data first, then the least recently seen
    return ((f.state & ST_DATA) != 0, f.last_ts, f.fid)


def _by_host_last(h: Host):
    return h.last_ts


def _by_link_last(lk: Link):
    return (lk.last_ts, lk.lid)
