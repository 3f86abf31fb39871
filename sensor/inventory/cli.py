"""``otwatch inventory``: show, export and draw the asset inventory.

Read-only commands: they open the database (WAL, so a running sensor may keep
writing) and never change inventory rows.  Every string that came from the
wire is escaped for the terminal (``parsers.common.escape``) before it is shown.
"""
from __future__ import annotations

import csv
import io
import json
import re
import sys

import click

from otwatch.parsers.common import escape

from . import graph as G
from ..clikit import Fatal, db_option, format_option, output_option
from ..store import default_path, open_read, read_snapshot
from ..store import runs as runs_mod
from .store import load_rows
from .summary import best_name, by_asset, identity_line, resolve, when, with_vlan

_db_option = db_option


def _snapshot(ctx: click.Context, db_path: str | None) -> dict:
    """Every inventory row and the runs, read in one snapshot from the database opened read-only
    (a missing or unreadable database: ``StoreError``, one line and exit 2 through the CLI group)."""
    path = db_path or (ctx.obj or {}).get("db") or default_path()
    db = open_read(path)
    try:
        with read_snapshot(db):
            snap = load_rows(db)
            snap["runs"] = runs_mod.load(db)
        return snap
    finally:
        db.close()


def _at(capture, frame) -> str:
    """An evidence pointer as shown: ``frame 9 of pcaps/plant.pcap`` (``frame 9`` when the source is unknown)."""
    return f"frame {frame} of {_e(capture, 160)}" if capture else f"frame {frame}"


def _e(v, limit: int = 256) -> str:
    return escape("" if v is None else str(v), limit)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group(invoke_without_command=True)
@_db_option
@click.option("--wide", is_flag=True, help="Without a sub-command: every column of the table (see `table`).")
@click.pass_context
def inventory(ctx: click.Context, db_path: str | None, wide: bool) -> None:
    """The asset inventory: every device seen, its roles, identity and posture.

    Without a sub-command, prints the inventory as a table.
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db_path
    if ctx.invoked_subcommand is None:
        ctx.invoke(table, db_path=db_path, wide=wide)


COLUMNS = (
    # header, priority (lower stays longer when the terminal is narrow), min width, max width
    ("ASSET", 0, 21, 40),       # never cut below a MAC asset id: it is what `inventory show` takes
    ("IP", 1, 10, 24),
    ("NAME", 4, 8, 24),
    ("VENDOR", 7, 8, 24),
    ("CLASS", 2, 10, 26),
    ("ROLES", 3, 12, 40),
    ("IDENTITY", 6, 12, 60),
    ("FIND", 5, 4, 4),
    ("LAST SEEN (UTC)", 8, 19, 19),
)
"""Columns of `otwatch inventory`: on a terminal the lowest-priority ones are dropped until the rest
fit its width (`--wide` keeps all and wraps); piped, every column is written tab-separated."""


def _rows(snap: dict) -> list[tuple[str, ...]]:
    kids = by_asset(snap)
    out = []
    for a in sorted(snap["assets"], key=lambda a: (_ip_key(a["ip"]), a["asset_id"])):
        k = kids[a["asset_id"]]
        roles = ",".join(sorted(r["role"] for r in k["roles"]))
        cls = f"{a['device_class']} ({a['class_confidence']:.2f})" if a["device_class"] != "unknown" else "unknown"
        vals = (a["asset_id"], with_vlan(a["ip"], a.get("vlan")) or "-", best_name(a, k) or "-", a["vendor"] or "-",
                cls, roles or "-", identity_line(k) or "-", str(len(k["findings"])), when(a["last_seen"]))
        out.append(tuple(_e(v, 1024) for v in vals))
    return out


GAP = 3
"""Characters between two columns: rich's padding on each side and the box's divider."""


def _fit_columns(width: int, rows: list[tuple[str, ...]]) -> dict[int, int]:
    """{column index: width} for the columns that fit a terminal *width*, in display order.

    Each column wants its longest cell (at most its max); columns are left out, least important
    first, until their minimums fit; the room left is shared in order of importance.
    """
    want = {i: min(max([len(COLUMNS[i][0])] + [len(r[i]) for r in rows]), COLUMNS[i][3])
            for i in range(len(COLUMNS))}
    lo = {i: min(COLUMNS[i][2], want[i]) for i in want}
    keep = list(range(len(COLUMNS)))
    for i in sorted(keep, key=lambda i: -COLUMNS[i][1]):
        if sum(lo[j] + GAP for j in keep) - GAP <= width or len(keep) <= 2:
            break
        keep.remove(i)
    widths = {i: lo[i] for i in keep}
    room = width - (sum(widths.values()) + GAP * (len(keep) - 1))
    for i in sorted(keep, key=lambda i: COLUMNS[i][1]):
        extra = min(max(room, 0), want[i] - widths[i])
        widths[i] += extra
        room -= extra
    return widths


def run_note(runs: list[dict]) -> str:
    """One line about the last run when it did not complete ("" when it did, or there is none)."""
    if not runs:
        return ""
    r = runs[-1]
    st = r["shown_status"]
    if st == "completed":
        return ""
    srcs = ", ".join(_e(x, 80) for x in r["sources"][:3]) + (" …" if len(r["sources"]) > 3 else "")
    what = {"interrupted": "was interrupted", "error": "stopped with an error", "killed": "was killed",
            "running": "is still running"}.get(st, st)
    tail = f": {_e(r.get('error'), 200)}" if st == "error" and r.get("error") else ""
    return (f"last run (#{r['run_id']}, {srcs}) {what} after {r.get('packets') or 0:,} packets{tail}; "
            "the inventory may be incomplete (`otwatch inventory runs`)")


@inventory.command("table")
@_db_option
@click.option("--wide", is_flag=True, help="Every column, wrapped, even when the terminal is narrow.")
@click.pass_context
def table(ctx: click.Context, db_path: str | None, wide: bool = False) -> None:
    """Print one line per asset (the default of `otwatch inventory`).

    On a terminal: a table that fits its width (less important columns are
    left out; --wide shows all).  Piped: a header line, then one
    tab-separated line per asset with every column, nothing cut; the totals
    go to stderr.
    """
    from rich.console import Console

    snap = _snapshot(ctx, db_path)
    rows = _rows(snap)
    console = Console(highlight=False)
    totals = (f"{len(snap['assets'])} assets, {len(snap['findings'])} findings, "
              f"{len(snap['asset_events'])} asset events")
    note = run_note(snap.get("runs", []))
    if not console.is_terminal:
        click.echo("\t".join(h for h, *_ in COLUMNS))
        for r in rows:
            click.echo("\t".join(r))
        click.echo(totals, err=True)
        if note:
            click.echo(f"otwatch: {note}", err=True)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    widths = {i: None for i in range(len(COLUMNS))} if wide else _fit_columns(console.width, rows)
    keep = list(widths)
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False, padding=(0, 1))
    for i in keep:
        h = COLUMNS[i][0]
        t.add_column(h, width=widths[i], no_wrap=not wide, overflow="fold" if wide else "ellipsis",
                     justify="right" if h == "FIND" else "left")
    for r in rows:
        t.add_row(*(Text(r[i]) for i in keep))
    console.print(t)
    left = [COLUMNS[i][0] for i in range(len(COLUMNS)) if i not in keep]
    console.print(Text(totals + (f"  ({', '.join(left)} left out to fit; --wide shows all)" if left else "")))
    if note:
        console.print(Text(note, style="bold yellow"))


@inventory.command("runs")
@_db_option
@click.pass_context
def runs(ctx: click.Context, db_path: str | None) -> None:
    """List the runs that wrote this database (analyze, sensor) and how each ended."""
    snap = _snapshot(ctx, db_path)
    for r in snap["runs"]:
        srcs = ", ".join(_e(x, 120) for x in r["sources"])
        err = f"  error: {_e(r.get('error'), 200)}" if r.get("error") else ""
        click.echo(f"#{r['run_id']:<4} {when(r['started'])} UTC  {r['command']:<8} {r['shown_status']:<11} "
                   f"{r.get('packets') or 0:>12,} packets  {srcs}{err}")
    if not snap["runs"]:
        click.echo("no runs recorded yet", err=True)


def _ip_key(ip: str) -> tuple:
    try:
        return (0, tuple(int(x) for x in ip.split(".")))
    except ValueError:
        return (1, (ip,))


@inventory.command()
@click.argument("asset")
@_db_option
@click.option("--events", "n_events", type=int, default=10, show_default=True, help="Recent asset events to show.")
@click.pass_context
def show(ctx: click.Context, asset: str, db_path: str | None, n_events: int) -> None:
    """Show the full record of ASSET (asset id, IP, MAC or host name) with the evidence of each fact."""
    snap = _snapshot(ctx, db_path)
    found = resolve(snap, asset)
    if not found:
        raise click.ClickException(f"no asset matches {escape(asset)!s}")
    if len(found) > 1:
        raise click.ClickException(f"{escape(asset)} matches several assets: "
                                   + ", ".join(_e(a["asset_id"]) for a in found))
    a = found[0]
    k = by_asset(snap)[a["asset_id"]]
    names = {x["asset_id"]: (best_name(x, by_asset(snap)[x["asset_id"]]) or x["ip"] or x["asset_id"])
             for x in snap["assets"]}
    out = []
    w = out.append
    w(f"asset {_e(a['asset_id'])}" + (f"  (behind gateway {_e(a['via'])})" if a["via"] else ""))
    w(f"  class       {_e(a['device_class'])} ({a['class_confidence']:.2f}): {_e(a['class_reason'])}")
    w(f"  mac         {_e(a['mac']) or '-'}  vendor {_e(a['vendor']) or '-'}"
      + ("  [gateway: several IPs behind this MAC]" if a["gateway"] else ""))
    w(f"  seen        {when(a['first_seen'])} .. {when(a['last_seen'])} UTC "
      f"(first: {_at(a.get('first_capture'), a['first_frame'])})")
    w(f"  traffic     sent {a['packets_sent']} pkts / {a['bytes_sent']} B, "
      f"received {a['packets_received']} pkts / {a['bytes_received']} B")
    if a.get("zone"):
        w(f"  zone        {_e(a['zone'])}")
    w("addresses")
    for r in sorted(k["addresses"], key=lambda r: (r["type"], r["value"], r.get("vlan") or 0)):
        tag = f" vlan {r['vlan']}" if r.get("vlan") and r["type"] == "ip" else ""
        w(f"  {r['type']:<4} {_e(r['value']):<18}{tag} via {r['how']:<4} first {when(r['first_seen'])} {_at(r.get('capture'), r['frame'])}, "
          f"last {when(r['last_seen'])}")
    if k["names"]:
        w("names")
        for r in sorted(k["names"], key=lambda r: r["name"]):
            w(f"  {_e(r['name'])}  ({r['source']}, {_at(r.get('capture'), r['frame'])}, last {when(r['last_seen'])})")
    w("roles")
    for r in sorted(k["roles"], key=lambda r: r["role"]):
        det = ""
        if r["detail"].get("units"):
            det = " units " + ",".join(str(u) for u in r["detail"]["units"])
        w(f"  {r['role']:<14} {r['confidence']:.2f}{det}  — {_e(r['reason'])}")
    if k["identity"]:
        w("identity  (attribute = value  [message; first evidence; last confirmed])")
        for r in sorted(k["identity"], key=lambda r: (r["protocol"], r["attribute"])):
            ch = f"; changed {r['changes']}x" if r.get("changes") else ""
            w(f"  {r['protocol']:<6} {_e(r['attribute'], 60)} = {_e(r['value'], 120)}")
            w(f"         [{_e(r['source'])}; first {_at(r.get('capture'), r['frame'])} at {when(r['first_seen'])}; "
              f"last {_at(r.get('last_capture'), r['last_frame'])} at {when(r['last_seen'])}{ch}]")
    if k["services"]:
        w("services")
        for r in sorted(k["services"], key=lambda r: (r["transport"], r["port"])):
            w(f"  {r['transport']}/{r['port']:<6} {_e(r['protocol'])}  ({_at(r.get('capture'), r['frame'])}, "
              f"last {when(r['last_seen'])})")
    if k["peers"]:
        w("peers")
        for r in sorted(k["peers"], key=lambda r: (r["protocol"], r["direction"], r["peer_id"])):
            arrow = "->" if r["direction"] == "client" else "<-"
            ops = ", ".join(f"{o} x{n}" for o, n in sorted((r["ops"] or {}).items()))
            w(f"  {arrow} {_e(names.get(r['peer_id'], r['peer_id'])):<20} {_e(r['protocol'])}:{r['port']:<6} {ops}")
    if k["topics"]:
        w("mqtt topics")
        for r in sorted(k["topics"], key=lambda r: (r["how"], r["topic"]))[:50]:
            w(f"  {r['how']:<9} {_e(r['topic'], 120)}  ({_at(r.get('capture'), r['frame'])})")
        if len(k["topics"]) > 50:
            w(f"  … {len(k['topics']) - 50} more (see export)")
    if k["findings"]:
        w("findings")
        order = {"high": 0, "medium": 1, "low": 2}
        for r in sorted(k["findings"], key=lambda r: (order.get(r["severity"], 3), r["finding"], r["subject"])):
            ev = r["evidence"] or {}
            w(f"  [{r['severity']}] {r['finding']}" + (f" ({_e(r['subject'], 100)})" if r["subject"] else ""))
            w(f"      {_e(r['title'])}")
            w(f"      {_e(r['detail'])}")
            w(f"      evidence: {_e(ev.get('message'))} {_at(ev.get('source') or r.get('capture'), ev.get('frame'))} "
              f"at {when(ev.get('ts'))}, "
              f"{_e(ev.get('client'))} -> {_e(ev.get('server'))}:{ev.get('port')}; seen {r['count']}x")
    dropped = {t: n for t, n in (a["dropped"] or {}).items() if n}
    if dropped:
        w("dropped at caps  " + ", ".join(f"{t} {n}" for t, n in sorted(dropped.items())))
    if n_events > 0 and k["asset_events"]:
        w("recent events")
        for r in sorted(k["asset_events"], key=lambda r: r["id"])[-n_events:]:
            w(f"  {when(r['ts'])} {_at(r.get('capture'), r['frame'])}  {r['type']:<17} "
              f"{_e(json.dumps(r['detail'], ensure_ascii=False, sort_keys=True), 160)}")
    click.echo("\n".join(out))


def _record(a: dict, k: dict) -> dict:
    rec = dict(a)
    for t in ("addresses", "names", "roles", "identity", "services", "peers", "topics", "findings"):
        rec[t] = [{c: v for c, v in r.items() if c != "asset_id"} for r in k[t]]
    return rec


@inventory.command()
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-",
              help="Output file ('-' for stdout).")
@_db_option
@click.pass_context
def export(ctx: click.Context, fmt: str, output: str, db_path: str | None) -> None:
    """Export the inventory: JSON (every asset with all its facts and evidence) or CSV (one row per asset).

    JSON gives every value exactly as received; control characters (C0, DEL,
    C1 such as the 8-bit CSI, U+2028/2029) appear only as JSON escapes, so the
    file is safe to print on a terminal.  CSV has no escape syntax of its own:
    its cells are escaped like the terminal output (``\\xNN``), and cells that a
    spreadsheet would run as a formula are prefixed with a quote.
    """
    snap = _snapshot(ctx, db_path)
    kids = by_asset(snap)
    if fmt == "json":
        text = _C1.sub(lambda m: "\\u%04x" % ord(m.group()),
                       json.dumps({"assets": [_record(a, kids[a["asset_id"]]) for a in snap["assets"]]},
                                  ensure_ascii=False, indent=1, sort_keys=True, default=str)) + "\n"
    else:
        buf = io.StringIO()
        wr = csv.writer(buf)
        wr.writerow(["asset_id", "ip", "ips", "mac", "vendor", "names", "device_class", "class_confidence",
                     "class_reason", "roles", "services", "identity", "findings", "first_seen", "last_seen",
                     "packets_sent", "bytes_sent", "packets_received", "bytes_received", "via", "zone"])
        for a in snap["assets"]:
            k = kids[a["asset_id"]]
            row = [a["asset_id"], a["ip"],
                   " ".join(sorted(with_vlan(r["value"], r.get("vlan")) for r in k["addresses"] if r["type"] == "ip")),
                   a["mac"], a["vendor"], " ".join(sorted(r["name"] for r in k["names"])), a["device_class"],
                   a["class_confidence"], a["class_reason"], " ".join(sorted(r["role"] for r in k["roles"])),
                   " ".join(sorted(f"{r['protocol']}/{r['transport']}/{r['port']}" for r in k["services"])),
                   "; ".join(f"{r['protocol']}.{r['attribute']}={r['value']}" for r in k["identity"]),
                   " ".join(sorted(f"{r['finding']}" for r in k["findings"])),
                   when(a["first_seen"]), when(a["last_seen"]), a["packets_sent"], a["bytes_sent"],
                   a["packets_received"], a["bytes_received"], a["via"], a["zone"]]
            wr.writerow([_csv_safe(v) for v in row])
        text = buf.getvalue()
    _write(output, text.encode("utf-8"))


_C1 = re.compile("[\x7f-\x9f\u2028\u2029]")
"""What json.dumps(ensure_ascii=False) leaves raw but a terminal may obey (8-bit CSI 0x9b ...)."""


def _csv_safe(v):
    if isinstance(v, str):
        v = escape(v, limit=1 << 30)
        if v[:1] in ("=", "+", "-", "@"):
            return "'" + v
    return v


def _write(output: str, data: bytes) -> None:
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            with open(output, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise Fatal(f"{escape(output)}: cannot write ({exc.strerror or exc})") from None


@inventory.command()
@format_option(("dot", "svg", "png"), "dot")
@output_option()
@click.option("--no-legend", is_flag=True, help="Leave the legend out.")
@_db_option
@click.pass_context
def graph(ctx: click.Context, fmt: str, output: str, no_legend: bool, db_path: str | None) -> None:
    """Draw the communication map: assets as nodes (role, identity), one edge per client → server pair
    with its protocols, ports and operations, and a legend.

    svg and png need Graphviz `dot` on PATH.
    """
    snap = _snapshot(ctx, db_path)
    dot = G.to_dot(snap, legend=not no_legend)
    if fmt == "dot":
        _write(output, dot.encode("utf-8"))
        return
    if fmt == "png" and output == "-" and sys.stdout.isatty():
        raise Fatal("a PNG is not for the terminal: give -o FILE.png")
    try:
        _write(output, G.render(dot, fmt))
    except (G.DotMissing, RuntimeError) as exc:
        raise Fatal(str(exc)) from None


@inventory.command()
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable), e.g. identity.changed.")
@format_option(("text", "json"), "text")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json (older spelling).")
@_db_option
@click.pass_context
def events(ctx: click.Context, types: tuple[str, ...], fmt: str, as_json: bool, db_path: str | None) -> None:
    """List the asset events (new asset, new role or service, identity changed, new finding …).

    --format json writes one JSON object per line (the `asset_events` row: capture and frame are the evidence).
    """
    snap = _snapshot(ctx, db_path)
    as_json = as_json or fmt == "json"
    for r in sorted(snap["asset_events"], key=lambda r: r["id"]):
        if types and r["type"] not in types:
            continue
        if as_json:
            click.echo(_C1.sub(lambda m: "\\u%04x" % ord(m.group()),
                               json.dumps(r, ensure_ascii=False, sort_keys=True, default=str)))
        else:
            click.echo(f"{when(r['ts'])} {_at(r.get('capture'), r['frame'])}  {r['type']:<17} {_e(r['asset_id']):<24} "
                       f"{_e(json.dumps(r['detail'], ensure_ascii=False, sort_keys=True), 160)}")
