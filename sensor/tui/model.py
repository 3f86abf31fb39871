"""What the screens read: one ``PlantModel`` interface, fed live (``LiveModel``) or from SQLite (``DbModel``).

Contract (both models)
----------------------
* ``assets``: asset id -> the inventory's asset row (docs/inventory.md);
  ``kids(aid, tables=CHILD)``: that asset's child rows by table (identity,
  services, peers, findings, names, roles, topics, addresses; at least *tables*).
* ``alerts``: alert id -> ``sensor.alerts.model.Alert``.
* ``stats``: ``Stats`` (packet and message counts, a rate series, protocol
  mix, decode coverage, drops, memory).
* ``tick() -> Changes``: called by the UI a few times a second; brings the
  model up to date (applies a batch of observations, or re-reads the database
  when SQLite says it changed) and says what changed.
* ``policy`` / ``policy_errors`` / ``reload_policy()``; ``zone(row)``.
* ``status``: one line for the header (source, progress, data age).
Raw values are kept as received; screens show them through ``safe.safe_text``.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .. import observations as O
from . import alertsrc

RATE_POINTS = 60
"""Samples kept per rate series (one per tick that moved time): a sparkline's width at 80 columns."""
TICK_BUDGET_S = 0.04
"""Wall time one UI tick may spend applying observations (``OtwatchApp`` spends it ``APPLY_SLICE_S`` at a time,
keys answered in between)."""
APPLY_SLICE_S = 0.01
"""Wall time of one ``tick(budget)`` call at most (plus one ``APPLY_STEP`` of observations): the UI applies a
tick's budget in slices this long, so a key waits for one slice, not for the whole budget."""
APPLY_STEP = 32
"""Observations applied between two looks at the clock (a feed batch holds 512: ~20 ms of UI thread)."""
DB_MIN_INTERVAL_S = 0.3
"""A database is re-read at most this often (and only when SQLite's data_version moved)."""
HEARTBEAT_S = 60.0
"""The sensor's default heartbeat period (``otwatch sensor --heartbeat``), when the heartbeat does not say."""
ATTACHED_BEATS = 3
"""Heartbeats that may be missed before the header stops saying "attached"."""
CHILD = ("addresses", "names", "roles", "identity", "services", "peers", "topics", "findings")


@dataclass
class Changes:
    assets: set = field(default_factory=set)      # asset ids whose row or children changed ("*" = all)
    alerts: set = field(default_factory=set)      # alert ids new or changed
    any: bool = False


@dataclass
class Stats:
    packets: int = 0
    messages: int = 0
    observations: int = 0
    by_protocol: Counter = field(default_factory=Counter)     # messages per protocol
    packet_rate: deque = field(default_factory=lambda: deque(maxlen=RATE_POINTS))
    message_rate: deque = field(default_factory=lambda: deque(maxlen=RATE_POINTS))
    decoded_bytes: int = 0
    skipped_bytes: int = 0
    encrypted_bytes: int = 0
    dropped: int = 0          # capture drops (kernel), live or attached
    rss_bytes: int = 0
    budget: dict = field(default_factory=dict)   # parsers.budget.usage(): memcap, tables and caps, evictions
    last_ts: float = 0.0      # newest packet time seen
    progress: float | None = None   # 0..1 of a capture file, None when unknown

    @property
    def coverage(self) -> float | None:
        total = self.decoded_bytes + self.skipped_bytes + self.encrypted_bytes
        return self.decoded_bytes / total if total else None


_DIRECTION, _INTERVAL_COUNT = O.AGGREGATE_ROW.index("direction"), O.AGGREGATE_ROW.index("interval_count")


def _bulk_of(consumer):
    """How *consumer* takes a ``LinkAggregates``: whole (``observe_aggregates``), else its ``Aggregate``s one
    by one (the same objects, in the order the per-key path gives them)."""
    take = getattr(consumer, "observe_aggregates", None)
    if take is not None:
        return take
    observe = consumer.observe

    def each(batch) -> None:
        for a in batch.each():
            observe(a)
    return each


class Tally:
    """Consumer: message counts per protocol and decode coverage (flow ends)."""

    def __init__(self, stats: Stats):
        self.stats = stats

    def observe_aggregates(self, b) -> None:
        """A link's aggregates in bulk: the requests' interval counts, as ``observe`` counts each ``Aggregate``."""
        n = 0
        for row in b.rows:
            if row[_DIRECTION] == "request":
                n += row[_INTERVAL_COUNT]
        if n:
            s = self.stats
            s.by_protocol[b.protocol] += n
            s.messages += n

    def observe(self, obs) -> None:
        s = self.stats
        t = type(obs)
        if t is O.Aggregate:
            if obs.direction == "request":
                s.by_protocol[obs.protocol] += obs.interval_count
                s.messages += obs.interval_count
        elif t is O.FlowEnd:
            s.decoded_bytes += obs.decoded_bytes
            s.skipped_bytes += obs.skipped_bytes
            s.encrypted_bytes += obs.encrypted_bytes
        ts = getattr(obs, "ts", 0.0)
        if ts and ts > s.last_ts:
            s.last_ts = ts


def load_policy_file(path: str | None):
    """(policy, errors): errors are ``file:line:column: what`` lines; no policy when None or invalid."""
    if not path:
        return None, []
    from ..policy import PolicyError, load_policy

    try:
        return load_policy(path), []
    except PolicyError as exc:
        return None, [str(p) for p in exc.problems]
    except OSError as exc:
        return None, [f"{path}: {exc}"]


class _PolicyMixin:
    policy_path: str | None
    policy: Any = None
    policy_errors: list = []
    zonemap: Any = None

    def _set_policy(self, path: str | None) -> None:
        self.policy_path = path
        self.policy, self.policy_errors = load_policy_file(path)
        self.zonemap = None
        if self.policy is not None:
            from ..policy.zones import ZoneMap

            self.zonemap = ZoneMap(self.policy)

    def zone(self, row: dict) -> str:
        if self.zonemap is None:
            return row.get("zone") or ""
        return self.zonemap.zone(row.get("ip") or "", row.get("mac") or "", row.get("vlan") or 0,
                                 row.get("asset_id") or "")

    def ip_zone(self, ip: str) -> str:
        return self.zonemap.zone(ip) if self.zonemap is not None else ""


class _BaselineMixin:
    """The stored baseline (``--baseline PATH``, else sensor/baseline's default file): shown, and what
    ``accept`` learns into (sensor/baseline/accept.py)."""

    baseline_path: str | None = None
    read_only: bool = False
    alerts: dict

    def baseline_file(self) -> str:
        from ..baseline.store import default_path

        return self.baseline_path or default_path()

    def baseline(self):
        """The baseline to show: the running detector's (with what it is waiting to have accepted),
        else the stored file's; None when there is none (or it cannot be read: ``baseline_error``)."""
        det = getattr(getattr(self, "collector", None), "detector", None)
        if det is not None:
            return det.b
        from ..baseline.store import load_baseline
        from ..baseline.yamlio import BaselineFormatError

        self.baseline_error = ""
        try:
            return load_baseline(self.baseline_file(), missing_ok=False)
        except FileNotFoundError:
            self.baseline_error = f"no baseline at {self.baseline_file()} (otwatch baseline learn)"
        except (OSError, BaselineFormatError) as exc:
            self.baseline_error = str(exc)
        return None

    def accept(self, aid: str) -> str:
        """Learn alert *aid*'s entry into the stored baseline and close the alert as accepted; what happened."""
        from ..baseline.accept import accept_entry, entry_of

        if self.read_only:
            return "read-only"
        a = self.alerts.get(aid)
        if a is None:
            return "no such alert"
        b = self.baseline()
        entry = entry_of(aid, a.details, b)
        if entry is None:
            return "cannot be learned (not a baseline departure, or a sweep, storm or brute force)"
        try:
            res = accept_entry(entry, self.baseline_file(), aid)
        except (OSError, ValueError) as exc:
            return f"not accepted: {exc}"
        det = getattr(getattr(self, "collector", None), "detector", None)
        if det is not None:                   # the running detector knows it from now on
            det.b.add_entry(entry)
            det.b.pending.pop(aid, None)
        self._close_accepted(a, entry)
        return f"{'learned' if res.changed else 'already known'}: {entry}"

    def _close_accepted(self, a, entry: str) -> None:
        a.status, a.close_reason = "closed", "accepted"


class LiveModel(_PolicyMixin, _BaselineMixin):
    """Observations (from a ReplayFeed or a live capture) applied to an inventory in memory,
    the policy checker and the alert producers, in the UI thread, a time-budgeted batch per tick."""

    read_only = False

    def __init__(self, feed, policy_path: str | None = None, source: str = "", baseline_path: str | None = None,
                 posture_alerts: bool = False):
        from ..inventory.store import Inventory, connect

        self.feed = feed
        self.source = source
        self.mode = feed.mode
        self.stats = Stats()
        self.inventory = Inventory(connect(":memory:"))
        self._set_policy(policy_path)
        self.baseline_path = baseline_path
        self.collector, alert_consumers = alertsrc.producers(self.inventory, source, self.policy, baseline_path,
                                                                  posture_alerts)
        self.checker = self._make_checker()
        self._alert_consumers = alert_consumers
        self._tally = Tally(self.stats)
        self.alerts = self.collector.alerts
        self._last_tick = time.monotonic()
        self._last_counts = (0, 0)
        self._carry = None          # (batch, stats, next index): a feed batch applied in part
        self.finished = False
        self.error = ""

    def _make_checker(self):
        if self.policy is None:
            return None
        from ..policy import PolicyChecker

        checker = PolicyChecker(self.policy, alertsrc.sink_of(self.collector), self.source)
        self.inventory.zone_of = checker.zone_of      # the inventory's zone column, as analyze --policy fills it
        return checker

    def reload_policy(self) -> None:
        self._set_policy(self.policy_path)
        self.checker = self._make_checker()

    @property
    def assets(self) -> dict:
        return _RowView(self.inventory.assets)

    def kids(self, aid: str, tables=CHILD) -> dict:
        """Child rows of *aid*, copied from the inventory: only *tables* (a broker's peers are thousands
        of rows, and a label needs only its names)."""
        a = self.inventory.assets.get(aid)
        if a is None:
            return {t: [] for t in tables}
        return {t: list(a.t.get(t, {}).values()) for t in tables}

    def all_kids(self, table: str):
        for a in list(self.inventory.assets.values()):
            yield from a.t.get(table, {}).values()

    @property
    def status(self) -> str:
        s = self.stats
        if self.error:
            return f"{self.mode}: {self.error}"
        if self.finished:
            return f"{self.mode}: done"
        if s.progress is not None:
            return f"{self.mode} {s.progress * 100:.0f}%"
        return self.mode

    def more(self) -> bool:
        """Observations are waiting (a batch begun, or one in the feed's queue)."""
        return self._carry is not None or not self.feed.empty()

    def tick(self, budget: float = TICK_BUDGET_S) -> Changes:
        """Apply observations for about *budget* seconds (wall), in steps of ``APPLY_STEP``: a batch not
        finished is carried over to the next call, so one call never runs much past its budget."""
        ch = Changes()
        deadline = time.monotonic() + budget
        applied = 0
        inv_assets = self.inventory.assets
        newest = next(reversed(inv_assets), None)       # new assets are inserted after it (no set() of 10,000
        touched = ch.assets
        consumers = [self.inventory, self._tally] + ([self.checker] if self.checker else []) + self._alert_consumers
        bulk = [_bulk_of(c) for c in consumers]
        link_aggs = O.LinkAggregates
        while time.monotonic() < deadline:
            if self._carry is not None:
                batch, st, i = self._carry
                self._carry = None
            else:
                item = self.feed.poll()
                if item is None:
                    break
                (batch, st), i = item, 0
            end = min(i + APPLY_STEP, len(batch))
            for obs in batch[i:end]:
                if type(obs) is link_aggs:          # a link's aggregates in bulk (feed.observe_aggregates)
                    for take in bulk:
                        take(obs)
                    touched.add(obs.client)
                    touched.add(obs.server)
                    applied += len(obs.rows)
                    continue
                applied += 1
                for c in consumers:
                    c.observe(obs)
                for attr in ("client", "server", "ip"):
                    v = getattr(obs, attr, None)
                    if v:
                        touched.add(v)
            if end < len(batch):
                self._carry = (batch, st, end)
            else:
                self._stats_from(st)
        for c in self._alert_consumers:
            t = getattr(c, "tick", None)
            if t is not None:
                t()
        if touched:
            # addresses → asset ids (an address touched means its owner may have changed)
            owner = self.inventory.ip_owner
            ids = {owner.get((0, ip)) for ip in touched} - {None}
            if next(reversed(inv_assets), None) != newest:     # ids per slice: issue 16's replay throughput)
                ids |= _added_since(inv_assets, newest)
            ch.assets = ids
        ch.alerts = self.collector.take_changed()
        self.stats.observations += applied
        if not self.finished:
            self._rates()
        if self.feed.done() and not self.more() and not self.finished:
            self.finished = True
            self.error = self.feed.error
            self.inventory.flush()
            for c in self._alert_consumers:
                fin = getattr(c, "finish", None)
                if fin is not None:
                    fin()
            ch.alerts |= self.collector.take_changed()
            ch.assets = {"*"}
        ch.any = bool(applied or ch.alerts or ch.assets)
        return ch

    def _stats_from(self, st: dict) -> None:
        from otwatch.parsers.budget import usage

        s = self.stats
        s.packets = st.get("capture.packets", s.packets)
        if "progress" in st:
            s.progress = st["progress"]
        s.dropped = st.get("kernel_dropped", s.dropped)
        limits = getattr(self.feed, "limits", None)
        if limits is not None:
            s.budget = usage(st, limits)

    def _rates(self) -> None:
        now = time.monotonic()
        dt = now - self._last_tick
        if dt < 0.2:
            return
        p0, m0 = self._last_counts
        s = self.stats
        s.packet_rate.append((s.packets - p0) / dt)
        s.message_rate.append((s.messages - m0) / dt)
        self._last_counts = (s.packets, s.messages)
        self._last_tick = now
        from ..live.loop import rss_bytes

        s.rss_bytes = rss_bytes()

    def acknowledge(self, aid: str) -> str:
        a = self.alerts.get(aid)
        if a is None:
            return "no such alert"
        if a.status == "open":
            a.status = "acknowledged"
            return "acknowledged"
        return "unchanged"

    def close(self) -> None:
        self.feed.stop()


def _added_since(assets: dict, newest) -> set:
    """The ids inserted into *assets* after *newest* (its last id before; None: it was empty).  When *newest*
    itself is gone (merged into another asset meanwhile), every id: the caller re-reads them all."""
    if newest is not None and newest not in assets:
        return set(assets)
    out = set()
    for k in reversed(assets):
        if k == newest:
            break
        out.add(k)
    return out


class _RowView:
    """asset id -> row over the inventory's Asset objects (no copy)."""

    def __init__(self, assets: dict):
        self._a = assets

    def __len__(self):
        return len(self._a)

    def __contains__(self, k):
        return k in self._a

    def get(self, k, default=None):
        a = self._a.get(k)
        return a.row if a is not None else default

    def __getitem__(self, k):
        return self._a[k].row

    def keys(self):
        return self._a.keys()

    def values(self):
        return [a.row for a in list(self._a.values())]

    def items(self):
        return [(k, a.row) for k, a in list(self._a.items())]


class DbModel(_PolicyMixin, _BaselineMixin):
    """A stored inventory, its alerts and the sensor's heartbeats, read-only; re-read when it changes."""

    mode = "db"

    def __init__(self, path: str, policy_path: str | None = None, read_only: bool = False,
                 baseline_path: str | None = None):
        from . import dbread

        self.path = path
        self.read_only = read_only
        self.baseline_path = baseline_path
        self.reader = dbread.Reader(path)
        self._set_policy(policy_path)
        self.stats = Stats()
        self.assets: dict = {}
        self._kids: dict = {}
        self.alerts: dict = {}
        self._last_read = 0.0
        self._read_at = 0.0
        self.heartbeat: dict = {}
        self.error = ""
        self._sig: dict = {}
        self.reader.changed()           # the version read now: the first tick re-reads only on a change
        self._load(Changes())

    def reload_policy(self) -> None:
        self._set_policy(self.policy_path)

    @property
    def attached(self) -> bool:
        """A sensor wrote a heartbeat into this database within ``ATTACHED_BEATS`` heartbeat periods (wall
        clock), and it was not its last ("stopped") heartbeat."""
        hb = self.heartbeat
        if not hb or "stopped" in str(hb.get("message", "")):
            return False
        period = hb.get("interval") or HEARTBEAT_S
        return time.time() - (hb.get("_at") or 0) < ATTACHED_BEATS * max(period, 1)

    @property
    def status(self) -> str:
        age = time.monotonic() - self._read_at
        what = "attached" if self.attached else "db"
        err = f" · {self.error}" if self.error else ""
        return f"{what} {os.path.basename(self.path)} · read {age:.0f} s ago{err}"

    def kids(self, aid: str, tables=CHILD) -> dict:
        """Child rows of *aid* as last read (every table; *tables* is what the caller needs at least)."""
        return self._kids.get(aid) or {t: [] for t in CHILD}

    def all_kids(self, table: str):
        for k in list(self._kids.values()):
            yield from k.get(table, ())

    def tick(self) -> Changes:
        ch = Changes()
        now = time.monotonic()
        if now - self._last_read < DB_MIN_INTERVAL_S:
            return ch
        self._last_read = now
        try:
            if self.reader.changed():
                self._load(ch)
            self._read_at = now
            self.error = ""
        except sqlite3.Error as exc:
            self.error = f"database: {exc}"
        return ch

    def _load(self, ch: Changes) -> None:
        snap = self.reader.snapshot()
        from ..inventory.summary import by_asset

        assets = {a["asset_id"]: a for a in snap["assets"]}
        kids = by_asset(snap)
        for aid, row in assets.items():
            k = kids.get(aid, {})
            sig = (row.get("last_seen"), row.get("device_class"), row.get("ip"), row.get("packets_sent"),
                   row.get("packets_received"), sum(len(v) for v in k.values()))
            if self._sig.get(aid) != sig:
                self._sig[aid] = sig
                ch.assets.add(aid)
        for gone in set(self._sig) - set(assets):
            del self._sig[gone]
            ch.assets.add(gone)
        self.assets, self._kids = assets, kids
        alerts = {a.id: a for a in self.reader.alerts()}
        for aid, a in alerts.items():
            old = self.alerts.get(aid)
            if old is None or (old.count, old.status, old.severity) != (a.count, a.status, a.severity):
                ch.alerts.add(aid)
        self.alerts = alerts
        hb = self.reader.heartbeat()
        if hb:
            self.heartbeat = hb
            s = self.stats
            s.packets = hb.get("packets", s.packets)
            s.packet_rate.append(hb.get("packets_per_s", 0.0))
            s.dropped = hb.get("kernel_dropped", 0)
            s.rss_bytes = hb.get("rss_bytes", 0)
            from otwatch.parsers.budget import USAGE_KEYS

            # what the sensor's heartbeat carries of the memory budget (none from an older sensor)
            s.budget = {k: hb[k] for k in USAGE_KEYS if isinstance(hb.get(k), (int, float))} if "memcap" in hb else {}
        self.stats.by_protocol = Counter()
        msgs = 0
        for k in kids.values():
            for p in k.get("peers", ()):
                if p.get("direction") == "client":
                    n = p.get("messages") or 0
                    self.stats.by_protocol[p.get("protocol") or "?"] += n
                    msgs += n
        self.stats.messages = msgs
        self.stats.last_ts = max((a.get("last_seen") or 0 for a in assets.values()), default=0.0)
        ch.any = bool(ch.assets or ch.alerts)

    def _close_accepted(self, a, entry: str) -> None:
        if alertsrc.close_accepted(self.path, a.id, entry) == "closed":
            a.status, a.close_reason = "closed", "accepted"

    def acknowledge(self, aid: str) -> str:
        if self.read_only:
            return "read-only"
        msg = alertsrc.acknowledge(self.path, aid)
        a = self.alerts.get(aid)
        if a is not None and msg == "acknowledged":
            a.status = "acknowledged"
        return msg

    def close(self) -> None:
        self.reader.close()


__all__ = ["Changes", "Stats", "Tally", "LiveModel", "DbModel", "load_policy_file", "CHILD"]
