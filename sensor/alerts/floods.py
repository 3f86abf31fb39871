"""Floods on OT services: many connections from one client, many messages or bytes on one connection.

Contract
--------
``FloodDetector(sink, ctx, settings)`` is fed by the alerting stage with
``flow_started(FlowStart)`` and ``flow_ended(FlowEnd, FlowInfo | None)``; it
raises two rules (thresholds in ``catalogue.THRESHOLDS``, overridable in the
detection settings):

* ``dos.connection_flood``: one client opened ``connections`` (default 200)
  TCP connections to one OT service (a flow whose protocol is Modbus or
  OPC UA; MQTT has its own CONNECT-based ``dos.mqtt_connection_flood``)
  within ``window`` s (default 10) — the "Hello/OpenSecureChannel flood" of the
  OPC UA denial-of-service captures, and Modbus connection floods.  Evidence:
  the first frames of the connections (the first ``SAMPLES`` of the window,
  then each further one), so every pointer lies inside the flood.  Counted per
  (client, server, port) over a window that starts with the first connection
  and restarts once it has expired; state is bounded by ``MAX_PAIRS``.
* ``dos.message_flood``: one connection of an OT protocol carried at least
  ``messages`` (default 5000) messages (both directions) at an average of at
  least ``rate`` (default 1000) messages/s over its life — on MQTT only when
  the client sent more payload than it received (a publisher, not a
  subscriber the broker forwards a busy plant to) — or the client sent at
  least ``megabytes`` (default 4) of payload at an average of at least ``mbps``
  (default 1) MB/s: a publish flood with large payloads, a request flood on one
  session, Modbus query flooding.  Judged when the connection ends
  (``FlowEnd``: closed, idle, evicted or end of capture); evidence: the
  connection's last frame (its first frame is in the details: on a connection
  that lasted long before the flood it lies outside it).  One alert per
  (client, server, port, protocol), counted per flooding connection.

Why these numbers: the fastest legitimate OT exchanges are PLC-to-PLC Modbus
polls every 10 ms (100 requests + 100 responses/s; bench/make_varied.py's
master makes 150 requests/s on each connection), OPC UA subscriptions
publishing every 50–100 ms, and MQTT historians that the broker forwards a
whole site to (bench/make_varied.py's: 240 PUBLISHes/s plus their PUBACKs);
HMIs that open a connection per poll do so a few times a second.  Floods made by tools (MQTT-malaria, MQTTSA, asyncua or
pymodbus in a loop) run at thousands of messages/s and hundreds of
connections/s.  A connection that lasts hours and floods for seconds is
diluted by its average: the per-connection rule is for the attacker's own
connections, the baseline's ``rate_out_of_band`` for a learned pair's rate.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import observations as O
from .catalogue import THRESHOLDS, finding
from .context import Context, FlowInfo
from .model import AlertSink, Evidence
from .settings import AlertSettings

MAX_PAIRS = 4096
"""(client, server, port) windows kept for connection floods; the least recently active is forgotten first."""
SAMPLES = 15
"""Connections kept with their evidence before the threshold is crossed (model.MAX_EVIDENCE - 1)."""
FLOODED_PROTOCOLS = frozenset({"modbus", "opcua"})
"""Protocols whose connections count for ``dos.connection_flood`` (MQTT: ``dos.mqtt_connection_flood``)."""
MESSAGE_PROTOCOLS = frozenset({"modbus", "opcua", "mqtt"})
MB = 1_000_000
MIN_SPAN = 0.001
"""Seconds: a connection shorter than this is rated over this span (its rate is not infinite)."""

DEFAULTS = {k: THRESHOLDS[k] for k in ("dos.connection_flood", "dos.message_flood")}


class _Run:
    __slots__ = ("start", "n", "samples", "fired")

    def __init__(self, start: float):
        self.start = start
        self.n = 0
        self.samples: list[Evidence] = []
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
        self.runs: OrderedDict = OrderedDict()
        self.counts = {"pairs_forgotten": 0}

    # -- connection floods --------------------------------------------------------
    def flow_started(self, o: O.FlowStart) -> None:
        if o.transport != "tcp" or o.protocol not in FLOODED_PROTOCOLS:
            return
        key = (o.client, o.server, o.server_port)
        r = self.runs.get(key)
        if r is None or o.ts - r.start > self.window or o.ts < r.start:
            r = self.runs[key] = _Run(o.ts)
            if len(self.runs) > MAX_PAIRS:
                self.runs.popitem(last=False)
                self.counts["pairs_forgotten"] += 1
        self.runs.move_to_end(key)
        r.n += 1
        ev = self.ctx.evidence(o.frame, o.ts, o.flow_id)
        fields = {"src": o.client, "dst": o.server, "protocol": o.protocol, "port": o.server_port}

        def raise_(e: Evidence) -> None:
            self.sink.raise_finding(finding(
                "dos.connection_flood", key, f"{o.client} opened {r.n}+ {o.protocol} connections to "
                f"{o.server}:{o.server_port} within {self.window:.0f} s (connection flood)", e,
                details={"in_window": r.n, "window": self.window}, **fields))

        if r.fired:
            raise_(ev)
            return
        if len(r.samples) < SAMPLES:
            r.samples.append(ev)
        if r.n >= self.connections:
            r.fired = True
            if ev not in r.samples:
                r.samples.append(ev)
            for e in r.samples:
                raise_(e)
            r.samples = []

    # -- message floods -----------------------------------------------------------
    def flow_ended(self, o: O.FlowEnd, fi: FlowInfo | None) -> None:
        proto = o.protocol
        if proto not in MESSAGE_PROTOCOLS or fi is None:
            return
        span = max(o.ts - o.first_ts, MIN_SPAN)
        payload = o.payload_client + o.payload_server
        sender = proto != "mqtt" or o.payload_client >= o.payload_server
        by_count = sender and o.messages >= self.messages and o.messages / span >= self.rate
        by_bytes = o.payload_client >= self.megabytes * MB and o.payload_client / span >= self.mbps * MB
        if not (by_count or by_bytes):
            return
        key = (fi.client, fi.server, fi.server_port, proto)
        what = (f"{o.messages} {proto} messages in {span:.1f} s ({o.messages / span:.0f}/s)" if by_count else
                f"{o.payload_client / MB:.1f} MB of {proto} payload from the client in {span:.1f} s "
                f"({o.payload_client / MB / span:.1f} MB/s)")
        details = {"messages": o.messages, "payload_bytes": payload, "seconds": round(span, 6),
                   "client_bytes": o.payload_client, "server_bytes": o.payload_server,
                   "first_frame": fi.frame, "last_frame": o.frame}
        fields = {"src": fi.client, "dst": fi.server, "protocol": proto, "port": fi.server_port}
        msg = f"one connection from {fi.client} to {fi.server}:{fi.server_port} carried {what} (flood)"
        self.sink.raise_finding(finding("dos.message_flood", key, msg, self.ctx.evidence(o.frame, o.ts, o.flow_id),
                                        details=details, **fields))
