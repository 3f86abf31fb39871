"""Every bound the parsers and the engine enforce, with its reason.

Hitting a limit is never silent: it yields an anomaly and a counter.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # --- the memory budget (parsers/budget.py turns a memcap into the caps below) ---
    memcap: int = 0
    """The memory budget, in bytes, these limits were derived from (``budget.limits_for``); 0 when
    they were set by hand.  Informational: the caps below are what is enforced."""

    # --- flows, hosts, links and reassembly (engine) ---
    max_flows: int = 200_000
    """Hard cap on tracked flows.  At the cap (Suricata's flow emergency mode): normal timeouts,
    then the emergency ones (flows.evicted_emergency), then a tenth of the table, flows that never
    carried data first, oldest first (flows.evicted_cap)."""
    max_half_open: int = 100_000
    """Half-open records: TCP connections seen only as a bare SYN (with its SYN-ACK, RST or
    retransmissions) whose flow a scan summary holds back (``scan_flows_per_source`` and its
    kin), kept as a compact record (no Flow, host or link objects) until a packet with payload
    or a FIN makes them a flow.  At the cap the oldest tenth ends (flows.evicted_half_open); 0
    turns them off (every SYN a Flow, as before)."""
    flow_idle_timeout: float = 300.0
    """Seconds of packet time without a packet before a flow is evicted (flows.evicted_idle)."""
    flow_new_timeout: float = 60.0
    """A TCP flow that never carried data (a SYN, a handshake, a half-open record) idle this long
    ends (flows.evicted_idle), table full or not: Suricata's ``tcp new`` timeout (60 s).  Without
    it the flows a SYN flood reports one by one (``scan_flows_per_target`` an interval) would wait
    flow_idle_timeout, and the tables grow with the flood's first minutes."""
    flow_emergency_new_timeout: float = 10.0
    """At the flow cap: a flow that never carried data (a SYN, a half-open handshake) idle this
    long is evicted (Suricata's ``emergency-new`` timeout, 10 s)."""
    flow_emergency_idle_timeout: float = 100.0
    """At the flow cap: any flow idle this long is evicted (Suricata's ``emergency-established``,
    100 s; an OT poller talks every few seconds)."""
    max_hosts: int = 400_000
    """(MAC, IP, VLAN) entries the engine keeps counters for.  At the cap a tenth goes, hosts no
    flow counts into, least recently seen first, their traffic reported first (hosts.evicted);
    hosts of live flows stay (at most two a flow: the flow cap bounds them, hosts.over_cap)."""
    max_links: int = 200_000
    """(protocol, VLAN, client, server, server port) links with their message tallies.  At the cap
    a tenth goes, links no flow is bound to, least recently used first, their aggregates flushed
    first (links.evicted; ``R_LINK_END``).  A key seen again on a new link is new again."""
    link_idle_timeout: float = 3600.0
    """Seconds of packet time after its last flow ended before a link (its message tallies) is
    forgotten at an interval flush (links.expired_idle; ``R_LINK_END``); seen again it is a new link
    and its keys are new again.  A link whose every flow was a TCP handshake without data (a flood's
    reported SYNs) goes at the first flush after its last flow ended.  Negative: never.  An hour:
    a link is what a pair does (its keys), longer-lived than a flow (Zeek forgets its known hosts
    and services after a day); an engineering station that connects every ten minutes keeps its
    link, a site quiet for an hour leaves memory.  It runs from the end of the link's last flow,
    itself ended after up to flow_idle_timeout of silence."""
    host_idle_timeout: float = 3600.0
    """Seconds of packet time without a packet before a host (MAC, IP, VLAN) no flow counts into is
    forgotten at an interval flush, its traffic reported first (hosts.expired_idle); seen again it is
    new again (``HostSeen``).  A host only ever the client of TCP handshakes without data (a flood's
    source) goes after flow_new_timeout instead.  Negative: never."""
    link_keys_total: int = 2_000_000
    """Message tallies of all links together, checked at every interval flush: above it, idle links
    go, least recently used first, until it holds (links.evicted_keys).  ``link_keys_max`` bounds
    one link direction; this bounds their sum."""
    tcp_closed_linger: float = 5.0
    """Seconds a closed (FIN/RST both ways) TCP flow is kept for late retransmissions."""
    reassembly_max_ooo_segments: int = 64
    """Out-of-order segments buffered per direction before the oldest hole is declared a gap."""
    reassembly_max_ooo_bytes: int = 256 * 1024
    """Out-of-order bytes buffered per direction (a lying peer cannot make us buffer more)."""
    reassembly_total_bytes: int = 1024 * 1024 * 1024
    """Out-of-order bytes all flows together hold (each segment counted with 128 bytes of overhead):
    a new segment that takes the sum past it makes its own flow side give up what it holds, holes
    declared gaps as at the per-flow bound (reassembly.memcap_drains).  ``parsers.budget`` sets it
    from the memcap's reassembly share."""
    ip_frag_max_datagrams: int = 1024
    """Incomplete IP datagrams (IPv4 and IPv6 together, one table) held for reassembly; a new one
    past this drops the oldest (decode.ipv4_fragments_dropped / decode.ipv6_fragments_dropped).
    Linux keeps fragments in a 4 MiB budget (ipfrag_high_thresh)."""
    ip_frag_max_bytes: int = 4 * 1024 * 1024
    """Fragment bytes held for reassembly in all, both families (Linux's ipfrag_high_thresh): a
    fragment that would go past it drops the oldest incomplete datagrams first (counted dropped)."""
    ip_frag_timeout: float = 30.0
    """Seconds of packet time an incomplete datagram is kept (Linux ipfrag_time; RFC 791 suggests
    15; RFC 8200 4.5 says 60 at most) before its fragments are dropped
    (decode.ipv4_fragments_timeout / decode.ipv6_fragments_timeout)."""
    probe_max_bytes: int = 4096
    """Bytes per direction inspected to detect a protocol on a port we do not know."""

    # --- protocol kernels ---
    stream_max_buffer: int = 1024 * 1024
    """Unframed bytes a protocol kernel keeps per direction; an incomplete message larger
    than this is skipped (the message becomes a truncated event) rather than buffered."""
    modbus_max_pending: int = 500
    """Outstanding Modbus requests per connection (Suricata REQUEST_FLOOD)."""
    mqtt_max_message: int = 1024 * 1024
    """MQTT control packet size above which the packet is reported truncated and skipped
    (Suricata MAX_MSG_LEN)."""
    mqtt_max_aliases: int = 1024
    """Topic aliases remembered per MQTT connection direction."""
    opcua_max_message: int = 16 * 1024 * 1024
    """Assembled OPC UA message (all chunks) above which it is reported truncated."""
    opcua_max_chunks: int = 4096
    """Chunks per OPC UA message (spec MaxChunkCount; 0 means unlimited in the spec)."""
    payload_preview: int = 64
    """Bytes of an MQTT payload kept, escaped, as a preview."""
    shape_cache_entries: int = 256
    """Message shapes (the bytes that decide a message's key: a Modbus request without its
    transaction id, an MQTT PUBLISH's flags and topic) remembered per connection direction, so
    that a repeat is a counter bump without building its key.  When full the cache is emptied
    and refills: a connection cycling through more shapes than this is slower, never wrong."""
    shape_cache_max_bytes: int = 128
    """Longest shape cached; longer messages always take the full path.  With the entry cap this
    bounds the cache to ~70 KiB per connection direction, less than its stream buffer may hold."""
    link_keys_max: int = 4096
    """Distinct message keys tallied per link and direction (a Modbus unit/function/range, an
    MQTT topic, an OPC UA service).  A poller or a historian uses tens to hundreds; a sweep or a
    topic flood makes one per message.  Beyond the cap, new keys are counted under their
    protocol's overflow key (``<protocol>.key_overflow`` in the summary), and the first overflow
    of a link direction is reported as the ``<protocol>.key_overflow`` anomaly: a key-cardinality
    overflow is itself a scan signal.  Known keys keep counting as before."""
    coverage_max_runs: int = 64
    """Runs (maximal intervals of addresses seen) kept per Modbus (link, unit, table, read or
    write) coverage set.  Beyond it the smallest gap between two runs is filled (counted in
    ``modbus.coverage_filled``): a sweep that leaves holes stays bounded, at the price of
    treating the filled gap's addresses as seen."""
    # --- scans and floods (engine: ext/engine.py _Scans; docs/observations.md scan.summary) ---
    scan_flows_per_source: int = 1024
    """New flows one client address may open per interval that are reported one by one
    (``flow.start``/``flow.end``, ``host.seen`` of hosts they reveal).  Beyond, they are tracked
    as usual but reported only in the source's ``scan.summary`` of the interval (distinct
    targets and ports, counts, first and last frame).  A SCADA server reconnecting to hundreds
    of PLCs a minute stays below; a host or port scan goes past it within seconds."""
    scan_flows_per_target: int = 1024
    """The same per (server address, port): a SYN or connection flood from many (spoofed)
    sources to one service is summarised per target."""
    scan_flows_per_interval: int = 16384
    """New flows reported one by one per interval over all sources: the hard bound on
    ``flow.start`` observations (and ``host.seen`` from flows) per interval."""
    scan_keys_per_source: int = 256
    """New message keys (Modbus unit/function/registers, MQTT topics, OPC UA node sets) one
    client may have reported one by one per interval, over all its links.  Beyond, the kernels
    still tally them (under their key up to ``link_keys_max``) but report them only in the
    source's ``scan.summary`` (distinct units and codes, counts, first/last frame).  Always
    detailed messages (CONNECT, programming functions, device identification …) are never
    held back."""
    scan_keys_per_interval: int = 16384
    """New message keys reported one by one per interval over all sources."""
    scan_tracked_max: int = 4096
    """Sources and targets summarised per interval (each table); new flows and keys of sources
    and targets beyond are not reported one by one either (counted in ``scans.untracked``)."""
    scan_distinct_max: int = 65536
    """Distinct items (targets, ports, unit ids, codes) remembered per interval over every
    summary; past it the distinct counts stop growing and the summaries say ``capped``."""
    anomalies_reported_per_flow: int = 256
    """Anomalies of one id reported per flow before sampling starts: enough for a whole sweep of
    the 256 Modbus function codes or unit ids to stay visible.  Past it, one in
    ``anomaly_sample_rate`` is reported (its detail says how many it stands for) and the flow's
    end reports how many were not (``flow.anomalies_suppressed``); the ``anomaly.<id>`` counters
    count every one.  A hostile or broken peer cannot flood the consumers (alerts, syslog, JSON)
    with one record per packet.  Zeek rate-limits its weirds the same way
    (``Weird::sampling_threshold``, ``Weird::sampling_rate``)."""
    anomaly_sample_rate: int = 1000
    """After ``anomalies_reported_per_flow``, one anomaly of that id in this many is reported."""
    anomalies_reported_per_link_interval: int = 2048
    """Anomalies reported a interval for all the flows of one link (client, server, port) together,
    past which they are only counted (``anomalies.over_link_budget``, and each flow's end says how many
    of its own were not reported): a scanner that reconnects every few hundred requests gets no
    fresh ``anomalies_reported_per_flow`` with each connection.  8 × 256: a whole function-code or
    unit-id sweep with its answers still fits."""


DEFAULT_LIMITS = Limits()
