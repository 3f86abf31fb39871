"""Scan and sweep detection: one source probing many hosts, ports, Modbus functions, units or registers.

Contract
--------
``ScanDetector(sink, ctx, settings)`` is an observation consumer (``observe``)
that raises ``recon.*`` findings.  Counting is per source (and per target for
port scans and Modbus sweeps) over a window of packet time (threshold ``window``
of each rule, default ``WINDOW`` s); a window starts with the source's first counted item
and restarts after it expires.  State is bounded: ``MAX_SOURCES`` windows (the
least recently active forgotten first, counted), each holding at most
``MAX_ITEMS`` distinct items.

* **Probes** (host and port scans) come from ``FlowEnd``: a TCP flow that
  carried no payload (a SYN answered by RST, or a connect-and-close), a UDP
  flow the server never answered, any ICMP flow.  Sessions that carried data
  are not probes, so an HMI opening connections to forty PLCs is not a scan.
  ``recon.host_scan``: threshold ``hosts`` (default 10) distinct hosts
  probed by one source; ``recon.port_scan``: ``ports``
  (default 10) distinct ports probed on one host.
* **Modbus sweeps** come from ``Message`` (requests: the kernels report the
  first message of each key on a link, i.e. each new function code, unit and
  register range) and exception responses:
  ``recon.modbus_function_sweep``: ``codes``
  (12) distinct function codes from one client to one server;
  ``recon.modbus_unit_sweep``: ``units`` (32) distinct unit ids that have not
  answered (yet) — a unit whose first response is anything but a gateway
  exception exists, and a master polling forty RTUs behind one gateway
  addresses forty units that all answer — or ``ALL_UNITS_FACTOR`` × ``units``
  (128) distinct unit ids answered or not, or ``failed`` (8) distinct unit ids
  answered with gateway exceptions 10/11;
  ``recon.modbus_register_sweep``: one client *walking* the addresses of one
  server — ``ranges`` (64) distinct new (address, quantity) requests within
  the window, the latest in a (unit, function code) stream whose last steps
  (at least a quarter of ``ranges``, at most ``ranges``) went the same way for
  at least the share ``walk`` (0.9): up, or down, a sweep's monotonic
  progress; a master reading varied ranges goes up and down at random, about
  half each way, and one polling a fixed list is new only once per range, so
  neither walks — or ``failed`` (8) distinct addresses
  answered with exception 2 (illegal data address).  The evidence is the
  walk's last ``SAMPLES`` requests when it is declared, then each further one.
* **Scan summaries** (``ScanSummary``, docs/observations.md ``scan.summary``):
  past the engine's per-interval budgets a scan is not a flow or a message per
  probe but one summary per scanning source (or flooded target) per interval,
  with distinct counts and its first and last frame.  ``summary()`` raises, for
  each summary, at most one finding per rule whose threshold its distinct counts
  cross — ``recon.host_scan`` (``hosts``), ``recon.port_scan`` (``ports``),
  ``recon.modbus_unit_sweep`` (``ALL_UNITS_FACTOR`` × ``units``, for a
  summary of several servers: a summary cannot tell answered units, and one
  server's are judged from the link's aggregates by rates.py), ``recon.modbus_function_sweep``
  (``codes``), ``recon.modbus_register_sweep`` (new Modbus keys, ``ranges``,
  when neither of those explains them, and only for a client already seen
  walking one of the summary's servers: a summary's counts cannot tell a sweep
  from a busy master reading varied ranges, so it adds to the walk's alert and
  never starts one),
  ``dos.mqtt_topic_flood`` (``topics`` new MQTT topics in an interval *and* in
  the interval before: sustained — a publisher with thousands of tags brings
  them up in its first cycle, then repeats them, while a flood keeps bringing
  new ones; evidence: both intervals' first frames — or ``topics`` new topics
  at ``rate`` (100) or more a second between the interval's first and last new
  one: a flood tool naming a new topic with every PUBLISH reaches the link's
  key cap, ``limits.link_keys_max``, within seconds and brings no new key in
  the next interval; and not for a client whose
  new topics this interval, as the reported PUBLISHes show, came mostly from
  the broker: a subscriber is not the flooder), ``recon.opcua_node_sweep`` (new keys of those
  protocols, ``keys``), ``dos.flow_flood`` (a target's summary: ``flows``
  from ``hosts`` sources) — with the summary's first frame as evidence and its
  last frame, counts and interval in the details.  Its finding key is the one
  the per-probe path uses (``(src,)``, ``(src, dst)``), so a scan that began
  below the budgets and went on past them is one alert: this detector is the one
  source of truth for a sweep alert; the baseline's ``baseline.*_sweep`` rules
  say something else (new to what was learned) and stay.
* When a threshold is crossed, the detector raises one finding per item it
  kept as a sample (the first ``SAMPLES`` items of the window, with their
  frames: the evidence of the scan's start), then one per further distinct
  item.  The alert's count is therefore the number of distinct items probed
  (exact up to ``SAMPLES`` before the threshold), and its evidence frames lie
  inside the scan.
"""
from __future__ import annotations

from collections import OrderedDict, deque

from .. import observations as O
from .catalogue import SCAN_WINDOW, THRESHOLDS, finding
from .context import Context
from .model import AlertSink, Evidence
from .settings import AlertSettings
from .windows import Walk

MAX_SOURCES = 4096
"""Sources (or source → target pairs) with a window open.  A spoofed-source flood cannot grow memory past it."""
MAX_ITEMS = 2048
"""Distinct items remembered per window; past it, items are counted but not remembered."""
SAMPLES = 15
"""Items kept with their evidence before the threshold is crossed (model.MAX_EVIDENCE - 1)."""
MIN_WALK_STEPS = 8
"""Steps of one (unit, function code) stream before its walk is judged (a quarter of ``ranges`` when that is
more): a poll cycle over many units makes a few steps per unit, a scan of several tables many per table."""
MAX_STREAMS = 1024
"""(unit, function code) streams followed per (client, server) window: 256 units x a few codes is a unit sweep,
which its own rule reports."""

DEFAULTS = {k: v for k, v in THRESHOLDS.items() if k.startswith("recon.")}
SUMMARY_DEFAULTS = {k: v for k, v in THRESHOLDS.items() if k in ("dos.mqtt_topic_flood", "dos.flow_flood",
                                                                 "recon.opcua_node_sweep")}
WINDOW = SCAN_WINDOW
GATEWAY_EXCEPTIONS = frozenset({10, 11})    # Modbus Application Protocol v1.1b3 §7: gateway path / target failed
ILLEGAL_DATA_ADDRESS = 2
ICMP = frozenset({"ip/1", "ip/58"})
ALL_UNITS_FACTOR = 4
"""Units addressed, answered or not, that are a sweep: this many times ``units`` (128 by default)."""


class _Window:
    __slots__ = ("start", "items", "samples", "fired", "extra")

    def __init__(self, start: float):
        self.start = start
        self.items: set = set()
        self.samples: list = []        # [(item, Evidence)]
        self.fired = False
        self.extra = 0                 # distinct items beyond MAX_ITEMS (not remembered)


class _One:
    """A window that has seen one item (a spoofed source's single probe: most of a flood's windows), held
    without a _Window's set and sample list until a second distinct item comes (``expand``); a threshold
    above one cannot fire on it, so it is the same window in less memory."""
    __slots__ = ("start", "item", "ev")
    fired = False

    def __init__(self, start: float, item, ev: Evidence):
        self.start, self.item, self.ev = start, item, ev

    def expand(self) -> _Window:
        w = _Window(self.start)
        w.items.add(self.item)
        w.samples.append((self.item, self.ev))
        return w


class _Counter:
    """Distinct items per key within a window, raising a rule's findings past a threshold."""

    def __init__(self, sink: AlertSink, rule: str, threshold: float, window: float, stats: dict):
        self.sink = sink
        self.rule = rule
        self.threshold = threshold
        self.window = window
        self.stats = stats
        self.windows: OrderedDict = OrderedDict()

    def add(self, key: tuple, item, ev: Evidence, message, fields: dict) -> None:
        w = self.windows.get(key)
        if w is None or ev.ts - w.start > self.window or ev.ts < w.start - self.window:
            w = _One(ev.ts, item, ev) if self.threshold > 1 else _Window(ev.ts)
            self.windows[key] = w
            if len(self.windows) > MAX_SOURCES:
                self.windows.popitem(last=False)
                self.stats["windows_forgotten"] = self.stats.get("windows_forgotten", 0) + 1
            self.windows.move_to_end(key)
            if type(w) is _One:
                return
        else:
            self.windows.move_to_end(key)
            if type(w) is _One:
                if item == w.item:
                    return
                w = self.windows[key] = w.expand()
        if item in w.items:
            return
        if len(w.items) >= MAX_ITEMS:
            w.extra += 1
            return
        w.items.add(item)
        if not w.fired:
            if len(w.samples) < SAMPLES:
                w.samples.append((item, ev))
            if len(w.items) >= self.threshold:
                w.fired = True
                n = len(w.items)
                for it, sev in w.samples:
                    self.sink.raise_finding(finding(self.rule, key, message(n), sev, details={"distinct": n},
                                                    **fields))
                if not any(it == item for it, _ in w.samples):
                    self.sink.raise_finding(finding(self.rule, key, message(n), ev, details={"distinct": n},
                                                    **fields))
                w.samples = []
            return
        self.sink.raise_finding(finding(self.rule, key, message(len(w.items)), ev,
                                        details={"distinct": len(w.items)}, **fields))

    def prune(self, horizon: float, keep_fired: bool) -> None:
        """Forget the windows every later item would restart anyway: later items carry a packet time at or
        after *horizon* (``AlertStage.horizon``), and an item more than ``window`` s after a window's start
        opens a new one.  *keep_fired*: windows that fired stay (``_keys_of`` reads them)."""
        window = self.window
        dead = [k for k, w in self.windows.items() if horizon - w.start > window and not (keep_fired and w.fired)]
        for k in dead:
            del self.windows[k]
        if dead:
            self.stats["windows_expired"] = self.stats.get("windows_expired", 0) + len(dead)

    def discard(self, key: tuple, item) -> None:
        """*item* turned out not to be a probe (a unit that answered): it no longer counts in the open window."""
        w = self.windows.get(key)
        if type(w) is _One:
            if item == w.item:
                self.windows[key] = _Window(w.start)     # the window, now without an item
            return
        if w is None or item not in w.items or w.fired:
            return
        w.items.discard(item)
        w.samples = [(it, ev) for it, ev in w.samples if it != item]


def _keys_of(src: str, dst: str, *counters: _Counter) -> list:
    """The finding keys a Modbus sweep summary of *src* adds to: ``(src, dst)``; for a summary of several
    servers (*dst* empty), the servers whose alert the requests already opened, so that one scan of several
    servers is one alert per server and not one more for the summary — ``(src, "")`` only when none is open."""
    if dst:
        return [(src, dst)]
    keys = sorted({k for c in counters for k, w in c.windows.items() if k[0] == src and w.fired})
    return keys or [(src, "")]


class _Sweep:
    """``recon.modbus_register_sweep`` from requests: per (client, server) window, the distinct new ranges of
    every (unit, function code) stream, and per stream the walk of their start addresses (``windows.Walk``).
    A sweep is ``threshold`` distinct ranges of the pair while the stream of the latest has walked its last
    steps (at least ``min_steps`` of them, at most ``threshold``) one way: a scan of several tables or units
    counts together, a poll cycle over many units (a few blocks each) never walks far enough."""

    def __init__(self, sink: AlertSink, threshold: float, walk: float, window: float, stats: dict):
        self.sink, self.threshold, self.walk, self.window, self.stats = sink, threshold, walk, window, stats
        steps = max(1, int(threshold))
        self.steps = Walk(steps)
        self.min_steps = max(1, min(steps - 1, max(MIN_WALK_STEPS, steps // 4)))
        self.windows: OrderedDict = OrderedDict()    # (src, dst) -> _PairWalk

    def add(self, key: tuple, stream: tuple, address: int, quantity, ev: Evidence, fields: dict) -> None:
        w = self.windows.get(key)
        if w is None or ev.ts - w.start > self.window or ev.ts < w.start - self.window:
            w = self.windows[key] = _PairWalk(ev.ts)
            if len(self.windows) > MAX_SOURCES:
                self.windows.popitem(last=False)
                self.stats["windows_forgotten"] = self.stats.get("windows_forgotten", 0) + 1
        self.windows.move_to_end(key)
        st = w.streams.get(stream)
        if st is None:
            if len(w.streams) >= MAX_STREAMS:
                return
            st = w.streams[stream] = _Stream()
        item = (address, quantity)
        if item in st.items:
            return
        if len(st.items) >= MAX_ITEMS:
            st.extra += 1
        else:
            st.items.add(item)
        w.n += 1
        scope = key + stream
        share = self.steps.step(scope, address)
        walking = share >= self.walk and self.steps.count(scope) >= self.min_steps
        src, dst = key
        n = w.n
        if w.fired:
            if walking:
                self.sink.raise_finding(finding("recon.modbus_register_sweep", key,
                                                _sweep_message(src, dst, stream, n), ev,
                                                details=_sweep_details(stream, n, share), **fields))
            return
        st.recent.append(ev)
        if n >= self.threshold and walking:
            w.fired = True
            for sev in st.recent:
                self.sink.raise_finding(finding("recon.modbus_register_sweep", key,
                                                _sweep_message(src, dst, stream, n), sev,
                                                details=_sweep_details(stream, n, share), **fields))
            st.recent.clear()

    def walking(self, src: str, dst: str, ts: float) -> list:
        """The (src, server) keys whose window saw a walk and is still open at *ts*; every server of *src*
        when *dst* is empty."""
        out = []
        for (s, d), w in self.windows.items():
            if s == src and (not dst or d == dst) and w.fired and ts - w.start <= self.window:
                out.append((s, d))
        return out


class _PairWalk:
    __slots__ = ("start", "streams", "n", "fired")

    def __init__(self, start: float):
        self.start = start
        self.streams: dict = {}
        self.n = 0                   # distinct new ranges, every stream
        self.fired = False


class _Stream:
    __slots__ = ("items", "extra", "recent")

    def __init__(self):
        self.items: set = set()
        self.extra = 0
        self.recent: deque = deque(maxlen=SAMPLES)     # evidence of the latest requests, until the walk is declared


def _sweep_message(src: str, dst: str, stream: tuple, n: int) -> str:
    unit, fc = stream
    return (f"{src} requested {n} new register ranges of {dst}, walking the addresses (latest: unit {unit}, "
            f"function code {fc}) (register sweep)")


def _sweep_details(stream: tuple, n: int, share: float) -> dict:
    return {"distinct": n, "unit": stream[0], "function_code": stream[1], "walk": round(share, 3)}


class ScanDetector:
    def __init__(self, sink: AlertSink, ctx: Context, settings: AlertSettings | None = None):
        s = settings or AlertSettings()
        self.ctx = ctx
        self.counts: dict = {"probes": 0}

        def mk(rule: str, name: str) -> _Counter:
            d = DEFAULTS[rule]
            return _Counter(sink, rule, s.threshold(rule, name, d[name]), s.threshold(rule, "window", d["window"]),
                            self.counts)

        self.hosts = mk("recon.host_scan", "hosts")
        self.ports = mk("recon.port_scan", "ports")
        self.fcs = mk("recon.modbus_function_sweep", "codes")
        self.units = mk("recon.modbus_unit_sweep", "units")
        self.units_failed = mk("recon.modbus_unit_sweep", "failed")
        # every unit addressed, answered or not: no serial line holds this many devices (RS-485: 32 unit
        # loads per segment), so even a device that answers every unit id is being swept past it
        self.units_all = _Counter(sink, "recon.modbus_unit_sweep", ALL_UNITS_FACTOR * self.units.threshold,
                                  self.units.window, self.counts)
        rs = "recon.modbus_register_sweep"
        d = DEFAULTS[rs]
        self.sweep = _Sweep(sink, s.threshold(rs, "ranges", d["ranges"]), s.threshold(rs, "walk", d["walk"]),
                            s.threshold(rs, "window", d["window"]), self.counts)
        self.ranges_failed = mk("recon.modbus_register_sweep", "failed")

        def th(rule: str, name: str) -> float:
            return s.threshold(rule, name, DEFAULTS[rule][name]) if rule in DEFAULTS and name in DEFAULTS[rule] \
                else s.threshold(rule, name, SUMMARY_DEFAULTS[rule][name])

        self.sink = sink
        self.topic_rate = th("dos.mqtt_topic_flood", "rate")
        self._publishes: OrderedDict = OrderedDict()     # client -> [new topics it published, it received]
        self._topics: OrderedDict = OrderedDict()        # (client, broker) -> its last topic-flood-sized interval
        self.summary_thresholds = {
            "recon.host_scan": th("recon.host_scan", "hosts"),
            "recon.port_scan": th("recon.port_scan", "ports"),
            "recon.modbus_unit_sweep": th("recon.modbus_unit_sweep", "units"),
            "recon.modbus_function_sweep": th("recon.modbus_function_sweep", "codes"),
            "recon.modbus_register_sweep": th("recon.modbus_register_sweep", "ranges"),
            "dos.mqtt_topic_flood": th("dos.mqtt_topic_flood", "topics"),
            "recon.opcua_node_sweep": th("recon.opcua_node_sweep", "nodes"),
            "dos.flow_flood": th("dos.flow_flood", "flows"),
        }

    # -- probes ------------------------------------------------------------------
    def flow_ended(self, o: O.FlowEnd, fi) -> None:
        """Called by the stage with the FlowInfo it popped (None when the start was not seen)."""
        if fi is None:
            return
        t = fi.transport
        if t == "tcp":
            if "data" in o.tcp_flags_seen:
                return
        elif t == "udp":
            if o.packets_server:
                return
        elif t not in ICMP:
            return
        self.counts["probes"] += 1
        ev = self.ctx.evidence(fi.frame, fi.ts, o.flow_id)
        src, dst = fi.client, fi.server
        self.hosts.add((src,), dst, ev,
                       lambda n: f"{src} probed {n} hosts without a session (host scan)",
                       {"src": src, "protocol": t})
        if t != "tcp" and t != "udp":
            return
        port = fi.server_port
        self.ports.add((src, dst), (t, port), ev,
                       lambda n: f"{src} probed {n} ports of {dst} (port scan)",
                       {"src": src, "dst": dst, "protocol": t})

    # -- Modbus --------------------------------------------------------------------
    def message(self, m: O.Message) -> None:
        if m.protocol != "modbus":
            return
        e = m.event
        if e is None:
            return
        ev = self.ctx.evidence(m.frame, m.ts, m.flow_id)
        src, dst = m.client, m.server
        key = (src, dst)
        fields = {"src": src, "dst": dst, "protocol": "modbus", "port": m.server_port}
        if m.direction == "request":
            fc = getattr(e, "function", None)
            if fc is not None:
                self.fcs.add(key, fc, ev, lambda n: f"{src} tried {n} Modbus function codes on {dst} "
                                                    f"(function code sweep)", fields)
            unit = getattr(e, "unit", None)
            if unit is not None:
                self.units.add(key, unit, ev, lambda n: f"{src} addressed {n} Modbus unit ids on {dst} that did "
                                                        f"not answer (unit id sweep)", fields)
                self.units_all.add(key, unit, ev, lambda n: f"{src} addressed {n} Modbus unit ids on {dst} "
                                                            f"(unit id sweep)", fields)
            table = getattr(e, "table", "")
            addr = getattr(e, "address", None)
            if table and addr is not None and fc is not None and not getattr(e, "malformed", None):
                self.sweep.add(key, (unit, fc), addr, getattr(e, "quantity", None), ev, fields)
            return
        code = getattr(e, "exception_code", None)
        unit = getattr(e, "unit", None)
        if code not in GATEWAY_EXCEPTIONS and unit is not None:
            # the unit exists (it answered, or its device refused the request): polling it is no unit sweep
            self.units.discard(key, unit)
        if code is None:
            return
        if code in GATEWAY_EXCEPTIONS:
            self.units_failed.add(key, unit, ev, lambda n: f"{src} addressed {n} Modbus unit ids on {dst} that "
                                                           f"do not exist (unit id sweep)", fields)
        elif code == ILLEGAL_DATA_ADDRESS:
            addr = getattr(e, "address", None)
            self.ranges_failed.add(key, (unit, getattr(e, "table", ""), addr), ev,
                                   lambda n: f"{src} requested {n} register addresses of {dst} that do not "
                                             f"exist (register sweep)", fields)

    # -- MQTT: whose topics are new ---------------------------------------------------------
    def mqtt_message(self, m: O.Message) -> None:
        """A PUBLISH new to its link (the kernels report the first of each topic and direction, within the
        engine's budget): who sent it, the client or the broker, counted per client for this interval."""
        if type(m.event).__name__ != "MQTTPublish":
            return
        d = self._publishes.get(m.client)
        if d is None:
            if len(self._publishes) >= MAX_SOURCES:
                self._publishes.popitem(last=False)
            d = self._publishes[m.client] = [0, 0]
        d[0 if m.direction == "request" else 1] += 1

    def _received_mostly(self, client: str) -> bool:
        """Whether the new topics of *client* this interval were mostly the broker's PUBLISHes to it: a
        subscriber (to ``#``, say) that a broker with many topics, or another client's flood, reaches is no
        topic flood of its own; the flooding publisher is."""
        d = self._publishes.get(client)
        if d is None or d[1] <= d[0]:
            return False
        self.counts["subscriber_summaries"] = self.counts.get("subscriber_summaries", 0) + 1
        return True

    def interval_end(self) -> None:
        self._publishes.clear()

    def horizon(self, ts: float) -> None:
        """No later observation carries a packet time before *ts*: the windows that have ended for good go
        (a flood of spoofed sources, one probe each, otherwise kept one window a source up to ``MAX_SOURCES``).
        Invisible: each one would be replaced by a new window at its source's next item.  Windows that fired
        stay where ``_keys_of`` reads them (function code and unit sweeps)."""
        for c in (self.hosts, self.ports, self.units_all, self.ranges_failed):
            c.prune(ts, False)
        for c in (self.fcs, self.units, self.units_failed):
            c.prune(ts, True)

    def _topic_interval(self, o: O.ScanSummary, ev: Evidence):
        """Remember that *o*'s client brought ``topics`` or more new topics this interval; when the interval
        before did so too — sustained — (its new topics, the evidence to raise: the run's first interval's, once,
        and this one's), else None.  A publisher with thousands of tags brings them up in its first cycle and
        then repeats them; a flood keeps bringing new ones."""
        key = (o.source, o.target)
        before = self._topics.get(key)
        self._topics[key] = (o.end_ts, o.keys, None if before is not None and before[0] >= o.start_ts - 1.0
                             else ev)
        self._topics.move_to_end(key)
        if len(self._topics) > MAX_SOURCES:
            self._topics.popitem(last=False)
        if before is None or before[0] < o.start_ts - 1.0:
            return None
        return before[1], [e for e in (before[2], ev) if e is not None]

    # -- scan summaries ----------------------------------------------------------------
    def summary(self, o: O.ScanSummary) -> None:
        """One finding per rule whose threshold the summary's distinct counts cross."""
        ev = self.ctx.evidence(o.first_frame, o.first_ts) if o.first_frame else self.ctx.evidence(0, o.first_ts)
        src, dst = o.source, o.target
        details = {"summary": True, "interval": [o.start_ts, o.end_ts], "last_frame": o.last_frame,
                   "last_ts": o.last_ts, "flows": o.flows, "flows_unreported": o.flows_unreported,
                   "hosts": o.hosts, "ports": o.ports, "keys": o.keys, "keys_unreported": o.keys_unreported,
                   "units": o.units, "codes": o.codes, "capped": o.capped}
        th = self.summary_thresholds
        self.counts["summaries"] = self.counts.get("summaries", 0) + 1
        more = "+" if o.capped else ""

        def fire(rule: str, key: tuple, n: int, message: str, **fields) -> None:
            self.sink.raise_finding(finding(rule, key, message, ev, details=dict(details, distinct=n), **fields))

        if not src:         # a flooded target (or the interval's budget): many sources
            if o.flows >= th["dos.flow_flood"]:
                where = f"{dst}:{o.port}" if dst else "the network"
                fire("dos.flow_flood", (dst, o.port) if dst else ("*",), o.flows,
                     f"{o.flows} new connections to {where} from {o.hosts}{more} sources in "
                     f"{o.end_ts - o.start_ts:.0f} s (flood)", dst=dst, port=o.port)
            return
        if o.flows and o.hosts >= th["recon.host_scan"]:
            fire("recon.host_scan", (src,), o.hosts, f"{src} probed {o.hosts}{more} hosts (host scan; "
                 f"{o.flows} new flows in {o.end_ts - o.start_ts:.0f} s)", src=src)
        if o.flows and o.ports >= th["recon.port_scan"]:
            fire("recon.port_scan", (src, dst), o.ports, f"{src} probed {o.ports}{more} ports"
                 + (f" of {dst}" if dst else f" on {o.hosts} hosts") + " (port scan)", src=src, dst=dst)
        protos = set(o.protocols)
        fields = {"src": src, "dst": dst}
        if "modbus" in protos:
            where = f" on {dst}" if dst else f" on {o.hosts} servers"
            # a summary's unit ids may all have answered (it cannot tell): only ALL_UNITS_FACTOR x ``units`` of
            # them is a sweep, and one server's are rates.py's to judge from the link's aggregates (answered or
            # not, which server, the sweep's own frames)
            if not dst and o.units >= ALL_UNITS_FACTOR * th["recon.modbus_unit_sweep"]:
                for key in _keys_of(src, dst, self.units, self.units_failed):
                    fire("recon.modbus_unit_sweep", key, o.units,
                         f"{src} addressed {o.units}{more} Modbus unit ids{where} (unit id sweep)",
                         protocol="modbus", src=src, dst=key[1])
            if o.codes >= th["recon.modbus_function_sweep"]:
                for key in _keys_of(src, dst, self.fcs):
                    fire("recon.modbus_function_sweep", key, o.codes,
                         f"{src} tried {o.codes}{more} Modbus function codes{where} (function code sweep)",
                         protocol="modbus", src=src, dst=key[1])
            # new keys not explained by a unit or function code sweep: new register ranges, but only from a
            # client already seen walking (a busy master reading varied ranges makes as many new keys)
            if len(protos) == 1 and o.keys >= th["recon.modbus_register_sweep"] \
                    and o.units < th["recon.modbus_unit_sweep"] and o.codes < th["recon.modbus_function_sweep"]:
                for key in self.sweep.walking(src, dst, o.first_ts):
                    fire("recon.modbus_register_sweep", key, o.keys,
                         f"{src} made {o.keys} new Modbus requests{where} in {o.end_ts - o.start_ts:.0f} s "
                         f"(register sweep)", protocol="modbus", src=src, dst=key[1])
        if protos == {"mqtt"} and o.keys >= th["dos.mqtt_topic_flood"] and not self._received_mostly(src):
            span = max(o.last_ts - o.first_ts, 1.0)
            before = self._topic_interval(o, ev)
            if before is None and o.keys / span >= self.topic_rate:
                before = (0, [ev])
            if before is not None:
                n_before, evidence = before
                msg = (f"{src} used {o.keys} new MQTT topics in {span:.0f} s ({o.keys / span:.0f}/s)"
                       + (f", after {n_before} in the interval before" if n_before else "") + " (topic flood)")
                for e in evidence:
                    self.sink.raise_finding(finding("dos.mqtt_topic_flood", (src, dst), msg, e,
                                                    details=dict(details, distinct=o.keys, before=n_before),
                                                    protocol="mqtt", **fields))
        if protos == {"opcua"} and o.keys >= th["recon.opcua_node_sweep"]:
            fire("recon.opcua_node_sweep", (src, dst), o.keys,
                 f"{src} named {o.keys} new OPC UA node sets in {o.end_ts - o.start_ts:.0f} s (node id sweep)",
                 protocol="opcua", **fields)
