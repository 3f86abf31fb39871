"""Load and validate a policy file: strict about what is wrong, kind in how it says so.

``load_policy(path)`` / ``parse_policy(text, path)`` return a ``model.Policy`` or
raise ``errors.PolicyError`` listing **every** problem as
``file:line:column: what is wrong``: YAML syntax, duplicate keys, unknown keys
(with the closest known one), wrong types, bad CIDRs / MACs / VLANs / ports /
ranges / topic filters / service names, unknown zone references, zones that
claim the same network, MAC, VLAN or asset, and detection settings for rule ids
that do not exist.  The language is documented in docs/rules.md (a test checks
that every key and every message below appears there).

Kindness: a single value is accepted where a list is expected (``to: control``),
a quoted number where an integer is (``"502"``), and text is taken as written
(so a MAC such as ``10:10:10:10:10:10`` is not read as a YAML 1.1 base-60 number).
Anchors and aliases work; merge keys (``<<``) do not.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from pathlib import Path

import yaml

from . import topics
from .errors import PolicyError, Problem
from .model import (DEFAULT_PORTS, MODBUS_OPERATIONS, MODBUS_TABLES, OPCUA_SESSION_SERVICES, PROTOCOLS,
                    PURDUE_LEVELS, SECURITY_LEVELS, SECURITY_MODES, UNZONED, Conduit, RuleSetting,
                    ModbusAllow, MQTTAllow, OPCUAAllow, Policy, Rule, Zone)
from .ranges import RangeSet
from .yamlsrc import MAX_NODES, compose, position

VERSION = 1
"""The only policy language version so far; a file says which one it is written in."""

TOP_KEYS = ("version", "name", "description", "zones", "conduits", "detections")
ZONE_KEYS = ("description", "level", "security_level", "networks", "vlans", "macs", "assets", "intra_zone")
CONDUIT_KEYS = ("description", "from", "to", "security_level", "allow")
RULE_KEYS = ("protocol", "ports", "modbus", "mqtt", "opcua")
MODBUS_KEYS = ("operations", "function_codes", "units", "registers")
MQTT_KEYS = ("publish", "subscribe")
OPCUA_KEYS = ("services", "min_security_mode")
DETECTION_KEYS = ("enabled", "severity", "thresholds", "allow")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
"""Zone and conduit names: they appear in alerts, syslog and file names, so no spaces or quotes."""
RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
"""Alert rule ids are stable dotted names (``policy.flow_denied``)."""
RULE_PATTERN_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.\*$")
"""``<prefix>.*`` in ``detections``: every rule under the prefix (``posture.*``, ``posture.opcua.*``)."""
MAC_RE = re.compile(r"^([0-9a-fA-F]{2}([:\-]?)[0-9a-fA-F]{2}(\2[0-9a-fA-F]{2}){4}"
                    r"|[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4})$")
"""aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabbccddeeff, or Cisco's aabb.ccdd.eeff."""

MAX_PORT = 65535
MAX_VLAN = 4094          # 802.1Q: 0 means "no VLAN" (priority tag) and 4095 is reserved
MAX_UNIT = 255           # Modbus unit identifier is one byte [MB-TCP §3.1.3]
MAX_FUNCTION_CODE = 127  # codes 128-255 are exception responses [APP §4.1]; 0 is invalid but seen in sweeps
MAX_ADDRESS = 65535      # Modbus data addresses are 16-bit [APP §4.3]

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_C = yaml.constructor.SafeConstructor()


def _opcua_services() -> tuple[str, ...]:
    from otwatch.parsers.opcua import spec

    return tuple(name for name, *_ in spec.SERVICE_TABLE)


RULE_SOURCES = (("baseline.", "otwatch.sensor.baseline.rules"), ("", "otwatch.sensor.alerts.catalogue"))
"""Where other producers publish their rule tables (a ``RULES`` mapping id -> info; an info's
``thresholds``, when present, names the thresholds a policy may set).  ``""``: every id."""


def _rule_tables() -> list[tuple[str, dict]]:
    import importlib

    from .catalogue import RULES

    tables = [("policy.", {r: tuple(i.thresholds) for r, i in RULES.items()})]
    for prefix, module in RULE_SOURCES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        rules = getattr(mod, "RULES", None) or getattr(mod, "CATALOGUE", None) or {}
        if not isinstance(rules, dict):
            rules = {getattr(r, "id", None): r for r in rules}
        table = {}
        for rid, info in rules.items():
            if isinstance(rid, str):
                th = info.get("thresholds") if isinstance(info, dict) else getattr(info, "thresholds", None)
                table[rid] = tuple(th) if th is not None else None
        tables.append((prefix, table))
    return tables


def known_rules() -> "RuleTables":
    """The rule ids a ``detections`` section may configure (policy, baseline, alerts catalogue)."""
    return RuleTables(_rule_tables())


class RuleTables(dict):
    """rule id -> threshold names (None: not checked), plus which id prefixes are fully known.

    An id is unknown when a table owning its prefix is installed and does not
    list it (``policy.*`` always; ``baseline.*`` once the baseline is installed;
    every id once the alerts catalogue is); other well-formed ids are accepted.
    """

    def __init__(self, tables):
        super().__init__()
        self.prefixes = []
        for prefix, table in tables:
            self.prefixes.append(prefix)
            for rid, th in table.items():
                self.setdefault(rid, th)

    def is_unknown(self, rid: str) -> bool:
        return rid not in self and any(rid.startswith(p) for p in self.prefixes)


class _TooManyNodes(Exception):
    pass


class _Reader:
    """Walks the YAML nodes, collecting problems; each method returns a value or None.

    Aliases let a short file name the same big list many times; every list and
    mapping entry visited is counted and the walk stops at ``MAX_NODES``.
    """

    def __init__(self, path: str):
        self.path = path
        self.problems: list[Problem] = []
        self.visited = 0

    def _visit(self, n: int) -> None:
        self.visited += n
        if self.visited > MAX_NODES:
            raise _TooManyNodes

    # -- reporting ----------------------------------------------------------
    def err(self, node, code: str, msg: str) -> None:
        line, col = position(node)
        self.problems.append(Problem(line, col, msg, self.path, code))

    @staticmethod
    def _hint(word: str, choices) -> str:
        close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
        if not close:
            close = [c for c in choices if c.lower() == word.lower()]
        return f" (did you mean {close[0]!r}?)" if close else ""

    # -- structure ----------------------------------------------------------
    def mapping(self, node, what: str, keys: tuple | None) -> list:
        """[(key text, key node, value node)] of a mapping; unknown keys reported."""
        if not isinstance(node, yaml.MappingNode):
            self.err(node, "not-mapping", f"{what} must be a mapping (key: value lines), not {self._kind(node)}")
            return []
        self._visit(len(node.value))
        out = []
        for k, v in node.value:
            if k.tag == "tag:yaml.org,2002:merge":
                self.err(k, "merge-key", "merge keys (<<) are not supported; repeat the keys or use an alias for a whole value")
                continue
            if not isinstance(k, yaml.ScalarNode) or k.tag == _NULL:
                self.err(k, "bad-key", f"{what}: keys must be plain names")
                continue
            if keys is not None and k.value not in keys:
                if keys:
                    self.err(k, "unknown-key", f"unknown key {k.value!r} in {what}{self._hint(k.value, keys)}; "
                                f"allowed: {', '.join(keys)}")
                else:
                    self.err(k, "unknown-key", f"unknown key {k.value!r}: {what} takes none")
                continue
            out.append((k.value, k, v))
        return out

    def items(self, node, what: str) -> list:
        """The nodes of a list; a single scalar counts as a list of one."""
        if isinstance(node, yaml.SequenceNode):
            self._visit(len(node.value))
            return list(node.value)
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL:
            return [node]
        self.err(node, "not-list", f"{what} must be a list, not {self._kind(node)}")
        return []

    @staticmethod
    def _kind(node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        if node.tag == _NULL:
            return "empty"
        return {_INT: "a number", _FLOAT: "a number", _BOOL: "true/false"}.get(node.tag, "text") + \
            (f" ({node.value!r})" if node.value else "")

    # -- scalars ------------------------------------------------------------
    def text(self, node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            self.err(node, "not-text", f"{what} must be text, not {self._kind(node)}")
            return None
        return node.value

    def integer(self, node, what: str, lo: int, hi: int) -> int | None:
        v = None
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT:
                v = _C.construct_object(node)
            elif node.tag == _STR and re.fullmatch(r"\s*\d+\s*", node.value):
                v = int(node.value)
        if v is None:
            self.err(node, "not-integer", f"{what} must be a whole number, not {self._kind(node)}")
            return None
        if not lo <= v <= hi:
            self.err(node, "out-of-range", f"{what} {v} is out of range {lo}..{hi}")
            return None
        return v

    def boolean(self, node, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
            return _C.construct_object(node)
        self.err(node, "not-boolean", f"{what} must be true or false, not {self._kind(node)}")
        return None

    def choice(self, node, what: str, choices) -> str | None:
        t = self.text(node, what)
        if t is None:
            return None
        if t not in choices:
            self.err(node, "bad-choice", f"{what} {t!r} is not one of {', '.join(map(str, choices))}{self._hint(t, choices)}")
            return None
        return t

    def rangeset(self, node, what: str, lo: int, hi: int) -> RangeSet | None:
        """A list of integers and "a-b" ranges within lo..hi."""
        spans = []
        ok = True
        for item in self.items(node, what):
            span = self._span(item, what, lo, hi)
            if span is None:
                ok = False
            else:
                spans.append(span)
        return RangeSet.of(spans) if ok else None

    def _span(self, node, what: str, lo: int, hi: int):
        if isinstance(node, yaml.ScalarNode) and node.tag in (_STR, _INT) and "-" in node.value:
            m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", node.value)
            if not m:
                self.err(node, "bad-range", f"{what}: {node.value!r} is not a number or a range like 100-199")
                return None
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                self.err(node, "backwards-range", f"{what}: range {node.value!r} runs backwards (write {b}-{a})")
                return None
            if a < lo or b > hi:
                self.err(node, "out-of-range", f"{what}: range {node.value!r} is out of range {lo}..{hi}")
                return None
            return (a, b)
        v = self.integer(node, what, lo, hi)
        return None if v is None else (v, v)


class _Builder(_Reader):
    """From nodes to the model, cross-checking zones and references."""

    def __init__(self, path: str, rules: dict | None):
        super().__init__(path)
        self.rules = rules
        self.claims: dict = {}      # ("net"|"mac"|"vlan"|"asset", value) -> (zone, line)
        self.declared: set = set()  # zone names written (also those with errors: no cascade of "unknown zone")

    def policy(self, root) -> Policy | None:
        top = {k: (kn, v) for k, kn, v in self.mapping(root, "the policy file", TOP_KEYS)}
        version = None
        if "version" not in top:
            self.err(root, "missing-version", f"missing `version: {VERSION}` at the top of the policy")
        else:
            version = self.integer(top["version"][1], "version", 1, 10**6)
            if version is not None and version != VERSION:
                self.err(top["version"][1], "bad-version", f"version {version} is not supported (this otwatch reads version {VERSION})")
        name = self.text(top["name"][1], "name") if "name" in top else ""
        desc = self.text(top["description"][1], "description") if "description" in top else ""
        zones: dict[str, Zone] = {}
        if "zones" not in top:
            self.err(root, "missing-zones", "missing `zones:`: a policy defines at least one zone")
        else:
            zone_nodes = self.mapping(top["zones"][1], "zones", None)
            self.declared = {zname for zname, _, _ in zone_nodes}
            for zname, kn, v in zone_nodes:
                z = self.zone(zname, kn, v)
                if z is not None:
                    zones[zname] = z
        conduits = []
        if "conduits" in top and top["conduits"][1].tag != _NULL:
            for cname, kn, v in self.mapping(top["conduits"][1], "conduits", None):
                c = self.conduit(cname, kn, v, zones)
                if c is not None:
                    conduits.append(c)
        detections = {}
        if "detections" in top and top["detections"][1].tag != _NULL:
            for rid, kn, v in self.mapping(top["detections"][1], "detections", None):
                d = self.detection(rid, kn, v, zones)
                if d is not None:
                    detections[rid] = d
        if self.problems:
            return None
        return Policy(version or VERSION, zones, tuple(conduits), detections, name or "", desc or "", self.path)

    # -- zones ----------------------------------------------------------------
    def _name(self, node, name: str, what: str) -> bool:
        if not NAME_RE.match(name):
            self.err(node, "bad-name", f"{what} name {name!r}: use letters, digits, '_', '.', '-' (at most 64, no spaces)")
            return False
        return True

    def _claim(self, node, kind: str, value, shown: str, zone: str) -> None:
        prev = self.claims.get((kind, value))
        if prev is None:
            self.claims[(kind, value)] = (zone, position(node)[0])
        elif prev[0] != zone:
            self.err(node, "zone-overlap", f"zones overlap: {shown} is already in zone {prev[0]!r} (line {prev[1]}); "
                           "an address belongs to one zone")
        else:
            self.err(node, "listed-twice", f"{shown} is listed twice in zone {zone!r} (line {prev[1]})")

    def zone(self, name: str, kn, node) -> Zone | None:
        before = len(self.problems)
        self._name(kn, name, "zone")
        if name == UNZONED:
            self.err(kn, "reserved-zone", f"{UNZONED!r} is the implicit zone of unlisted addresses; it cannot be defined")
        fields = {k: (kk, v) for k, kk, v in self.mapping(node, f"zone {name!r}", ZONE_KEYS)}
        z: dict = {}
        if "description" in fields:
            z["description"] = self.text(fields["description"][1], "description") or ""
        if "level" in fields:
            n = fields["level"][1]
            lv = None
            if isinstance(n, yaml.ScalarNode) and n.tag in (_INT, _FLOAT):
                lv = _C.construct_object(n)
            if lv not in PURDUE_LEVELS:
                self.err(n, "bad-level", f"level {lv if lv is not None else self._kind(n)} is not a Purdue level "
                            f"({', '.join(map(str, PURDUE_LEVELS))})")
            else:
                z["level"] = lv
        if "security_level" in fields:
            z["security_level"] = self.integer(fields["security_level"][1], "security_level", 0, 4)
        nets = []
        for item in self.items(fields["networks"][1], "networks") if "networks" in fields else ():
            net = self.network(item)
            if net is not None:
                nets.append(net)
                self._claim(item, "net", net, str(net), name)
        vlans = []
        for item in self.items(fields["vlans"][1], "vlans") if "vlans" in fields else ():
            v = self.integer(item, "VLAN id", 1, MAX_VLAN)
            if v is not None:
                vlans.append(v)
                self._claim(item, "vlan", v, f"VLAN {v}", name)
        macs = []
        for item in self.items(fields["macs"][1], "macs") if "macs" in fields else ():
            m = self.mac(item)
            if m is not None:
                macs.append(m)
                self._claim(item, "mac", m, f"MAC {m}", name)
        assets = []
        for item in self.items(fields["assets"][1], "assets") if "assets" in fields else ():
            a = self.text(item, "asset id")
            if a is None:
                continue
            a = a.strip()
            if not a:
                self.err(item, "empty-asset", "asset id is empty")
                continue
            if a.startswith("mac:"):
                m = self.mac(item, a[4:])
                if m is None:
                    continue
                a = "mac:" + m
                self._claim(item, "mac", m, f"MAC {m} (asset {a})", name)
            else:
                self._claim(item, "asset", a, f"asset {a}", name)
            assets.append(a)
        if "intra_zone" in fields:
            z["intra_zone"] = self.choice(fields["intra_zone"][1], "intra_zone", ("allow", "deny")) or "allow"
        if not (nets or vlans or macs or assets) and len(self.problems) == before:
            self.err(kn, "no-members", f"zone {name!r} has no members: give networks, vlans, macs or assets")
        if len(self.problems) != before:
            return None
        return Zone(name, position(kn)[0], networks=tuple(nets), vlans=tuple(vlans), macs=tuple(macs),
                    assets=tuple(assets), **{k: v for k, v in z.items() if v is not None})

    def network(self, node):
        t = self.text(node, "network")
        if t is None:
            return None
        try:
            return ipaddress.ip_network(t.strip(), strict=True)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(t.strip(), strict=False)
            except ValueError:
                self.err(node, "bad-network", f"{t!r} is not an IP address or CIDR network ({exc})")
                return None
            self.err(node, "host-bits", f"{t!r} has host bits set; the network is {loose} (or write a single address as "
                           f"{loose.network_address if loose.prefixlen == loose.max_prefixlen else t.split('/')[0]})")
            return None

    def mac(self, node, raw: str | None = None) -> str | None:
        t = raw if raw is not None else self.text(node, "MAC")
        if t is None:
            return None
        t = t.strip()
        if not MAC_RE.match(t):
            self.err(node, "bad-mac", f"{t!r} is not a MAC address (six hex bytes, e.g. 00:80:f4:0a:00:0b)")
            return None
        h = re.sub(r"[:.\-]", "", t).lower()
        return ":".join(h[i:i + 2] for i in range(0, 12, 2))

    # -- conduits -------------------------------------------------------------
    def zone_refs(self, node, what: str, zones: dict) -> tuple:
        out = []
        for item in self.items(node, what):
            t = self.text(item, f"{what} zone")
            if t is None:
                continue
            if t not in zones and t != UNZONED:
                if t not in self.declared:
                    self.err(item, "unknown-zone", f"{what}: unknown zone {t!r}{self._hint(t, sorted(self.declared) + [UNZONED])}")
                continue
            out.append(t)
        return tuple(out)

    def conduit(self, name: str, kn, node, zones: dict) -> Conduit | None:
        before = len(self.problems)
        self._name(kn, name, "conduit")
        fields = {k: (kk, v) for k, kk, v in self.mapping(node, f"conduit {name!r}", CONDUIT_KEYS)}
        for req in ("from", "to", "allow"):
            if req not in fields and isinstance(node, yaml.MappingNode):
                self.err(kn, "missing-key", f"conduit {name!r} needs `{req}:`")
        src = self.zone_refs(fields["from"][1], "from", zones) if "from" in fields else ()
        dst = self.zone_refs(fields["to"][1], "to", zones) if "to" in fields else ()
        desc = self.text(fields["description"][1], "description") if "description" in fields else ""
        sl = self.integer(fields["security_level"][1], "security_level", 0, 4) if "security_level" in fields else None
        rules = []
        if "allow" in fields:
            nodes = self.items(fields["allow"][1], "allow")
            if not nodes and isinstance(fields["allow"][1], yaml.SequenceNode):
                self.err(fields["allow"][1], "empty-allow", f"conduit {name!r} allows nothing: list at least one rule "
                                             "(or remove the conduit: default is deny)")
            for i, rn in enumerate(nodes, 1):
                r = self.rule(rn, i, name)
                if r is not None:
                    rules.append(r)
        if len(self.problems) != before:
            return None
        return Conduit(name, src, dst, tuple(rules), position(kn)[0], desc or "", sl)

    def rule(self, node, index: int, conduit: str) -> Rule | None:
        before = len(self.problems)
        what = f"rule {index} of conduit {conduit!r}"
        fields = {k: (kk, v) for k, kk, v in self.mapping(node, what, RULE_KEYS)}
        if "protocol" not in fields:
            if isinstance(node, yaml.MappingNode):
                self.err(node, "missing-key", f"{what} needs `protocol:` ({', '.join(PROTOCOLS)})")
            return None
        proto = self.choice(fields["protocol"][1], "protocol", PROTOCOLS)
        if proto is None:
            return None
        ports = None
        if "ports" in fields:
            if proto in ("icmp", "any"):
                self.err(fields["ports"][0], "ports-not-applicable", f"`ports` does not apply to protocol {proto}")
            else:
                ports = self.rangeset(fields["ports"][1], "ports", 1, MAX_PORT)
        elif proto in DEFAULT_PORTS:
            ports = RangeSet.of((p, p) for p in DEFAULT_PORTS[proto])
        sections = {}
        for sec in ("modbus", "mqtt", "opcua"):
            if sec in fields:
                if proto != sec:
                    self.err(fields[sec][0], "wrong-section", f"a `{sec}:` section needs `protocol: {sec}` (this rule is {proto})")
                    continue
                sections[sec] = getattr(self, sec)(fields[sec][1])
        if len(self.problems) != before:
            return None
        return Rule(proto, ports, sections.get("modbus"), sections.get("mqtt"), sections.get("opcua"),
                    position(node)[0], index)

    def modbus(self, node) -> ModbusAllow | None:
        f = {k: (kk, v) for k, kk, v in self.mapping(node, "modbus", MODBUS_KEYS)}
        ops = fcs = units = regs = None
        if "operations" in f:
            ops = frozenset(o for o in (self.choice(n, "operation", MODBUS_OPERATIONS)
                                        for n in self.items(f["operations"][1], "operations")) if o)
        if "function_codes" in f:
            fcs = self.rangeset(f["function_codes"][1], "function code", 0, MAX_FUNCTION_CODE)
        if "units" in f:
            units = self.rangeset(f["units"][1], "unit id", 0, MAX_UNIT)
        if "registers" in f:
            regs = {}
            for table, kk, v in self.mapping(f["registers"][1], "registers", MODBUS_TABLES):
                rs = self.rangeset(v, f"{table} address", 0, MAX_ADDRESS)
                if rs is not None:
                    regs[table] = rs
        return ModbusAllow(ops, fcs, units, regs)

    def mqtt(self, node) -> MQTTAllow | None:
        f = {k: (kk, v) for k, kk, v in self.mapping(node, "mqtt", MQTT_KEYS)}
        out = {}
        for key in MQTT_KEYS:
            if key in f:
                filters = []
                for n in self.items(f[key][1], key) if f[key][1].tag != _NULL else ():
                    t = self.text(n, "topic filter")
                    if t is None:
                        continue
                    why = topics.filter_problem(t)
                    if why:
                        self.err(n, "bad-topic-filter", f"{key}: topic filter {t!r}: {why}")
                    else:
                        filters.append(t)
                out[key] = tuple(filters)
        return MQTTAllow(out.get("publish"), out.get("subscribe"))

    def opcua(self, node) -> OPCUAAllow | None:
        f = {k: (kk, v) for k, kk, v in self.mapping(node, "opcua", OPCUA_KEYS)}
        services = mode = None
        if "services" in f:
            known = _opcua_services()
            got = []
            for n in self.items(f["services"][1], "services"):
                t = self.text(n, "service")
                if t is None:
                    continue
                if t not in known:
                    self.err(n, "unknown-service", f"unknown OPC UA service {t!r}{self._hint(t, known)} (names as in Part 4, "
                                "e.g. Read, Write, Browse, Call)")
                else:
                    got.append(t)
            services = frozenset(got) - OPCUA_SESSION_SERVICES
        if "min_security_mode" in f:
            m = self.choice(f["min_security_mode"][1], "min_security_mode", tuple(SECURITY_MODES))
            mode = SECURITY_MODES.get(m) if m else None
        return OPCUAAllow(services, mode)

    # -- detections -----------------------------------------------------------
    def detection(self, rid: str, kn, node, zones: dict) -> RuleSetting | None:
        from otwatch.sensor.alerts.model import SEVERITIES

        before = len(self.problems)
        known = self.rules if self.rules is not None else known_rules()
        if RULE_PATTERN_RE.match(rid):          # a family switch: thresholds are per rule, not here
            if not any(str(r).startswith(rid[:-1]) for r in known):
                self.err(kn, "unknown-rule", f"{rid!r} matches no rule{self._hint(rid[:-2], known)}")
                return None
            thresholds_known = ()
        elif not RULE_ID_RE.match(rid):
            self.err(kn, "bad-rule-id", f"{rid!r} is not a rule id (dotted lower-case, e.g. policy.flow_denied, "
                                        f"or a prefix with .*, e.g. posture.*)")
            return None
        else:
            thresholds_known = known.get(rid)
            unknown = known.is_unknown(rid) if isinstance(known, RuleTables) else rid not in known
            if unknown:
                self.err(kn, "unknown-rule", f"unknown rule {rid!r}{self._hint(rid, known)}")
                return None
        f = {k: (kk, v) for k, kk, v in self.mapping(node, f"detection {rid!r}", DETECTION_KEYS)}
        enabled, severity, thresholds, allow = None, None, {}, []   # enabled None: the catalogue's default
        if "enabled" in f:
            enabled = self.boolean(f["enabled"][1], "enabled")
        if "severity" in f:
            severity = self.choice(f["severity"][1], "severity", SEVERITIES)
        if "thresholds" in f:
            for tname, tk, tv in self.mapping(f["thresholds"][1], f"thresholds of {rid}", thresholds_known):
                if isinstance(tv, yaml.ScalarNode) and tv.tag in (_INT, _FLOAT):
                    val = _C.construct_object(tv)
                    if val < 0 or val != val:
                        self.err(tv, "bad-threshold", f"threshold {tname} must be a number >= 0")
                    else:
                        thresholds[tname] = val
                else:
                    self.err(tv, "bad-threshold", f"threshold {tname} must be a number, not {self._kind(tv)}")
        if "allow" in f:
            for n in self.items(f["allow"][1], "allow"):
                t = self.text(n, "allow entry")
                if t is None:
                    continue
                if t in self.declared or t == UNZONED:
                    allow.append(t)
                    continue
                try:
                    allow.append(ipaddress.ip_network(t.strip(), strict=False))
                except ValueError:
                    self.err(n, "bad-allow-entry", f"allow: {t!r} is neither an address, a network nor a zone"
                                f"{self._hint(t, zones)}")
        if len(self.problems) != before:
            return None
        return RuleSetting(enabled, severity, thresholds, tuple(allow), rid, position(kn)[0])


def parse_policy(text: str, path: str = "", rules: dict | None = None) -> Policy:
    """A Policy from YAML text, or PolicyError with every problem.  ``rules``: the rule ids the
    detections section may name (rule -> threshold names or None); default ``known_rules()``."""
    root, problems = compose(text, path)
    b = _Builder(path, rules)
    b.problems.extend(problems)
    if root is None:
        raise PolicyError(b.problems)
    try:
        policy = b.policy(root)
    except _TooManyNodes:
        raise PolicyError([Problem(1, 1, f"the document expands (through aliases) to more than {MAX_NODES} "
                                         "values", path, "too-many-nodes")]) from None
    if b.problems:
        raise PolicyError(b.problems)
    return policy


def load_policy(path, rules: dict | None = None) -> Policy:
    """Read and validate a policy file (UTF-8)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError([Problem(1, 1, f"cannot read: {exc.strerror or exc}", str(path), "unreadable")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PolicyError([Problem(line, col, "not UTF-8 text", str(path), "not-utf8")]) from None
    return parse_policy(text, str(path), rules)


__all__ = ["load_policy", "parse_policy", "known_rules", "RuleTables", "RULE_SOURCES", "VERSION", "TOP_KEYS", "ZONE_KEYS", "CONDUIT_KEYS",
           "RULE_KEYS", "MODBUS_KEYS", "MQTT_KEYS", "OPCUA_KEYS", "DETECTION_KEYS"]
