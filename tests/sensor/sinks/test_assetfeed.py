"""Asset-change records: the inventory learning the demo plant, through the outbox, to a real rsyslog.

The real pipeline and inventory run on the demo plant capture with the
``AssetChanges`` feed on the inventory's hook.  A first run records every new
asset and what is learnt about it; assets that stop talking are reported
quiet, and back; a second run, after the stored firmware of the Modicon PLC
was made a hostile string, records ``identity.changed`` — delivered to rsyslog
in every format, parsed strictly, inert.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from otwatch.sensor.alerts.catalogue import FINDING_ONLY
from otwatch.sensor.inventory.model import EVENT_TYPES
from otwatch.sensor.inventory.store import open_inventory
from otwatch.sensor.pipeline import Pipeline, Settings
from otwatch.sensor.sinks.assetfeed import CHANGES, NOT_SENT, OWN_EVENTS, AssetChanges
from otwatch.sensor.sinks.deliver import Deliverer
from otwatch.sensor.sinks.outbox import Outbox
from otwatch.sensor.sinks.syslog import parse
from support.rsyslog import RSYSLOGD, Collector
from support.syslog_strict import parse_cef, parse_leef, parse_rfc5424

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")
PLC = "mac:00:80:f4:0a:00:0b"         # Modicon M340, MajorMinorRevision v3.20 in the capture
HOSTILE = "v3.10\x1b]0;owned\x07\r\n<13>1 fake|x=y\\]\"^\u2028 cs1=evil"


def _run(db: str, quiet_after: float = 600.0, interval: float = 60.0,
         alerted=None) -> tuple[AssetChanges, Outbox, object]:
    ob = Outbox(db)
    inv = open_inventory(db)
    feed = AssetChanges(ob, inv, quiet_after, alerted=alerted)
    inv.on_events = feed.on_events
    pipe = Pipeline([inv, feed], Settings(interval=interval))
    pipe.run_file(DEMO)
    pipe.finish()
    inv.flush()
    feed.finish()
    return feed, ob, inv


def _assets(ob: Outbox) -> list:
    return [r for r in ob.after(0, 100_000) if r.kind == "asset"]


def test_every_inventory_event_type_is_sent_or_said_why_not():
    assert set(EVENT_TYPES) == (set(CHANGES) - set(OWN_EVENTS)) | set(NOT_SENT)
    assert not set(CHANGES) & set(NOT_SENT)
    assert set(CHANGES.values()) <= {"info", "low"}


def test_first_run_records_each_new_asset_and_what_is_learnt(tmp_path):
    db = str(tmp_path / "o.db")
    feed, ob, inv = _run(db)
    recs = _assets(ob)
    by = {}
    for r in recs:
        by.setdefault(r.body["event"], []).append(r)
    assert {r.body["asset_id"] for r in by["asset.new"]} == set(inv.assets) and len(by["asset.new"]) == len(inv.assets)
    c = sqlite3.connect(db)
    n_ident = c.execute("SELECT COUNT(*) FROM identity").fetchone()[0]
    n_roles = c.execute("SELECT COUNT(*) FROM roles").fetchone()[0]
    c.close()
    assert len(by["identity.new"]) == n_ident and len(by["role.new"]) == n_roles
    # a configuration finding (no alert by default) is an asset record; the others travel as posture alerts
    found = {(r.body["asset_id"], r.body["finding"], r.body["subject"]) for r in by["finding.new"]}
    c = sqlite3.connect(db)
    stored = {(a, f, s) for a, f, s in c.execute("SELECT asset_id, finding, subject FROM findings")}
    c.close()
    assert found == {x for x in stored if "posture." + x[1] in FINDING_ONLY}
    assert (PLC, "modbus.no_authentication", "") in found
    assert all(r.severity == "low" for r in by["finding.new"])
    assert {x[1] for x in stored} - {x[1] for x in found} >= {"mqtt.cleartext_credentials"}
    new_plc = next(r for r in by["asset.new"] if r.body["asset_id"] == PLC)
    # made at the interval's end (one 60 s interval here): with what is known of the asset by then
    assert new_plc.severity == "info" and new_plc.body["ip"] == "10.10.0.11" and new_plc.body["capture"] == DEMO
    assert new_plc.body["frame"] > 0 and new_plc.body["message"].startswith(f"new asset {PLC} (10.10.0.11)")
    rev = next(r for r in by["identity.new"] if r.body["asset_id"] == PLC and r.body["attribute"] == "MajorMinorRevision")
    assert rev.body["value"] == "v3.20" and rev.body["protocol"] == "modbus"
    assert len({r.id for r in recs}) == len(recs)  # ids are unique (a receiver drops only true duplicates)
    assert [r.seq for r in recs] == sorted(r.seq for r in recs)
    assert feed.out.counts == {"records": len(recs), "lost": 0, "refused": 0}


def test_quiet_and_back_in_packet_time(tmp_path):
    db = str(tmp_path / "o.db")
    feed, ob, inv = _run(db, quiet_after=5.0, interval=1.0)
    recs = _assets(ob)
    state: dict[str, str] = {}
    for r in recs:                                  # quiet and back alternate per asset, each after a silence
        e, aid = r.body["event"], r.body["asset_id"]
        if e == "asset.quiet":
            assert state.get(aid) != "quiet" and r.ts - r.body["last_seen"] >= 5.0
            state[aid] = "quiet"
        elif e == "asset.back":
            assert state.get(aid) == "quiet" and r.body["silent_s"] > 0
            state[aid] = "back"
    end = max(a.row["last_seen"] for a in inv.assets.values())
    feed.tick(end + 3600)                           # an hour of silence: every asset seen in this run is quiet
    quiet = {}
    for r in _assets(ob):
        if r.body["event"] in ("asset.quiet", "asset.back"):
            quiet[r.body["asset_id"]] = r.body["event"]
    assert quiet == {aid: "asset.quiet" for aid in inv.assets}
    inv.close()
    # a later run over traffic no newer than what is stored: nothing was seen in *this* run, nothing is quiet
    feed2, ob2, inv2 = _run(db, quiet_after=5.0, interval=1.0)
    before = len(_assets(ob2))
    feed2.tick(end + 7200)
    assert [r for r in _assets(ob2)[before:] if r.body["event"] == "asset.quiet"] == []
    assert not [r for r in _assets(ob2)[len(recs):] if r.body["event"] == "asset.new"]


pytestmark_rsyslog = pytest.mark.skipif(RSYSLOGD is None, reason="rsyslogd not installed (tests/run.sh installs it)")


@pytestmark_rsyslog
@pytest.mark.parametrize("kind,fmt", [("udp", "rfc5424"), ("tcp", "cef"), ("tls", "leef"), ("tls", "rfc5424")])
def test_firmware_change_reaches_rsyslog_inert(tmp_path, kind, fmt):
    db = str(tmp_path / "o.db")
    _, ob, inv = _run(db)
    inv.close()
    c = sqlite3.connect(db)
    c.execute("UPDATE identity SET value = ? WHERE asset_id = ? AND attribute = 'MajorMinorRevision'", (HOSTILE, PLC))
    c.commit()
    c.close()
    seen = len(ob.after(0, 100_000))
    _, ob, inv = _run(db)                           # the PLC now reports v3.20 again: a change
    changed = [r for r in _assets(ob) if r.body["event"] == "identity.changed"]
    assert len(changed) == 1 and changed[0].body["old"] == HOSTILE and changed[0].body["new"] == "v3.20"
    assert changed[0].severity == "low" and changed[0].body["asset_id"] == PLC
    (tmp_path / "rs").mkdir()
    col = Collector(str(tmp_path / "rs"), kind)
    col.start()
    try:
        url = f"{kind}://127.0.0.1:{col.port}?format={fmt}"
        if kind == "tls":
            url += f"&ca={col.certs['ca']}&servername=localhost"
        d = Deliverer(db, parse(url), hostname="sensor-1")
        d.start()
        total = len(ob.after(0, 100_000))
        lines = col.wait_for(lambda got: len(got) >= total, timeout=60)
        d.stop()
    finally:
        col.stop()
    assert len(lines) == total > seen
    for ln in lines:
        assert "\x1b" not in ln and "\x07" not in ln and "\u2028" not in ln and "#012" not in ln
    got = [parse_rfc5424(ln) for ln in lines]
    if fmt == "rfc5424":
        sd = [g["sd"]["otwatch@32473"] for g in got]
        hit = [p for p in sd if p.get("event") == "identity.changed"]
        assert len(hit) == 1
        p = hit[0]
        assert p["asset_id"] == PLC and p["attribute"] == "MajorMinorRevision" and p["new"] == "v3.20"
        assert "\r" not in p["old"] and "\n" not in p["old"] and "\\x0d\\x0a" in p["old"]
        assert {g["msgid"] for g in got} >= {"asset"}
    elif fmt == "cef":
        cefs = [parse_cef(g["msg"]) for g in got]
        hit = [x for x in cefs if x["signature"] == "identity.changed"]
        assert len(hit) == 1
        ext = hit[0]["ext"]
        assert ext["cs1"] == PLC and ext["cs2"] == "MajorMinorRevision" and ext["cs5"] == "v3.20"
        assert ext["cs3"].startswith("v3.10\\x1b]0;owned") and " cs1=evil" in ext["cs3"]
        assert ext["src"] == "10.10.0.11" and ext["smac"] == PLC[4:] and ext["cs6"] == "identity.changed"
        assert {x["signature"] for x in cefs} >= {"asset.new", "identity.new", "role.new"}
    else:
        leefs = [parse_leef(g["msg"]) for g in got]
        hit = [x for x in leefs if x["event"] == "identity.changed"]
        assert len(hit) == 1
        a = hit[0]["attrs"]
        assert a["asset_id"] == PLC and a["new"] == "v3.20" and "^" not in a["old"] and "\\x5e" in a["old"]


def test_json_file_sink_carries_asset_records(tmp_path):
    db = str(tmp_path / "o.db")
    _, ob, _ = _run(db)
    out = tmp_path / "assets.jsonl"
    d = Deliverer(db, parse(f"file://{out}"))
    d.start()
    total = len(ob.after(0, 100_000))
    deadline = time.monotonic() + 60
    while d.delivered < total and time.monotonic() < deadline:
        time.sleep(0.05)
    d.stop()
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assets = [r for r in rows if r["kind"] == "asset"]
    assert assets and all(r["body"]["event"] in {*CHANGES, "finding.new"} for r in assets)
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)


def test_with_posture_alerts_on_no_finding_is_an_asset_record(tmp_path):
    from otwatch.sensor.alerts.settings import AlertSettings

    _, ob, _ = _run(str(tmp_path / "o.db"), alerted=AlertSettings(posture_alerts=True).enabled)
    assert not [r for r in _assets(ob) if r.body["event"] == "finding.new"]   # each one is an alert instead
