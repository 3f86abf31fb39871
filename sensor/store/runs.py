"""Runs: one row per ``otwatch analyze`` (or live sensor) run, and how it ended.

A run row is written when the run starts (``status = 'running'``) and
finished when it ends: ``completed``, ``interrupted`` (Ctrl-C, SIGTERM) or
``error`` (with the error text).  A row left ``running`` whose process is gone
was killed (SIGKILL, power loss): readers show it as ``killed``.  Wall-clock
times here are the run's, not packet times (packet times are in
``first_ts``/``last_ts``).
"""
from __future__ import annotations

import json
import os
import socket
import time

from sqlite_utils import Database, Migrations

from .database import write_transaction

migrations = Migrations("otwatch.runs")

STATUSES = {
    "running": "still running, or killed without a chance to say so (see `killed`)",
    "completed": "read every source to its end",
    "interrupted": "stopped by the user (Ctrl-C) or a signal: the inventory holds what was read until then",
    "error": "stopped by an error (the `error` column says which)",
    "killed": "shown (never stored) for a `running` row whose process no longer exists on this host",
}


@migrations()
def m0001_runs(db: Database) -> None:
    db["runs"].create(
        {
            "run_id": int,
            "command": str,      # "analyze" | "sensor"
            "sources": str,      # JSON list: capture paths as given, or "iface:<name>"
            "started": float,    # wall clock (Unix seconds)
            "ended": float,      # wall clock; NULL while running
            "status": str,       # STATUSES
            "packets": int,      # packets read (all sources)
            "first_ts": float,   # packet time of the first and last flow/host evidence (NULL if none)
            "last_ts": float,
            "error": str,
            "host": str,         # where the process ran (with pid: tells a killed run from a running one)
            "pid": int,
            "version": str,
        },
        pk="run_id",
    )


class RunLog:
    """The row of the current run: ``start`` writes it, ``finish`` closes it."""

    def __init__(self, db: Database, command: str, sources: list[str], version: str = ""):
        self.db = db
        self.run_id = 0
        row = {"command": command, "sources": json.dumps(list(sources), ensure_ascii=False),
               "started": time.time(), "ended": None, "status": "running", "packets": 0,
               "first_ts": None, "last_ts": None, "error": "", "host": socket.gethostname(),
               "pid": os.getpid(), "version": version}
        with write_transaction(db):
            self.run_id = db["runs"].insert(row).last_pk

    def finish(self, status: str, packets: int, first_ts: float | None = None, last_ts: float | None = None,
               error: str = "") -> None:
        assert status in STATUSES and status not in ("running", "killed")
        with write_transaction(self.db):
            self.db["runs"].update(self.run_id, {"ended": time.time(), "status": status, "packets": packets,
                                                 "first_ts": first_ts, "last_ts": last_ts, "error": error})


def shown_status(row: dict) -> str:
    """The status to show: a ``running`` row of this host whose pid is gone is ``killed``."""
    if row.get("status") != "running":
        return row.get("status") or ""
    if row.get("host") == socket.gethostname() and row.get("pid"):
        try:
            os.kill(int(row["pid"]), 0)
        except ProcessLookupError:
            return "killed"
        except (PermissionError, OverflowError, ValueError):
            pass
    return "running"


def load(db: Database) -> list[dict]:
    """Every run, oldest first (empty when the table does not exist yet)."""
    if not db["runs"].exists():
        return []
    out = []
    for r in db["runs"].rows_where(order_by="run_id"):
        r = dict(r)
        try:
            r["sources"] = json.loads(r.get("sources") or "[]")
        except ValueError:
            r["sources"] = []
        r["shown_status"] = shown_status(r)
        out.append(r)
    return out
