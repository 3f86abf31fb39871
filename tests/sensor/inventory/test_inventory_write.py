"""The store's write path gives the database sqlite-utils' ``upsert_all``/``insert_all`` gave.

``Inventory._write`` runs the upsert sqlite-utils builds as one prepared
``executemany`` per table; the reference below is the previous code (rows
through ``_dump`` into ``upsert_all``, events through ``insert_all``).  Both
must leave the same rows, with the same rowids, on a fresh database and when
merging further captures into an existing one (compared with ``dbdump.py``).
"""
from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

from otwatch.sensor.inventory import store
from otwatch.sensor.inventory.model import CHILD_TABLES, JSON_COLUMNS, PKS
from otwatch.sensor.inventory.store import Inventory, open_inventory
from otwatch.sensor.pipeline import Pipeline

HERE = pathlib.Path(__file__).resolve().parent
PCAPS = HERE.parents[2] / "pcaps"
CAPTURES = [PCAPS / "demo-plant.pcap", PCAPS / "opcua-security.pcap", PCAPS / "protocol-corners.pcap.gz"]
pytestmark = pytest.mark.skipif(not all(p.exists() for p in CAPTURES), reason="pcaps/ captures missing")

_spec = importlib.util.spec_from_file_location("dbdump", HERE / "dbdump.py")
dbdump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbdump)


def _reference_write(self, table, rows):
    self.db[table].upsert_all((store._dump(table, r) for r in rows), pk=PKS[table])


def _reference_events(self, events):
    self.db["asset_events"].insert_all(
        ({"type": e.type, "asset_id": e.asset_id, "ts": e.ts, "frame": e.frame,
          "detail": json.dumps(e.detail, ensure_ascii=False, default=str), "capture": e.source} for e in events),
        pk="id")


def _run(db: str, captures, batch: int) -> Inventory:
    inv = open_inventory(db, batch=batch)
    pipe = Pipeline([inv])
    for c in captures:
        pipe.run_file(str(c))
    pipe.finish()
    inv.close()
    return inv


def _build(tmp_path, name, reference: bool, monkeypatch) -> tuple[list[str], list[str], list[Inventory]]:
    """Fresh DB from demo-plant, then opcua-security and protocol-corners merged in, then demo-plant again."""
    with monkeypatch.context() as m:
        if reference:
            m.setattr(Inventory, "_write", _reference_write)
            m.setattr(Inventory, "_write_events", _reference_events)
        db = str(tmp_path / f"{name}.db")
        invs = [_run(db, CAPTURES[:1], 700)]
        fresh = dbdump.dump(db)
        invs.append(_run(db, CAPTURES[1:], 700))
        invs.append(_run(db, CAPTURES[:1], 50_000))
        return fresh, dbdump.dump(db), invs


def test_fast_write_path_equals_sqlite_utils_upsert(tmp_path, monkeypatch):
    ref_fresh, ref_merged, _ = _build(tmp_path, "ref", True, monkeypatch)
    new_fresh, new_merged, invs = _build(tmp_path, "new", False, monkeypatch)
    assert len(ref_fresh) > 300 and any(line.startswith("  peers ") for line in ref_fresh)
    assert new_fresh == ref_fresh
    assert new_merged == ref_merged
    assert ref_merged != ref_fresh            # the merge did change something
    assert invs[0].counts["flushes"] >= 2      # rows written in one batch are updated in later ones
    for inv in invs:
        assert "slow_writes" not in inv.counts    # no row needed the upsert_all fallback


def test_rows_in_memory_have_every_column_and_plain_values(tmp_path):
    """What lets the fast path bind rows as they are: each row holds exactly its table's columns, plain
    SQLite values outside the JSON columns (which hold dicts/lists until written)."""
    db = str(tmp_path / "cols.db")
    inv = open_inventory(db)
    pipe = Pipeline([inv])
    for c in CAPTURES:
        pipe.run_file(str(c))
    pipe.finish()
    inv.flush()
    cols = {t: {c.name for c in inv.db[t].columns} for t in PKS}
    seen = dict.fromkeys(PKS, 0)
    for a in inv.assets.values():
        for table, row in [("assets", a.row)] + [(t, r) for t in CHILD_TABLES for r in a.t[t].values()]:
            seen[table] += 1
            assert set(row) == cols[table], (table, row)
            for k, v in row.items():
                if k in JSON_COLUMNS.get(table, ()):
                    assert isinstance(v, (dict, list)), (table, k, v)
                else:
                    assert v is None or type(v) in (str, int, float), (table, k, v)
    assert all(seen[t] for t in ("assets", "addresses", "roles", "identity", "peers", "findings", "topics"))
    inv.close()


def test_a_row_the_fast_path_cannot_bind_goes_through_upsert_all(tmp_path, monkeypatch):
    def odd(reference: bool) -> list[str]:
        with monkeypatch.context() as m:
            if reference:
                m.setattr(Inventory, "_write", _reference_write)
            db = str(tmp_path / f"odd{reference}.db")
            inv = _run(db, CAPTURES[:1], 50_000)
            inv = open_inventory(db)
            a = next(iter(inv.assets.values()))
            a.row["zone"] = ["not", "a", "string"]     # sqlite-utils stores it as JSON text
            row = next(iter(a.t["identity"].values()))
            del row["source"]                          # sqlite-utils writes NULL for it
            inv._touch("assets", a.row)
            inv._touch("identity", row)
            inv.close()
            if not reference:
                assert inv.counts["slow_writes"] == 2
            return dbdump.dump(db)

    ref, new = odd(True), odd(False)
    assert new == ref
    assert any('["not", "a", "string"]' in line for line in new)
