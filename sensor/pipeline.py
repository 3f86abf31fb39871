"""Wire the stages: source → engine kernel → observations → consumers.

``Pipeline`` owns one engine.  ``run_file`` pulls chunks from a capture,
``feed_packet`` takes live packets; both drain the engine's records into typed
observations (``sensor.observations``) and hand each to every consumer's
``observe``.  The same code serves ``otwatch analyze`` and the live sensor.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from otwatch import ext
from otwatch.parsers import common
from otwatch.parsers.budget import DEFAULT_BUDGET_LIMITS
from otwatch.parsers.limits import Limits

from . import observations as O
from .source import CaptureError, ChunkReader, first_packet_ts, open_capture, raw_position, source_name

APP_BY_NAME = {"modbus": 1, "mqtt": 2, "opcua": 3}
_NAME_BY_APP = {app: name for name, app in APP_BY_NAME.items()}

DEFAULT_PORTS = {502: "modbus", 1883: "mqtt", 4840: "opcua"}
"""Well-known ports (IANA: 502 mbap, 1883 mqtt, 4840 opcua-tcp)."""
DEFAULT_TLS_PORTS = {802: "modbus", 8883: "mqtt", 4843: "opcua"}
"""TLS-wrapped variants (IANA: 802 mbap-s, 8883 secure-mqtt, 4843 opcua-tls)."""


class Consumer(Protocol):
    def observe(self, obs) -> None: ...


IP_CACHE_MAX = 65536
"""Distinct addresses a pipeline remembers as text (at most; ``limits.max_hosts`` when smaller,
so the cache is within the hosts' share of the memcap, whose per-host cost counts its strings);
beyond it an address is converted each time."""


class _IPText(dict):
    """Packed address -> text, the first *cap* distinct ones remembered (a flood of sources costs
    a conversion each, not memory).  ``cache[b]`` is the lookup: a dict hit stays in C."""

    def __init__(self, cap: int):
        super().__init__()
        self.cap = cap

    def __missing__(self, b: bytes) -> str:
        s = str(ipaddress.ip_address(b)) if b else ""
        if len(self) < self.cap:
            self[b] = s
        return s


def _mac(b: bytes) -> str:
    return b.hex(":") if b else ""      # "02:00:00:00:01:0a"


_TCP_FLAGS = ((1, "syn"), (2, "synack"), (4, "fin_client"), (8, "fin_server"), (16, "rst"), (32, "data"))
_FLAG_NAMES = [tuple(name for bit, name in _TCP_FLAGS if state & bit) for state in range(64)]
_TRANSPORTS = {6: "tcp", 17: "udp"}
_DIRECTION = {common.CLIENT: "request", common.SERVER: "response"}     # an aggregate's side -> direction
_new_message = O.positional(O.Message)     # the per-record observations, built without the frozen
_new_flow_start = O.positional(O.FlowStart)  # __init__'s setattr per field (observations.positional):
_new_flow_end = O.positional(O.FlowEnd)      # a steady plant's records are mostly flows (two per
_new_name_seen = O.positional(O.NameSeen)    # connection) and DNS names

_AUX_CACHE_MAX = 4096
"""DNS/mDNS/LLMNR answers whose names are remembered: the same answer (bar its
transaction id) is common, and parsing it costs more than the observations."""


_hostnames = None
"""parsers.hostnames once imported (``from otwatch.parsers import hostnames`` in ``_aux`` ran the
import system's from-list handling for every DNS answer)."""


def _import_hostnames():
    global _hostnames
    from otwatch.parsers import hostnames

    _hostnames = hostnames
    return hostnames


@dataclass
class _LinkInfo:
    protocol: str
    client: str
    server: str
    port: int


class Decoders:
    """Per-protocol full decoders and key describers (parsers/<proto>/decode.py).

    A protocol's decoder (and its event classes, the costliest imports of a
    start-up) is imported when its first message needs it.
    """

    def __init__(self, cache_max: int = 100_000):
        self.by_app: dict = {}
        self._described: dict = {}      # app -> {key: (kind, op, target)}: keyed by the key itself, so
        self._size = 0                  # an aggregate row's look-up builds no (app, key) tuple
        self.cache_max = cache_max
        """Keys whose description is remembered (all protocols together): the pipeline gives
        ``limits.link_keys_total`` (the budget's per-key cost counts this entry) when smaller than 100,000."""

    def module(self, app: int):
        m = self.by_app.get(app)
        if m is None:
            import importlib

            m = self.by_app[app] = importlib.import_module(f"otwatch.parsers.{_NAME_BY_APP[app]}.decode")
        return m

    def described(self, app: int) -> dict:
        """*app*'s remembered descriptions, ``{key: (kind, op, target)}`` (read-only for callers:
        ``describe`` fills it)."""
        c = self._described.get(app)
        if c is None:
            c = self._described[app] = {}
        return c

    def describe(self, app: int, key: tuple) -> tuple[str, str, str]:
        c = self._described.get(app) or self.described(app)
        d = c.get(key)
        if d is None:
            d = self.module(app).describe(key)
            if self._size < self.cache_max:
                c[key] = d
                self._size += 1
        return d

    def cache_size(self) -> int:
        """Descriptions remembered, all protocols together (at most ``cache_max``)."""
        return self._size

    def decode(self, app: int, key, raw, ctx, side):
        return self.module(app).decode(key, raw, ctx, side)


@dataclass
class Settings:
    limits: Limits = DEFAULT_BUDGET_LIMITS     # the default memcap shared out (parsers/budget.py)
    ports: dict = field(default_factory=lambda: dict(DEFAULT_PORTS))
    tls_ports: dict = field(default_factory=lambda: dict(DEFAULT_TLS_PORTS))
    detail_all: bool = False
    interval: float = 60.0
    implementation: str | None = None   # "compiled" | "pure" | None (the chosen one)


class Pipeline:
    def __init__(self, consumers: Iterable[Consumer] = (), settings: Settings | None = None):
        self.settings = s = settings or Settings()
        impl = s.implementation or ext.IMPLEMENTATION
        self.implementation = impl
        kernels = {}
        for name, app in APP_BY_NAME.items():
            mod = ext.load(name, impl)
            core = getattr(mod, {"modbus": "ModbusCore", "mqtt": "MQTTCore", "opcua": "OPCUACore"}[name])
            kernels[app] = (core, mod.probe, getattr(mod, "side_hint", None))
        port_map = {}
        for port, name in s.ports.items():
            if name not in APP_BY_NAME:
                raise ValueError(f"unknown protocol {name!r} for port {port}")
            port_map[int(port)] = APP_BY_NAME[name]
        tls = {int(p): APP_BY_NAME[n] for p, n in s.tls_ports.items()}
        engine_mod = ext.load("engine", impl)
        self._app_names = engine_mod.APP_NAMES
        self.engine = engine_mod.Engine(kernels, s.limits, port_map, tls, s.detail_all, s.interval)
        self.consumers = list(consumers)
        self.decoders = Decoders(min(100_000, s.limits.link_keys_total))
        self._ip = _IPText(min(IP_CACHE_MAX, s.limits.max_hosts)).__getitem__
        self._links: dict[int, _LinkInfo] = {}
        self._flows: dict[int, tuple] = {}      # flow_id -> (client, server, server_port, carried app name)
        self._quiet_links: dict[int, tuple] = {}  # link_id -> (ts, frame, vlan): link.seen not emitted yet
        self._tls_apps = {int(p): n for p, n in s.tls_ports.items()}
        self.counts = {"observations": 0}
        self.source = ""
        """The current source's text (``SourceStart.source``)."""
        self._aux_names: dict = {}              # (kind, answer without its id) -> names

    # -- input -----------------------------------------------------------
    def run_file(self, path: str, progress: Callable[[int, int | None, int], None] | None = None) -> None:
        """Analyse one capture file ('-' for stdin).  Raises source.CaptureError (one line, path included).

        Emits ``SourceStart`` first; frame numbers restart at 1 in each file.
        """
        stream, size = open_capture(path)
        eng = self.engine
        eng.new_source()
        self.source = source_name(path)
        with stream:
            reader = ChunkReader(stream)
            try:
                more = reader.fill()
                self._emit(O.SourceStart(self.source, "file", first_packet_ts(reader.buf, reader.end) or 0.0))
                while more:
                    reader.consume(eng.feed(reader.buf, False, reader.end))
                    self._drain()
                    if progress is not None:
                        progress(raw_position(stream) or 0, size, eng.stats()["capture.packets"])
                    more = reader.fill()
                eng.feed(reader.buf, True, reader.end)
            except ValueError as exc:      # the engine: not a capture at all (bad magic, empty)
                self._drain()
                raise CaptureError(f"{path if path != '-' else 'stdin'}: {exc}") from None
            except CaptureError as exc:
                self._drain()
                raise CaptureError(f"{path if path != '-' else 'stdin'}: {exc}") from None
            self._drain()

    def start_interface(self, name: str, first_ts: float = 0.0) -> None:
        """A live interface begins (the live sensor calls this before its first ``feed_packet``)."""
        self.engine.new_source()
        self.source = "iface:" + name
        self._emit(O.SourceStart(self.source, "interface", first_ts))

    def feed_chunk(self, buf, end: int) -> int:
        """Walk the capture records in ``buf[:end]`` (a live capture writes them, header first),
        hand the observations to the consumers, return the bytes consumed."""
        used = self.engine.feed(buf, False, end)
        self._drain()
        return used

    def feed_packet(self, ts: float, linktype: int, data: bytes, wirelen: int = -1) -> None:
        self.engine.packet(ts, linktype, data, wirelen)

    def finish(self) -> None:
        self.engine.finish()
        self._drain()

    def stats(self) -> dict:
        d = self.engine.stats()
        d.update(self.counts)
        return d

    def state_sizes(self) -> dict:
        """The engine's ``state_sizes()`` and the pipeline's own tables (links and open flows by id,
        the address-text and describe caches)."""
        d = self.engine.state_sizes()
        d["pipeline_links"] = len(self._links)
        d["pipeline_flows"] = len(self._flows)
        d["ip_cache"] = len(self._ip.__self__)
        d["describe_cache"] = self.decoders.cache_size()
        return d

    # -- records → observations -------------------------------------------
    def _emit(self, obs) -> None:
        self.counts["observations"] += 1
        for c in self.consumers:
            c.observe(obs)

    def _drain(self) -> None:
        self._records(self.engine.take())

    def _records(self, records: list) -> None:
        """Engine records to observations, in order; a link's consecutive R_AGG records as one batch."""
        run: list = []          # consecutive R_AGG records of one link: one flush of it
        for r in records:
            if r[0] == 17:      # R_AGG
                if run and run[0][2] != r[2]:
                    self._aggregates(run)
                    run = []
                run.append(r)
                continue
            if run:
                self._aggregates(run)
                run = []
            self._record(r)
        if run:
            self._aggregates(run)

    def _aggregates(self, recs: list) -> None:
        """The R_AGG records of one link's flush as one ``LinkAggregates``, handed whole to consumers
        that take it (``observe_aggregates``); when one does not, every consumer gets the
        ``Aggregate``s one by one, as before bulk hand-over existed."""
        app, lid = recs[0][1], recs[0][2]
        if self._quiet_links and lid in self._quiet_links:
            self._link_seen(lid)
        describe, known, direction = self.decoders.describe, self.decoders.described(app).get, _DIRECTION
        rows = tuple([(known(key) or describe(app, key)) + (direction[side], count, nbytes, first_ts, last_ts, icount,
                                                             ibytes, first_frame, last_frame, key)
                      for _, _, _, key, count, nbytes, first_ts, last_ts, icount, ibytes, side, first_frame, last_frame
                      in recs])
        li = self._links[lid]
        batch = O.LinkAggregates(li.protocol, lid, li.client, li.server, li.port, rows)
        bulk = [getattr(c, "observe_aggregates", None) for c in self.consumers]
        if None in bulk:
            for a in batch.each():
                self._emit(a)
            return
        self.counts["observations"] += len(rows)
        for take in bulk:
            take(batch)

    def _link_seen(self, lid: int) -> None:
        """A link made by a flow held back in a scan summary carries its first record: seen now."""
        ts, frame, vlan = self._quiet_links.pop(lid)
        li = self._links[lid]
        self._emit(O.LinkSeen(ts, frame, lid, li.protocol, vlan, li.client, li.server, li.port))

    def _record(self, r: tuple) -> None:
        tag = r[0]
        if self._quiet_links and tag in (15, 16) and r[2] in self._quiet_links:   # (R_AGG: _aggregates)
            self._link_seen(r[2])
        if tag == 15:    # R_MSG (R_AGG records never come here: ``_records`` batches them per link)
            _, app, lid, fid, side, ts, frame, key, raw, ctx = r
            kind, op, target = self.decoders.describe(app, key)
            event = self.decoders.decode(app, key, raw, ctx, side)
            li = self._links[lid]
            self._emit(_new_message(ts, frame, li.protocol, kind, op, target,
                                    "request" if side == common.CLIENT else "response",
                                    lid, fid, li.client, li.server, li.port, event, key))
        elif tag == 16:  # R_ANOMALY
            _, app, lid, fid, side, ts, frame, aid, detail = r
            self._emit(O.Anomaly(ts, frame, aid, self._app_names[app] if app else "", lid, fid,
                                 common.SIDE_NAMES[side] if side in (0, 1) else "", detail))
        elif tag == 10:  # R_FLOW_NEW
            (_, fid, ts, frame, ipproto, vlan, cip, cport, sip, sport, cmac, smac, guessed, app, lid) = r
            transport = _TRANSPORTS.get(ipproto) or f"ip/{ipproto}"
            client, server = self._ip(cip), self._ip(sip)
            self._flows[fid] = (client, server, sport)
            self._emit(_new_flow_start(ts, frame, fid, transport, vlan, client, cport, server, sport,
                                   _mac(cmac), _mac(smac), bool(guessed), app, lid))
        elif tag == 11:  # R_FLOW_END
            (_, fid, ts, frame, reason, first_ts, pc, ps, bc, bs, plc, pls, app, state, guessed,
             decoded, skipped, encrypted, gaps, messages) = r
            self._flows.pop(fid, None)
            flags = _FLAG_NAMES[state & 63]
            self._emit(_new_flow_end(ts, frame, fid, reason, first_ts, pc, ps, bc, bs, plc, pls, app, flags,
                                 bool(guessed), decoded, skipped, encrypted, gaps, messages))
        elif tag == 12:  # R_HOST
            _, ts, frame, mac, ip, vlan, how = r
            self._emit(O.HostSeen(ts, frame, _mac(mac), self._ip(ip), vlan, how))
        elif tag == 13:  # R_HOSTSTAT
            _, mac, ip, vlan, ptx, btx, prx, brx, first_ts, last_ts = r
            self._emit(O.HostTraffic(_mac(mac), self._ip(ip), vlan, ptx, btx, prx, brx, first_ts, last_ts))
        elif tag == 14:  # R_LINK
            _, lid, ts, frame, app, vlan, cip, sip, sport, quiet = r
            li = _LinkInfo(app, self._ip(cip), self._ip(sip), sport)
            self._links[lid] = li
            if quiet:       # made by a flow held back in a scan summary: seen when it carries something
                self._quiet_links[lid] = (ts, frame, vlan)
            else:
                self._emit(O.LinkSeen(ts, frame, lid, app, vlan, li.client, li.server, sport))
        elif tag == 20:  # R_LINK_END: the engine forgot the link (memory budget)
            self._links.pop(r[1], None)
            self._quiet_links.pop(r[1], None)
        elif tag == 18:  # R_AUX
            self._aux(r)
        elif tag == 19:  # R_INTERVAL
            for c in self.consumers:     # the engine's horizon: no later observation carries a packet
                h = getattr(c, "horizon", None)  # time before it (time moving forward), so windows that end
                if h is not None:                # before it can go (AlertStage.horizon)
                    h(r[3])
            self._emit(O.IntervalEnd(r[1], r[2]))
        elif tag == 21:  # R_SCAN
            (_, start, end, src, dst, port, first_ts, first_frame, last_ts, last_frame, flows, flows_q, hosts, ports,
             keys, keys_q, units, codes, apps, capped, held, held_more) = r
            held_back = tuple((self._ip(c), self._ip(s), _TRANSPORTS.get(p) or f"ip/{p}", sp) for c, s, p, sp in held)
            self._emit(O.ScanSummary(start, end, self._ip(src), self._ip(dst), port, first_ts, first_frame, last_ts,
                                     last_frame, flows, flows_q, hosts, ports, keys, keys_q, units, codes, tuple(apps),
                                     bool(capped), held_back, held_more))

    def _aux(self, r: tuple) -> None:
        _, kind, fid, side, ts, frame, smac, sip, dip, payload = r
        if kind == "tls":
            from otwatch.parsers import tls

            ev = tls.parse_client_hello(payload) if side == 0 else tls.parse_server_hello(payload)
            client, server, port = self._flows.get(fid, (self._ip(sip), self._ip(dip), 0))
            self._emit(O.TLSSeen(ts, frame, fid, "request" if side == 0 else "response", client, server, port,
                                 self._tls_apps.get(port, ""), ev))
            return
        hostnames = _hostnames or _import_hostnames()
        if kind == "dns" or kind == "mdns" or kind == "llmnr":
            # the names in an answer do not depend on its first two bytes (the transaction id)
            ck = (kind, payload[2:])
            found = self._aux_names.get(ck)
            if found is None:
                found = hostnames.names(kind, payload, side)
                if len(self._aux_names) >= _AUX_CACHE_MAX:
                    self._aux_names.clear()
                self._aux_names[ck] = found
        else:
            found = hostnames.names(kind, payload, side)
        for name, ip, mac in found:
            if not ip and not mac:     # the name belongs to the sender
                ip, mac = self._ip(sip), _mac(smac)
            self._emit(_new_name_seen(ts, frame, name, ip, mac, kind))
