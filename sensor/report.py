"""The readable summary printed by ``otwatch analyze``.

``Summary`` is a consumer of the observation stream; ``render`` formats it.
Every string that came off the wire is escaped before it reaches the terminal.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from otwatch.parsers.common import escape

from . import observations as O

OT = ("modbus", "mqtt", "opcua", "tls")


class Summary:
    """Totals for the run summary.  What it keeps does not grow with the file: counters per
    protocol, kind and anomaly id, and the distinct IP and MAC addresses of ``HostSeen`` up to
    *max_hosts* each (the engine's host cap, ``limits.max_hosts``, so the summary costs no more
    than the host table it describes).  Past that an address not remembered is counted in
    ``hosts_ip_over`` / ``hosts_mac_over`` and the summary says "more than N" (a flood of sources
    cannot make the summary the thing that outgrows the memcap)."""

    def __init__(self, max_hosts: int | None = None):
        from otwatch.parsers.budget import DEFAULT_BUDGET_LIMITS

        self.max_hosts = DEFAULT_BUDGET_LIMITS.max_hosts if max_hosts is None else max_hosts
        self.messages: dict[str, Counter] = defaultdict(Counter)      # protocol -> kind -> count
        self.anomalies: Counter = Counter()
        self.flows: Counter = Counter()                                # protocol -> flows
        self.hosts_ip: set = set()
        self.hosts_mac: set = set()
        self.hosts_ip_over = 0           # HostSeen addresses not remembered: the set was full
        self.hosts_mac_over = 0
        self.links: Counter = Counter()
        self.coverage = Counter()                                      # decoded/skipped/encrypted/gap bytes
        self.first_ts = None
        self.last_ts = None
        self.tls: Counter = Counter()

    def observe_aggregates(self, b: O.LinkAggregates) -> None:
        by_kind = self.messages[b.protocol]
        for row in b.rows:
            by_kind[row[0]] += row[8]       # kind, interval_count

    def observe(self, obs) -> None:
        t = type(obs)
        if t is O.Aggregate:
            self.messages[obs.protocol][obs.kind] += obs.interval_count
        elif t is O.Anomaly:
            self.anomalies[obs.id] += 1
        elif t is O.FlowEnd:
            self.flows[obs.protocol] += 1
            if obs.protocol in OT:
                self.coverage["decoded"] += obs.decoded_bytes
                self.coverage["skipped"] += obs.skipped_bytes
                self.coverage["encrypted"] += obs.encrypted_bytes
                self.coverage["missing"] += obs.gap_bytes
                self.coverage["stream"] += obs.payload_client + obs.payload_server
            if self.first_ts is None or obs.first_ts < self.first_ts:
                self.first_ts = obs.first_ts
            if self.last_ts is None or obs.ts > self.last_ts:
                self.last_ts = obs.ts
        elif t is O.HostSeen:
            if obs.ip and obs.ip not in self.hosts_ip:
                if len(self.hosts_ip) < self.max_hosts:
                    self.hosts_ip.add(obs.ip)
                else:
                    self.hosts_ip_over += 1
            if obs.mac and obs.mac not in self.hosts_mac:
                if len(self.hosts_mac) < self.max_hosts:
                    self.hosts_mac.add(obs.mac)
                else:
                    self.hosts_mac_over += 1
        elif t is O.LinkSeen:
            self.links[obs.protocol] += 1
        elif t is O.HostTraffic:
            if self.first_ts is None or obs.first_ts < self.first_ts:
                self.first_ts = obs.first_ts
            if self.last_ts is None or obs.last_ts > self.last_ts:
                self.last_ts = obs.last_ts
        elif t is O.TLSSeen:
            self.tls[obs.carried or "unknown"] += 1

    def totals(self) -> dict:
        return {p: sum(c.values()) for p, c in self.messages.items()}


def _n(x: int) -> str:
    return f"{x:,}"


IRREGULAR = {"IP host": "IP hosts", "MAC address": "MAC addresses", "client→server link": "client→server links"}


def plural(n: int, word: str) -> str:
    """``1 flow``, ``2 flows``, ``1 MAC address``, ``3 MAC addresses`` (count with thousands separators)."""
    return f"{n:,} {word if n == 1 else IRREGULAR.get(word) or word + ('es' if word.endswith(('s', 'sh', 'ch', 'x')) else 's')}"


def _bytes(x: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1024 or unit == "GB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return str(x)


INFORMATIONAL = {
    "dispatch.detected_by_content": "flows whose protocol was recognised by content on a port not in the port map",
}
"""Ids the engine counts with the anomalies that describe normal decoding, not something odd on the
wire: shown under "Notes", never under "Anomalies" (the observation stream still carries them)."""

GROUP_MIN = 4
"""Unnamed kinds that differ only in a trailing number (``modbus.unknown_function_18``, ``_19``, …)
are shown as one line once there are this many: a function-code sweep is one fact, not a page.
Named families (``modbus.program_function_90``: UMAS) are always listed one by one."""
FOLDABLE = ("unknown_", "user_defined_")


def kind_lines(kinds: Counter) -> list[tuple[str, int]]:
    """(label, count) per kind, most frequent first; numbered families of GROUP_MIN or more folded
    into one ``prefix_<n>  (K kinds: lo–hi)`` line."""
    families: dict[str, list] = defaultdict(list)
    for kind in kinds:
        head, _, tail = kind.rpartition("_")
        if head and tail.isdigit() and any(f in head for f in FOLDABLE):
            families[head].append(int(tail))
    rows = []
    folded = set()
    for head, nums in families.items():
        if len(nums) >= GROUP_MIN:
            members = [f"{head}_{n}" for n in nums]
            folded.update(members)
            rows.append((f"{head}_<n> ({len(nums)} kinds: {min(nums)}–{max(nums)})",
                         sum(kinds[m] for m in members)))
    rows += [(kind, n) for kind, n in kinds.items() if kind not in folded]
    return sorted(rows, key=lambda kv: (-kv[1], kv[0]))


def render(files: list[str], summary: Summary, stats: dict, implementation: str, seconds: float) -> str:
    out = []
    pk = stats.get("capture.packets", 0)
    out.append("otwatch analyze — " + ", ".join(escape(f) for f in files))
    span = ""
    if summary.first_ts is not None and summary.last_ts is not None:
        span = f", {summary.last_ts - summary.first_ts:,.1f} s of traffic"
    rate = f", {pk / seconds:,.0f} packets/s" if seconds > 0 else ""
    out.append(f"  {plural(pk, 'packet')}, {_bytes(stats.get('capture.bytes', 0))}{span}; analysed in {seconds:.2f} s"
               f" ({implementation} kernels{rate})")
    ips = plural(len(summary.hosts_ip), "IP host")
    macs = plural(len(summary.hosts_mac), "MAC address")
    out.append(f"  {plural(stats.get('flows.created', 0), 'flow')}, {'more than ' * bool(summary.hosts_ip_over)}{ips}, "
               f"{'more than ' * bool(summary.hosts_mac_over)}{macs}")
    out.append("")
    out.append("Messages per protocol and kind")
    if not summary.messages:
        out.append("  (no Modbus, MQTT or OPC UA messages)")
    for proto in sorted(summary.messages):
        kinds = summary.messages[proto]
        out.append(f"  {proto:<8} {_n(sum(kinds.values())):>12}   on {plural(summary.links[proto], 'client→server link')}")
        for label, n in kind_lines(kinds):
            out.append(f"    {escape(label, 60):<52} {_n(n):>10}")
    if summary.tls:
        out.append("  tls      " + ", ".join(f"{plural(n, 'handshake message')} carrying {p}"
                                           for p, n in sorted(summary.tls.items())))
    out.append("")
    cov = summary.coverage
    stream = cov["stream"]
    out.append("Decode coverage (OT streams)")
    if stream:
        def pct(x):
            return f"{100.0 * x / stream:5.1f}%"
        out.append(f"  {_bytes(stream)} of OT payload: decoded {pct(cov['decoded'])}, skipped {pct(cov['skipped'])}, "
                   f"encrypted {pct(cov['encrypted'])}, missing from capture {_bytes(cov['missing'])}")
    else:
        out.append("  no OT payload")
    out.append("")
    out.append("Anomalies")
    # the engine counts every anomaly, also those a flood's sampling did not report
    # (docs/observations.md); the observations seen are the fallback
    counted = Counter({k[8:]: v for k, v in stats.items() if k.startswith("anomaly.") and v})
    counted.pop("suppressed", None)
    anomalies = Counter(counted or summary.anomalies)
    notes = {aid: anomalies.pop(aid) for aid in list(anomalies) if aid in INFORMATIONAL}
    if not anomalies:
        out.append("  none")
    for aid, n in sorted(anomalies.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {escape(aid, 60):<52} {_n(n):>10}")
    if stats.get("anomaly.suppressed"):
        out.append(f"  ({_n(stats['anomaly.suppressed'])} of them not reported one by one: "
                   "floods are sampled per flow, see flow.anomalies_suppressed)")
    if notes:
        out.append("")
        out.append("Notes (informational, not anomalies)")
        for aid, n in sorted(notes.items()):
            out.append(f"  {aid:<52} {_n(n):>10}   {INFORMATIONAL[aid]}")
    skipped = {k: v for k, v in stats.items()
               if v and (k.startswith("decode.truncated") or k.startswith("decode.bad") or k.startswith("capture.")
                         or k.startswith("decode.unsupported"))
               and k not in ("capture.packets", "capture.bytes")}
    if skipped:
        out.append("")
        out.append("Skipped or damaged input")
        for k, v in sorted(skipped.items()):
            out.append(f"  {k:<52} {_n(v):>10}")
    return "\n".join(out) + "\n"
