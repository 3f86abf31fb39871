"""The inventory schema, as versioned sqlite-utils migrations.

Rule: a schema change is a new ``@migrations()`` function appended below,
never an edit of one already shipped, and never ``alter=True`` at write time.
``docs/inventory.md`` documents every table and column (a test checks it).
Applied migrations are recorded in ``_sqlite_migrations`` (set
``otwatch.inventory``); ``apply`` is safe to re-run.

Every child table carries ``asset_id`` (a foreign key to ``assets``) and the
evidence of its fact: ``ip`` (the address it was seen on), ``first_seen``,
``last_seen`` (packet time), ``frame`` (the packet number of the first
evidence, as in Wireshark) and ``capture`` (the source that frame counts in:
the capture file as given, or ``iface:<name>``; m0003).

The database is shared (``sensor.store``): ``open_write`` applies this set with
every other registered one under one write lock.
"""
from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("otwatch.inventory")

FK = [("asset_id", "assets", "asset_id")]


@migrations()
def m0001_inventory(db: Database) -> None:
    db["assets"].create(
        {
            "asset_id": str,         # "m-<mac hex>" (anchored on a MAC) or "i-<ip>" (no MAC, or behind a gateway)
            "anchor": str,           # "mac" | "ip"
            "mac": str,              # the anchoring MAC ("" for ip-anchored)
            "vendor": str,           # IEEE OUI registry organisation for mac ("" if unregistered/local)
            "ip": str,               # the most recent IP address
            "via": str,              # asset_id of the gateway an ip-anchored asset sits behind
            "zone": str,             # policy zone (filled once the policy issue lands)
            "device_class": str,     # model.DEVICE_CLASSES
            "class_confidence": float,
            "class_reason": str,
            "gateway": int,          # 1 when the MAC fronts several IPs
            "first_seen": float,
            "last_seen": float,
            "first_frame": int,
            "packets_sent": int,
            "bytes_sent": int,
            "packets_received": int,
            "bytes_received": int,
            "behaviour": str,        # JSON: counters the classifier reads (function codes, ops …)
            "dropped": str,          # JSON: {list: entries dropped at the cap}
        },
        pk="asset_id",
    )
    db["assets"].create_index(["ip"])
    db["assets"].create_index(["mac"])
    db["addresses"].create(
        {"asset_id": str, "type": str, "value": str, "how": str, "ip": str,
         "first_seen": float, "last_seen": float, "frame": int},
        pk=("asset_id", "type", "value"), foreign_keys=FK,
    )
    db["addresses"].create_index(["type", "value"])
    db["names"].create(
        {"asset_id": str, "name": str, "source": str, "ip": str,
         "first_seen": float, "last_seen": float, "frame": int},
        pk=("asset_id", "name", "source"), foreign_keys=FK,
    )
    db["names"].create_index(["name"])
    db["roles"].create(
        {"asset_id": str, "role": str, "protocol": str, "confidence": float, "reason": str,
         "detail": str, "ip": str, "first_seen": float, "last_seen": float, "frame": int},
        pk=("asset_id", "role"), foreign_keys=FK,
    )
    db["identity"].create(
        {"asset_id": str, "protocol": str, "attribute": str, "value": str, "source": str, "ip": str,
         "first_seen": float, "frame": int, "last_seen": float, "last_frame": int, "changes": int},
        pk=("asset_id", "protocol", "attribute"), foreign_keys=FK,
    )
    db["services"].create(
        {"asset_id": str, "protocol": str, "transport": str, "port": int, "ip": str,
         "first_seen": float, "last_seen": float, "frame": int},
        pk=("asset_id", "protocol", "transport", "port"), foreign_keys=FK,
    )
    db["peers"].create(
        {"asset_id": str, "peer_id": str, "protocol": str, "direction": str, "port": int,
         "ip": str, "peer_ip": str, "ops": str, "messages": int,
         "first_seen": float, "last_seen": float, "frame": int},
        pk=("asset_id", "peer_id", "protocol", "direction", "port"), foreign_keys=FK,
    )
    db["topics"].create(
        {"asset_id": str, "topic": str, "how": str, "ip": str,
         "first_seen": float, "last_seen": float, "frame": int},
        pk=("asset_id", "topic", "how"), foreign_keys=FK,
    )
    db["findings"].create(
        {"asset_id": str, "finding": str, "subject": str, "severity": str, "title": str,
         "detail": str, "evidence": str, "ip": str,
         "first_seen": float, "last_seen": float, "frame": int, "count": int},
        pk=("asset_id", "finding", "subject"), foreign_keys=FK,
    )
    db["asset_events"].create(
        {"id": int, "type": str, "asset_id": str, "ts": float, "frame": int, "detail": str},
        pk="id",
    )
    db["asset_events"].create_index(["asset_id"])
    db["asset_events"].create_index(["type"])


@migrations()
def m0002_vlan(db: Database) -> None:
    """IP addresses are unique per VLAN only: ``addresses.vlan`` joins the key, ``assets.vlan`` is the
    VLAN of ``assets.ip``.  Existing IP rows get the asset's VLAN when it was seen on exactly one
    (its ``vlan`` address rows), else 0; ``vlan`` rows get their own number."""
    db["addresses"].add_column("vlan", int, not_null_default=0)
    db["addresses"].transform(pk=("asset_id", "type", "value", "vlan"))
    db["addresses"].create_index(["vlan", "value"], if_not_exists=True)
    db.execute("UPDATE addresses SET vlan = CAST(value AS INTEGER) WHERE type = 'vlan'")
    db.execute(
        "UPDATE addresses SET vlan = (SELECT MIN(v.vlan) FROM addresses v"
        "  WHERE v.asset_id = addresses.asset_id AND v.type = 'vlan')"
        " WHERE type = 'ip' AND (SELECT COUNT(*) FROM addresses v"
        "  WHERE v.asset_id = addresses.asset_id AND v.type = 'vlan') = 1")
    db["assets"].add_column("vlan", int, not_null_default=0)
    db.execute("UPDATE assets SET vlan = COALESCE((SELECT a.vlan FROM addresses a WHERE a.asset_id = assets.asset_id"
               " AND a.type = 'ip' AND a.value = assets.ip), 0)")


def apply(db: Database) -> None:
    migrations.apply(db)


EVIDENCE_TABLES = ("addresses", "names", "roles", "identity", "services", "peers", "topics", "findings",
                   "asset_events")


@migrations()
def m0003_capture(db: Database) -> None:
    """Evidence names its source: ``capture`` (the capture file as given, or ``iface:<name>``) beside
    every ``frame``; ``assets.first_capture`` beside ``first_frame``, ``identity.last_capture`` beside
    ``last_frame``.  Rows written before this migration have ``""`` (source unknown)."""
    for t in EVIDENCE_TABLES:
        db[t].add_column("capture", str, not_null_default="")
    db["assets"].add_column("first_capture", str, not_null_default="")
    db["identity"].add_column("last_capture", str, not_null_default="")
