"""Draft a policy from what was seen: deterministic, commented YAML that ``rules check`` accepts.

    text = suggest_policy(pairs)            # pairs: SeenPair or dicts (observed.py)
    text = suggest_policy(pairs, zones="host")
    text = suggest_policy(pairs, zones={"cell-1": ["10.1.0.0/24"], "scada": ["10.2.0.5"]})

Zones:

* ``None`` (default): one zone per role, decided per host in this order —
  ``controllers`` (Modbus servers, Purdue 1), ``servers`` (OPC UA servers, MQTT
  brokers, 3), ``supervisory`` (Modbus and OPC UA clients, 2),
  ``field-devices`` (MQTT clients only, 1), ``hosts`` (everything else);
  members are listed as /32 (/128) addresses.
* ``"host"``: one zone per host (the tightest draft).
* a mapping ``name -> [address or network, ...]``: your zones; hosts they do
  not cover are placed by role as above.

Every generated zone has ``intra_zone: deny`` and every zone pair that talked
gets a conduit whose rules allow exactly the union of what its pairs did
(ports, Modbus operations/function codes/units/register spans, MQTT topics and
filters, OPC UA services and the weakest security mode seen).  So the draft
raises no violation on the traffic it came from (tested) and flags anything
new.  Where a field could not be bounded (too many values, a Modbus address
that could not be read, a topic name that is not a valid filter) that
constraint is left out and a comment says why.  Comments carry counts and
first-seen times; wire strings (topics) appear only as quoted YAML values,
never in comments.  Same input, same text.
"""
from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from datetime import datetime, timezone

from . import topics as T
from .loader import parse_policy
from .model import MODBUS_OPERATIONS, MODBUS_TABLES, OPCUA_SESSION_SERVICES, SECURITY_MODES
from .observed import SeenPair, from_baseline
from .ranges import RangeSet
from .zones import ZoneMap

_KNOWN = ("modbus", "mqtt", "opcua", "tcp", "udp", "icmp")

MAX_LISTED_TOPICS = 64
"""Topics listed per rule before they are folded into prefix filters (``a/b/#``)."""

ROLE_ZONES = (
    # name, Purdue level, description
    ("controllers", 1, "Modbus/TCP servers (PLCs, RTUs, gateways)"),
    ("servers", 3, "OPC UA servers and MQTT brokers"),
    ("supervisory", 2, "Modbus/TCP and OPC UA clients (HMI, SCADA, engineering)"),
    ("field-devices", 1, "MQTT clients"),
    ("hosts", None, "hosts with no OT role seen"),
)


def _q(s: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is valid YAML; ASCII only, so no line separators)."""
    return json.dumps(s, ensure_ascii=True)


def _when(ts: float) -> str:
    if not ts:
        return "unknown"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _n(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _ip_sort(ip: str):
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a))
    except ValueError:
        return (9, ip)


def _host_net(ip: str) -> str:
    a = ipaddress.ip_address(ip)
    return f"{a}/{a.max_prefixlen}"


def _ranges(values) -> str:
    return "[" + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in RangeSet.of((v, v) for v in values).spans) + "]"


def _spans(spans) -> str:
    return "[" + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in RangeSet.of(spans).spans) + "]"


def _roles(pairs: list[SeenPair]) -> dict[str, str]:
    """ip -> role zone name."""
    roles: dict[str, set] = defaultdict(set)
    for p in pairs:
        roles[p.client]
        roles[p.server]
        if p.protocol == "modbus":
            roles[p.server].add("controllers")
            roles[p.client].add("supervisory")
        elif p.protocol == "opcua":
            roles[p.server].add("servers")
            roles[p.client].add("supervisory")
        elif p.protocol == "mqtt":
            roles[p.server].add("servers")
            roles[p.client].add("field-devices")
    order = [z for z, _, _ in ROLE_ZONES]
    return {ip: next((z for z in order if z in r), "hosts") for ip, r in roles.items()}


def _fold_topics(names: list[str]) -> list[str] | None:
    """Topic names (or filters) as at most MAX_LISTED_TOPICS filters that match them all; None if impossible."""
    if len(names) <= MAX_LISTED_TOPICS:
        return names
    depth = max(len(n.split("/")) for n in names)
    while depth > 0:
        depth -= 1
        folded = sorted({"/".join(n.split("/")[:depth]) + "/#" if len(n.split("/")) > depth else n for n in names})
        if depth and len(folded) <= MAX_LISTED_TOPICS:
            return folded
    return None


def _flow_is_group(ip: str) -> bool:
    return ZoneMap.is_group(ip)


def suggest_policy(pairs, zones=None, name: str = "suggested policy") -> str:
    """A draft policy (YAML text) that allows exactly what ``pairs`` did; see the module doc.

    ``pairs``: SeenPair objects, dicts with the same keys, or a learned baseline
    (an object whose ``pairs`` maps pair keys to profiles: ``observed.from_baseline``).
    """
    if isinstance(getattr(pairs, "pairs", None), dict):
        pairs = from_baseline(pairs)
    pairs = [p if isinstance(p, SeenPair) else SeenPair.from_mapping(p) for p in pairs]
    if not pairs:
        raise ValueError("no traffic between hosts was seen: nothing to draft a policy from")
    pairs.sort(key=lambda p: (_ip_sort(p.client), _ip_sort(p.server), p.protocol, p.port))
    hosts = sorted({p.client for p in pairs} | {p.server for p in pairs if not _flow_is_group(p.server)},
                   key=_ip_sort)
    first: dict[str, float] = {}
    for p in pairs:
        for ip in (p.client, p.server):
            if p.first_seen and (ip not in first or p.first_seen < first[ip]):
                first[ip] = p.first_seen
    role = _roles(pairs)

    # -- zones --------------------------------------------------------------------------------
    zone_specs: list[tuple[str, object, str, list[tuple[str, str]]]] = []   # name, level, description, [(net, comment)]
    given: dict = {}
    if isinstance(zones, dict):
        for zname in sorted(zones):
            nets = [str(ipaddress.ip_network(n, strict=False)) for n in zones[zname]]
            given[zname] = nets
            zone_specs.append((zname, None, "given", [(n, "") for n in sorted(nets, key=lambda n: _ip_sort(n.split("/")[0]))]))
    covered = ZoneMap(parse_policy(_zones_yaml(zone_specs))) if zone_specs else None
    if zones == "host":
        for ip in hosts:
            zone_specs.append(("h" + ip.replace(".", "-").replace(":", "-"), None, f"{ip} ({role.get(ip, 'hosts')})",
                               [(_host_net(ip), f"first seen {_when(first.get(ip, 0))}")]))
    else:
        by_role: dict[str, list] = defaultdict(list)
        for ip in hosts:
            if covered is not None and covered.ip_zone(ip) is not None:
                continue
            by_role[role.get(ip, "hosts")].append(ip)
        taken = {z[0] for z in zone_specs}
        for zname, level, desc in ROLE_ZONES:
            if by_role.get(zname):
                n = zname if zname not in taken else zname + "-seen"
                zone_specs.append((n, level, desc, [(_host_net(ip), f"first seen {_when(first.get(ip, 0))}")
                                                    for ip in by_role[zname]]))
    zmap = ZoneMap(parse_policy(_zones_yaml(zone_specs)))

    # -- conduits ---------------------------------------------------------------------------------
    by_zone: dict[tuple[str, str], list[SeenPair]] = defaultdict(list)
    for p in pairs:
        sz = zmap.zone(p.client)
        dz = sz if _flow_is_group(p.server) else zmap.zone(p.server)
        by_zone[(sz, dz)].append(p)
    lines = [
        "# Draft segmentation policy suggested by otwatch from observed traffic.",
        "# It allows exactly what was seen (nothing is judged good or bad): review every zone and",
        "# conduit, remove what should not happen, then check it with `otwatch rules check`.",
        f"# {len(pairs)} pairs, {len(hosts)} hosts"
        + (f", first seen {_when(min(first.values()))}" if first else "") + ".",
        "version: 1",
        f"name: {_q(name)}",
        "",
        _zones_yaml(zone_specs, comments=True).split("\n", 1)[1].rstrip("\n"),   # without its version line
        "",
        "conduits:" if by_zone else "conduits: {}",
    ]
    for (sz, dz) in sorted(by_zone):
        group = by_zone[(sz, dz)]
        cname = f"{sz}-to-{dz}" if sz != dz else f"within-{sz}"
        total = sum(p.count for p in group)
        lines.append(f"  {cname}:")
        lines.append(f"    # {_n(len(group), 'pair')}, {_n(total, 'flow or request', 'flows and requests')}, "
                     f"first seen {_when(min((p.first_seen for p in group if p.first_seen), default=0))}")
        lines.append(f"    from: {sz}")
        lines.append(f"    to: {dz}")
        lines.append("    allow:")
        lines.extend(_rules(group))
    text = "\n".join(lines) + "\n"
    parse_policy(text, "<suggested>")          # a draft that does not load is a bug here, not the user's
    return text


def _zones_yaml(specs, comments: bool = False) -> str:
    out = ["version: 1", "zones:"]
    for zname, level, desc, members in specs:
        out.append(f"  {zname}:")
        if desc:
            out.append(f"    description: {_q(desc)}")
        if level is not None:
            out.append(f"    level: {level}")
        out.append("    intra_zone: deny")
        out.append("    networks:")
        for net, note in members:
            out.append(f"      - {net}" + (f"    # {note}" if comments and note else ""))
    return "\n".join(out) + "\n"


def _rules(group: list[SeenPair]) -> list[str]:
    by_rule: dict[tuple[str, int], list[SeenPair]] = defaultdict(list)
    for p in group:
        proto = p.protocol
        if proto not in _KNOWN and not proto.startswith("ip/"):
            proto = "tcp"                           # e.g. "tls": a flow's label, carried over TCP
        if proto in ("tcp", "udp"):
            by_rule[(proto, -1)].append(p)          # one rule per transport, all ports
        elif proto in ("icmp", "ip/1", "ip/58") or proto.startswith("ip/"):
            by_rule[("icmp" if proto in ("icmp", "ip/1", "ip/58") else "any", 0)].append(p)
        else:
            by_rule[(proto, p.port)].append(p)
    out: list[str] = []
    for (proto, port) in sorted(by_rule):
        ps = by_rule[(proto, port)]
        who = ", ".join(sorted({f"{p.client} → {p.server}" for p in ps}, key=str)[:8])
        more = len({(p.client, p.server) for p in ps}) - 8
        out.append(f"      # {_n(sum(p.count for p in ps), 'flow or request', 'flows and requests')}, first seen "
                   f"{_when(min((p.first_seen for p in ps if p.first_seen), default=0))}: {who}"
                   + (f" and {more} more" if more > 0 else ""))
        out.append(f"      - protocol: {proto}")
        if proto in ("tcp", "udp"):
            out.append(f"        ports: {_ranges(p.port for p in ps)}")
        elif proto in ("modbus", "mqtt", "opcua"):
            out.append(f"        ports: [{port}]")
        if proto == "any":
            out[-2] += f" (IP protocols {', '.join(sorted({p.protocol for p in ps}))}: the language names only tcp/udp/icmp)"
        out.extend(getattr(_Section, proto, lambda ps: [])(ps))
    return out


class _Section:
    """The protocol sections of a rule, from the union of its pairs."""

    @staticmethod
    def modbus(ps: list[SeenPair]) -> list[str]:
        ops = set().union(*(p.operations for p in ps))
        fcs = set().union(*(p.function_codes for p in ps))
        units = {u for p in ps for u in p.units if u >= 0}
        if not (ops or fcs):
            return ["        modbus:", "          operations: []      # no request was seen: none allowed"]
        out = ["        modbus:"]
        trunc = set().union(*(p.truncated for p in ps))
        if "operations" not in trunc:
            out.append(f"          operations: [{', '.join(o for o in MODBUS_OPERATIONS if o in ops)}]")
        if "function_codes" not in trunc:
            out.append(f"          function_codes: {_ranges(f for f in fcs if 0 <= f <= 127)}")
        if "units" not in trunc and units and not any(u < 0 for p in ps for u in p.units):
            out.append(f"          units: {_ranges(units)}")
        if any(p.unknown_addresses for p in ps) or "registers" in trunc:
            out.append("          # registers not restricted: a request's address could not be read, or too many spans")
        else:
            tables = defaultdict(set)
            for p in ps:
                for t, spans in p.registers.items():
                    tables[t] |= set(spans)
            if tables:
                out.append("          registers:")
                for t in MODBUS_TABLES:
                    if tables.get(t):
                        out.append(f"            {t}: {_spans(tables[t])}")
            elif ops & {"read", "write"}:
                out.append("          registers: {}")
        return out

    @staticmethod
    def mqtt(ps: list[SeenPair]) -> list[str]:
        out = ["        mqtt:"]
        for key in ("publish", "subscribe"):
            items = sorted(set().union(*(getattr(p, key) for p in ps)))
            if key in set().union(*(p.truncated for p in ps)):
                out.append(f"          # {key} not restricted: more distinct topics than were kept")
                continue
            if any(T.filter_problem(x) for x in items):
                out.append(f"          # {key} not restricted: a topic seen cannot be written as a filter")
                continue
            folded = _fold_topics(items) if key == "publish" else (items if len(items) <= MAX_LISTED_TOPICS * 4 else None)
            if folded is None:
                out.append(f"          # {key} not restricted: too many topics to list")
                continue
            if folded is not items and len(folded) != len(items):
                out.append(f"          # {len(items)} topics folded into {len(folded)} filters")
            out.append(f"          {key}: [{', '.join(_q(x) for x in folded)}]")
        return out

    @staticmethod
    def opcua(ps: list[SeenPair]) -> list[str]:
        out = ["        opcua:"]
        if "services" in set().union(*(p.truncated for p in ps)):
            out.append("          # services not restricted: more distinct services than were kept")
        else:
            services = sorted(set().union(*(p.services for p in ps)) - OPCUA_SESSION_SERVICES)
            from .loader import _opcua_services

            known = set(_opcua_services())
            if any(s not in known for s in services):
                out.append("          # services not restricted: a service without a Part 4 name was seen")
            else:
                out.append(f"          services: [{', '.join(services)}]")
        modes = set().union(*(p.security_modes for p in ps)) & set(SECURITY_MODES)
        if modes:
            weakest = min(modes, key=SECURITY_MODES.get)
            out.append(f"          min_security_mode: {weakest}     # the weakest seen")
        if len(out) == 1:
            return []
        return out


__all__ = ["suggest_policy", "MAX_LISTED_TOPICS", "ROLE_ZONES"]
