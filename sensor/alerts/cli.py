"""``otwatch alerts``: list, show, acknowledge and close the alerts stored with the inventory.

Listing and ``show`` open the database read-only (WAL: a running analysis
keeps writing); ``ack`` and ``close`` change one row's status in one
transaction.  Every string that came from the wire is escaped for the
terminal (``parsers.common.escape``); ``--json`` writes the JSON lines schema
of docs/alerts.md (``jsonl.record``), escaped for JSON.
"""
from __future__ import annotations

import datetime as _dt
import re
import time

import click

from otwatch.parsers.common import escape

from ..clikit import db_option
from . import catalogue, jsonl
from . import store as S
from .model import CLOSE_REASONS, SEVERITIES, STATUSES

_db_option = db_option          # one --db for every command (sensor/clikit.py)
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """``2h``/``30m``/``7d`` before now, an ISO 8601 time (UTC unless it says), or epoch seconds."""
    t = text.strip()
    m = _RELATIVE.match(t)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(t)
    except ValueError:
        pass
    try:
        d = _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{t!r}: expected e.g. 2h, 30m, 7d, 2026-01-31T08:00:00Z or epoch seconds",
                                 param_hint="--since") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def _when(ts) -> str:
    if not ts:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "-"


def _path(ctx: click.Context, db_path: str | None) -> str:
    return db_path or (ctx.obj or {}).get("db") or S.default_path()


def _read(ctx, db_path):
    path = _path(ctx, db_path)
    try:
        return S.connect(path, readonly=True)
    except FileNotFoundError:
        raise click.ClickException(f"no database at {escape(path)} (run `otwatch analyze CAPTURE` first)") from None


def _e(v, limit: int = 256) -> str:
    return escape("" if v is None else str(v), limit)


def line(row: dict) -> str:
    """One alert as a terminal line (wire strings escaped)."""
    who = _e(row["src"] or "-", 40) + (" → " + _e(row["dst"], 40) if row["dst"] else "")
    if row["port"]:
        who += f":{int(row['port'])}"
    st = row["status"] if row["status"] != "closed" else f"closed/{row['close_reason']}"
    return (f"{row['severity'].upper():<8} {row['id'][:12]}  {_e(row['rule'], 40):<34} ×{int(row['count'] or 0):<6} "
            f"{st:<12} {who}  {_e(row['message'], 160)}")


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines (schema: docs/alerts.md) instead of a table.")
@click.option("--severity", type=click.Choice(SEVERITIES, case_sensitive=False), default=None,
              help="Only alerts at or above this severity.")
@click.option("--since", metavar="TIME", default=None,
              help="Only alerts whose last occurrence (packet time) is at or after TIME: 2h, 7d, ISO 8601, epoch.")
@click.option("--status", "status", type=click.Choice((*STATUSES, "all")), default=None,
              help="Only this status (default: open and acknowledged).")
@_db_option
@click.pass_context
def alerts(ctx: click.Context, as_json: bool, severity, since, status, db_path) -> None:
    """Alerts raised by `otwatch analyze` (and the sensor): most severe and most recent first.

    \b
    otwatch alerts                       open and acknowledged alerts
    otwatch alerts --severity high --since 24h
    otwatch alerts show ID               one alert with its evidence
    otwatch alerts ack ID                acknowledge
    otwatch alerts close ID --reason accepted
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db_path
    if ctx.invoked_subcommand is not None:
        return
    since_ts = parse_since(since) if since else None
    statuses = None if status == "all" else ((status,) if status else ("open", "acknowledged"))
    db = _read(ctx, db_path)
    try:
        rows = S.query(db, min_severity=severity.lower() if severity else None, since=since_ts, statuses=statuses)
    finally:
        db.close()
    if as_json:
        for r in rows:
            click.echo(jsonl.dumps(jsonl.record(S.from_row(r))))
        return
    for r in rows:
        click.echo(line(r))
    by = {s: sum(1 for r in rows if r["severity"] == s) for s in reversed(SEVERITIES)}
    click.echo(f"{len(rows)} alerts" + (" (" + ", ".join(f"{n} {s}" for s, n in by.items() if n) + ")" if rows else ""))


def _lookup(ctx, db_path, aid):
    db = _read(ctx, db_path)
    try:
        row = S.get(db, aid)
    finally:
        db.close()
    if row is None:
        raise click.ClickException(f"no alert {escape(aid, 64)} (an id or a unique prefix of at least 6 hex digits)")
    return row


@alerts.command("show")
@click.argument("aid", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The JSON lines record.")
@_db_option
@click.pass_context
def show(ctx, aid, as_json, db_path) -> None:
    """One alert in full, with its evidence (capture, frame numbers, times, flows)."""
    row = _lookup(ctx, db_path, aid)
    if as_json:
        click.echo(jsonl.dumps(jsonl.record(S.from_row(row))))
        return
    rule = catalogue.RULES.get(row["rule"])
    out = [f"alert     {row['id']}",
           f"rule      {_e(row['rule'])} — {_e(rule.title if rule else '')}",
           f"severity  {row['severity']}   category {row['category']}",
           f"status    {row['status']}" + (f" ({row['close_reason']})" if row["close_reason"] else "")
           + (f" at {row['status_at']}" if row["status_at"] else "")
           + (f" by {_e(row['status_by'], 64)}" if row.get("status_by") else "")
           + (f": {_e(row['status_note'])}" if row["status_note"] else "")
           + (f"; reopened {row['reopened']}×" if row["reopened"] else ""),
           f"message   {_e(row['message'], 1024)}",
           f"source    {_e(row['src'] or '-')}" + (f"  asset {_e(row['src_asset'])}" if row["src_asset"] else "")
           + (f"  zone {_e(row['src_zone'])}" if row["src_zone"] else ""),
           f"target    {_e(row['dst'] or '-')}" + (f":{row['port']}" if row["port"] else "")
           + (f"  asset {_e(row['dst_asset'])}" if row["dst_asset"] else "")
           + (f"  zone {_e(row['dst_zone'])}" if row["dst_zone"] else ""),
           f"protocol  {_e(row['protocol'] or '-')}",
           f"seen      {row['count']}× from {_when(row['first_ts'])} to {_when(row['last_ts'])} UTC (packet time)"]
    if row["technique"]:
        out.append(f"ATT&CK    {row['technique']} {catalogue.TECHNIQUES.get(row['technique'], '')} "
                   f"({catalogue.ATTACK_URL.format(row['technique'])})")
    if row["details"]:
        out.append("details   " + _e(jsonl.dumps(row["details"]), 1024))
    out.append("evidence  (capture, frame, packet time, flow)")
    for e in row["evidence"]:
        out.append(f"  {_e(e[0], 200)}  frame {int(e[1])}  {_when(e[2])}.{int(round((e[2] % 1) * 1e6)):06d}"
                   f"  flow {int(e[3]) if len(e) > 3 else 0}")
    click.echo("\n".join(out))


def _write(ctx, db_path, fn):
    path = _path(ctx, db_path)
    try:
        st = S.AlertStore(S.connect(path, create=False))
    except FileNotFoundError:
        raise click.ClickException(f"no database at {escape(path)}") from None
    try:
        return fn(st)
    except KeyError:
        raise click.ClickException("no such alert") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        st.close_db()


_by_option = click.option("--by", "by", metavar="NAME", default=None,
                          help="Who (stored with the alert; default: your login name).")


@alerts.command("ack")
@click.argument("aid", metavar="ID")
@click.option("--note", default="", help="Why (stored with the alert).")
@_by_option
@_db_option
@click.pass_context
def ack(ctx, aid, note, by, db_path) -> None:
    """Acknowledge an open alert (someone is looking at it)."""
    row = _lookup(ctx, db_path, aid)
    _write(ctx, db_path, lambda st: st.ack(row["id"], note, by))
    click.echo(f"{row['id']} acknowledged")


@alerts.command("close")
@click.argument("aid", metavar="ID")
@click.option("--reason", type=click.Choice(CLOSE_REASONS), default="resolved", show_default=True,
              help="resolved: the condition is gone (it reopens if it fires again); "
                   "accepted: it is normal here (it stays closed).")
@click.option("--note", default="", help="Why (stored with the alert).")
@_by_option
@_db_option
@click.pass_context
def close(ctx, aid, reason, note, by, db_path) -> None:
    """Close an alert as resolved or accepted (for a baseline alert, `otwatch baseline accept ID` also
    learns it, so it does not come back)."""
    row = _lookup(ctx, db_path, aid)
    _write(ctx, db_path, lambda st: st.close(row["id"], reason, note, by))
    click.echo(f"{row['id']} closed ({reason})")
