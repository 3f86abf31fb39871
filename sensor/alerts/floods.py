"""Floods on OT services: many connections or sessions from one client, many messages or bytes from its connections.

Contract
--------
``FloodDetector(sink, ctx, settings)`` is fed by the alerting stage with
``flow_started(FlowStart)``, ``flow_ended(FlowEnd, FlowInfo | None)`` and
``opcua_message(Message)``; it raises three rules (thresholds in
``catalogue.THRESHOLDS``, overridable in the detection settings):

* ``dos.connection_flood``: one client opened ``connections`` (default 200)
  TCP connections to one OT service (a flow whose protocol is Modbus or
  OPC UA; MQTT has its own CONNECT-based ``dos.mqtt_connection_flood``)
  within ``window`` s (default 10) — the "Hello/OpenSecureChannel flood" of the
  OPC UA denial-of-service captures, and Modbus connection floods.  Evidence:
  the first frames of the connections (the first ``SAMPLES`` of the window,
  then each further one), so every pointer lies inside the flood.  Counted per
  (client, server, port) over a window that starts with the first connection
  and restarts once it has expired; state is bounded by ``MAX_PAIRS``.
* ``dos.opcua_session_flood``: one client sent ``sessions`` (default 50)
  CreateSession requests, or OpenSecureChannel requests after the first of
  their connection (renewals), to one OPC UA server within ``window`` s
  (default 60), on one connection or many: every session costs the server
  memory and a slot of its (small) session table, every channel key a round
  of asymmetric cryptography; a client creates one session per connection
  (again after a reconnect) and renews its channel every few minutes at the
  most.  Evidence: those requests (the first ``SAMPLES``, then each further
  one).
* ``dos.message_flood``: the connections of one client to one OT service
  (client, server, port, protocol) that follow each other within
  ``EPISODE_GAP`` s — one long connection, or a flood tool's many short
  clients from one address (MQTT-malaria) — carried at least ``messages``
  (default 5000) messages (both directions) at an average of at least
  ``rate`` (default 1000) messages/s, or their client sent at least
  ``megabytes`` (default 4) of payload at an average of at least ``mbps``
  (default 1) MB/s: a publish flood with large payloads, a request flood on
  one session, Modbus query flooding.  On MQTT the messages of a connection
  count only when its client sent more payload than it received (a
  publisher, not a subscriber the broker forwards a busy plant to).  Judged
  as each connection ends (``FlowEnd``: closed, idle, evicted or end of
  capture); evidence: the first frame of the connection that crossed the
  threshold, then of each further one of the episode — a flood tool's
  connection opens when the flood starts, while its last packets can trail it
  (a broker still forwarding what it received); the last frame is in the
  details.  One alert per (client, server, port, protocol), counted per
  flooding connection.  Episodes longer than ``EPISODE_MAX`` s are left to
  ``rates.py``, which judges each interval of a link (a flood on a connection
  that lived long before it, with evidence inside the flood) under the same
  key: one alert.

Why these numbers: the fastest legitimate OT exchanges are PLC-to-PLC Modbus
polls every 10 ms (100 requests + 100 responses/s; bench/make_varied.py's
master makes 150 requests/s on each connection), OPC UA subscriptions
publishing every 50–100 ms, and MQTT historians that the broker forwards a
whole site to (bench/make_varied.py's: 240 PUBLISHes/s plus their PUBACKs);
HMIs that open a connection per poll do so a few times a second.  Floods
made by tools (MQTT-malaria, MQTTSA, asyncua or pymodbus in a loop) run at
thousands of messages/s and hundreds of connections/s.  A connection that
lasts hours and floods for seconds is diluted by its average: this path is for
the attacker's own connections; rates.py judges intervals (and a link's surge
over its own earlier rate), the baseline's ``rate_out_of_band`` a learned
pair's rate.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import observations as O
from .catalogue import THRESHOLDS, finding
from .context import Context, FlowInfo
from .logins import _Run  # a run of events inside a window, with evidence samples
from .model import AlertSink, Evidence
from .settings import AlertSettings

MAX_PAIRS = 4096
"""Windows (connection and session floods) and episodes (message floods) kept per table; the least recently
active is forgotten first."""
SAMPLES = 15
"""Connections kept with their evidence before the threshold is crossed (model.MAX_EVIDENCE - 1)."""
FLOODED_PROTOCOLS = frozenset({"modbus", "opcua"})
"""Protocols whose connections count for ``dos.connection_flood`` (MQTT: ``dos.mqtt_connection_flood``)."""
MESSAGE_PROTOCOLS = frozenset({"modbus", "opcua", "mqtt"})
MAX_FLOWS = 131_072
"""OPC UA connections whose first OpenSecureChannel was seen (as context.MAX_FLOWS), forgotten at their end."""
MB = 1_000_000
MIN_SPAN = 0.001
"""Seconds: a connection shorter than this is rated over this span (its rate is not infinite)."""
FOLLOW_MESSAGES = 100
FOLLOW_BYTES = 100_000
"""After the threshold, a further connection of the episode counts (and is evidence) only with this much."""
EPISODE_GAP = 10.0
"""Seconds: a connection that begins within this of the previous one's end continues its episode."""
EPISODE_MAX = 60.0
"""Seconds: a longer episode is averaged over too long a life, and its first frame may lie long before any
flood: ``rates.py`` judges its intervals instead (the engine's default interval)."""

DEFAULTS = {k: THRESHOLDS[k] for k in ("dos.connection_flood", "dos.message_flood", "dos.opcua_session_flood")}


class _Episode:
    """The ended connections of one (client, server, port, protocol) that followed each other closely."""
    __slots__ = ("start", "end", "messages", "client_bytes", "connections", "fired")

    def __init__(self, start: float, end: float):
        self.start, self.end = start, end
        self.messages = self.client_bytes = self.connections = 0
        self.fired = False


class FloodDetector:
    def __init__(self, sink: AlertSink, ctx: Context, settings: AlertSettings | None = None):
        s = settings or AlertSettings()
        self.sink = sink
        self.ctx = ctx

        def th(rule: str, name: str) -> float:
            return s.threshold(rule, name, DEFAULTS[rule][name])

        self.connections = th("dos.connection_flood", "connections")
        self.window = th("dos.connection_flood", "window")
        self.messages = th("dos.message_flood", "messages")
        self.rate = th("dos.message_flood", "rate")
        self.megabytes = th("dos.message_flood", "megabytes")
        self.mbps = th("dos.message_flood", "mbps")
        self.session_threshold = th("dos.opcua_session_flood", "sessions")
        self.session_window = th("dos.opcua_session_flood", "window")
        self.runs: OrderedDict = OrderedDict()
        self.sessions: OrderedDict = OrderedDict()
        self._channels: OrderedDict = OrderedDict()    # flow ids whose first OPN request was seen
        self.episodes: OrderedDict = OrderedDict()     # (client, server, port, protocol) -> _Episode
        self.counts = {"pairs_forgotten": 0}

    # -- connection and session floods -------------------------------------------------
    def _count(self, rule: str, runs: OrderedDict, threshold: float, window: float, key: tuple, ev: Evidence,
               message, fields: dict) -> None:
        """One more occurrence for *key*: at *threshold* within *window* s raise the samples kept, then each."""
        r = runs.get(key)
        if r is None or ev.ts - r.start > window or ev.ts < r.start:
            r = runs[key] = _Run(ev.ts)
            if len(runs) > MAX_PAIRS:
                runs.popitem(last=False)
                self.counts["pairs_forgotten"] += 1
        runs.move_to_end(key)
        r.n += 1

        def raise_(e: Evidence) -> None:
            self.sink.raise_finding(finding(rule, key, message(r.n), e, details={"in_window": r.n, "window": window},
                                            **fields))

        if r.fired:
            raise_(ev)
            return
        if len(r.samples) < SAMPLES:
            r.samples.append(ev)
        if r.n >= threshold:
            r.fired = True
            if ev not in r.samples:
                r.samples.append(ev)
            for e in r.samples:
                raise_(e)
            r.samples = []

    def flow_started(self, o: O.FlowStart) -> None:
        if o.transport != "tcp" or o.protocol not in FLOODED_PROTOCOLS:
            return
        fields = {"src": o.client, "dst": o.server, "protocol": o.protocol, "port": o.server_port}
        self._count("dos.connection_flood", self.runs, self.connections, self.window,
                    (o.client, o.server, o.server_port), self.ctx.evidence(o.frame, o.ts, o.flow_id),
                    lambda n: f"{o.client} opened {n}+ {o.protocol} connections to {o.server}:{o.server_port} "
                              f"within {self.window:.0f} s (connection flood)", fields)

    def opcua_message(self, m: O.Message) -> None:
        """CreateSession requests, and OpenSecureChannel requests after the first of their connection (renewals),
        per client and server: the kernel reports every one of them."""
        if m.direction != "request":
            return
        name = type(m.event).__name__
        if name == "OPCUAOpenSecureChannel":
            if m.flow_id not in self._channels:
                self._channels[m.flow_id] = True
                if len(self._channels) > MAX_FLOWS:
                    self._channels.popitem(last=False)
                return
        elif name != "OPCUACreateSessionRequest":
            return
        fields = {"src": m.client, "dst": m.server, "protocol": "opcua", "port": m.server_port}
        self._count("dos.opcua_session_flood", self.sessions, self.session_threshold, self.session_window,
                    (m.client, m.server, m.server_port), self.ctx.evidence(m.frame, m.ts, m.flow_id),
                    lambda n: f"{m.client} created {n}+ OPC UA sessions or secure channel renewals on "
                              f"{m.server}:{m.server_port} within {self.session_window:.0f} s (session flood)", fields)

    def horizon(self, ts: float) -> None:
        """No later observation carries a packet time before *ts* (``AlertStage.horizon``): windows and
        episodes every later connection would restart anyway go (a run whose window ended, an episode
        more than ``EPISODE_GAP`` s behind it) -- a SYN flood's one-connection sources otherwise stayed
        up to ``MAX_PAIRS`` each."""
        n = 0
        for runs, window in ((self.runs, self.window), (self.sessions, self.session_window)):
            dead = [k for k, r in runs.items() if ts - r.start > window]
            for k in dead:
                del runs[k]
            n += len(dead)
        dead = [k for k, ep in self.episodes.items() if ts > ep.end + EPISODE_GAP]
        for k in dead:
            del self.episodes[k]
        n += len(dead)
        if n:
            self.counts["pairs_expired"] = self.counts.get("pairs_expired", 0) + n

    # -- message floods -----------------------------------------------------------
    def flow_ended(self, o: O.FlowEnd, fi: FlowInfo | None) -> None:
        self._channels.pop(o.flow_id, None)
        self._episode(o, fi)

    def _episode(self, o: O.FlowEnd, fi: FlowInfo | None) -> None:
        """Add the connection to its (client, server, port, protocol) episode: connections that began within
        ``EPISODE_GAP`` s of the previous one's end (a flood tool's many clients from one address, MQTT-malaria)
        add up; one long connection is an episode of its own.  Judged on the episode's totals."""
        proto = o.protocol
        if proto not in MESSAGE_PROTOCOLS or fi is None:
            return
        if proto == "mqtt" and o.payload_client < o.payload_server:
            messages = 0        # a subscriber the broker forwards to: what it receives is no flood of its own
        else:
            messages = o.messages
        key = (fi.client, fi.server, fi.server_port, proto)
        ep = self.episodes.get(key)
        if ep is None or o.first_ts > ep.end + EPISODE_GAP:
            ep = self.episodes[key] = _Episode(o.first_ts, o.ts)
            if len(self.episodes) > MAX_PAIRS:
                self.episodes.popitem(last=False)
                self.counts["pairs_forgotten"] += 1
        self.episodes.move_to_end(key)
        ep.start = min(ep.start, o.first_ts)
        ep.end = max(ep.end, o.ts)
        ep.messages += messages
        ep.client_bytes += o.payload_client
        ep.connections += 1
        span = max(ep.end - ep.start, MIN_SPAN)
        if span > EPISODE_MAX:
            return
        by_count = ep.messages >= self.messages and ep.messages / span >= self.rate
        by_bytes = ep.client_bytes >= self.megabytes * MB and ep.client_bytes / span >= self.mbps * MB
        if not (by_count or by_bytes):
            return
        if ep.fired and messages < FOLLOW_MESSAGES and o.payload_client < FOLLOW_BYTES:
            return      # a connection of the episode that is no part of the flood (one CONNECT, a probe)
        ep.fired = True
        conns = f" over {ep.connections} connections" if ep.connections > 1 else ""
        what = (f"{ep.messages} {proto} messages{conns} in {span:.1f} s ({ep.messages / span:.0f}/s)" if by_count
                else f"{ep.client_bytes / MB:.1f} MB of {proto} payload from the client{conns} in {span:.1f} s "
                     f"({ep.client_bytes / MB / span:.1f} MB/s)")
        details = {"messages": ep.messages, "client_bytes": ep.client_bytes, "seconds": round(span, 6),
                   "connections": ep.connections, "first_frame": fi.frame, "last_frame": o.frame}
        fields = {"src": fi.client, "dst": fi.server, "protocol": proto, "port": fi.server_port}
        msg = f"{fi.client} sent {what} to {fi.server}:{fi.server_port} (flood)"
        self.sink.raise_finding(finding("dos.message_flood", key, msg, self.ctx.evidence(fi.frame, fi.ts, o.flow_id),
                                        details=details, **fields))
