"""What the inventory records: tables, caps, asset events and finding ids.

Rule 1: every table's key and JSON columns, every cap on a per-asset list and
every id (asset event types, posture findings, device classes) is declared
here once, and read by the store, the migrations, the CLI and the docs test.

Rows live in memory as plain dicts whose keys are the column names (every
column of their table), so the store writes them with the upsert
``upsert_all`` would build, prepared once per table (``store.Inventory._write``),
and reads them back unchanged.  Columns listed in ``JSON_COLUMNS`` hold
dicts/lists in memory and JSON text on disk.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------------------
# Tables: name -> primary key columns (asset_events has an integer rowid key)

PKS: dict[str, tuple[str, ...]] = {
    "assets": ("asset_id",),
    "addresses": ("asset_id", "type", "value", "vlan"),
    "names": ("asset_id", "name", "source"),
    "roles": ("asset_id", "role"),
    "identity": ("asset_id", "protocol", "attribute"),
    "services": ("asset_id", "protocol", "transport", "port"),
    "peers": ("asset_id", "peer_id", "protocol", "direction", "port"),
    "topics": ("asset_id", "topic", "how"),
    "findings": ("asset_id", "finding", "subject"),
}
CHILD_TABLES = tuple(t for t in PKS if t != "assets")

JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "assets": ("dropped", "behaviour"),
    "roles": ("detail",),
    "peers": ("ops",),
    "findings": ("evidence",),
    "asset_events": ("detail",),
}

# ---------------------------------------------------------------------------
# Two writers, one database: how a row this process holds is merged with what another
# process stored meanwhile (``merge.merge_row``; docs/architecture.md, "The shared database").
# Columns not named here keep this writer's value.

_EVIDENCE = ("first_seen", "frame", "capture")
MERGE: dict[str, dict[str, tuple]] = {
    "assets": {"sum": ("packets_sent", "bytes_sent", "packets_received", "bytes_received"),
               "tally": ("behaviour", "dropped"),
               "first": ("first_seen", "first_frame", "first_capture"),
               "last": ("last_seen", "ip", "vlan"),
               "max": ("gateway",), "fill": ("via", "zone", "vendor")},
    "addresses": {"first": _EVIDENCE, "last": ("last_seen",), "prefer": (("how", "arp"),)},
    "names": {"first": _EVIDENCE, "last": ("last_seen",)},
    "roles": {"tally": ("detail",), "first": _EVIDENCE, "last": ("last_seen",),
              "max": ("confidence", "reason")},
    "identity": {"sum": ("changes",)},     # value and evidence: merge._identity
    "services": {"first": _EVIDENCE, "last": ("last_seen",)},
    "peers": {"sum": ("messages",), "tally": ("ops",), "first": _EVIDENCE, "last": ("last_seen",),
              "fill": ("peer_ip",)},
    "topics": {"first": _EVIDENCE, "last": ("last_seen",)},
    "findings": {"sum": ("count",), "first": _EVIDENCE + ("evidence", "ip"), "last": ("last_seen",)},
}
"""table -> rule -> columns: ``sum`` counters, ``tally`` JSON counters, ``first``/``last`` a time and the
evidence that goes with it, ``max`` a value and what goes with it, ``fill`` mine unless empty, ``prefer``
(column, value) that wins whoever holds it."""
DISTINCT_COUNTS = frozenset({"mqtt_pub", "mqtt_sub", "mqtt_wildcard", "refused_ports"})
"""Numbers in ``assets.behaviour`` that count distinct things (topics, refused ports), not events: two
writers that saw the same topic count it once (the larger of the two; ``refused_ports`` is the length of
the united ``refused`` list)."""
SORTED_LISTS = frozenset({"modbus_fcs", "units"})
"""Lists inside JSON columns that the store keeps sorted (``behaviour.modbus_fcs``, ``roles.detail.units``);
other lists keep the order things were first seen in."""

# ---------------------------------------------------------------------------
# Caps (bounded memory: an attacker can mint IPs, client ids and topics).
# What goes over a cap is counted in the asset's ``dropped`` {list: count}.

MAX_ADDRESSES = 64       # IPs/VLANs per asset; a gateway's remote IPs become their own assets
MAX_NAMES = 32           # host names per asset (DNS answers can be many)
MAX_PEERS = 256          # communication peers per asset (GRASSMARLIN draws each)
MAX_TOPICS = 256         # MQTT topics published/subscribed per asset
MAX_IDENTITY = 128       # identity attributes per asset (Modbus private objects 0x80-0xFF …)
MAX_SERVICES = 128       # (protocol, transport, port) per asset
MAX_FINDINGS = 128       # posture findings per asset
MAX_ROLE_UNITS = 256     # Modbus unit ids (one byte on the wire)
MAX_ASSETS = 100_000     # assets in one inventory: beyond it, new devices are counted, not stored
MAX_PENDING_NAMES = 4096  # names learnt for IPs not seen yet (DNS answers)
MAX_UNROWED_IPS = 65_536  # IPs bound to an asset whose MAX_ADDRESSES rows were full (a flood's spoofed
                          # sources behind one router MAC, ~150 B each): past it the oldest binding goes
MAX_VALUE = 512          # characters kept of one identity value (escaped at display)

GATEWAY_MIN_IPS = 3
"""A MAC seen as the L2 address of this many IPs it never claimed by ARP is a
router or gateway, when some of them are off-link or this many were active at
the same time (store._gateway_evidence): those IPs are devices behind it and
become assets of their own.  IPs that follow one another (DHCP) are not."""
LOCAL_PREFIX_V4 = 24
LOCAL_PREFIX_V6 = 64
"""Without netmasks, "on-link" means inside a /24 (IPv4) or /64 (IPv6) that an ARP claim showed on that VLAN."""
MAX_LOCAL_NETS = 4096    # on-link subnets remembered for the gateway decision

# ---------------------------------------------------------------------------
# Asset events (stable ids: the alerting issue turns them into alerts)

EVENT_TYPES = {
    "asset.new": "a device seen for the first time",
    "asset.gateway": "a MAC turned out to front several IPs (router/gateway); they were split off",
    "address.new": "an asset uses a new IP address (e.g. DHCP renumbering) or VLAN",
    "address.moved": "an IP address moved from one asset to another (device replaced, or spoofing)",
    "name.new": "a new host name for an asset",
    "role.new": "a new role (e.g. modbus.server) inferred for an asset",
    "service.new": "an asset offers a new service (protocol, transport, port)",
    "identity.new": "an identity attribute is known for the first time",
    "identity.changed": "an identity attribute changed value (e.g. firmware revision)",
    "class.changed": "the best-guess device class changed",
    "finding.new": "a new security posture finding",
}


@dataclass(frozen=True)
class AssetEvent:
    """One change of the inventory; also a row of the ``asset_events`` table.

    * ``type``: one of ``EVENT_TYPES``.
    * ``asset_id``: the asset that changed.
    * ``ts``, ``frame``: packet time and frame number of the evidence (0 when none).
    * ``detail``: what changed, e.g. ``{"attribute": "MajorMinorRevision",
      "old": "v3.20", "new": "v3.30"}``.  Strings as received (escape to show).
    * ``source``: the capture (file as given, or ``iface:<name>``) that ``frame`` counts in
      (column ``capture``).
    """

    type: str
    asset_id: str
    ts: float
    frame: int
    detail: dict = field(default_factory=dict)
    source: str = ""


# ---------------------------------------------------------------------------
# Roles and device classes

ROLES = {
    "modbus.server": "answers Modbus/TCP requests (detail: the unit ids it serves)",
    "modbus.client": "sends Modbus/TCP requests",
    "mqtt.broker": "accepts MQTT connections",
    "mqtt.client": "connects to an MQTT broker (detail: publishes/subscribes)",
    "opcua.server": "accepts OPC UA connections",
    "opcua.client": "opens OPC UA connections",
}
SERVER_ROLE = {"modbus": "modbus.server", "mqtt": "mqtt.broker", "opcua": "opcua.server"}
CLIENT_ROLE = {"modbus": "modbus.client", "mqtt": "mqtt.client", "opcua": "opcua.client"}

DEVICE_CLASSES = {
    "plc": "programmable controller / field device answering Modbus",
    "hmi/scada": "operator station polling controllers or subscribing to OPC UA data",
    "engineering workstation": "writes to controllers, reads their identity, programs them",
    "historian": "collects data: wildcard MQTT subscriptions, OPC UA history reads",
    "gateway": "several IPs behind one MAC, several Modbus units, or a protocol converter",
    "broker": "MQTT broker",
    "server": "offers a service (OPC UA, DNS …) without a more specific class",
    "field device": "publishes MQTT data without subscribing (sensor, edge node)",
    "scanner": "behaves like reconnaissance: function-code sweep, port scan",
    "unknown": "not enough evidence",
}

ICS_VENDOR_WORDS = ("schneider", "telemecanique", "siemens", "rockwell", "allen-bradley", "allen bradley", "beckhoff",
                    "phoenix contact", "wago", "omron", "mitsubishi", "abb", "b&r", "honeywell",
                    "yokogawa", "emerson", "ge fanuc", "moxa", "hirschmann", "festo", "pilz", "bosch rexroth")
"""OUI vendor words that make a Modbus server more likely a controller (a hint, never the reason alone)."""
