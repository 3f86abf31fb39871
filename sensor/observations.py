"""The observation stream: what every later stage consumes.

Observations are frozen dataclasses built by ``sensor.pipeline`` from the
engine's records.  They are documented field by field in docs/observations.md
(a test checks that every class and field is documented there).  Each has a
``type`` id that is stable once shipped and is the ``type`` of its JSON line.

Addresses are text (``10.10.1.10``, ``02:00:00:00:01:0a``); attacker-controlled
strings are kept as received (decoded with backslashreplace) and are escaped
by each sink for its own syntax.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class SourceStart:
    """A capture source begins: every ``frame`` after it (until the next SourceStart) counts from 1 in it."""

    type = "source.start"
    source: str             # capture path as given ("stdin" for "-"), or "iface:<name>" when live
    kind: str               # "file" | "interface"
    ts: float               # time of the source's first packet, 0.0 when not known yet


@dataclass(frozen=True, slots=True)
class FlowStart:
    """A new flow (TCP connection, UDP or other IP conversation)."""

    type = "flow.start"
    ts: float
    frame: int
    flow_id: int
    transport: str          # "tcp", "udp" or "ip/<proto number>"
    vlan: int               # innermost 802.1Q id; 0 when untagged
    client: str
    client_port: int
    server: str
    server_port: int
    client_mac: str         # "" when the link type carries no MAC
    server_mac: str
    guessed: bool           # orientation from port hints (capture began mid-stream)
    protocol: str           # OT protocol chosen by port ("none" until content detection decides)
    link_id: int


@dataclass(frozen=True, slots=True)
class FlowEnd:
    """A flow ended (closed, idle, evicted at the cap, or end of capture), with its counters."""

    type = "flow.end"
    ts: float               # last packet
    frame: int              # last packet's frame number
    flow_id: int
    reason: str             # closed | idle | cap | end_of_capture
    first_ts: float
    packets_client: int
    packets_server: int
    bytes_client: int
    bytes_server: int
    payload_client: int
    payload_server: int
    protocol: str
    tcp_flags_seen: tuple   # e.g. ("syn", "synack", "fin_client", "fin_server", "rst", "data")
    guessed: bool
    decoded_bytes: int      # OT stream bytes parsed into messages
    skipped_bytes: int      # OT stream bytes skipped (gaps, resync, truncated messages)
    encrypted_bytes: int    # OT stream bytes we cannot read (TLS, OPC UA SignAndEncrypt)
    gap_bytes: int          # bytes missing from the capture (holes in the TCP stream)
    messages: int


@dataclass(frozen=True, slots=True)
class HostSeen:
    """First time a (MAC, IP, VLAN) combination appears."""

    type = "host.seen"
    ts: float
    frame: int
    mac: str
    ip: str                 # "" for L2-only evidence
    vlan: int
    how: str                # "ip" (packet header), "arp", "l2" (other frame)


@dataclass(frozen=True, slots=True)
class HostTraffic:
    """Traffic of one (MAC, IP, VLAN) during the interval that just ended."""

    type = "host.traffic"
    mac: str
    ip: str
    vlan: int
    packets_sent: int
    bytes_sent: int
    packets_received: int
    bytes_received: int
    first_ts: float
    last_ts: float


@dataclass(frozen=True, slots=True)
class LinkSeen:
    """First message-bearing flow between a client and a server for one protocol."""

    type = "link.seen"
    ts: float
    frame: int
    link_id: int
    protocol: str
    vlan: int
    client: str
    server: str
    server_port: int


@dataclass(frozen=True, slots=True)
class Message:
    """A protocol message: the first with its key on a link, or one always reported in full."""

    type = "message"
    ts: float
    frame: int
    protocol: str
    kind: str               # stable dotted id, e.g. "modbus.write_single_register"
    op: str                 # read | write | diagnostic | program | connect | publish | ...
    target: str             # normalised object, e.g. "unit=1/holding_registers/0+10"
    direction: str          # "request" (client → server) or "response"
    link_id: int
    flow_id: int
    client: str
    server: str
    server_port: int
    event: Any              # the parser's frozen event (parsers.<protocol>.events)
    key: tuple = field(repr=False)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Messages with one key on one link during an interval (and in total)."""

    type = "aggregate"
    protocol: str
    kind: str
    op: str
    target: str
    direction: str          # "request" (sent by the client) or "response" (sent by the server)
    link_id: int
    client: str
    server: str
    server_port: int
    count: int              # since the start of the capture
    bytes: int
    first_ts: float
    last_ts: float
    interval_count: int     # in the interval that just ended
    interval_bytes: int
    first_frame: int        # frame of the first one (since the start)
    last_frame: int         # frame of the latest one (in the interval that just ended)
    key: tuple = field(repr=False)
    interval_peak: int = field(default=0, repr=False)   # most in one PEAK_WINDOW (parsers.common) of the
                            # interval: a burst its count averages away (alert stage only; not a JSON field)
    peak_frame: int = field(default=0, repr=False)      # the message that made interval_peak
    peak_ts: float = field(default=0.0, repr=False)


AGGREGATE_ROW = ("kind", "op", "target", "direction", "count", "bytes", "first_ts", "last_ts",
                 "interval_count", "interval_bytes", "first_frame", "last_frame", "key", "interval_peak", "peak_frame", "peak_ts")
"""The fields of one row of ``LinkAggregates.rows``, in order: ``Aggregate``'s own fields but the link's."""
AGGREGATE_LINK = ("protocol", "link_id", "client", "server", "server_port")
"""The fields ``LinkAggregates`` holds once for all of its rows."""


@dataclass(frozen=True, slots=True)
class LinkAggregates:
    """The aggregates of one link flushed together (the interval ended, or the engine forgot the
    link), handed over in bulk: one plain tuple per key and direction (``AGGREGATE_ROW``), in the
    engine's order.  It stands for the ``Aggregate`` observations ``each()`` yields and carries
    exactly what they carry.  A consumer with ``observe_aggregates`` takes it whole; the pipeline
    gives the others (and everyone, when one consumer has no ``observe_aggregates``) the
    ``Aggregate``s one by one instead.  Not a JSON line of its own: ``--json`` writes its rows as
    ``aggregate`` lines."""

    type = "link.aggregates"
    protocol: str
    link_id: int
    client: str
    server: str
    server_port: int
    rows: tuple             # ((kind, op, target, direction, count, bytes, first_ts, last_ts,
                            #   interval_count, interval_bytes, first_frame, last_frame, key, interval_peak,
                            #   peak_frame, peak_ts), ...)

    def each(self):
        """The ``Aggregate`` of each row, in order (equal to the ones the per-key path builds)."""
        p, lid, c, s, port = self.protocol, self.link_id, self.client, self.server, self.server_port
        for kind, op, target, direction, count, nbytes, first_ts, last_ts, icount, ibytes, ff, lf, key, peak, pf, \
                pts in self.rows:
            yield _new_aggregate(p, kind, op, target, direction, lid, c, s, port, count, nbytes, first_ts,
                                 last_ts, icount, ibytes, ff, lf, key, peak, pf, pts)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something odd, with a stable id (see docs/observations.md for the catalogue)."""

    type = "anomaly"
    ts: float
    frame: int
    id: str
    protocol: str
    link_id: int
    flow_id: int
    side: str               # client | server | "" when not tied to a direction
    detail: str


@dataclass(frozen=True, slots=True)
class IntervalEnd:
    """Aggregates and host traffic for [start, end) have been emitted."""

    type = "interval.end"
    start_ts: float
    end_ts: float


@dataclass(frozen=True, slots=True)
class NameSeen:
    """A host name revealed by the traffic (DHCP, DNS, mDNS, LLMNR, NBNS, LLDP)."""

    type = "name.seen"
    ts: float
    frame: int
    name: str
    ip: str
    mac: str
    source: str


@dataclass(frozen=True, slots=True)
class TLSSeen:
    """TLS on an OT port: what stays visible (the payload is not decoded)."""

    type = "tls.seen"
    ts: float
    frame: int
    flow_id: int
    direction: str
    client: str
    server: str
    server_port: int
    carried: str            # the OT protocol expected inside (e.g. "mqtt" on 8883)
    event: Any              # parsers.tls.TLSClientHello / TLSServerHello, or None if unreadable


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """A scanning source or a flooded target during one interval: what was held back from the
    one-by-one observations (past ``limits.scan_*``), summarised, with its first and last frame."""

    type = "scan.summary"
    start_ts: float         # the interval
    end_ts: float
    source: str             # the client address; "" for a flooded target (many sources)
    target: str             # the flooded server address; for a source, the only target it reached, else ""
    port: int               # the flooded target's port; 0 for a source
    first_ts: float         # first new flow or key of the source/target in the interval
    first_frame: int
    last_ts: float
    last_frame: int
    flows: int              # new flows in the interval (reported one by one or not)
    flows_unreported: int   # of which without flow.start/flow.end
    hosts: int              # distinct targets (source) or distinct sources (target)
    ports: int              # distinct destination ports (source)
    keys: int               # message keys new to a link of the source (unit/function/registers, topics, node sets)
    keys_unreported: int    # of which without a message
    units: int              # distinct Modbus unit ids among the new keys
    codes: int              # distinct function codes / packet types / service ids among the new keys
    protocols: tuple        # OT protocols of the new keys
    capped: bool            # the interval's distinct-item budget ran out: distinct counts are lower bounds
    held_back: tuple        # ((client, server, transport, port), ...) of the flows not reported, distinct, at most 256
    held_back_unlisted: int  # flows not reported whose endpoints are not in held_back


ALL_TYPES = (SourceStart, FlowStart, FlowEnd, HostSeen, HostTraffic, LinkSeen, Message, Aggregate, Anomaly,
             IntervalEnd, NameSeen, TLSSeen, ScanSummary)


def positional(cls):
    """A constructor taking every field of observation class *cls* positionally, in order, that builds
    the object ``cls(...)`` builds (equal, frozen) in about half the time: it stores each slot through
    its descriptor instead of the frozen ``__init__``'s ``object.__setattr__`` per field.  For the
    pipeline's per-record path (Message, Aggregate, FlowStart, FlowEnd, NameSeen); everything else
    calls the class.
    """
    import dataclasses

    fs = dataclasses.fields(cls)
    if not getattr(cls, "__slots__", None) or hasattr(cls, "__post_init__") or any(not f.init for f in fs):
        raise TypeError(f"{cls.__name__}: positional() needs a slotted dataclass with plain init fields")
    names = [f.name for f in fs]
    env = {"_new": object.__new__, "_cls": cls}
    env.update({f"_set_{n}": getattr(cls, n).__set__ for n in names})
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    src = f"def new_{cls.__name__}({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n"
    exec(src, env)      # noqa: S102 - generated from the dataclass's own field names
    return env[f"new_{cls.__name__}"]


_new_aggregate = positional(Aggregate)
