"""The sensor's YAML config file, validated strictly with ``file:line:column`` errors.

Every key the command line has, under the same name (flags override the file)::

    interface: eth1             # required (here or --interface)
    bpf: "tcp or udp"           # needs libpcap
    snaplen: 65535
    buffer_mb: 32               # the kernel ring
    promisc: true
    user: otwatch               # started as root: become this user once the capture is open
    db: /var/lib/otwatch/otwatch.db
    policy: /etc/otwatch/policy.yaml
    posture_alerts: false       # true: configuration posture findings are alerts too (docs/alerts.md)
    syslog:                     # destinations (docs/sinks.md)
      - tls://siem.plant:6514?format=cef&ca=/etc/otwatch/ca.pem
    jsonl: /var/log/otwatch/observations.jsonl
    heartbeat: 60               # seconds between heartbeat records and stats log lines
    interval: 60                # seconds of packet time per aggregate interval
    outbox_max: 100000
    memcap: 512M                # memory budget (docs/architecture.md "Memory budget"; default 512M)
    link_idle_timeout: 3600     # seconds after a link's last flow before its tallies are forgotten (-1: never)
    host_idle_timeout: 3600     # seconds without a packet before an idle host is forgotten (-1: never)
    asset_quiet_after: 600      # seconds without a packet before a talking asset is reported quiet
    ports: {modbus: [5020]}

All errors are reported at once; a bad file on SIGHUP keeps the old config.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import yaml


class ConfigError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class SensorConfig:
    interface: str = ""
    bpf: str = ""
    snaplen: int = 65535
    buffer_mb: int = 32
    promisc: bool = True
    user: str = ""
    db: str = ""
    policy: str = ""
    posture_alerts: bool = False
    syslog: list = field(default_factory=list)
    jsonl: str = ""
    heartbeat: float = 60.0
    interval: float = 60.0
    outbox_max: int = 100_000
    memcap: str = ""
    link_idle_timeout: float = 3600.0
    host_idle_timeout: float = 3600.0
    asset_quiet_after: float = 600.0
    ports: dict = field(default_factory=dict)

    def merged(self, **flags) -> "SensorConfig":
        """A copy with every flag that was given (not None, not empty) taking precedence."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in flags.items():
            if v is None or v == () or v == []:
                continue
            d[k] = list(v) if isinstance(v, tuple) else v
        return SensorConfig(**d)


_TYPES = {"interface": str, "bpf": str, "snaplen": int, "buffer_mb": int, "promisc": bool, "user": str, "db": str,
          "policy": str, "posture_alerts": bool, "syslog": list, "jsonl": str, "heartbeat": (int, float), "interval": (int, float),
          "outbox_max": int, "memcap": (str, int), "link_idle_timeout": (int, float), "host_idle_timeout": (int, float),
          "asset_quiet_after": (int, float), "ports": dict}
_RANGES = {"snaplen": (64, 262144), "buffer_mb": (1, 4096), "heartbeat": (1, 86400), "interval": (1, 86400),
           "outbox_max": (100, 100_000_000), "asset_quiet_after": (1, 30 * 86400),
           "link_idle_timeout": (-1, 30 * 86400), "host_idle_timeout": (-1, 30 * 86400)}


def _where(path: str, node) -> str:
    m = node.start_mark
    return f"{path}:{m.line + 1}:{m.column + 1}"


def _value(node):
    return yaml.safe_load(yaml.serialize(node))


def load(path: str) -> SensorConfig:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror or exc}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        m = getattr(exc, "problem_mark", None)
        loc = f"{path}:{m.line + 1}:{m.column + 1}" if m else path
        raise ConfigError([f"{loc}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if root is None:
        return SensorConfig()
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError([f"{_where(path, root)}: the config must be a mapping of settings"])
    errors: list[str] = []
    out: dict = {}
    seen: dict = {}
    for knode, vnode in root.value:
        key = knode.value
        if key in seen:
            errors.append(f"{_where(path, knode)}: duplicate key {key!r} (first at line {seen[key]})")
            continue
        seen[key] = knode.start_mark.line + 1
        if key not in _TYPES:
            errors.append(f"{_where(path, knode)}: unknown key {key!r} (known: {', '.join(sorted(_TYPES))})")
            continue
        try:
            v = _value(vnode)
        except yaml.YAMLError as exc:
            errors.append(f"{_where(path, vnode)}: {exc}")
            continue
        want = _TYPES[key]
        if want is list and isinstance(v, str):
            v = [v]
        if isinstance(v, bool) and want is not bool or not isinstance(v, want):
            tn = want.__name__ if isinstance(want, type) else "number"
            errors.append(f"{_where(path, vnode)}: {key} must be a {tn}, not {type(v).__name__}")
            continue
        if key in _RANGES and not _RANGES[key][0] <= v <= _RANGES[key][1]:
            lo, hi = _RANGES[key]
            errors.append(f"{_where(path, vnode)}: {key} must be between {lo} and {hi}")
            continue
        if key == "syslog":
            from ..sinks.syslog import DestinationError, parse

            for item in vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]:
                try:
                    parse(str(_value(item)))
                except DestinationError as exc:
                    errors.append(f"{_where(path, item)}: {exc}")
        if key == "memcap":
            from otwatch.parsers.budget import limits_for, parse_size

            try:
                limits_for(parse_size(v))
            except ValueError as exc:
                errors.append(f"{_where(path, vnode)}: memcap: {exc}")
                continue
            v = str(v)
        if key == "ports":
            for pk, pv in vnode.value:
                if pk.value not in ("modbus", "mqtt", "opcua"):
                    errors.append(f"{_where(path, pk)}: ports: protocol must be modbus, mqtt or opcua")
                vals = _value(pv)
                vals = vals if isinstance(vals, list) else [vals]
                if not all(isinstance(x, int) and not isinstance(x, bool) and 0 < x < 65536 for x in vals):
                    errors.append(f"{_where(path, pv)}: ports: a port is a number from 1 to 65535")
        out[key] = v
    if errors:
        raise ConfigError(errors)
    return SensorConfig(**out)
