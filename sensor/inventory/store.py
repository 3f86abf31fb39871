"""The asset inventory: an observation consumer backed by SQLite (sqlite-utils).

Contract
--------
``open_inventory(path) -> Inventory``; ``inv.observe(obs)`` for every
observation (``sensor.observations``); ``inv.close()`` at the end.

* The database is the shared one (``sensor.store``): ``open_inventory`` opens it
  with ``open_write`` (migrated, WAL); every batch is one ``write_transaction``
  (``BEGIN IMMEDIATE``, waits for other writers).
* ``observe`` only updates memory; nothing is written per packet.  The store
  writes one transaction per batch: every ``batch`` observations, at every
  ``IntervalEnd`` and on ``flush()``/``close()``.
* Evidence carries its source: the last ``SourceStart.source`` is stored as
  ``capture`` beside every ``frame`` (``first_capture``/``last_capture``).  A process killed mid-run
  loses at most the last batch; the database stays consistent (WAL, one
  transaction per batch, every child row written with or after its asset).
* The existing inventory is loaded at open time, so successive runs on several
  captures merge (first_seen keeps the earliest, last_seen the latest, counters
  add up).  Runs at the same time merge too: each writer remembers every row
  as it last read or wrote it (its *base*); when another process has committed
  since (``PRAGMA data_version``), ``flush`` reads each row it is about to
  write inside the write transaction and, where it changed, writes
  ``merge.merge_row``'s merge (counters mine + stored - base, first/last seen
  min/max, identity facts and lists merged) instead of its own view, and
  takes in the child rows of a merged asset that only the other writer had.
* Changes are ``model.AssetEvent``s: returned by ``note(obs)``, collected by
  ``take_events()``, handed to ``on_events`` (if set) as they happen — the
  ``class.changed`` that ``flush`` decides included — and written to
  ``asset_events`` with their batch.

Identity of an asset (rule 1 of this module: all of it is decided in
``_host``):

* A unicast MAC anchors an asset (``mac:<mac>``): the device keeps its asset
  when its IP changes.  IPs bind to the MAC that carries them.
* An IP address is only unique within its VLAN: addresses, IP-anchored assets
  and the IP → asset map are keyed by (VLAN, IP), and a message is attributed
  through its flow's (or link's) VLAN.  The same IP on two VLANs is two
  devices; untagged traffic is VLAN 0.
* A MAC that carries ``model.GATEWAY_MIN_IPS`` or more IPs it never claimed by
  ARP is a router/gateway when there is evidence of routing (``_gateway_evidence``):
  some of those IPs are off-link (outside every /24 or /64 that ARP shows on
  that VLAN), or ``GATEWAY_MIN_IPS`` of them were active at the same time.
  IPs that follow one another without overlapping (a host renumbered by DHCP)
  are one device with ``address.new`` events, not a gateway.  A gateway keeps
  the IPs it claimed, and every other IP behind it becomes an asset of its own
  (``ip:<ip>``, ``ip:<ip>@vlan<n>`` on a tagged VLAN; ``via`` = the gateway),
  with the facts learnt on that IP moved along.
* Without a MAC (raw-IP captures) an IP anchors the asset; when a MAC for it
  shows up later, the IP asset is merged into the MAC asset.

Attacker-controlled strings are stored as received, through parameterised SQL
only (sqlite-utils), and escaped by whoever shows them.  Passwords are never
seen here: events carry only whether one was sent.
"""
from __future__ import annotations

import heapq
import ipaddress
import json
import logging
import os
import re
import sqlite3
from functools import lru_cache
from operator import itemgetter
from typing import Any, Callable, Iterable

from sqlite_utils import Database

from .. import observations as O
from ..store import (ENV_DB, DatabaseBusy, default_path, open_read, open_write, read_snapshot,  # noqa: F401
                     write_transaction)
from . import identity as I
from . import merge as M
from . import migrations, posture, roles as R
from .model import (CHILD_TABLES, CLIENT_ROLE, GATEWAY_MIN_IPS, JSON_COLUMNS, LOCAL_PREFIX_V4, LOCAL_PREFIX_V6,
                    MAX_ADDRESSES, MAX_ASSETS, MAX_FINDINGS, MAX_IDENTITY, MAX_LOCAL_NETS, MAX_NAMES, MAX_PEERS,
                    MAX_PENDING_NAMES, MAX_ROLE_UNITS, MAX_SERVICES, MAX_TOPICS, MAX_UNROWED_IPS, PKS, SERVER_ROLE,
                    AssetEvent)

log = logging.getLogger("otwatch.inventory")

MAX_HELD_EVENTS = 50_000
"""Asset events kept for the ``asset_events`` table while the database is held by another process
(``hold_when_busy``); past it the oldest are dropped and counted (``events.dropped``).  The inventory
itself is memory, bounded by the caps of ``model``: it is written whole when the lock is free."""
DEFAULT_BATCH = 20_000
"""Observations between two writes (an interval end or close writes earlier)."""
MAX_FLOWS = 65_536
"""Open flows remembered (for services and per-connection posture state); oldest forgotten first."""
MAX_MAC_IPS = 1024
"""IPs remembered per MAC for the gateway decision."""
MAX_REFUSED = 64
"""Refused (server, port) pairs remembered per client for the port-scan guess."""
DEVICE_ID_KINDS = frozenset({"modbus.encapsulated_interface_transport", "modbus.report_server_id"})
"""Modbus FC 43 (MEI 14 Read Device Identification) and FC 17: asking a device what it is."""

_PK_GET = {t: itemgetter(*cols) for t, cols in PKS.items() if len(cols) > 1}
_ADDR_PK = _PK_GET["addresses"]
"""table -> the function that reads a row's primary key (a tuple) from the row."""
_LIMITS = {"addresses": MAX_ADDRESSES, "names": MAX_NAMES, "peers": MAX_PEERS, "topics": MAX_TOPICS,
           "identity": MAX_IDENTITY, "services": MAX_SERVICES, "findings": MAX_FINDINGS, "roles": 64}
_COUNTERS = ("packets_sent", "bytes_sent", "packets_received", "bytes_received")


def connect(path: str | None, create: bool = True) -> Database:
    """The shared database (``sensor.store``): migrated for writing, or read-only when not *create*."""
    return open_write(path) if create else open_read(path)


def open_inventory(path: str | None = None, **kw) -> "Inventory":
    """The inventory at *path* (default location when None), ready to ``observe``."""
    return Inventory(connect(path), **kw)


@lru_cache(maxsize=4096)
def oui_vendor(mac: str) -> str:
    """Organisation of the MAC's OUI in the IEEE registry (netaddr), "" when not registered.

    Same answer as ``str(netaddr.EUI(mac).oui.registration().org)`` (tested against it), read from
    netaddr's own registry files without loading its whole OUI and IAB indices (~0.1 s, ~35 000
    entries) for the few MACs an inventory sees: ``_registry_org``.  MACs not written
    ``xx:xx:xx:xx:xx:xx``, or a netaddr whose files are not laid out as expected, go through
    netaddr's API.
    """
    if len(mac) == 17 and _MAC_RE.fullmatch(mac):
        org = _registry_org(int(mac[0:2] + mac[3:5] + mac[6:8], 16))
        if org is not None:
            return org
    return _netaddr_vendor(mac)


def _netaddr_vendor(mac: str) -> str:
    try:
        import netaddr

        return str(netaddr.EUI(mac).oui.registration().org)
    except Exception:   # NotRegisteredError, locally administered, malformed
        return ""


_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_REGISTRY: list = []
"""[oui.idx bytes, path of oui.txt] once read; [None] when netaddr's files cannot be used."""


def _registry_org(oui: int) -> str | None:
    """The ``org`` of *oui*'s first registration, as netaddr's ``OUI(oui).registration(0).org`` gives it
    ("" when not registered), or None when netaddr's registry files are not usable here.

    netaddr keeps the registry as ``oui.txt`` (the IEEE text) and ``oui.idx`` (lines
    ``oui,offset,size`` in file order: netaddr's index appends each one, registration 0 is the first);
    ``OUI._parse_data`` takes the org from the record's ``(hex)`` line, after its second field.
    """
    if not _REGISTRY:
        try:
            # found without importing netaddr (its package import alone costs ~25 ms of every run)
            from importlib.util import find_spec

            spec = find_spec("netaddr")
            base = os.path.join(list(spec.submodule_search_locations)[0], "eui")
            with open(os.path.join(base, "oui.idx"), "rb") as fh:
                idx = fh.read()
            txt = os.path.join(base, "oui.txt")
            if not idx[:1].isdigit() or not os.path.isfile(txt):
                raise ValueError("unexpected netaddr registry layout")
            _REGISTRY[:] = [idx, txt]
        except Exception:
            _REGISTRY[:] = [None]
    idx = _REGISTRY[0]
    if idx is None:
        return None
    key = b"\n%d," % oui                # a line of oui.idx for this OUI, with the newline before it
    if idx.startswith(key[1:]):
        pos = 0
    else:
        pos = idx.find(key) + 1
        if pos == 0:
            return ""                   # not registered (netaddr: NotRegisteredError)
    spans = []
    while True:
        end = idx.find(b"\n", pos)
        spans.append(idx[pos:end] if end >= 0 else idx[pos:])
        nxt = idx.find(key, end) if end >= 0 else -1
        if nxt < 0:
            break
        pos = nxt + 1
    orgs = []
    try:                                # netaddr parses every registration of the OUI; any error: ""
        with open(_REGISTRY[1], "rb") as fh:
            for span in spans:
                _, offset, size = (int(x) for x in span.split(b","))
                fh.seek(offset)
                org = ""
                for line in fh.read(size).decode("UTF-8").split("\n"):
                    line = line.strip()
                    if line and "(hex)" in line:
                        org = line.split(None, 2)[2]
                orgs.append(org)
    except Exception:
        return ""
    return orgs[0]


@lru_cache(maxsize=65536)
def _ip_ok(ip: str) -> bool:
    if not ip:
        return False
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (a.is_multicast or a.is_unspecified or str(a) == "255.255.255.255")


_MAC_OK: dict[str, bool] = {}
_MAC_OK_MAX = 65536


def _mac_ok(mac: str) -> bool:
    ok = _MAC_OK.get(mac)
    if ok is None:
        ok = len(mac) == 17 and mac != "00:00:00:00:00:00" and not int(mac[:2], 16) & 1   # group bit
        if len(_MAC_OK) < _MAC_OK_MAX:
            _MAC_OK[mac] = ok
    return ok


WELL_KNOWN = {("udp", 53): "dns", ("tcp", 53): "dns", ("udp", 67): "dhcp", ("udp", 68): "dhcp",
              ("udp", 123): "ntp", ("udp", 161): "snmp", ("tcp", 22): "ssh", ("tcp", 23): "telnet",
              ("tcp", 80): "http", ("tcp", 443): "https", ("tcp", 102): "s7comm", ("tcp", 44818): "enip",
              ("udp", 44818): "enip", ("tcp", 20000): "dnp3", ("udp", 47808): "bacnet", ("tcp", 21): "ftp"}
"""Names for non-OT services by IANA port (a label only: nothing here is decoded)."""


def ip_asset_id(ip: str, vlan: int = 0) -> str:
    """Asset id of a device known only by its IP: ``ip:<ip>`` untagged, ``ip:<ip>@vlan<n>`` on VLAN n."""
    return f"ip:{ip}@vlan{vlan}" if vlan else "ip:" + ip


@lru_cache(maxsize=65536)
def _scoped(ip: str) -> bool:
    """Loopback (127/8, ::1) and link-local (169.254/16, fe80::/10) addresses name a device only within
    one capture (one machine, one link): without a MAC they do not identify the same device elsewhere."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_loopback or a.is_link_local


def scope_tag(source: str) -> str:
    """A short, stable tag for a capture source: its file name and 6 hex digits of the full text
    (``lo.pcap#3fa2c1``), so two captures with the same name in different folders stay apart."""
    import hashlib

    base = source.rstrip("/").rsplit("/", 1)[-1] or source
    return f"{base[:40]}#{hashlib.blake2b(source.encode('utf-8', 'backslashreplace'), digest_size=3).hexdigest()}"


@lru_cache(maxsize=65536)
def _net(ip: str) -> tuple[int, str]:
    """(IP version, the /24 or /64 around *ip*): what "on the local subnet" means without a netmask."""
    a = ipaddress.ip_address(ip)
    plen = LOCAL_PREFIX_V4 if a.version == 4 else LOCAL_PREFIX_V6
    return a.version, str(ipaddress.ip_network(f"{ip}/{plen}", strict=False))


def max_concurrent(spans: Iterable[tuple[float, float]]) -> int:
    """Most (first, last) activity spans overlapping at one instant (touching ends do not overlap)."""
    live: list[float] = []
    best = 0
    for first, last in sorted(spans):
        while live and live[0] <= first:
            heapq.heappop(live)
        heapq.heappush(live, last)
        best = max(best, len(live))
    return best


@lru_cache(maxsize=4096)
def _label(protocol: str, transport: str, port: int) -> str:
    if protocol and protocol != "none":
        return protocol
    if transport.startswith("ip/"):
        return {"ip/1": "icmp", "ip/58": "icmpv6", "ip/2": "igmp"}.get(transport, transport)
    return WELL_KNOWN.get((transport, port), f"{transport}/{port}")


class Asset:
    """One asset in memory: its ``assets`` row and its child rows per table."""

    __slots__ = ("id", "row", "t")

    def __init__(self, row: dict):
        self.id = row["asset_id"]
        self.row = row
        self.t: dict[str, dict[tuple, dict]] = {name: {} for name in CHILD_TABLES}


def _tail(table: str, row: dict) -> tuple:
    return tuple(row[c] for c in PKS[table][1:])


class Inventory:
    """Asset inventory.  ``observe``/``note`` are O(1) in memory; ``flush`` writes a batch."""

    def __init__(self, db: Database, batch: int = DEFAULT_BATCH,
                 zone_of: Callable[[str], str | None] | None = None,
                 on_events: Callable[[list[AssetEvent]], None] | None = None):
        self.db = db
        self.batch = batch
        self.zone_of = zone_of
        """Policy hook: ``zone_of(ip, mac, vlan, asset_id) -> zone name`` (None when unzoned), e.g. the
        policy checker's ``zone_of`` (``analyze --policy`` sets it).  Fills each asset's ``zone`` column
        (when the asset is written) and enables ``modbus.cross_zone`` and graph clusters."""
        self.on_events = on_events
        self.assets: dict[str, Asset] = {}
        self.ip_owner: dict[tuple[int, str], str] = {}     # (vlan, ip) -> asset id
        self.mac_asset: dict[str, str] = {}
        self.mac_ips: dict[str, dict[tuple[int, str], list]] = {}
        """mac -> {(vlan, ip): [claimed by ARP, first seen, last seen]}: the gateway decision's evidence."""
        self.local_nets: set[tuple[int, int, str]] = set()
        """(vlan, IP version, /24 or /64) that ARP claims show on the segment: what is on-link."""
        self._no_gateway: dict[str, int] = {}
        """MAC -> len(local_nets) when a full read of its claims found no gateway (``_gateway_check``)."""
        self._link_vlan: dict[int, int] = {}
        self._agg_links: dict[int, tuple] = {}
        """link id -> (flush generation, vlan, client, server, their peer rows and keys): _on_aggregate's
        fast path, valid until the next flush."""
        self._flush_gen = 0
        self._dirty: dict[str, dict[tuple, dict]] = {name: {} for name in PKS}
        self._deleted: dict[str, set[tuple]] = {name: set() for name in PKS}
        self._dirty_assets = self._dirty["assets"]
        self._deleted_assets = self._deleted["assets"]
        self._events: list[AssetEvent] = []
        self._untaken: list[AssetEvent] = []
        self._flows: dict[int, tuple] = {}
        self._conn: dict[int, dict] = {}
        self._reclassify: set[str] = set()
        self._pending_names: dict[str, list[O.NameSeen]] = {}
        self._tagged: dict[str, set[int]] = {}
        """ip -> the tagged VLANs (≠ 0) it is known on: resolves evidence that names no VLAN."""
        self._since_flush = 0
        self.source = ""
        """The current evidence source (``SourceStart.source``): stored as ``capture`` beside every frame."""
        self._scope = ""
        """Suffix of the asset ids of loopback and link-local IPs without a MAC in this source (``_scoped``)."""
        self._writers: dict[str, _Writer] = {}
        self._base: dict[str, dict[tuple, tuple]] = {name: {} for name in PKS}
        """table -> pk -> the row as this writer last read or wrote it (stored form, ``_Writer`` column
        order): what another writer's changes are measured against (``merge``)."""
        self._data_version: int | None = None
        """``PRAGMA data_version`` after this writer's last read or write: another value means another
        connection committed since."""
        self.counts = {"observations": 0, "flushes": 0, "assets.dropped": 0, "rows.merged": 0,
                       "flushes.held": 0, "events.dropped": 0, "ip_owner.evicted": 0}
        self._unrowed: dict[tuple[int, str], str] = {}
        """(vlan, ip) -> asset id: ``ip_owner`` bindings with no address row (the asset's MAX_ADDRESSES rows
        were full), oldest first.  Nothing else bounds them -- a SYN flood of spoofed sources behind one
        router MAC bound ~1,024 a minute -- so past MAX_UNROWED_IPS the oldest go (``ip_owner.evicted``):
        no row names them, so the database does not change; such an IP seen again with its MAC is bound
        again (an ``address.new`` event, the asset's current IP), seen without a MAC it gets an IP asset."""
        self.write_wait: float | None = None
        """Seconds a batch waits for another process's write lock (None: ``store.lock_wait()``)."""
        self.hold_when_busy = False
        """The live sensor: a batch the lock refuses (``DatabaseBusy``) stays in memory for the next flush
        instead of raising; logged once when it starts and once when it is written again."""
        self._held_since = 0
        self._load()

    # ------------------------------------------------------------------ load / write
    def _writer(self, table: str) -> "_Writer":
        w = self._writers.get(table)
        if w is None:
            w = self._writers[table] = _Writer(self.db, table)
        return w

    def _load(self) -> None:
        snap: dict[str, list[dict]] = {}
        with read_snapshot(self.db):
            for t in PKS:
                w = self._writer(t)
                base = self._base[t]
                snap[t] = rows = []
                for raw in self.db.conn.execute(w.select_all):
                    base[w.pk_of(raw)] = raw
                    rows.append(w.decode(raw))
            self._data_version = self._version()
        for row in snap["assets"]:
            self.assets[row["asset_id"]] = a = Asset(row)
            if row["anchor"] == "mac":
                self.mac_asset[row["mac"]] = a.id
        for table in CHILD_TABLES:
            for row in snap[table]:
                a = self.assets.get(row["asset_id"])
                if a is not None:
                    a.t[table][_tail(table, row)] = row
        for a in self.assets.values():
            for (typ, value, vlan), r in a.t["addresses"].items():
                if typ == "ip":
                    self._own(vlan, value, a.id)
                    arp = r.get("how") == "arp"
                    if arp:
                        self._local_net(vlan, value)
                    if a.row["anchor"] == "mac":
                        self.mac_ips.setdefault(a.row["mac"], {})[(vlan, value)] = [
                            arp, r.get("first_seen") or 0.0, r.get("last_seen") or 0.0]
            via = a.row.get("via")
            if via and via in self.assets and self.assets[via].row["mac"]:
                self.mac_ips.setdefault(self.assets[via].row["mac"], {})[(a.row.get("vlan") or 0, a.row["ip"])] = [
                    False, a.row.get("first_seen") or 0.0, a.row.get("last_seen") or 0.0]

    def flush(self) -> list[AssetEvent]:
        """Write everything changed since the last flush in one transaction; return its events."""
        before = len(self._events)
        self._flush_gen += 1
        for aid in sorted(self._reclassify):     # sorted: the same event order whatever the hash seed
            a = self.assets.get(aid)
            if a is not None:
                self._classify(a)
        self._reclassify.clear()
        if len(self._events) != before:           # class.changed: decided here, told like the others
            new = self._events[before:]
            self._untaken.extend(new)
            if self.on_events is not None:
                self.on_events(new)
        events = self._events
        self._events = []
        if not any(self._dirty.values()) and not any(self._deleted.values()) and not events:
            self._since_flush = 0
            return events
        if self.zone_of is not None:
            self._zone_assets(self._dirty_assets.values())
        merged_events: list[AssetEvent] = []
        entered = False
        try:
            with write_transaction(self.db, self.write_wait):
                entered = True
                merged_events = self._write_batch(events)
        except DatabaseBusy as exc:
            if entered or not self.hold_when_busy:
                raise
            self._hold(events, exc)
            return events
        if self._held_since:
            log.info("inventory written again after %d refused batches (%d asset events dropped meanwhile)",
                     self._held_since, self.counts["events.dropped"])
            self._held_since = 0
        for table in PKS:
            self._dirty[table].clear()
            self._deleted[table].clear()
        self._since_flush = 0
        self.counts["flushes"] += 1
        if merged_events:
            self._untaken.extend(merged_events)
            if self.on_events is not None:
                self.on_events(merged_events)
        return events + merged_events

    def _hold(self, events: list[AssetEvent], exc: Exception) -> None:
        """The lock was refused: everything stays in memory for the next flush (bounded events)."""
        self.counts["flushes.held"] += 1
        self._events[:0] = events
        over = len(self._events) - MAX_HELD_EVENTS
        if over > 0:
            del self._events[:over]
            self.counts["events.dropped"] += over
        self._since_flush = 0
        if not self._held_since:
            log.warning("inventory not written yet, kept in memory (%d assets; observations are not lost): %s",
                        len(self.assets), exc)
        self._held_since += 1

    def _write_batch(self, events: list[AssetEvent]) -> list[AssetEvent]:
        """Inside the write transaction: merge if another writer committed, delete, upsert, log events."""
        merged_events: list[AssetEvent] = []
        if self._version() != self._data_version:    # another writer committed since: merge with it
            merged_events = self._merge_stored()
        for table in reversed(list(PKS)):           # children first, then assets
            base = self._base[table]
            for pk in self._deleted[table]:
                self.db[table].delete_where(" AND ".join(f"[{c}] = ?" for c in PKS[table]), list(pk))
                base.pop(pk, None)
        for table in PKS:                             # assets first, then children
            rows = self._dirty[table]
            if rows:
                self._write(table, rows.values())
        if events or merged_events:
            self._write_events(events + merged_events)
        self._data_version = self._version()
        return merged_events

    def _version(self) -> int:
        return self.db.conn.execute("PRAGMA data_version").fetchone()[0]

    def _merge_stored(self) -> list[AssetEvent]:
        """Inside the write transaction, after another writer committed: every row about to be written
        that the database holds differently from this writer's base becomes the merge of both
        (``merge.merge_row``); an asset so merged takes in the child rows only the database has, and is
        classified again.  Returns the events that classification raised."""
        conn = self.db.conn
        merged_assets: list[Asset] = []
        for table in PKS:
            w = self._writer(table)
            base = self._base[table]
            for pk, row in self._dirty[table].items():
                stored = conn.execute(w.select_one, pk).fetchone()
                if stored is None:
                    continue                      # new, or deleted by another writer: this view is all there is
                b = base.get(pk)
                if b is not None and b == stored:
                    continue                      # nobody else changed it
                M.merge_row(table, row, w.decode(stored), w.decode(b) if b is not None else None)
                base[pk] = stored
                self.counts["rows.merged"] += 1
                if table == "assets":
                    a = self.assets.get(pk[0])
                    if a is not None and a.row is row:
                        merged_assets.append(a)
        before = len(self._events)
        for a in merged_assets:
            self._take_children(a)
            self._classify(a)
        new = self._events[before:]
        del self._events[before:]
        return new

    def _take_children(self, a: Asset) -> None:
        """Child rows of *a* that another writer stored and this one does not hold: taken in as they are."""
        conn = self.db.conn
        for table in CHILD_TABLES:
            w = self._writer(table)
            rows = a.t[table]
            deleted = self._deleted[table]
            for raw in conn.execute(w.select_asset, (a.id,)):
                pk = w.pk_of(raw)
                key = pk[1:]
                if key in rows or pk in deleted or len(rows) >= _LIMITS[table]:
                    continue
                rows[key] = w.decode(raw)
                self._base[table][pk] = raw

    def _zone_assets(self, rows: Iterable[dict]) -> None:
        """The ``zone`` of each asset row about to be written, from the policy hook ("" when unzoned)."""
        zone_of = self.zone_of
        for r in rows:
            r["zone"] = zone_of(r["ip"] or "", r["mac"] or "", r.get("vlan") or 0, r["asset_id"]) or ""

    def _endpoint_zone(self, a: Asset, ip: str) -> str | None:
        """The hook's zone of *ip* as asset *a* (its MAC, VLAN and id)."""
        r = a.row
        return self.zone_of(ip, r["mac"] or "", r.get("vlan") or 0, a.id)

    def _write(self, table: str, rows: Iterable[dict]) -> None:
        """Upsert *rows* of *table*: the statement sqlite-utils' ``upsert_all`` builds (INSERT … ON CONFLICT
        (pk) DO UPDATE SET every other column), prepared once per table and run with ``executemany``.
        A row that does not fit the fast path (a column missing, a value sqlite3 cannot bind) sends the
        batch through ``upsert_all`` itself, so the result is the same either way.  What was written
        becomes each row's base (``merge``)."""
        w = self._writer(table)
        base = self._base[table]
        pk_of = w.pk_of
        try:
            params = w.params(rows)
            self.db.conn.executemany(w.sql, params)
            base.update((pk_of(p), p) for p in params)
        except (KeyError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
            self.counts["slow_writes"] = self.counts.get("slow_writes", 0) + 1
            self.db[table].upsert_all((_dump(table, r) for r in rows), pk=PKS[table])
            conn = self.db.conn
            for r in rows:
                pk = tuple(r[c] for c in PKS[table])
                base[pk] = conn.execute(w.select_one, pk).fetchone()

    def _write_events(self, events: list[AssetEvent]) -> None:
        self.db.conn.executemany(_EVENT_INSERT, [(e.type, e.asset_id, e.ts, e.frame, _ENCODE_EVENT(e.detail),
                                                  e.source) for e in events])

    def close(self) -> None:
        """The last flush (waiting the full ``store.lock_wait()`` even when ``hold_when_busy``), then close."""
        self.hold_when_busy = False
        self.write_wait = None
        try:
            self.flush()
        finally:
            self.db.close()

    def take_events(self) -> list[AssetEvent]:
        """Events since the last call (the alerting stage polls this)."""
        ev, self._untaken = self._untaken, []
        return ev

    # ------------------------------------------------------------------ consumer
    def note(self, obs: Any) -> list[AssetEvent]:
        """Fold one observation into memory; return the asset events it caused."""
        before = len(self._events)
        self.counts["observations"] += 1
        cls = type(obs)
        h = self._handlers.get(cls)
        if h is not None:
            h(self, obs)
        return self._settle(before, 1, cls is O.IntervalEnd)

    def _settle(self, before: int, n: int, flush: bool) -> list[AssetEvent]:
        """After *n* observations folded in: hand on the events they caused (from index *before*),
        flush when the batch is full or *flush*."""
        events = self._events
        if len(events) != before:
            new = events[before:]
            self._untaken.extend(new)
            if self.on_events is not None:
                self.on_events(new)
        else:
            new = []
        self._since_flush += n
        if self._since_flush >= self.batch or flush:
            self.flush()
        return new

    observe = note
    """The consumer interface (the pipeline ignores the events returned)."""

    def observe_aggregates(self, b: O.LinkAggregates) -> None:
        """The bulk consumer interface: *b* counts as its rows' ``Aggregate``s noted one by one (the
        same rows, counts, events and flushes), in slices that end where a batch is full."""
        rows, i = b.rows, 0
        while i < len(rows):
            part = rows[i:i + max(1, self.batch - self._since_flush)]
            before = len(self._events)
            self.counts["observations"] += len(part)
            self._fold_aggregates(b.protocol, b.link_id, b.client, b.server, b.server_port, part)
            self._settle(before, len(part), False)
            i += len(part)

    # ------------------------------------------------------------------ rows
    def _event(self, typ: str, aid: str, ts: float, frame: int, **detail) -> None:
        self._events.append(AssetEvent(typ, aid, ts, frame, detail, self.source))

    def _touch(self, table: str, row: dict) -> None:
        """*row* is written with the next batch (its primary key is read from the row)."""
        if table == "assets":
            self._touch_asset(row)
            return
        pk = _PK_GET[table](row)
        self._dirty[table][pk] = row
        self._deleted[table].discard(pk)

    def _touch_asset(self, row: dict) -> None:
        """``_touch("assets", row)``."""
        pk = (row["asset_id"],)
        self._dirty_assets[pk] = row
        self._deleted_assets.discard(pk)

    def _child(self, a: Asset, table: str, key: tuple, ts: float, frame: int, ip: str,
               init: dict | None = None) -> tuple[dict | None, bool]:
        """The child row *key* of asset *a* (created if room); (row, created)."""
        rows = a.t[table]
        row = rows.get(key)
        if row is not None:
            if ts > (row.get("last_seen") or 0):
                row["last_seen"] = ts
            if ts and ts < (row.get("first_seen") or ts):
                row["first_seen"] = ts
            pk = _PK_GET[table](row)                  # _touch(table, row)
            self._dirty[table][pk] = row
            self._deleted[table].discard(pk)
            return row, False
        if len(rows) >= _LIMITS[table]:
            d = a.row["dropped"]
            d[table] = d.get(table, 0) + 1
            self._touch_asset(a.row)
            return None, False
        row = {"asset_id": a.id}
        row.update(zip(PKS[table][1:], key))
        row.update({"ip": ip, "first_seen": ts, "last_seen": ts, "frame": frame, "capture": self.source})
        if init:
            row.update(init)
        rows[key] = row
        self._touch(table, row)
        return row, True

    def _seen(self, a: Asset, ts: float) -> None:
        r = a.row
        if ts and ts > (r["last_seen"] or 0):
            r["last_seen"] = ts
        if ts and (not r["first_seen"] or ts < r["first_seen"]):
            r["first_seen"] = ts
        self._touch_asset(r)

    # ------------------------------------------------------------------ identity of assets
    def _new_asset(self, aid: str, anchor: str, mac: str, ip: str, ts: float, frame: int, via: str = "",
                   vlan: int = 0) -> Asset | None:
        if len(self.assets) >= MAX_ASSETS:
            self.counts["assets.dropped"] += 1
            return None
        row = {"asset_id": aid, "anchor": anchor, "mac": mac, "vendor": oui_vendor(mac) if mac else "",
               "ip": ip, "vlan": vlan, "via": via, "zone": "", "device_class": "unknown", "class_confidence": 0.0,
               "class_reason": "no protocol behaviour seen", "gateway": 0, "first_seen": ts, "last_seen": ts,
               "first_frame": frame, "first_capture": self.source, "packets_sent": 0, "bytes_sent": 0, "packets_received": 0,
               "bytes_received": 0, "behaviour": {}, "dropped": {}}
        a = Asset(row)
        self.assets[aid] = a
        self._touch_asset(row)
        detail = {"mac": mac, "ip": ip, "vendor": row["vendor"], "via": via}
        if vlan:
            detail["vlan"] = vlan
        self._event("asset.new", aid, ts, frame, **detail)
        self._reclassify.add(aid)
        if mac:
            self._child(a, "addresses", ("mac", mac, 0), ts, frame, ip, {"how": "l2"})
        return a

    def _mac_asset(self, mac: str, ts: float, frame: int) -> Asset | None:
        aid = self.mac_asset.get(mac)
        if aid is not None:
            return self.assets[aid]
        a = self._new_asset("mac:" + mac, "mac", mac, "", ts, frame)
        if a is not None:
            self.mac_asset[mac] = a.id
        return a

    def _ip_asset(self, ip: str, vlan: int, ts: float, frame: int, via: str = "") -> Asset | None:
        aid = ip_asset_id(ip, vlan)
        if self._scope and _scoped(ip):
            aid += self._scope
        a = self.assets.get(aid)
        if a is None:
            a = self._new_asset(aid, "ip", "", ip, ts, frame, via, vlan)
            if a is None:
                return None
        self._bind_ip(a, ip, vlan, ts, frame, "ip")
        return a

    def _bind_ip(self, a: Asset, ip: str, vlan: int, ts: float, frame: int, how: str, last_ts: float = 0.0) -> None:
        key = (vlan, ip)
        owner = self.ip_owner.get(key)
        if owner == a.id:
            row = a.t["addresses"].get(("ip", ip, vlan))
            if row is not None:
                # the usual case (every flow's two ends): what ``_child`` does to an existing row and the
                # updates below, written out -- a call and an ``init`` dict fewer per host sighting
                if ts > (row.get("last_seen") or 0):
                    row["last_seen"] = ts
                if ts and ts < (row.get("first_seen") or ts):
                    row["first_seen"] = ts
                pk = _ADDR_PK(row)
                self._dirty["addresses"][pk] = row
                self._deleted["addresses"].discard(pk)
                if how == "arp" and row.get("how") != "arp":
                    row["how"] = "arp"
                if last_ts > (row.get("last_seen") or 0):
                    row["last_seen"] = last_ts
                return
        if owner != a.id:
            if owner is not None and owner in self.assets:
                old = self.assets[owner]
                if old.row["anchor"] == "ip" and not old.row["via"] and a.row["anchor"] == "mac":
                    self._merge(old, a, ts, frame)           # raw-IP evidence meets its MAC
                else:
                    detail = {"ip": ip, "old_asset": owner}
                    if vlan:
                        detail["vlan"] = vlan
                    self._event("address.moved", a.id, ts, frame, **detail)
                    old.t["addresses"].pop(("ip", ip, vlan), None)
                    self._deleted["addresses"].add((owner, "ip", ip, vlan))
                    self._dirty["addresses"].pop((owner, "ip", ip, vlan), None)
            elif a.row["ip"] and (a.row["ip"], a.row.get("vlan") or 0) != key:
                detail = {"ip": ip, "previous": a.row["ip"]}
                if vlan or a.row.get("vlan"):
                    detail.update(vlan=vlan, previous_vlan=a.row.get("vlan") or 0)
                self._event("address.new", a.id, ts, frame, **detail)
            self._own(vlan, ip, a.id)
            a.row["ip"], a.row["vlan"] = ip, vlan
            self._touch_asset(a.row)
            for n in self._pending_names.pop(ip, ()):
                self._name(a, n)
        row, _ = self._child(a, "addresses", ("ip", ip, vlan), ts, frame, ip, {"how": how})
        if row is None:
            if key not in self._unrowed:
                self._unrowed[key] = a.id
                if len(self._unrowed) > MAX_UNROWED_IPS:
                    self._forget_unrowed()
        else:
            if how == "arp" and row.get("how") != "arp":
                row["how"] = "arp"
            if last_ts > (row.get("last_seen") or 0):
                row["last_seen"] = last_ts

    def _forget_unrowed(self) -> None:
        """The oldest tenth of the bindings without an address row leave ``ip_owner`` (``_unrowed``)."""
        n = len(self._unrowed) // 10 + 1
        it = iter(self._unrowed.items())
        old = [next(it) for _ in range(n)]
        for key, aid in old:
            del self._unrowed[key]
            a = self.assets.get(aid)
            if self.ip_owner.get(key) == aid and (a is None or ("ip", key[1], key[0]) not in a.t["addresses"]):
                del self.ip_owner[key]
                if key[0]:
                    vl = self._tagged.get(key[1])
                    if vl is not None:
                        vl.discard(key[0])
                        if not vl:
                            del self._tagged[key[1]]
                self.counts["ip_owner.evicted"] += 1

    def _local_net(self, vlan: int, ip: str) -> None:
        if len(self.local_nets) < MAX_LOCAL_NETS:
            self.local_nets.add((vlan,) + _net(ip))

    def _off_link(self, vlan: int, ip: str) -> bool:
        """*ip* is outside every subnet ARP showed on *vlan* (False when ARP showed none of its family there)."""
        version, net = _net(ip)
        if (vlan, version, net) in self.local_nets:
            return False
        return any(v == vlan and fam == version for v, fam, _ in self.local_nets)

    def _gateway_evidence(self, claims: dict[tuple[int, str], list]) -> str:
        """Why the MAC behind *claims* routes, or "" (see the module docstring)."""
        unclaimed = [(k, v) for k, v in claims.items() if not v[0]]
        if len(unclaimed) < GATEWAY_MIN_IPS:
            return ""
        off = sorted(ip for (vlan, ip), _ in unclaimed if self._off_link(vlan, ip))
        if off:
            more = ", …" if len(off) > 3 else ""
            return f"{len(off)} of its {len(unclaimed)} IPs are off-link ({', '.join(off[:3])}{more})"
        n = max_concurrent((v[1], v[2]) for _, v in unclaimed)
        if n >= GATEWAY_MIN_IPS:
            return f"{n} of its {len(unclaimed)} IPs active at the same time"
        return ""

    def _gateway_check(self, mac: str, claims: dict[tuple[int, str], list], key: tuple[int, str],
                       c: list) -> str:
        """``_gateway_evidence(claims)`` after claim *c* (at *key*) was added or widened, read in full only
        where *c* can have changed it.  Each change of a claim of a MAC that is no gateway comes here, and
        everything else only takes evidence away (a claim becoming ARP-claimed), so after a full read
        of at least GATEWAY_MIN_IPS unclaimed IPs found none, with the same local nets (``local_nets`` only grows): an off-link IP can only be
        *c*'s, and three spans active at once must include *c* — and the others overlap *c*, so they
        are among the spans that touch it, where ``max_concurrent`` finds them as it would among all.
        A SYN flood behind a router's MAC made the full read (up to MAX_MAC_IPS claims, each looked up
        against the local nets, then sorted) once per new source: quadratic until the cap."""
        nets = len(self.local_nets)
        if self._no_gateway.get(mac) == nets:
            if c[0]:
                return ""
            if not self._off_link(*key):
                first, last = c[1], c[2]
                near = [(v[1], v[2]) for v in claims.values() if not v[0] and v[1] <= last and first <= v[2]]
                if len(near) < GATEWAY_MIN_IPS or max_concurrent(near) < GATEWAY_MIN_IPS:
                    return ""
        why = self._gateway_evidence(claims)
        if not why and sum(1 for v in claims.values() if not v[0]) >= GATEWAY_MIN_IPS:
            self._no_gateway[mac] = nets     # read in full, not only too few IPs to judge
        return why

    def _host(self, mac: str, ip: str, vlan: int, ts: float, frame: int, how: str,
              last_ts: float = 0.0) -> Asset | None:
        """The asset behind (mac, ip, vlan); creates and binds as needed.  See the module docstring.

        *last_ts*: the latest activity of (mac, ip, vlan) when known (HostTraffic, flow ends).
        """
        ipok = _ip_ok(ip)
        macok = _MAC_OK.get(mac)        # _mac_ok(mac), its cache read here: twice per flow end
        if macok is None:
            macok = _mac_ok(mac)
        if not macok:
            if not ipok:
                return None
            owner = self.ip_owner.get((vlan, ip))
            return self.assets[owner] if owner else self._ip_asset(ip, vlan, ts, frame)
        aid = self.mac_asset.get(mac)
        a = self.assets[aid] if aid is not None else self._mac_asset(mac, ts, frame)
        if a is None:
            return None
        if vlan:
            self._child(a, "addresses", ("vlan", str(vlan), vlan), ts, frame, ip, {"how": how})
        if not ipok:
            return a
        key = (vlan, ip)
        claims = self.mac_ips.get(mac)
        if claims is None:
            claims = self.mac_ips[mac] = {}
        c = claims.get(key)
        # the gateway evidence is looked at again only when what it reads changed (a claim added,
        # a span widened): past MAX_MAC_IPS a flood of new IPs behind one MAC changes nothing, and
        # reading 1,024 claims for every one of them made a SYN flood quadratic
        changed = True
        if c is None:
            c = [how == "arp", ts, max(ts, last_ts)]
            if len(claims) < MAX_MAC_IPS:
                claims[key] = c
            else:
                changed = False
        else:
            first, last = c[1], c[2]
            if not c[0] and how == "arp":
                c[0] = True
            if ts and (not c[1] or ts < c[1]):
                c[1] = ts
            m = last_ts if last_ts > ts else ts      # max(c[2], ts, last_ts), the same object kept
            if m > last:
                c[2] = m
            changed = c[1] != first or c[2] != last
        claimed = c[0]
        if how == "arp":
            self._local_net(vlan, ip)
        gateway = a.row["gateway"]
        if gateway and not claimed:
            owner = self.ip_owner.get(key)
            if owner and owner != a.id:
                return self.assets[owner]
            return self._ip_asset(ip, vlan, ts, frame, via=a.id)
        self._bind_ip(a, ip, vlan, ts, frame, how, last_ts)
        if not gateway and changed and len(claims) >= GATEWAY_MIN_IPS:
            why = self._gateway_check(mac, claims, key, c)
            if why:
                self._make_gateway(a, [k for k, v in claims.items() if not v[0]], ts, frame, why)
                if not claimed:
                    return self.assets.get(self.ip_owner.get(key, ""), a)
        return a

    def _make_gateway(self, gw: Asset, keys: list[tuple[int, str]], ts: float, frame: int, why: str) -> None:
        gw.row["gateway"] = 1
        gw.row["behaviour"]["gateway_evidence"] = why
        self._touch_asset(gw.row)
        self._event("asset.gateway", gw.id, ts, frame, ips=sorted(ip for _, ip in keys)[:32], count=len(keys),
                    reason=why)
        self._reclassify.add(gw.id)
        for vlan, ip in keys:
            if self.ip_owner.get((vlan, ip)) != gw.id:
                continue
            aid = ip_asset_id(ip, vlan)
            behind = self.assets.get(aid) or self._new_asset(aid, "ip", "", ip, ts, frame, gw.id, vlan)
            if behind is None:
                continue
            behind.row["via"] = gw.id
            # the IP's facts move along; the gateway keeps its own MAC and VLAN rows
            self._move(gw, behind, lambda r, ip=ip: r.get("ip") == ip and r.get("type") not in ("mac", "vlan"))
            self._own(vlan, ip, behind.id)
            behind.row["ip"], behind.row["vlan"] = ip, vlan
            self._child(behind, "addresses", ("ip", ip, vlan), ts, frame, ip, {"how": "ip"})
        remaining = [(v, vl) for (t, v, vl) in gw.t["addresses"] if t == "ip"]
        gw.row["ip"], gw.row["vlan"] = remaining[0] if remaining else ("", 0)

    def _merge(self, src: Asset, dst: Asset, ts: float, frame: int) -> None:
        self._move(src, dst, lambda r: True)
        for c in _COUNTERS:
            dst.row[c] += src.row[c]
        dst.row["first_seen"] = min(dst.row["first_seen"] or ts, src.row["first_seen"] or ts)
        dst.row["last_seen"] = max(dst.row["last_seen"] or ts, src.row["last_seen"] or ts)
        for key, owner in list(self.ip_owner.items()):
            if owner == src.id:
                self.ip_owner[key] = dst.id
        del self.assets[src.id]
        self._deleted["assets"].add((src.id,))
        self._dirty["assets"].pop((src.id,), None)
        self._touch_asset(dst.row)
        self._reclassify.discard(src.id)
        self._reclassify.add(dst.id)

    def _move(self, src: Asset, dst: Asset, pred: Callable[[dict], bool]) -> None:
        """Move child rows matching *pred* from *src* to *dst*, and repoint peers that name *src*."""
        for table in CHILD_TABLES:
            for key, row in list(src.t[table].items()):
                if not pred(row):
                    continue
                del src.t[table][key]
                old_pk = (src.id,) + key
                self._deleted[table].add(old_pk)
                self._dirty[table].pop(old_pk, None)
                if key in dst.t[table]:
                    continue
                row["asset_id"] = dst.id
                dst.t[table][key] = row
                self._touch(table, row)
        for other in self.assets.values():
            for key, row in list(other.t["peers"].items()):
                if row["peer_id"] == src.id and pred({"ip": row.get("peer_ip")}):
                    del other.t["peers"][key]
                    self._deleted["peers"].add((other.id,) + key)
                    self._dirty["peers"].pop((other.id,) + key, None)
                    row["peer_id"] = dst.id
                    nk = _tail("peers", row)
                    if nk not in other.t["peers"]:
                        other.t["peers"][nk] = row
                        self._touch("peers", row)
        self._reclassify.add(src.id)
        self._reclassify.add(dst.id)

    def _by_ip(self, ip: str, vlan: int, ts: float, frame: int) -> Asset | None:
        owner = self.ip_owner.get((vlan, ip))
        if owner is not None:
            return self.assets.get(owner)
        if not _ip_ok(ip):
            return None
        return self._ip_asset(ip, vlan, ts, frame)

    def _owner_any_vlan(self, ip: str) -> Asset | None:
        """The asset of *ip* when the evidence names no VLAN (a DNS answer): untagged first, else the
        only VLAN that has it; None when it is ambiguous or unknown."""
        owner = self.ip_owner.get((0, ip))
        if owner is None:
            vlans = self._tagged.get(ip, ())
            owner = self.ip_owner.get((next(iter(vlans)), ip)) if len(vlans) == 1 else None
        return self.assets.get(owner) if owner else None

    def _own(self, vlan: int, ip: str, aid: str) -> None:
        self.ip_owner[(vlan, ip)] = aid
        if vlan:
            self._tagged.setdefault(ip, set()).add(vlan)

    def _vlan(self, flow_id: int, link_id: int) -> int:
        info = self._flows.get(flow_id)
        if info is not None:
            return info[7]
        return self._link_vlan.get(link_id, 0)

    # ------------------------------------------------------------------ facts
    def _name(self, a: Asset, n: O.NameSeen) -> None:
        _, created = self._child(a, "names", (n.name, n.source), n.ts, n.frame, n.ip)
        if created:
            self._event("name.new", a.id, n.ts, n.frame, name=n.name, source=n.source)

    def _role(self, a: Asset, role: str, protocol: str, conf: float, reason: str, ts: float, frame: int,
              ip: str) -> dict | None:
        row, created = self._child(a, "roles", (role,), ts, frame, ip,
                                   {"protocol": protocol, "confidence": conf, "reason": reason, "detail": {}})
        if row is None:
            return None
        if created:
            self._event("role.new", a.id, ts, frame, role=role, confidence=conf, reason=reason)
            self._reclassify.add(a.id)
        elif conf > row["confidence"]:
            row["confidence"], row["reason"] = conf, reason
        return row

    def _service(self, a: Asset, protocol: str, transport: str, port: int, ts: float, frame: int, ip: str) -> None:
        _, created = self._child(a, "services", (protocol, transport, port), ts, frame, ip)
        if created:
            self._event("service.new", a.id, ts, frame, protocol=protocol, transport=transport, port=port)
            self._reclassify.add(a.id)

    def _peer(self, a: Asset, peer: Asset, protocol: str, direction: str, port: int, ts: float, frame: int,
              ip: str, peer_ip: str) -> dict | None:
        row, created = self._child(a, "peers", (peer.id, protocol, direction, port), ts, frame, ip)
        if created:
            row["peer_ip"], row["ops"], row["messages"] = peer_ip, {}, 0
        return row

    def _identity(self, a: Asset, f: I.Fact, ts: float, frame: int, ip: str, source: str) -> None:
        key = (f.protocol, f.attribute)
        row = a.t["identity"].get(key)
        if row is None:
            row, created = self._child(a, "identity", key, ts, frame, ip,
                                       {"value": f.value, "source": source, "last_frame": frame, "changes": 0,
                                        "last_capture": self.source})
            if created:
                self._event("identity.new", a.id, ts, frame, protocol=f.protocol, attribute=f.attribute,
                            value=f.value, source=source)
                self._reclassify.add(a.id)
            return
        if row["value"] != f.value:
            self._event("identity.changed", a.id, ts, frame, protocol=f.protocol, attribute=f.attribute,
                        old=row["value"], new=f.value, source=source)
            row["value"] = f.value
            row["changes"] = (row.get("changes") or 0) + 1
            row["first_seen"], row["frame"] = ts, frame      # the current value's first evidence
            row["capture"] = self.source
        row["source"] = source
        if ts >= (row.get("last_seen") or 0):
            row["last_seen"], row["last_frame"] = ts, frame
            row["last_capture"] = self.source
        row["ip"] = ip
        self._touch("identity", row)

    def _finding(self, a: Asset, hit: posture.Hit, msg: Any, ip: str) -> None:
        sev, title = posture.FINDINGS[hit.finding]
        evidence = {"protocol": msg.protocol, "message": msg.kind, "source": self.source, "frame": msg.frame,
                    "ts": msg.ts,
                    "client": msg.client, "server": msg.server, "port": msg.server_port}
        row, created = self._child(a, "findings", (hit.finding, hit.subject), msg.ts, msg.frame, ip,
                                   {"severity": sev, "title": title, "detail": hit.detail, "evidence": evidence,
                                    "count": 0})
        if row is None:
            return
        row["count"] += 1
        if created:
            self._event("finding.new", a.id, msg.ts, msg.frame, finding=hit.finding, severity=sev,
                        subject=hit.subject, detail=hit.detail)

    def _behaviour(self, a: Asset) -> dict:
        self._touch_asset(a.row)
        self._reclassify.add(a.id)
        return a.row["behaviour"]

    # ------------------------------------------------------------------ observation handlers
    def _on_source(self, o: O.SourceStart) -> None:
        """A new capture source: later frames count in it.  Loopback and link-local IPs known only by
        their address (no MAC) stop resolving to the assets of earlier sources: 127.0.0.1 in two
        captures is two machines (``_scoped``)."""
        self.source = o.source
        self._scope = "@" + scope_tag(o.source) if o.source else ""
        for key, aid in list(self.ip_owner.items()):
            if _scoped(key[1]):
                a = self.assets.get(aid)
                if a is None or a.row["anchor"] == "ip":
                    del self.ip_owner[key]

    def _on_host_seen(self, o: O.HostSeen) -> None:
        a = self._host(o.mac, o.ip, o.vlan, o.ts, o.frame, o.how)
        if a is not None:
            self._seen(a, o.ts)

    def _on_host_traffic(self, o: O.HostTraffic) -> None:
        a = self._host(o.mac, o.ip, o.vlan, o.first_ts, 0, "ip", o.last_ts)
        if a is None:
            return
        r = a.row
        r["packets_sent"] += o.packets_sent
        r["bytes_sent"] += o.bytes_sent
        r["packets_received"] += o.packets_received
        r["bytes_received"] += o.bytes_received
        self._seen(a, o.first_ts)
        self._seen(a, o.last_ts)

    def _on_flow_start(self, o: O.FlowStart) -> None:
        c = self._host(o.client_mac, o.client, o.vlan, o.ts, o.frame, "ip")
        s = self._host(o.server_mac, o.server, o.vlan, o.ts, o.frame, "ip")
        if len(self._flows) >= MAX_FLOWS:
            old = next(iter(self._flows))
            del self._flows[old]
            self._conn.pop(old, None)
        self._flows[o.flow_id] = (c.id if c else "", s.id if s else "", o.transport, o.server_port,
                                  o.protocol, o.client, o.server, o.vlan, o.client_mac, o.server_mac)
        if c is None or s is None or c is s:
            return
        label = _label(o.protocol, o.transport, o.server_port)
        row = self._peer(c, s, label, "client", o.server_port, o.ts, o.frame, o.client, o.server)
        if row is not None:
            ops = row["ops"]
            ops["flows"] = ops.get("flows", 0) + 1
        row = self._peer(s, c, label, "server", o.server_port, o.ts, o.frame, o.server, o.client)
        if row is not None:
            ops = row["ops"]
            ops["flows"] = ops.get("flows", 0) + 1

    def _on_flow_end(self, o: O.FlowEnd) -> None:
        info = self._flows.pop(o.flow_id, None)
        self._conn.pop(o.flow_id, None)
        if info is None:
            return
        cid, sid, transport, port, protocol, cip, sip, vlan, cmac, smac = info
        for mac, ip in ((cmac, cip), (smac, sip)):     # the flow's last packet extends both activity spans
            if _mac_ok(mac) and _ip_ok(ip):
                self._host(mac, ip, vlan, o.first_ts, 0, "ip", o.ts)
        s, c = self.assets.get(sid), self.assets.get(cid)
        flags = o.tcp_flags_seen
        label = _label(o.protocol if o.protocol and o.protocol != "none" else protocol, transport, port)
        answered = ("synack" in flags) if transport == "tcp" else o.packets_server > 0
        if s is not None and answered and port:
            self._service(s, label, transport, port, o.first_ts, 0, sip)
        if (c is not None and transport == "tcp" and "rst" in flags and "synack" not in flags
                and "data" not in flags):
            b = self._behaviour(c)
            refused = b.setdefault("refused", [])
            k = f"{sip}:{port}"
            if k not in refused and len(refused) < MAX_REFUSED:
                refused.append(k)
            b["refused_ports"] = len(refused)

    def _on_link_seen(self, o: O.LinkSeen) -> None:
        # A link is announced when a flow to a protocol's port starts, before any
        # message parsed (a refused SYN to 4840 makes one): roles wait for messages.
        if len(self._link_vlan) >= MAX_FLOWS:
            del self._link_vlan[next(iter(self._link_vlan))]
        self._link_vlan[o.link_id] = o.vlan
        self._by_ip(o.client, o.vlan, o.ts, o.frame)
        self._by_ip(o.server, o.vlan, o.ts, o.frame)

    def _on_message(self, m: O.Message) -> None:
        vlan = self._vlan(m.flow_id, m.link_id)
        c, s = self._by_ip(m.client, vlan, m.ts, m.frame), self._by_ip(m.server, vlan, m.ts, m.frame)
        if c is None or s is None:
            return
        ev = m.event
        proto = m.protocol
        if proto in SERVER_ROLE:
            if m.direction == "response":
                srole = self._role(s, SERVER_ROLE[proto], proto, 0.95, f"answered {m.kind} (frame {m.frame})",
                                   m.ts, m.frame, m.server)
                self._service(s, proto, "tcp", m.server_port, m.ts, m.frame, m.server)
            else:
                srole = self._role(s, SERVER_ROLE[proto], proto, 0.6,
                                   f"received {m.kind} from {m.client} (frame {m.frame})", m.ts, m.frame, m.server)
                self._role(c, CLIENT_ROLE[proto], proto, 0.9, f"sent {m.kind} (frame {m.frame})",
                           m.ts, m.frame, m.client)
        else:
            srole = None
        if proto == "modbus":
            self._modbus(m, c, s, srole)
        elif proto == "mqtt":
            self._mqtt(m, c, s)
        for f in I.facts(proto, ev):
            if f.side == "server" and proto == "mqtt" and m.direction != "response":
                continue
            a, ip = (s, m.server) if f.side == "server" else (c, m.client)
            self._identity(a, f, m.ts, m.frame, ip, f"{m.kind} frame {m.frame}")
        conn = self._conn.setdefault(m.flow_id, {}) if len(self._conn) < MAX_FLOWS else {}
        for hit in posture.message_hits(m, conn):
            a, ip = (s, m.server) if hit.side == "server" else (c, m.client)
            self._finding(a, hit, m, ip)

    def _modbus(self, m: O.Message, c: Asset, s: Asset, srole: dict | None) -> None:
        ev = m.event
        unit = getattr(ev, "unit", None)
        if unit is None and m.target.startswith("unit="):
            try:
                unit = int(m.target[5:].split("/", 1)[0])
            except ValueError:
                unit = None
        if srole is not None and unit is not None:
            units = srole["detail"].setdefault("units", [])
            if unit not in units and len(units) < MAX_ROLE_UNITS:
                units.append(unit)
                units.sort()
                self._reclassify.add(s.id)
        if m.direction == "request":
            fc = getattr(ev, "function", None)
            if fc is not None:
                b = self._behaviour(c)
                fcs = b.setdefault("modbus_fcs", [])
                if fc & 0x7F not in fcs:
                    fcs.append(fc & 0x7F)
                    fcs.sort()
        elif m.direction == "response" and srole is not None:
            hit = posture.Hit("server", "modbus.no_authentication", "",
                              "Modbus/TCP carries no authentication: any host that reaches "
                              f"{m.server}:{m.server_port} can read and write")
            self._finding(s, hit, m, m.server)
            if self.zone_of is not None:
                zc, zs = self._endpoint_zone(c, m.client), self._endpoint_zone(s, m.server)
                if zs and zc != zs:
                    self._finding(s, posture.Hit("server", "modbus.cross_zone", m.client,
                                                 f"client {m.client} in zone {zc or '(none)'}, server in {zs}"),
                                  m, m.server)

    def _mqtt(self, m: O.Message, c: Asset, s: Asset) -> None:
        ev = m.event
        name = I.event_name(ev)
        if m.direction != "request":
            return
        if "publish" in name:
            topic = I.text(I.attr(ev, "topic", default="")) or (m.target[6:] if m.target.startswith("topic=") else "")
            if topic:
                _, created = self._child(c, "topics", (topic, "publish"), m.ts, m.frame, m.client)
                if created:
                    b = self._behaviour(c)
                    b["mqtt_pub"] = b.get("mqtt_pub", 0) + 1
        elif "subscribe" in name and "unsub" not in name and "ack" not in name:
            for f in posture._filters(ev):
                _, created = self._child(c, "topics", (f, "subscribe"), m.ts, m.frame, m.client)
                if created:
                    b = self._behaviour(c)
                    b["mqtt_sub"] = b.get("mqtt_sub", 0) + 1
                    if "#" in f or "+" in f:
                        b["mqtt_wildcard"] = b.get("mqtt_wildcard", 0) + 1

    def _on_aggregate(self, g: O.Aggregate) -> None:
        self._fold_aggregates(g.protocol, g.link_id, g.client, g.server, g.server_port,
                              ((g.kind, g.op, g.target, g.direction, g.count, g.bytes, g.first_ts, g.last_ts,
                                g.interval_count, g.interval_bytes, g.first_frame, g.last_frame, g.key),))

    def _fold_aggregates(self, protocol: str, link_id: int, client: str, server: str, port: int,
                         rows: tuple) -> None:
        """Count the aggregate *rows* (``O.AGGREGATE_ROW``) of one link into its two peer rows and the
        client's behaviour, as one ``Aggregate`` after another would: a row whose link is resolved
        again (not by the cache) is counted alone; from the first row whose link is held by the cache
        on, the rest are summed once (nothing they count changes what the cache holds)."""
        i, n = 0, len(rows)
        while i < n:
            row = rows[i]
            if not row[8]:       # interval_count
                i += 1
                continue
            found, steady = self._agg_link(protocol, link_id, client, server, port, row[7])
            if found is None:
                i += 1
                continue
            if steady:
                self._aggregate_rows(protocol, *found, rows[i:] if i else rows)
                return
            self._aggregate_rows(protocol, *found, (row,))
            i += 1

    def _agg_hit(self, link_id: int, vlan: int, client: str, server: str) -> tuple | None:
        """(client asset, client peer row, server peer row) of a link resolved since the last flush,
        while each is still the one the maps hold (an asset merged or moved, an address re-owned, a
        peer row re-keyed since: None, the full path)."""
        hit = self._agg_links.get(link_id)
        if hit is None or hit[0] != self._flush_gen or hit[1] != vlan:
            return None
        _, _, c, s, crow, srow, ckey, skey = hit
        owner = self.ip_owner
        if (owner.get((vlan, client)) == c.id and owner.get((vlan, server)) == s.id
                and c.t["peers"].get(ckey) is crow and s.t["peers"].get(skey) is srow
                and self.assets.get(c.id) is c and self.assets.get(s.id) is s):
            return c, crow, srow
        return None

    def _agg_link(self, protocol: str, link_id: int, client: str, server: str, port: int,
                  ts: float) -> tuple[tuple | None, bool]:
        """(client asset, client peer row, server peer row) of a link (None when an end has no
        asset), and whether the cache holds them now (the link's next aggregate takes them as they
        are).  The full path finds, touches and marks both peer rows for writing with *ts*."""
        vlan = self._link_vlan.get(link_id, 0)
        hit = self._agg_hit(link_id, vlan, client, server)
        if hit is not None:
            return hit, True
        c = self.assets.get(self.ip_owner.get((vlan, client), ""))
        s = self.assets.get(self.ip_owner.get((vlan, server), ""))
        if c is None or s is None:
            return None, False
        crow = self._peer(c, s, protocol, "client", port, ts, 0, client, server)
        srow = self._peer(s, c, protocol, "server", port, ts, 0, server, client)
        if crow is None or srow is None or c is s:
            return (c, crow, srow), False
        if len(self._agg_links) >= MAX_FLOWS:
            self._agg_links.clear()
        self._agg_links[link_id] = (self._flush_gen, vlan, c, s, crow, srow,
                                    (s.id, protocol, "client", port), (c.id, protocol, "server", port))
        return (c, crow, srow), self._agg_hit(link_id, vlan, client, server) is not None

    def _aggregate_rows(self, protocol: str, c: Asset, crow: dict | None, srow: dict | None, rows) -> None:
        """Count aggregate *rows* (``O.AGGREGATE_ROW``) into the two peer rows of their link and the
        client's behaviour: per operation summed first, added in the order the operations appear."""
        by_op: dict = {}
        by_beh: dict = {}
        total, last, first = 0, 0, 0
        modbus, opcua = protocol == "modbus", protocol == "opcua"
        for kind, op, _t, _d, _c, _b, _f, ts, n, _ib, _ff, _lf, key in rows:
            if not n:
                continue
            if kind in DEVICE_ID_KINDS:
                op = "device_id"
            by_op[op] = by_op.get(op, 0) + n
            total += n
            if ts > last:
                last = ts
            if ts and (not first or ts < first):
                first = ts
            if modbus:
                if key and key[0] == 1:       # a request
                    by_beh[op] = by_beh.get(op, 0) + n
            elif opcua:
                k = "history_read" if "history_read" in kind else op
                by_beh[k] = by_beh.get(k, 0) + n
        for row in (crow, srow):
            if row is not None:
                ops = row["ops"]
                for op, n in by_op.items():
                    ops[op] = ops.get(op, 0) + n
                row["messages"] += total
                if last > (row["last_seen"] or 0):
                    row["last_seen"] = last
                if first and first < (row.get("first_seen") or first):
                    row["first_seen"] = first
        if by_beh:
            ops = self._behaviour(c).setdefault("modbus_ops" if modbus else "opcua_ops", {})
            for op, n in by_beh.items():
                ops[op] = ops.get(op, 0) + n

    def _on_name(self, n: O.NameSeen) -> None:
        a = None
        if _mac_ok(n.mac):      # the frame's sender (LLDP, DHCP): L2 evidence of the device itself
            a = self._mac_asset(n.mac, n.ts, n.frame)
            if a is None:
                return
            if a.row["gateway"] and n.ip:
                behind = self._owner_any_vlan(n.ip)
                if behind is not None and behind is not a:
                    a = behind
        elif n.ip:
            a = self._owner_any_vlan(n.ip)
        if a is None:
            if _ip_ok(n.ip) and len(self._pending_names) < MAX_PENDING_NAMES:
                lst = self._pending_names.setdefault(n.ip, [])
                if len(lst) < MAX_NAMES:
                    lst.append(n)
            return
        self._name(a, n)

    def _on_tls(self, t: O.TLSSeen) -> None:
        s = self._by_ip(t.server, self._vlan(t.flow_id, 0), t.ts, t.frame)
        if s is not None and t.direction == "response":
            self._service(s, (t.carried or "tls") + "+tls", "tcp", t.server_port, t.ts, t.frame, t.server)

    _handlers: dict = {
        O.SourceStart: _on_source, O.HostSeen: _on_host_seen, O.HostTraffic: _on_host_traffic, O.FlowStart: _on_flow_start,
        O.FlowEnd: _on_flow_end, O.LinkSeen: _on_link_seen, O.Message: _on_message,
        O.Aggregate: _on_aggregate, O.NameSeen: _on_name, O.TLSSeen: _on_tls,
    }

    # ------------------------------------------------------------------ classification
    def _classify(self, a: Asset) -> None:
        roles = {k[0]: v for k, v in a.t["roles"].items()}
        cls, conf, why = R.classify(a.row, roles, a.row["behaviour"], a.t["identity"], a.t["services"])
        r = a.row
        if (cls, conf, why) != (r["device_class"], r["class_confidence"], r["class_reason"]):
            if cls != r["device_class"] and r["device_class"] not in ("", "unknown"):
                self._event("class.changed", a.id, r["last_seen"] or 0, 0, old=r["device_class"], new=cls,
                            reason=why)
            r["device_class"], r["class_confidence"], r["class_reason"] = cls, conf, why
            self._touch_asset(r)


# ---------------------------------------------------------------------- (de)serialise
_EVENT_INSERT = ("INSERT INTO [asset_events] ([type], [asset_id], [ts], [frame], [detail], [capture])"
                 " VALUES (?, ?, ?, ?, ?, ?)")


_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode
"""``json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)`` without building an encoder per call."""
_ENCODE_EVENT = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _dumps(v: Any) -> str:
    return _ENCODE(v or {})


class _Writer:
    """The prepared statements of one table: every column of the table (as the database has it), in order.

    ``sql`` upserts a row; ``select_one`` (pk), ``select_asset`` (asset_id) and ``select_all`` read rows in
    the same column order, the stored form ``params`` makes (a tuple, JSON as text)."""

    __slots__ = ("sql", "getter", "json_idx", "cols", "select_one", "select_asset", "select_all", "pk_of")

    def __init__(self, db: Database, table: str):
        self.cols = cols = [c.name for c in db[table].columns]
        pk = PKS[table]
        q = ", ".join(f"[{c}]" for c in cols)
        upd = ", ".join(f"[{c}] = excluded.[{c}]" for c in cols if c not in pk)
        self.sql = (f"INSERT INTO [{table}] ({q}) VALUES ({', '.join('?' * len(cols))}) "
                    f"ON CONFLICT({', '.join(f'[{c}]' for c in pk)}) "
                    + (f"DO UPDATE SET {upd}" if upd else "DO NOTHING"))
        self.select_all = f"SELECT {q} FROM [{table}]"
        self.select_one = self.select_all + " WHERE " + " AND ".join(f"[{c}] = ?" for c in pk)
        self.select_asset = self.select_all + " WHERE [asset_id] = ?"
        self.getter = itemgetter(*cols)
        idx = [cols.index(c) for c in pk]
        self.pk_of = (lambda raw, i=idx[0]: (raw[i],)) if len(idx) == 1 else itemgetter(*idx)
        self.json_idx = tuple(i for i, c in enumerate(cols) if c in JSON_COLUMNS.get(table, ()))

    def params(self, rows: Iterable[dict]) -> list[tuple]:
        get = self.getter
        if not self.json_idx:
            return [get(r) for r in rows]
        out = []
        ji = self.json_idx
        for r in rows:
            v = list(get(r))
            for i in ji:
                v[i] = _dumps(v[i])
            out.append(tuple(v))
        return out

    def decode(self, raw: tuple) -> dict:
        """A stored row (this writer's column order) as the row dict the inventory holds."""
        row = dict(zip(self.cols, raw))
        for i in self.json_idx:
            v = raw[i]
            try:
                row[self.cols[i]] = json.loads(v) if v else {}
            except ValueError:
                row[self.cols[i]] = {}
        return row


def _dump(table: str, row: dict) -> dict:
    cols = JSON_COLUMNS.get(table)
    if not cols:
        return dict(row)
    out = dict(row)
    for c in cols:
        out[c] = json.dumps(out.get(c) or {}, ensure_ascii=False, sort_keys=True, default=str)
    return out


def _undump(table: str, row: dict) -> dict:
    for c in JSON_COLUMNS.get(table, ()):
        v = row.get(c)
        try:
            row[c] = json.loads(v) if v else {}
        except ValueError:
            row[c] = {}
    return row


def load_rows(db: Database, tables: Iterable[str] = tuple(PKS) + ("asset_events",)) -> dict[str, list[dict]]:
    """Every row of the inventory tables, JSON columns decoded (the CLI and the store share this)."""
    out = {}
    with read_snapshot(db):
        for t in tables:
            if not db[t].exists():
                out[t] = []
                continue
            out[t] = [_undump(t, dict(r)) for r in db[t].rows]
    return out
