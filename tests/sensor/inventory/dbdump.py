"""Dump an inventory database canonically, to compare two of them row for row.

    python tests/sensor/inventory/dbdump.py INV.db [--no-rowid] > dump.txt

Prints the schema (``sqlite_master``: every table and index with its SQL) and
then every row of every table, tables by name and rows sorted by all their
columns, each value with its SQLite storage class (``typeof``) so that
``1`` and ``1.0`` and ``'1'`` differ.  Rowid tables (all but ``asset_events``,
whose ``id`` is the rowid) also show their hidden ``rowid``, which says in
what order rows were first inserted; ``--no-rowid`` leaves it out.

Excluded: ``_sqlite_migrations.applied_at``, the wall-clock time a migration
ran (the only wall-clock column; the inventory itself holds packet times
only).  Used by ``test_inventory_write.py`` and to compare the store's output
before and after a change (see docs/inventory.md, "Write path").
"""
from __future__ import annotations

import sqlite3
import sys

WALL_CLOCK = {("_sqlite_migrations", "applied_at")}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dump(path: str, rowid: bool = True) -> list[str]:
    """The canonical lines for the database at *path* (opened read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = []
        schema = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                             "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()
        for typ, name, tbl, sql in schema:
            out.append(f"schema {typ} {name} {tbl}: {sql}")
        tables = [name for typ, name, _, _ in schema if typ == "table"]
        for t in tables:
            info = con.execute(f"PRAGMA table_info({_q(t)})").fetchall()
            cols = [c[1] for c in info if (t, c[1]) not in WALL_CLOCK]
            integer_pk = [c for c in info if c[5]] and len([c for c in info if c[5]]) == 1 and \
                [c for c in info if c[5]][0][2].upper() == "INTEGER"
            sel = []
            if rowid and not integer_pk:
                sel.append("rowid")
            for c in cols:
                sel += [f"typeof({_q(c)})", _q(c)]
            order = ", ".join(str(i + 1) for i in range(len(sel)))
            rows = con.execute(f"SELECT {', '.join(sel)} FROM {_q(t)} ORDER BY {order}").fetchall()
            out.append(f"table {t} ({', '.join(cols)}): {len(rows)} rows")
            for r in rows:
                out.append(f"  {t} " + repr(r))
        return out
    finally:
        con.close()


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    for line in dump(args[0], rowid="--no-rowid" not in argv):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
