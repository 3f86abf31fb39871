"""Inventory asset events → alerts (``posture.*``, ``identity.*``, ``baseline.new_asset``).

Contract
--------
``AssetEventMapper(sink, ctx, inventory).pull()`` takes the inventory's
events since the last call (``Inventory.take_events()``) and raises:

* ``finding.new`` → ``posture.<finding id>`` keyed (asset, finding, subject):
  the inventory reports each finding once per asset and subject, ever (it
  persists them), so a re-run adds nothing;
* ``identity.changed`` → ``identity.firmware_changed`` / ``device_changed`` /
  ``certificate_changed`` / ``attribute_changed`` (``catalogue.identity_rule``)
  keyed (asset, protocol, attribute, new value): a device flipping between two
  firmware versions is two alerts, the same change seen again is one;
* ``address.moved`` → ``identity.address_moved`` keyed (IP, VLAN, new owner);
* ``asset.new`` → ``baseline.new_asset`` keyed (asset,), **only when the
  inventory already held assets when the run began** (``report_new_assets``):
  the first analysis of a site builds the inventory and alerts on nothing
  new; later ones alert on devices never seen before (the same rule and key
  the baseline detector uses, so both give one alert).

Evidence is the event's frame and time; the flow is not known (0).
"""
from __future__ import annotations

from typing import Any

from .catalogue import POSTURE_PREFIX, RULES, finding, identity_rule
from .context import Context
from .model import AlertSink

MAX_VALUE = 128
"""Characters of an identity value quoted in a message (the full value stays in the inventory)."""


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= MAX_VALUE else s[:MAX_VALUE] + "…"


class AssetEventMapper:
    def __init__(self, sink: AlertSink, ctx: Context, inventory: Any, report_new_assets: bool | None = None):
        self.sink = sink
        self.ctx = ctx
        self.inventory = inventory
        if report_new_assets is None:
            report_new_assets = bool(getattr(inventory, "assets", None))
        self.report_new_assets = report_new_assets
        self.counts = {"events": 0, "mapped": 0}

    def _ip(self, aid: str) -> str:
        a = self.inventory.assets.get(aid) if hasattr(self.inventory, "assets") else None
        return (a.row.get("ip") or "") if a is not None else ""

    def pull(self) -> None:
        for e in self.inventory.take_events():
            self.counts["events"] += 1
            h = self._HANDLERS.get(e.type)
            if h is not None:
                h(self, e)

    def _finding(self, e) -> None:
        d = e.detail
        rid = POSTURE_PREFIX + str(d.get("finding", ""))
        if rid not in RULES:
            return
        ip = self._ip(e.asset_id)
        subject = _short(d.get("subject", ""))
        msg = f"{RULES[rid].title} on {ip or e.asset_id}" + (f" ({subject})" if subject else "")
        if d.get("detail"):
            msg += f": {_short(d['detail'])}"
        self.counts["mapped"] += 1
        self.sink.raise_finding(finding(rid, (e.asset_id, d.get("finding"), d.get("subject", "")), msg,
                                        self.ctx.evidence(e.frame, e.ts), dst=ip, dst_asset=e.asset_id,
                                        details={"subject": d.get("subject", ""), "detail": d.get("detail", "")}))

    def _identity(self, e) -> None:
        d = e.detail
        attr = str(d.get("attribute", ""))
        rid = identity_rule(attr)
        ip = self._ip(e.asset_id)
        msg = (f"{attr} of {ip or e.asset_id} changed from {_short(d.get('old', ''))!r} to "
               f"{_short(d.get('new', ''))!r}")
        self.counts["mapped"] += 1
        self.sink.raise_finding(finding(rid, (e.asset_id, d.get("protocol", ""), attr, str(d.get("new", ""))), msg,
                                        self.ctx.evidence(e.frame, e.ts), dst=ip, dst_asset=e.asset_id,
                                        protocol=str(d.get("protocol", "")),
                                        details={"attribute": attr, "old": d.get("old", ""), "new": d.get("new", ""),
                                                 "source": d.get("source", "")}))

    def _moved(self, e) -> None:
        d = e.detail
        ip = str(d.get("ip", ""))
        self.counts["mapped"] += 1
        self.sink.raise_finding(finding("identity.address_moved", (ip, d.get("vlan", 0), e.asset_id),
                                        f"IP {ip} moved from asset {d.get('old_asset', '')} to {e.asset_id} "
                                        f"(device replaced, or address spoofing)",
                                        self.ctx.evidence(e.frame, e.ts), src=ip, src_asset=e.asset_id,
                                        dst_asset=str(d.get("old_asset", "")), details=dict(d)))

    def _new_asset(self, e) -> None:
        if not self.report_new_assets:
            return
        d = e.detail
        ip = str(d.get("ip", ""))
        what = ", ".join(x for x in (ip, str(d.get("mac", "")), str(d.get("vendor", ""))) if x)
        self.counts["mapped"] += 1
        self.sink.raise_finding(finding("baseline.new_asset", (e.asset_id,), f"New asset {what} ({e.asset_id})",
                                        self.ctx.evidence(e.frame, e.ts), src=ip, src_asset=e.asset_id,
                                        details=dict(d)))

    _HANDLERS = {"finding.new": _finding, "identity.changed": _identity, "address.moved": _moved,
                 "asset.new": _new_asset}
