"""From the inventory to the outbox: one ``asset`` record per change the inventory learns.

A small consumer beside the inventory, not inside it::

    feed = AssetChanges(outbox, inventory, quiet_after=600)
    inventory.on_events = feed.on_events     # the inventory's hook: each batch of AssetEvents, as learnt
    consumers = [..., inventory, feed, ...]  # feed.observe: at every IntervalEnd, quiet assets + append
    feed.tick(now)                           # the sensor's heartbeat: quiet assets on a silent network
    feed.flush()                             # append what is pending (at stop)

Records (kind ``asset``, ``body["event"]`` says which change; stable ids from
the inventory's ``EVENT_TYPES`` and the two of this module):

* the inventory's events listed in ``CHANGES`` (``asset.new``, ``identity.changed``
  — firmware, vendor, model —, ``role.new``, ``class.changed`` …), each with the
  event's detail, the asset's IP, MAC, vendor and class, and its evidence
  (``capture``, ``frame``, packet time ``ts``);
* ``asset.quiet``: an asset seen during this run has not been seen for
  ``quiet_after`` seconds (packet time at an interval's end; on a network gone
  silent, the heartbeat's clock less one interval — a live capture's packet
  time is that clock, and the current interval's traffic is folded in at its
  end); ``asset.back`` when it is seen again after that.  Assets only known from earlier runs
  are not reported quiet: they were not talking to begin with.

``finding.new`` is sent here (severity ``low``) only when its ``posture.*``
rule is not raised as an alert (``alerted``: the sensor's detection settings;
by default the configuration findings, ``catalogue.FINDING_ONLY``): the SIEM
learns each finding once, either as an alert or as an asset record.  Every
value is stored as received; the sinks' formats escape it.

The outbox may refuse an append (disk full, locked past the wait, read-only):
``sinks.pending.Pending`` holds the records for the next flush, and counts and
reports what its bound drops.  Never an exception into the capture loop.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .pending import MAX_PENDING, Pending

CHANGES = {
    "asset.new": "info",
    "asset.gateway": "info",
    "address.new": "info",
    "address.moved": "low",        # a device replaced, or an address taken over (spoofing)
    "name.new": "info",
    "role.new": "info",
    "service.new": "info",
    "identity.new": "info",
    "identity.changed": "low",     # firmware, vendor, model changed (the alert identity.* says how bad)
    "class.changed": "info",
    "asset.quiet": "low",
    "asset.back": "info",
}
"""Change → severity of its record.  Low at most: the alerts rate what is dangerous; these
records keep a SIEM's or CMDB's view of the plant in step with the inventory."""
NOT_SENT = {"finding.new": "sent only when its posture.* rule is not an alert (the configuration findings, by "
                           "default); otherwise it reaches the outbox as that alert"}
FINDING_SEVERITY = "low"
"""A configuration finding as an asset record: low, like the other records (the alert, when turned on, rates it)."""
OWN_EVENTS = ("asset.quiet", "asset.back")
"""Changes this module decides (the others are the inventory's ``EVENT_TYPES``)."""

QUIET_AFTER = 600.0
"""Seconds without a packet before an asset that was talking is reported quiet.  A PLC polled
every second, or an MQTT client with the usual 60 s keep-alive, is never silent for ten minutes
while it works.  Devices that only talk now and then give quiet/back pairs: raise it
(``asset_quiet_after`` in the sensor's config)."""
RAW_BATCH = 10_000
"""Changes kept as they came before they are made into records (a sweep making thousands of assets)."""
MAX_LIST = 32
"""Items of a list in a detail (a gateway's IPs) put into the record, joined with commas."""


_OWN_KEYS = frozenset({"event", "asset_id", "capture", "frame", "message"})
"""Body keys a detail may not overwrite (a detail key of that name is stored as ``detail_<key>``)."""


def _flat(v: Any) -> Any:
    if isinstance(v, (list, tuple, set)):
        return ",".join(str(x) for x in list(v)[:MAX_LIST])
    if isinstance(v, dict):
        return ",".join(f"{k}:{x}" for k, x in list(v.items())[:MAX_LIST])
    return v


def _message(event: str, aid: str, ip: str, d: dict) -> str:
    who = f"{aid}" + (f" ({ip})" if ip and ip not in aid else "")
    if event == "asset.new":
        return f"new asset {who}" + (f", vendor {d['vendor']}" if d.get("vendor") else "")
    if event == "identity.changed":
        return f"asset {who}: {d.get('protocol', '')} {d.get('attribute', '')} changed from {d.get('old', '')} " \
               f"to {d.get('new', '')}"
    if event == "identity.new":
        return f"asset {who}: {d.get('protocol', '')} {d.get('attribute', '')} is {d.get('value', '')}"
    if event == "role.new":
        return f"asset {who} has a new role: {d.get('role', '')}"
    if event == "class.changed":
        return f"asset {who} is now a {d.get('new', '')} (was {d.get('old', '')})"
    if event == "address.new":
        return f"asset {who} uses a new address {d.get('ip', '')}"
    if event == "address.moved":
        return f"address {d.get('ip', '')} moved from {d.get('old_asset', '')} to {aid}"
    if event == "name.new":
        return f"asset {who} is named {d.get('name', '')}"
    if event == "service.new":
        return f"asset {who} offers {d.get('protocol', '')} on {d.get('transport', '')}/{d.get('port', '')}"
    if event == "asset.gateway":
        return f"asset {who} is a gateway for {d.get('count', 0)} addresses"
    if event == "asset.quiet":
        return f"asset {who} has gone quiet (last seen {d.get('silent_s', 0):.0f} s ago)"
    if event == "finding.new":
        return f"asset {who}: posture finding {d.get('finding', '')}" + \
            (f" ({d['subject']})" if d.get("subject") else "") + (f": {d['detail']}" if d.get("detail") else "")
    if event == "asset.back":
        return f"asset {who} is talking again after {d.get('silent_s', 0):.0f} s"
    return f"asset {who}: {event}"


class AssetChanges:
    def __init__(self, outbox, inventory, quiet_after: float = QUIET_AFTER, max_pending: int = MAX_PENDING,
                 alerted: Callable[[str], bool] | None = None):
        if alerted is None:
            from ..alerts.settings import AlertSettings

            alerted = AlertSettings().enabled
        self.alerted = alerted
        """rule id -> whether the sensor raises it as an alert (a finding of such a rule is not sent here)."""
        self.outbox = outbox
        self.inventory = inventory
        self.quiet_after = float(quiet_after)
        self.out = Pending(outbox, "asset change", max_pending)
        self._raw: list[tuple] = []
        self.events = 0
        assets = getattr(inventory, "assets", {})
        self._known = {aid: (a.row.get("last_seen") or 0.0) for aid, a in assets.items()}
        """last_seen of the assets the inventory held at start: seen in this run once it grows."""
        self._quiet: dict[str, tuple[float, float]] = {}   # asset id -> (when reported quiet, its last_seen then)

    # -- input ---------------------------------------------------------------
    def on_events(self, events: Iterable) -> None:
        """The inventory's ``on_events`` hook (in memory; appended at the next flush)."""
        for e in events:
            self.events += 1
            sev = CHANGES.get(e.type)
            if e.type == "finding.new" and not self.alerted("posture." + str(e.detail.get("finding", ""))):
                sev = FINDING_SEVERITY
            if sev is not None:
                self._add(e.type, e.asset_id, sev, e.ts, e.frame, e.source, e.detail)

    def observe(self, obs: Any) -> None:
        end = getattr(obs, "end_ts", None)
        if end is not None and getattr(obs, "type", "") == "interval.end":
            self.tick(end)

    def observe_aggregates(self, b: Any) -> None:
        """Aggregates change no asset record (the inventory folds them in; its events come through
        ``on_events``): taking them in bulk keeps the sensor's pipeline on the bulk path."""

    def tick(self, now: float) -> None:
        """Look for assets gone quiet or back at time *now*, then append what is pending.

        Between two interval ends the inventory has not yet folded in the current interval's host
        traffic, so a caller on a wall clock (the sensor's heartbeat) passes ``time.time() - interval``.
        """
        self._check_quiet(now)
        self.flush()

    def finish(self) -> None:
        self.flush()

    # -- decisions -----------------------------------------------------------
    def _check_quiet(self, now: float) -> None:
        for aid, a in self.inventory.assets.items():
            seen = a.row.get("last_seen") or 0.0
            was = self._quiet.get(aid)
            if was is not None:
                if seen > was[0]:                     # a packet after it was declared quiet
                    del self._quiet[aid]
                    self._add("asset.back", aid, CHANGES["asset.back"], seen, 0, "", {"silent_s": seen - was[1]})
                continue
            if seen <= self._known.get(aid, -1.0):
                continue                              # not seen in this run
            if now - seen >= self.quiet_after:
                self._quiet[aid] = (now, seen)
                self._add("asset.quiet", aid, CHANGES["asset.quiet"], now, 0, "",
                          {"last_seen": seen, "silent_s": now - seen})

    def _add(self, event: str, aid: str, severity: str, ts: float, frame: int, source: str, detail: dict) -> None:
        self._raw.append((event, aid, severity, ts, frame, source, detail))
        if len(self._raw) >= RAW_BATCH:
            self._make()

    def _make(self) -> None:
        """Turn the changes since the last flush into records, with what the inventory knows *now* of
        each asset (an asset is new at its first ARP packet; its IP and class come a little later)."""
        raw, self._raw = self._raw, []
        self.out.add(self._record(*x) for x in raw)

    def _record(self, event: str, aid: str, severity: str, ts: float, frame: int, source: str, detail: dict):
        a = self.inventory.assets.get(aid)
        row = a.row if a is not None else {}
        ip = row.get("ip") or detail.get("ip") or ""
        body = {"event": event, "asset_id": aid, "ip": ip, "mac": row.get("mac") or "",
                "vendor": row.get("vendor") or "", "device_class": row.get("device_class") or "",
                "capture": source, "frame": frame}
        for k, v in detail.items():
            if v in ("", None) and k in body:
                continue                               # the asset's current value says more
            body["learned_from" if k == "source" else f"detail_{k}" if k in _OWN_KEYS else k] = _flat(v)
        body["message"] = _message(event, aid, row.get("ip") or "", body)
        rid = f"asset:{aid}:{event}:{ts:.6f}:{frame}"
        if event.startswith("identity."):
            rid += f":{detail.get('protocol', '')}:{detail.get('attribute', '')}"
        elif event == "role.new":
            rid += f":{detail.get('role', '')}"
        elif event == "finding.new":
            rid += f":{detail.get('finding', '')}:{detail.get('subject', '')}"
        return ("asset", rid, severity, ts, body)

    # -- output --------------------------------------------------------------
    def flush(self) -> int:
        """Append what is pending in one transaction; returns how many records went in."""
        self._make()
        return self.out.flush()
