"""``PolicyChecker``: the pipeline consumer that turns policy violations into findings.

    checker = PolicyChecker(load_policy("rules/demo-plant.yaml"), sink)
    Pipeline([checker, ...]).run_file("capture.pcap")

It reads the observation stream (sensor/observations.py):

* ``FlowStart`` — every flow, OT or not: the client's and server's zones are
  resolved (address, MAC, VLAN; ``zones.ZoneMap``) and the flow is checked
  (``verdict.Verdicts.flow``); a denied flow raises ``policy.flow_denied``.
  Multicast and broadcast destinations (also the broadcast address of any
  zone network) count as the sender's own zone.
* ``Message`` and ``Aggregate`` requests — every operation a client asks for
  (``operations.op_key``) is checked; a denial raises
  ``policy.operation_denied``.  A message carries its frame; an aggregate (a
  key the kernel tallied without a message, e.g. after its first occurrence was
  reported) raises only when no message with that key on that link did, with
  frame 0 and the aggregate's last time.
* Operations past a link's key cap (``operations.OVERFLOW``): the kernels count
  new keys beyond ``limits.link_keys_max`` under one overflow key whose unit,
  function code, registers or topic are unknown.  A conduit that does not allow
  every such operation denies them (``code: key_overflow``, high, T0855): an
  attacker cannot hide a write behind thousands of junk keys.  The evidence is
  the frame of the link's ``<protocol>.key_overflow`` anomaly (the first
  overflowed message) when it was seen, else frame 0 and the aggregate's time.
* Modbus requests counted under a link's lump key (``operations.COVERED``): ranges
  inside the link's exact coverage of one unit and function code that had no key
  of their own.  Every address they name was judged before in a range of its
  own, so they need no verdict of their own unless the rules that allow the
  operation allow its table's registers only together (two rules' ranges joining
  into a span neither allows alone: a range may straddle them), which is
  ``code: not_distinguished``; an operation, unit, function code or table no rule
  allows is denied as each range was (docs/rules.md, "Ranges counted together").
* OPC UA secure channels — the mode comes from the ``OpenSecureChannel``
  request (its body, or None when the policy is None; a channel whose body is
  encrypted is at least Sign, and Sign-only when a readable service request
  travels on it).  At the channel's first request beyond discovery
  (GetEndpoints/FindServers may use None anywhere) the mode is compared with
  the conduit's ``min_security_mode``; below it raises
  ``policy.security_mode_below_minimum`` with that request as evidence.
* ``source.start`` — the capture or interface now being read becomes
  ``Evidence.source``.

Findings go to an ``AlertSink`` (sensor/alerts/model.py); the alert
aggregator folds repeats.  A policy's ``detections`` entry for a ``policy.*``
rule may disable it, set its severity, or exempt addresses/zones (allow).
Many sources denied the same server fold into one alert (``FAN_IN``).
Memory is bounded: per-flow and per-link state is capped (``STATE_MAX``) and
dropped at ``FlowEnd``.
"""
from __future__ import annotations

from typing import Callable

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.model import AlertSink, Evidence, Finding
from otwatch.sensor.alerts.windows import Distinct

from . import catalogue as C
from .model import DEFAULT_PORTS, OPCUA_SESSION_SERVICES, OT_PROTOCOLS, SECURITY_MODE_NAMES, Policy
from .operations import COVERED, OVERFLOW, describe, op_key
from .verdict import CACHE_MAX, Verdict, Verdicts
from .zones import ZoneMap

STATE_MAX = 1 << 18
"""Flows, links and reported (link, key) pairs remembered (each cleared when full):
the engine's own flow table is bounded, this only has to hold the live ones."""

FAN_IN = {"sources": 32, "window": 60.0}
"""Denials of one server (flows: per transport label; operations: per protocol and operation class) from
more than ``sources`` distinct clients within ``window`` s of packet time fold into one alert keyed by the
server (client ``*``): a flood from many or spoofed sources is one alert, not one per source.  A plant has a
handful of clients per server; 32 new denied ones within a minute is a flood.  Thresholds of
``policy.flow_denied`` and ``policy.operation_denied`` (``detections: {RULE: {thresholds: ...}}``)."""

MODE_UNKNOWN_SIGNED = 0
"""A channel with a security policy other than None whose mode (Sign or SignAndEncrypt) is not yet known."""
MODE_JUDGED = -1
"""A channel whose mode has been compared with the minimum already."""
OT_PORTS = frozenset(p for ports in DEFAULT_PORTS.values() for p in ports)
"""Well-known OT ports: a held-back flow to one is judged as an OT flow (severity)."""
KEY_OVERFLOW_SUFFIX = ".key_overflow"
"""Anomaly ids ``<protocol>.key_overflow``: a link direction reached its key cap."""
DISCOVERY_SERVICES = frozenset({"GetEndpoints", "FindServers", "FindServersOnNetwork", "RegisterServer",
                                "RegisterServer2"})
"""Services a client may call before it knows the endpoints' security (Part 4 §5.4): not judged."""
OPN = "opcua.open_secure_channel"


def _framing(opk: tuple) -> bool:
    """Connecting, keeping a session, acknowledging: allowed wherever the protocol is, and when
    the protocol is not, the flow's own finding already says so (no second finding per CONNECT)."""
    return opk[0] in ("session", "encrypted") or (opk[0] == "service" and opk[1] in OPCUA_SESSION_SERVICES)


class PolicyChecker:
    def __init__(self, policy: Policy, sink: AlertSink, source: str = "",
                 asset_of: Callable[[str, str, int], str] | None = None, cache_max: int = CACHE_MAX):
        self.policy = policy
        self.sink = sink
        self.source = source
        self.asset_of = asset_of
        self.zones = ZoneMap(policy)
        self.verdicts = Verdicts(policy, cache_max)
        self._cache_max = cache_max
        self._flows: dict[int, tuple[str, str]] = {}
        self._links: dict[int, tuple[str, str]] = {}
        self._reported: set = set()
        self._ua: dict[int, int] = {}          # flow id -> OPC UA security mode seen (or MODE_UNKNOWN_SIGNED)
        self._overflow_at: dict[int, Evidence] = {}   # link id -> its first <protocol>.key_overflow anomaly
        self.counts = {r: 0 for r in C.RULES}
        self._fan_in = self._fan_in_windows(policy)
        self._dispatch = {O.FlowStart: self._flow_start, O.FlowEnd: self._flow_end, O.Message: self._message,
                          O.Aggregate: self._aggregate, O.Anomaly: self._anomaly,
                          O.ScanSummary: self._scan_summary}

    # -- consumer -------------------------------------------------------------------
    def observe(self, obs) -> None:
        f = self._dispatch.get(type(obs))
        if f is not None:
            f(obs)
        elif getattr(obs, "type", None) == "source.start":
            self.source = getattr(obs, "source", "") or ""

    def observe_aggregates(self, batch: O.LinkAggregates) -> None:
        """A link's aggregates in bulk: each judged as one by one (``_aggregate``)."""
        for a in batch.each():
            self._aggregate(a)

    def replace_policy(self, policy: Policy) -> None:
        """Judge by *policy* from now on (the sensor's SIGHUP): zones and verdicts are rebuilt, flows
        already open get their zones again from the new policy, conditions are reported afresh."""
        self.policy = policy
        self.zones = ZoneMap(policy)
        self.verdicts = Verdicts(policy, self._cache_max)
        self._flows.clear()
        self._links.clear()
        self._reported.clear()
        self._ua.clear()
        self._overflow_at.clear()
        self._fan_in = self._fan_in_windows(policy)

    @staticmethod
    def _fan_in_windows(policy: Policy) -> dict:
        """rule -> (sources threshold, Distinct window) for the rules that fold many sources."""
        out = {}
        for rule in (C.FLOW_DENIED, C.OPERATION_DENIED):
            th = dict(FAN_IN)
            setting = policy.detection(rule)
            if setting is not None:
                th.update({k: v for k, v in setting.thresholds.items() if k in th})
            out[rule] = (th["sources"], Distinct(th["window"]))
        return out

    def _fold(self, rule: str, scope: tuple, client: str, ts: float) -> int:
        """Distinct denied clients of *scope* within the window, when past the threshold; else 0."""
        limit, window = self._fan_in[rule]
        n = window.add(scope, client, ts)
        return n if n > limit else 0

    def stats(self) -> dict:
        d = {f"{r}.findings": n for r, n in self.counts.items()}
        d.update(self.verdicts.stats())
        return d

    # -- zones ------------------------------------------------------------------------
    def zone_of(self, ip: str, mac: str = "", vlan: int = 0, asset: str = "") -> str | None:
        """The zone this checker puts an endpoint in (None when unzoned), from the policy it judges by
        now (``replace_policy`` included): the hook ``analyze`` and the sensor give the inventory
        (``Inventory.zone_of``), so its zone column and ``modbus.cross_zone`` see the same zones."""
        return self.zones.zone_of(ip, mac, vlan, asset)

    def _zone(self, ip: str, mac: str = "", vlan: int = 0) -> str:
        asset = self.asset_of(ip, mac, vlan) if self.asset_of is not None else ""
        return self.zones.zone(ip, mac, vlan, asset or "")

    def _pair(self, flow_id: int, link_id: int, client: str, server: str) -> tuple[str, str]:
        p = self._flows.get(flow_id) or self._links.get(link_id)
        if p is None:
            p = (self._zone(client), self._zone(server))
        return p

    @staticmethod
    def _remember(d: dict, k, v) -> None:
        if len(d) >= STATE_MAX:
            d.clear()
        d[k] = v

    # -- flows ------------------------------------------------------------------------
    def _flow_start(self, f: O.FlowStart) -> None:
        sz = self._zone(f.client, f.client_mac, f.vlan)
        if self.zones.group_destination(f.server):
            dz = sz
        else:
            dz = self._zone(f.server, f.server_mac, f.vlan)
        self._remember(self._flows, f.flow_id, (sz, dz))
        if f.link_id:
            self._remember(self._links, f.link_id, (sz, dz))
        v = self.verdicts.flow(sz, dz, f.transport, f.server_port)
        if v.allowed:
            return
        ot = f.protocol in OT_PROTOCOLS
        label = f.protocol if ot else f.transport
        where = f.transport if f.transport.startswith("ip/") else f"{f.transport}/{f.server_port}"
        n = self._fold(C.FLOW_DENIED, (sz, dz, f.server, f.server_port), f.client, f.ts)
        who = f"{n} sources in zone {sz} (e.g. {f.client})" if n else f"{f.client} (zone {sz})"
        self._raise(C.FLOW_DENIED, (sz, dz, "*" if n else f.client, f.server, label),
                    C.OT_FLOW_SEVERITY if ot else C.OTHER_FLOW_SEVERITY,
                    f"{who} → {f.server} (zone {dz}) {where}"
                    f"{' ' + f.protocol if ot else ''}: {v.reason}",
                    Evidence(self.source, f.frame, f.ts, f.flow_id), f.client, f.server, sz, dz,
                    label, f.server_port, C.flow_technique(ot, f.transport),
                    {"transport": f.transport, "port": f.server_port, "vlan": f.vlan, "rule": v.rule,
                     "code": v.code, "reason": v.reason})

    def _scan_summary(self, o: O.ScanSummary) -> None:
        """Flows held back by the engine's scan budget have no FlowStart: judge the endpoints the
        summary lists (one verdict each, cached), with the summary's first frame as evidence; flows
        it could not list (``held_back_unlisted``) cannot be judged one by one, and are reported as
        such unless the client's zone may open any flow to any zone."""
        ev = Evidence(self.source, o.first_frame, o.first_ts, 0)
        for client, server, transport, port in o.held_back:
            sz = self._zone(client)
            dz = sz if self.zones.group_destination(server) else self._zone(server)
            v = self.verdicts.flow(sz, dz, transport, port)
            if v.allowed:
                continue
            where = transport if transport.startswith("ip/") else f"{transport}/{port}"
            n = self._fold(C.FLOW_DENIED, (sz, dz, server, port), client, o.first_ts)
            who = f"{n} sources in zone {sz} (e.g. {client})" if n else f"{client} (zone {sz})"
            self._raise(C.FLOW_DENIED, (sz, dz, "*" if n else client, server, transport),
                        C.OTHER_FLOW_SEVERITY if transport not in ("tcp",) or port not in OT_PORTS
                        else C.OT_FLOW_SEVERITY,
                        f"{who} → {server} (zone {dz}) {where}: {v.reason} "
                        f"(one of {o.flows_unreported} flows summarised in a scan)",
                        ev, client, server, sz, dz, transport, port, C.flow_technique(False, transport),
                        {"rule": v.rule, "code": v.code, "reason": v.reason, "summary": True})
        if o.held_back_unlisted and o.source:
            sz = self._zone(o.source)
            if not self.verdicts.unrestricted(sz):
                self._raise(C.FLOW_DENIED, (sz, "*", o.source, "", "unjudged"), C.OTHER_FLOW_SEVERITY,
                            f"{o.source} (zone {sz}): {o.held_back_unlisted} flows past the scan budget to "
                            f"endpoints not listed in its summary could not be judged one by one",
                            ev, o.source, "", sz, "", "", 0, "T0886",
                            {"code": "not_distinguished", "count": o.held_back_unlisted, "summary": True,
                             "reason": "flows not distinguished past the scan budget"})

    def _flow_end(self, f: O.FlowEnd) -> None:
        self._flows.pop(f.flow_id, None)
        self._ua.pop(f.flow_id, None)

    # -- operations -------------------------------------------------------------------
    def _message(self, m: O.Message) -> None:
        if m.direction != "request":
            return
        sz, dz = self._pair(m.flow_id, m.link_id, m.client, m.server)
        if m.link_id and m.link_id not in self._links:
            self._remember(self._links, m.link_id, (sz, dz))
        opk = op_key(m.protocol, m.kind, m.op, m.key, m.event)
        if opk is None:
            return
        if m.protocol == "opcua":
            self._opcua_mode(m, sz, dz, opk)
        if _framing(opk):
            return
        v = self.verdicts.operation(sz, dz, m.protocol, m.server_port, opk)
        if v.allowed:
            return
        if len(self._reported) >= STATE_MAX:
            self._reported.clear()
        self._reported.add((m.link_id, m.key))
        self._denied(m, sz, dz, opk, v, Evidence(self.source, m.frame, m.ts, m.flow_id))

    def _anomaly(self, a: O.Anomaly) -> None:
        if a.id.endswith(KEY_OVERFLOW_SUFFIX) and a.link_id not in self._overflow_at:
            self._remember(self._overflow_at, a.link_id, Evidence(self.source, a.frame, a.ts, a.flow_id))

    def _aggregate(self, a: O.Aggregate) -> None:
        if a.direction != "request" or (a.link_id, a.key) in self._reported:
            return
        sz, dz = self._pair(0, a.link_id, a.client, a.server)
        opk = op_key(a.protocol, a.kind, a.op, a.key)
        if opk is None or _framing(opk):
            return
        v = self.verdicts.operation(sz, dz, a.protocol, a.server_port, opk)
        if v.allowed:
            return
        if len(self._reported) >= STATE_MAX:
            self._reported.clear()
        self._reported.add((a.link_id, a.key))
        ev = self._overflow_at.get(a.link_id) if opk[0] == OVERFLOW else None
        self._denied(a, sz, dz, opk, v, ev or Evidence(self.source, a.last_frame, a.last_ts, 0))

    def _denied(self, m, sz: str, dz: str, opk: tuple, v: Verdict, ev: Evidence) -> None:
        op = m.op
        details = {"kind": m.kind, "op": op, "target": m.target, "rule": v.rule, "code": v.code,
                   "reason": v.reason}
        if opk[0] == "modbus":
            details.update(unit=opk[2], function_code=opk[3])
        elif opk[0] == COVERED:
            details.update(unit=opk[3], function_code=opk[4], count=getattr(m, "count", 1))
        elif opk[0] == "publish":
            details["topic"] = opk[1]
        elif opk[0] == "subscribe":
            details["filters"] = list(opk[1])
        elif opk[0] == "service":
            details["service"] = opk[1]
        severity, technique = C.OP_SEVERITY.get(op, C.OP_SEVERITY_DEFAULT), C.OP_TECHNIQUE.get(op, "")
        if opk[0] == OVERFLOW:
            details.update(overflow=opk[2], count=getattr(m, "count", 1))
            severity, technique = C.OVERFLOW_SEVERITY, C.OVERFLOW_TECHNIQUE
        n = self._fold(C.OPERATION_DENIED, (sz, dz, m.server, m.protocol, op, v.code), m.client, ev.ts)
        who = f"{n} sources in zone {sz} (e.g. {m.client})" if n else f"{m.client} (zone {sz})"
        self._raise(C.OPERATION_DENIED, (sz, dz, "*" if n else m.client, m.server, m.protocol, op, v.code),
                    severity, f"{who} → {m.server} (zone {dz}): {describe(opk)}: {v.reason}",
                    ev, m.client, m.server, sz, dz, m.protocol, m.server_port, technique, details)

    # -- OPC UA security mode ---------------------------------------------------------------
    def _opcua_mode(self, m: O.Message, sz: str, dz: str, opk: tuple) -> None:
        """Track each channel's security mode; judge it when the channel carries more than discovery.

        Clients discover endpoints over SecurityPolicy None even where the server
        demands security (Part 4 §5.4: GetEndpoints and FindServers need no
        security), so a channel is judged at its first other service request
        (CreateSession, ActivateSession, Read ...), which is the evidence.
        """
        fid = m.flow_id
        if m.kind == OPN:
            ev = m.event
            mode = getattr(ev, "security_mode", None)
            if not mode:
                mode = 1 if getattr(ev, "security_policy", "") == "None" else MODE_UNKNOWN_SIGNED
            self._remember(self._ua, fid, mode)
            return
        mode = self._ua.get(fid)
        if mode is None or mode == MODE_JUDGED:
            return
        if opk[0] == "encrypted":
            self._ua[fid] = MODE_JUDGED      # SignAndEncrypt: the strongest mode, nothing to judge
            return
        if opk[0] != "service" or opk[1] in DISCOVERY_SERVICES:
            return
        self._ua[fid] = MODE_JUDGED
        # a readable request on a channel whose policy is not None: signed, not encrypted
        self._check_mode(m, sz, dz, 2 if mode == MODE_UNKNOWN_SIGNED else mode)

    def _check_mode(self, m: O.Message, sz: str, dz: str, mode: int) -> None:
        minimum, conduit = self.verdicts.min_security_mode(sz, dz, m.server_port)
        if mode >= minimum:
            return
        have, need = SECURITY_MODE_NAMES.get(mode, str(mode)), SECURITY_MODE_NAMES[minimum]
        policy_uri = getattr(m.event, "security_policy_uri", None) or ""
        self._raise(C.SECURITY_MODE, (sz, dz, m.client, m.server, m.server_port, have),
                    C.RULES[C.SECURITY_MODE].severity,
                    f"{m.client} (zone {sz}) → {m.server} (zone {dz}): OPC UA secure channel with security mode "
                    f"{have}, below the minimum {need} of conduit {conduit}",
                    Evidence(self.source, m.frame, m.ts, m.flow_id), m.client, m.server, sz, dz, "opcua",
                    m.server_port, "", {"mode": have, "minimum": need, "rule": conduit,
                                        "security_policy_uri": policy_uri})

    # -- output ---------------------------------------------------------------------------------
    def _raise(self, rule: str, key: tuple, severity: str, message: str, ev: Evidence, src: str, dst: str,
               sz: str, dz: str, protocol: str, port: int, technique: str, details: dict) -> None:
        setting = self.policy.detection(rule)
        if setting is not None:
            if setting.enabled is False or setting.allows(src, sz) or setting.allows(dst, dz):
                return
            severity = setting.severity or severity
        self.counts[rule] += 1
        self.sink.raise_finding(Finding(rule, key, severity, "policy", message, ev, src, dst, "", "", sz, dz,
                                        protocol, port, technique, details))


__all__ = ["PolicyChecker", "STATE_MAX"]
