"""Detection: a Pipeline consumer that compares observations with a learned ``Baseline``.

Contract
--------
``Detector(baseline, sink, source="capture.pcap", settings=DetectSettings())``
is added to ``Pipeline(consumers)``; every departure becomes a
``sensor.alerts.model.Finding`` handed to ``sink.raise_finding``.  Rule ids are
those of ``rules.RULES``; each finding's ``key`` names the condition (so
repeats aggregate into one alert), its ``Evidence`` points at the packet
(for interval findings the latest message the counts saw: of the request
whose period changed, of the pair whose rate left its band — in the interval —
or the last poll seen of a poll that stopped; frame 0 only when none was ever
seen), and ``details["entry"]`` is
the baseline entry that ``accept`` learns (absent for sweeps, storms and brute
force, which are not learnable).  ``source`` is the capture or interface the
evidence refers to; set ``detector.source`` before each file (a
``source.start`` observation with a ``source`` or ``path`` field sets it too).

What is checked (the same facts the learner learns, ``facts.py``):

* assets and pairs: a new address, a new client→server pair, a new protocol or
  port on a known pair; more than ``host_sweep`` new targets from one client
  within ``window`` s fold into one ``baseline.host_sweep``; more than
  ``fan_in`` new clients of one server port within ``window`` s (a flood from
  many or spoofed sources) fold into one ``baseline.new_pair`` for that server;
* Modbus: new unit id (``unit_sweep`` of them: a sweep), new function code
  (``fc_sweep``: a sweep), device identification (FC 17, FC 43) by a client
  that never asked, program-class function codes and UMAS program functions,
  the first write on a pair, reads and writes outside the learned register
  coverage (one alert per pair, direction and table, every unit id together;
  ``register_sweep`` distinct requests outside it whose start addresses walk
  one way — ``register_walk`` of the last ``register_sweep`` steps up, or
  down — are a sweep; a master reading varied ranges jumps about and stays
  an outside-coverage alert), an
  exception storm, a changed device identity;
* MQTT: topics published and filters subscribed that were not learned, ``#``
  by a client that never subscribed it, a run of refused CONNACKs
  (``brute_force`` within ``brute_window`` s), changed session habits (QoS,
  retain, protocol level, credential use, user name);
* OPC UA: new services (Write, Call ... severity high; others low), nodes
  written and methods called for the first time, a session on a channel whose
  security mode is weaker than every mode learned for sessions on that pair, a
  user token type not learned, a certificate not learned for a known asset;
* timing, once at least ``min_timing_intervals`` full intervals were learned:
  a poll (a request present in every learned interval) absent for a whole
  interval, its rate outside its band widened by ``rel_tol`` and ``abs_tol``
  messages, a pair's message rate outside its band (``pair_rel_tol``,
  ``pair_abs_tol``);
* floods: ``conn_flood`` flows from one client to one server port within
  ``flood_window`` s.

Assets and pairs are reported once per run (the first flow is the evidence),
sets and coverage once per message the kernel reports (the first of each key on
a link), windows on every occurrence past their threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

from otwatch.sensor.alerts.model import Evidence, Finding
from otwatch.sensor.alerts.windows import Counter, Distinct, Walk

from .facts import SECURITY_RANK, Fact, FactReader
from .model import Baseline, PairKey, entry_text
from .rules import RULES
from .timing import IntervalCounts, is_full

MAX_REPORTED = 65_536
"""Assets and pairs remembered as already reported in this run; past it, memory is cleared."""
MAX_PENDING_NOTE = 10_000


@dataclass(frozen=True)
class DetectSettings:
    window: float = 60.0            # s: sweeps and bursts are counted over this
    fc_sweep: int = 8               # distinct new function codes on one pair
    unit_sweep: int = 8             # distinct new unit ids on one pair
    register_sweep: int = 16        # distinct requests outside coverage on one (pair, unit, table) ...
    register_walk: float = 0.9      # ... whose last register_sweep steps went this share one way (a walk)
    host_sweep: int = 10            # distinct new (server, port) from one client
    fan_in: int = 32                # distinct new clients of one server port within window: one folded finding
    new_asset_burst: int = 32       # new assets within window before they fold into one finding
    topic_burst: int = 32           # new topics from one client before they fold into one finding
    brute_force: int = 5            # refused CONNACKs from one broker to one client
    brute_window: float = 60.0
    exception_storm: int = 20       # exceptions on one pair within storm_window
    storm_window: float = 10.0
    conn_flood: int = 100           # flows from one client to one server port within flood_window
    flood_window: float = 10.0
    min_timing_intervals: int = 5   # learned full intervals before timing is judged
    poll_min_per_interval: float = 2.0   # a poll must have had at least this many messages per interval
    rel_tol: float = 0.25
    abs_tol: float = 2.0
    pair_rel_tol: float = 0.5
    pair_abs_tol: float = 10.0


_SET_RULES = {
    "publish": "baseline.new_topic_published",
    "nodes_written": "baseline.new_node_written",
    "methods_called": "baseline.new_method_called",
    "user_tokens": "baseline.new_user_token",
    "qos": "baseline.mqtt_session_change",
    "retain": "baseline.mqtt_session_change",
    "protocol_levels": "baseline.mqtt_session_change",
    "credentials": "baseline.mqtt_session_change",
    "usernames": "baseline.mqtt_session_change",
}
_HABITS = frozenset({"units", "qos", "retain", "protocol_levels", "credentials", "usernames", "user_tokens",
                     "session_security", "op_classes_nonwrite"})
"""Fields not reported on a pair that was never learned (the new pair is)."""
_HIGH_OPS = frozenset({"write", "call"})
_WRITE_SERVICES = frozenset({"Write", "Call", "HistoryUpdate", "AddNodes", "DeleteNodes", "AddReferences",
                             "DeleteReferences"})
_IDENT_FCS = frozenset({17, 43})
_TEARDOWN_SERVICES = frozenset({"CloseSession", "DeleteSubscriptions", "DeleteMonitoredItems"})
"""OPC UA services that end what a learned session set up (Part 4 §5.6.4, §5.13.6, §5.12.6): every client
sends them once, when it disconnects, which a learning window that ends before the client does never sees.
They are learned like any service but not reported as new (nothing is read, written or called)."""


class Detector:
    def __init__(self, baseline: Baseline, sink, source: str = "", settings: DetectSettings | None = None) -> None:
        self.b = baseline
        self.sink = sink
        self.source = source
        self.s = s = settings or DetectSettings()
        self.reader = FactReader()
        self.counts = IntervalCounts()
        self._reported: set = set()
        self._hosts = Distinct(s.window)
        self._clients = Distinct(s.window)
        self._fcs = Distinct(s.window)
        self._units = Distinct(s.window)
        self._regs = Distinct(s.window)
        self._walk = Walk(s.register_sweep)
        self._assets = Distinct(s.window)
        self._topics = Distinct(s.window)
        self._refused = Counter(s.brute_window, s.brute_force)
        self._exc = Counter(s.storm_window, 1 << 20)
        self._flows = Counter(s.flood_window, s.conn_flood)
        self._last_poll: dict = {}      # (pair, request id) -> (frame, time) of its latest poll, timed requests only
        self.findings = 0

    # -- the consumer -------------------------------------------------------------
    def observe_aggregates(self, batch) -> None:
        """A link's aggregates in bulk (``LinkAggregates``): counted as one by one."""
        self.counts.add_all(batch)

    def observe(self, obs) -> None:
        t = obs.type
        if t == "aggregate":
            self.counts.add(obs)
            return
        if t == "interval.end":
            self._interval(obs.start_ts, obs.end_ts)
            return
        if t == "source.start":
            self.source = getattr(obs, "source", None) or getattr(obs, "path", "") or self.source
            return
        for f in self.reader.read(obs):
            self.check(f)

    # -- findings -------------------------------------------------------------------
    def _raise(self, rule: str, key: tuple, message: str, f: Fact | None, pair: PairKey | None,
               details: dict | None = None, entry: str | None = None, severity: str | None = None,
               ts: float = 0.0, src: str = "", frame: tuple | None = None) -> None:
        """*frame*: (frame, time) of the evidence of an interval finding without a fact (its latest message)."""
        r = RULES[rule]
        d = dict(details or {})
        if entry:
            d["entry"] = entry
        if f is not None:
            ev = Evidence(self.source, f.frame, f.ts, f.flow_id)
        else:
            ev = Evidence(self.source, frame[0], frame[1], 0) if frame else Evidence(self.source, 0, ts, 0)
        fd = Finding(rule, key, severity or r.severity, r.category, message, ev,
                     src=pair.client if pair else src, dst=pair.server if pair else "",
                     protocol=pair.protocol if pair else "", port=pair.port if pair else 0,
                     technique=r.technique, details=d)
        if entry:
            pend = self.b.pending
            if len(pend) >= MAX_PENDING_NOTE:
                pend.pop(next(iter(pend)))
            pend[fd.alert_id] = entry
        self.findings += 1
        self.sink.raise_finding(fd)

    def _once(self, key) -> bool:
        if key in self._reported:
            return False
        if len(self._reported) >= MAX_REPORTED:
            self._reported.clear()
        self._reported.add(key)
        return True

    # -- facts ----------------------------------------------------------------------
    def check(self, f: Fact) -> None:
        k = f.kind
        if k == "set":
            self._set(f)
        elif k == "coverage":
            self._coverage(f)
        elif k == "pair":
            self._pair(f)
        elif k == "asset":
            self._asset(f)
        elif k == "event":
            self._event(f)
        elif k == "identity":
            self._identity(f)
        elif k == "certificate":
            self._certificate(f)

    def _asset(self, f: Fact) -> None:
        ip = f.value
        if ip in self.b.assets or not self._once(("asset", ip)):
            return
        n = self._assets.add("*", ip, f.ts)
        if n > self.s.new_asset_burst:
            self._raise("baseline.new_asset", ("burst",), f"many new assets at once ({n} within "
                        f"{self.s.window:.0f} s), e.g. {ip}", f, None, {"ip": ip, "distinct": n}, src=ip)
            return
        self._raise("baseline.new_asset", (ip,), f"new asset {ip} (not seen while learning)", f, None,
                    {"ip": ip, "mac": f.field}, entry=entry_text("asset", ip), src=ip)

    def _pair(self, f: Fact) -> None:
        pk = f.pair
        if pk in self.b.pairs or not self._once(("pair", pk)):
            return
        n = self._hosts.add(pk.client, (pk.server, pk.protocol, pk.port), f.ts)
        if n >= self.s.host_sweep:
            self._raise("baseline.host_sweep", (pk.client,), f"{pk.client} reached {n} targets it never talked "
                        f"to within {self.s.window:.0f} s (scan)", f, pk,
                        {"distinct": n, "target": f"{pk.server} {pk.protocol}/{pk.port}"})
            return
        n = self._clients.add((pk.server, pk.protocol, pk.port), pk.client, f.ts)
        if n > self.s.fan_in:
            self._raise("baseline.new_pair", ("*", pk.server, pk.protocol, pk.port),
                        f"{n} clients never seen before reached {pk.server} {pk.protocol}/{pk.port} within "
                        f"{self.s.window:.0f} s (a flood from many or spoofed sources?), e.g. {pk.client}", f, pk,
                        {"distinct": n})
            return
        known = any(p.client == pk.client and p.server == pk.server for p in self.b.pairs)
        if known:
            self._raise("baseline.new_port", tuple(pk), f"{pk.client} talks to {pk.server} over "
                        f"{pk.protocol}/{pk.port}, not seen while learning", f, pk, entry=entry_text("pair", pk))
        else:
            self._raise("baseline.new_pair", tuple(pk), f"new communication {pk.client} -> {pk.server} "
                        f"{pk.protocol}/{pk.port}", f, pk, entry=entry_text("pair", pk))

    def _set(self, f: Fact) -> None:
        pk, name, value = f.pair, f.field, f.value
        prof = self.b.pairs.get(pk)
        if prof is not None and prof.has(name, value):
            return
        if not self._once(("set", pk, name, value)):
            return
        if prof is None and name in _HABITS:
            # a pair never learned is reported as such; its habits are not news on their own
            if name == "units":
                self._units.add((pk.client, pk.server), value, f.ts)
            return
        info = f.info or {}
        entry = entry_text("pair", pk, name, value)
        c = (pk.client, pk.server)
        if name == "function_codes":
            if value in _IDENT_FCS:
                self._raise("baseline.device_identification_read", tuple(pk) + (value,),
                            f"{pk.client} reads the device identification of {pk.server} (FC {value}), "
                            "which it never did while learning", f, pk, info, entry)
                return
            n = self._fcs.add(c, value, f.ts)
            if n >= self.s.fc_sweep:
                self._raise("baseline.function_code_sweep", c, f"{pk.client} tried {n} function codes on "
                            f"{pk.server} not seen while learning, within {self.s.window:.0f} s (sweep)",
                            f, pk, dict(info, distinct=n))
                return
            if info.get("op") == "program":
                self._raise("baseline.program_operation", tuple(pk) + (value,),
                            f"program/firmware-class function {value} ({info.get('function', '')}) from "
                            f"{pk.client} to {pk.server}", f, pk, info, entry)
                return
            self._raise("baseline.new_function_code", tuple(pk) + (value,),
                        f"{pk.client} sends function code {value} ({info.get('function', '')}) to {pk.server}, "
                        "not seen while learning", f, pk, info, entry)
        elif name == "umas_functions":
            if info.get("umas_class") == "program":
                self._raise("baseline.program_operation", tuple(pk) + ("umas", value),
                            f"UMAS {value} (program/firmware class) from {pk.client} to {pk.server}",
                            f, pk, info, entry)
        elif name == "op_classes":
            if value == "write":
                self._raise("baseline.first_write", tuple(pk), f"{pk.client} writes to {pk.server} "
                            f"({info.get('target', '')}); it only read while learning", f, pk, info, entry)
        elif name == "units":
            n = self._units.add(c, value, f.ts)
            if n >= self.s.unit_sweep:
                self._raise("baseline.unit_id_sweep", c, f"{pk.client} addressed {n} unit ids on {pk.server} "
                            "not seen while learning (sweep)", f, pk, dict(info, distinct=n))
                return
            self._raise("baseline.new_unit_id", tuple(pk) + (value,), f"{pk.client} addresses unit id {value} "
                        f"on {pk.server}, not seen while learning", f, pk, info, entry)
        elif name == "subscribe":
            if value == "#":
                self._raise("baseline.wildcard_subscription", tuple(pk), f"{pk.client} subscribes '#' (every "
                            f"topic) on {pk.server}; it never did while learning", f, pk, info, entry)
                return
            self._raise("baseline.new_topic_subscribed", tuple(pk) + (value,),
                        f"{pk.client} subscribes {value!r}, not seen while learning", f, pk, info, entry)
        elif name == "publish":
            n = self._topics.add(c, value, f.ts)
            if n > self.s.topic_burst:
                self._raise("baseline.new_topic_published", tuple(pk) + ("(many)",),
                            f"{pk.client} published {n} new topics within {self.s.window:.0f} s", f, pk,
                            dict(info, distinct=n))
                return
            self._raise("baseline.new_topic_published", tuple(pk) + (value,),
                        f"{pk.client} publishes {value!r}, not seen while learning", f, pk, info, entry)
        elif name == "services":
            if value in _TEARDOWN_SERVICES:
                return
            sev = None if info.get("op") in _HIGH_OPS else "low"
            only_read = prof is not None and not (prof.sets.get("services", set()) & _WRITE_SERVICES)
            what = " (a pair that only read while learning)" if only_read and sev is None else ""
            self._raise("baseline.new_service", tuple(pk) + (value,), f"{pk.client} calls OPC UA {value} on "
                        f"{pk.server}, not seen on this pair while learning{what}", f, pk, info, entry, severity=sev)
        elif name == "session_security":
            learned = prof.sets.get("session_security") if prof is not None else None
            if not learned:
                return
            rank = SECURITY_RANK.get(info.get("mode", ""), 0)
            floor = min(SECURITY_RANK.get(v.split("/", 1)[0], 0) for v in learned)
            if rank < floor:
                self._raise("baseline.security_downgrade", tuple(pk) + (value,),
                            f"{pk.client} opens an OPC UA session on {pk.server} with security {value}; "
                            f"learned: {', '.join(sorted(learned))}", f, pk, dict(info, learned=sorted(learned)),
                            entry)
        elif name in _SET_RULES:
            rule = _SET_RULES[name]
            self._raise(rule, tuple(pk) + (name, value), f"{pk.client} -> {pk.server}: {name} {value!r} "
                        "not seen while learning", f, pk, dict(info, field=name), entry)

    def _coverage(self, f: Fact) -> None:
        pk = f.pair
        prof = self.b.pairs.get(pk)
        lo, hi = f.value
        cov = prof.coverage.get(f.field) if prof is not None else None
        missing = cov.missing(lo, hi) if cov is not None else [(lo, hi)]
        if not missing:
            return
        rw, table = f.field.split(" ", 1)
        info = dict(f.info or {}, table=table, range=f"{lo}-{hi}",
                    outside=",".join(f"{a}-{b}" if a != b else str(a) for a, b in missing))
        scope = tuple(pk) + (f.field,)
        n = self._regs.add(scope, (lo, hi), f.ts)
        share = self._walk.step(scope, lo)
        # a sweep walks the addresses one way; a master reading varied ranges outside them jumps about
        # (those are read/write_outside_coverage, one alert per pair and table)
        if n >= self.s.register_sweep and share >= self.s.register_walk:
            self._raise("baseline.register_sweep", tuple(pk) + (table,), f"{pk.client} accessed {n} ranges of "
                        f"{table} on {pk.server} outside the learned registers within {self.s.window:.0f} s, "
                        "one after the other (sweep)", f, pk, dict(info, distinct=n, walk=round(share, 3)))
            return
        rule = "baseline.write_outside_coverage" if rw == "write" else "baseline.read_outside_coverage"
        # one alert per pair, direction and table (all unit ids together): a unit sweep is one alert, not 256
        self._raise(rule, tuple(pk) + (rw, table.split("/", 1)[-1]), f"{pk.client} {'writes' if rw == 'write' else 'reads'} "
                    f"{table} {lo}-{hi} on {pk.server}, outside the learned registers", f, pk, info,
                    entry_text("pair", pk, "coverage", (f.field, tuple(missing))))

    def _event(self, f: Fact) -> None:
        pk = f.pair
        if f.field == "connack_refused":
            n = self._refused.add((pk.client, pk.server), f.ts)
            if n >= self.s.brute_force:
                self._raise("baseline.mqtt_brute_force", (pk.client, pk.server), f"{pk.server} refused "
                            f"{n} CONNECTs from {pk.client} within {self.s.brute_window:.0f} s (password guessing?)",
                            f, pk, dict(f.info or {}, refused=n))
        elif f.field == "exception":
            n = self._exc.add(pk, f.ts)
            prof = self.b.pairs.get(pk)
            learned = 0.0
            if prof is not None:
                learned = sum(st.hi for rid, st in prof.timing.items() if " modbus.exception " in rid)
            limit = max(self.s.exception_storm, 3 * learned * self.s.storm_window)
            if n >= limit:
                self._raise("baseline.exception_storm", tuple(pk), f"{pk.server} answered {n} exceptions to "
                            f"{pk.client} within {self.s.storm_window:.0f} s", f, pk, dict(f.info or {}, count=n))
        elif f.field == "flow":
            n = self._flows.add(pk, f.ts)
            if n >= self.s.conn_flood:
                self._raise("baseline.connection_flood", tuple(pk), f"{pk.client} opened {n}+ connections to "
                            f"{pk.server} {pk.protocol}/{pk.port} within {self.s.flood_window:.0f} s", f, pk,
                            {"count": n})

    def _identity(self, f: Fact) -> None:
        ip, name, value = f.value
        a = self.b.assets.get(ip)
        if a is None or name not in a.identity or a.identity[name] == value:
            return
        self._raise("baseline.identity_changed", (ip, name), f"{ip} now reports {name} {value!r} "
                    f"(learned {a.identity[name]!r})", f, f.pair,
                    {"attribute": name, "value": value, "learned": a.identity[name]})

    def _certificate(self, f: Fact) -> None:
        ip, thumb = f.value
        a = self.b.assets.get(ip)
        if a is None or thumb in a.certificates or not self._once(("cert", ip, thumb)):
            return
        self._raise("baseline.new_certificate", (ip, thumb), f"{ip} presents an OPC UA certificate not seen "
                    f"while learning ({(f.info or {}).get('subject', '')})", f, f.pair,
                    dict(f.info or {}, thumbprint=thumb, learned=sorted(a.certificates)))

    # -- timing -------------------------------------------------------------------------
    def _interval(self, start: float, end: float) -> None:
        per_key, per_pair = self.counts.take()
        frames = self.counts.take_frames()
        for k, fr in frames.items():        # the last poll seen of every timed request (bounded by the baseline)
            if type(k) is tuple and type(k[0]) is PairKey and k[0] in self.b.pairs \
                    and k[1] in self.b.pairs[k[0]].timing:
                self._last_poll[k] = fr
        if not is_full(start, end, self.b.interval):
            return
        s = self.s
        length = end - start
        for pk, prof in self.b.pairs.items():
            keys = per_key.get(pk, {})
            for rid, st in prof.timing.items():
                if st.n < s.min_timing_intervals or st.lo <= 0 or st.lo * self.b.interval < s.poll_min_per_interval:
                    continue
                n = keys.get(rid, 0)
                rate = n / length
                if n == 0:
                    seen = self._last_poll.get((pk, rid))
                    self._raise("baseline.poll_stopped", tuple(pk) + (rid,), f"{pk.client} stopped polling "
                                f"{pk.server}: no '{rid}' for {length:.0f} s (learned every "
                                f"{1 / st.mean:.3g} s)", None, pk,
                                {"request": rid, "period": 1 / st.mean, "interval": [start, end]},
                                ts=end, frame=seen)
                elif rate < st.lo * (1 - s.rel_tol) - s.abs_tol / length or \
                        rate > st.hi * (1 + s.rel_tol) + s.abs_tol / length:
                    self._raise("baseline.period_changed", tuple(pk) + (rid,), f"'{rid}' from {pk.client} to "
                                f"{pk.server}: period {1 / rate:.3g} s, learned {1 / st.hi:.3g}-{1 / st.lo:.3g} s",
                                None, pk, {"request": rid, "period": 1 / rate, "learned_min": 1 / st.hi,
                                           "learned_max": 1 / st.lo, "interval": [start, end]}, ts=end,
                                frame=frames.get((pk, rid)))
            r = prof.rate
            if r.n >= s.min_timing_intervals:
                rate = per_pair.get(pk, 0) / length
                if rate < r.lo * (1 - s.pair_rel_tol) - s.pair_abs_tol / length or \
                        rate > r.hi * (1 + s.pair_rel_tol) + s.pair_abs_tol / length:
                    self._raise("baseline.rate_out_of_band", tuple(pk), f"{pk.client} -> {pk.server}: "
                                f"{rate:.3g} messages/s, learned {r.lo:.3g}-{r.hi:.3g}", None, pk,
                                {"rate": rate, "learned_low": r.lo, "learned_high": r.hi, "interval": [start, end]},
                                ts=end, frame=frames.get(pk))
