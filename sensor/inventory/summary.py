"""Read-side helpers shared by the CLI and the graph: group rows per asset, name assets,
summarise identity, resolve what a user types (id, IP, MAC, host name) to an asset."""
from __future__ import annotations

import datetime as _dt

from .model import CHILD_TABLES

IDENTITY_SUMMARY = (
    ("modbus", ("VendorName", "ProductName", "MajorMinorRevision")),
    ("opcua", ("ApplicationName", "ProductUri")),
    ("mqtt", ("broker_version",)),
)


def by_asset(snap: dict) -> dict[str, dict[str, list[dict]]]:
    out = {a["asset_id"]: {t: [] for t in CHILD_TABLES + ("asset_events",)} for a in snap["assets"]}
    for t in CHILD_TABLES + ("asset_events",):
        for r in snap.get(t, ()):
            if r["asset_id"] in out:
                out[r["asset_id"]][t].append(r)
    return out


def best_name(asset: dict, kids: dict) -> str:
    names = sorted(kids["names"], key=lambda n: ({"lldp": 0, "dhcp": 1, "nbns": 2}.get(n["source"], 3), n["name"]))
    return names[0]["name"] if names else ""


def identity_line(kids: dict) -> str:
    ident = {(r["protocol"], r["attribute"]): r["value"] for r in kids["identity"]}
    for proto, attrs in IDENTITY_SUMMARY:
        vals = [ident[(proto, a)] for a in attrs if (proto, a) in ident]
        if vals:
            return " ".join(vals)
    cids = sorted(r["value"] for r in kids["identity"] if r["attribute"].endswith(".ClientId"))
    if cids:
        return "mqtt " + ",".join(cids)
    apps = sorted(r["value"] for r in kids["identity"] if r["attribute"].endswith("].ApplicationName"))
    return "opcua " + ",".join(apps) if apps else ""


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def with_vlan(ip: str, vlan: int | None) -> str:
    """An IP as shown: ``10.0.0.5``, or ``10.0.0.5@vlan20`` on a tagged VLAN."""
    return f"{ip}@vlan{vlan}" if ip and vlan else ip


def resolve(snap: dict, what: str) -> list[dict]:
    """Assets matching an asset id (or a unique prefix), an IP (``IP@vlanN`` for one VLAN), a MAC or a
    host name."""
    w = what.strip().lower()
    exact = [a for a in snap["assets"] if a["asset_id"].lower() == w]
    if exact:
        return exact
    ids = set()
    for r in snap["addresses"]:
        if r["type"] in ("ip", "mac") and w in (r["value"].lower(), with_vlan(r["value"], r.get("vlan")).lower()):
            ids.add(r["asset_id"])
    for r in snap["names"]:
        n = r["name"].lower()
        if n == w or n.split(".", 1)[0] == w:
            ids.add(r["asset_id"])
    if not ids:
        ids = {a["asset_id"] for a in snap["assets"] if a["asset_id"].lower().startswith(w)
               or a["asset_id"].lower().split(":", 1)[-1].startswith(w)}
    return [a for a in snap["assets"] if a["asset_id"] in ids]
