"""``otwatch baseline ...``: learn, inspect, export/import, diff, accept/unlearn, check, suggest a policy.

Every command works on one stored baseline (``--baseline PATH``, default
``store.default_path()``).  Exit codes: 0 ok; 1 ``diff`` found differences or
``check`` raised findings; 2 a usage, file or format error.  Wire strings
(topics, node ids, user names) are escaped before they reach the terminal.
"""
from __future__ import annotations

import sys

import click

from otwatch.parsers.common import escape

from ..clikit import db_option, run_captures
from .model import Baseline, parse_entry

_BASELINE = click.option("--baseline", "baseline_path", metavar="PATH", default=None,
                         help="Baseline file (default: $OTWATCH_BASELINE or baseline.yaml beside the inventory).")


def _fail(msg: str) -> None:
    click.echo(f"otwatch: {msg}", err=True)
    sys.exit(2)


MAX_ERROR_LINES = 50
"""Problems of a bad baseline file shown (the count of the rest follows)."""


def _lines(e) -> str:
    """A BaselineFormatError as terminal lines, each escaped on its own (wire strings may be in them)."""
    shown = [escape(line, limit=1000) for line in e.errors[:MAX_ERROR_LINES]]
    if len(e.errors) > MAX_ERROR_LINES:
        shown.append(f"... and {len(e.errors) - MAX_ERROR_LINES} more")
    return "\n".join(shown)


def _load(path: str | None, missing_ok: bool = True) -> Baseline:
    from .store import default_path, load_baseline
    from .yamlio import BaselineFormatError

    try:
        return load_baseline(path, missing_ok=missing_ok)
    except FileNotFoundError:
        _fail(f"{escape(path or default_path())}: no baseline (run `otwatch baseline learn FILE...` first)")
    except BaselineFormatError as e:
        _fail(_lines(e))
    except OSError as e:
        _fail(f"{escape(path or default_path())}: {e.strerror}")


def _settings(interval: float, ports: tuple):
    from ..cli import _port_option
    from ..pipeline import DEFAULT_PORTS, DEFAULT_TLS_PORTS, Settings

    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    return Settings(ports=_port_option(ports, DEFAULT_PORTS), tls_ports=dict(DEFAULT_TLS_PORTS), interval=interval)


def _run(files, consumers, settings, on_file=None) -> bool:
    return run_captures(consumers, files, settings, on_file)


def learn_files(files, baseline: Baseline, settings, quiet: int | None = None,
                min_duration: float | None = None):
    """Learn ``files`` into ``baseline``; (learner, all files read)."""
    from .learn import MIN_DURATION, QUIET_INTERVALS, Learner

    learner = Learner(baseline, settings.interval, QUIET_INTERVALS if quiet is None else quiet,
                      MIN_DURATION if min_duration is None else min_duration)
    ok = _run(files, [learner], settings)
    for f in files:
        if f not in baseline.learning.sources:
            baseline.learning.sources.append(f)
    return learner, ok


_PORT = click.option("--port", "ports", multiple=True, metavar="PROTO=PORT",
                     help="Also decode PROTO on PORT (as for analyze).")
_INTERVAL = click.option("--interval", type=float, default=60.0, show_default=True,
                         help="Seconds of capture time per interval (rates are learned per interval).")


@click.group()
def baseline() -> None:
    """Learn what each pair of devices does, then report departures (docs/baseline.md)."""


@baseline.command()
@click.argument("files", nargs=-1, required=True)
@_BASELINE
@_INTERVAL
@_PORT
@click.option("--fresh", is_flag=True, help="Start from an empty baseline instead of adding to the stored one.")
@click.option("--quiet-intervals", type=int, default=None,
              help="Stop rule: intervals without anything new (default 120).")
@click.option("--min-duration", type=float, default=None,
              help="Stop rule: seconds of packet time learned at the least (default 14400).")
def learn(files, baseline_path, interval, ports, fresh, quiet_intervals, min_duration) -> None:
    """Learn from capture FILES (pcap, pcapng, gzip) and store the baseline.

    The captures are the learning window: the baseline is ready for detection
    afterwards; `status` says whether the stop rule (nothing new for a while)
    was met inside them.
    """
    from .store import save_baseline

    settings = _settings(interval, ports)
    b = Baseline() if fresh else _load(baseline_path)
    if b.pairs and abs(b.interval - interval) > 1e-9:
        _fail(f"the stored baseline was learned with --interval {b.interval:g}; use the same, or --fresh")
    learner, ok = learn_files(files, b, settings, quiet_intervals, min_duration)
    stable = learner.stable
    b.learning.status = "ready"
    path = save_baseline(b, baseline_path)
    click.echo(f"learned {len(b.assets)} assets, {len(b.pairs)} pairs, {b.entry_count()} entries "
               f"over {b.learning.intervals} intervals; stop rule {'met' if stable else 'not met'}")
    click.echo(f"baseline: {escape(path)}")
    if not ok:
        sys.exit(2)


def _sparkline(curve: list[int], width: int = 60) -> str:
    if not curve:
        return ""
    bars = " ▁▂▃▄▅▆▇█"
    step = max(1, -(-len(curve) // width))
    vals = [sum(curve[i:i + step]) for i in range(0, len(curve), step)]
    top = max(vals) or 1
    return "".join(bars[0] if v == 0 else bars[max(1, round(v / top * 8))] for v in vals)


@baseline.command()
@_BASELINE
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def status(baseline_path, as_json) -> None:
    """Show the stored baseline: size, learning state and the learning curve."""
    from .learn import MIN_DURATION, QUIET_INTERVALS
    from .store import default_path

    b = _load(baseline_path, missing_ok=False)
    L = b.learning
    protos: dict = {}
    for pk in b.pairs:
        protos[pk.protocol] = protos.get(pk.protocol, 0) + 1
    learned = L.last_ts - L.started_ts if L.last_ts else 0.0
    met = L.quiet >= QUIET_INTERVALS and learned >= MIN_DURATION
    info = {"path": baseline_path or default_path(), "status": L.status, "assets": len(b.assets),
            "pairs": len(b.pairs), "pairs_by_protocol": dict(sorted(protos.items())), "entries": b.entry_count(),
            "interval": b.interval, "intervals": L.intervals, "learned_seconds": round(learned, 3),
            "quiet_intervals": L.quiet, "stop_rule_met": met, "curve": L.curve, "sources": L.sources,
            "pending": len(b.pending)}
    if as_json:
        import json

        click.echo(json.dumps(info, sort_keys=True))
        return
    click.echo(f"baseline {escape(info['path'])}: {L.status}")
    click.echo(f"  {len(b.assets)} assets, {len(b.pairs)} pairs "
               f"({', '.join(f'{k} {v}' for k, v in info['pairs_by_protocol'].items())}), {b.entry_count()} entries")
    click.echo(f"  learned {learned / 3600:.2f} h of packet time in {L.intervals} intervals of {b.interval:g} s; "
               f"{L.quiet} quiet intervals at the end")
    click.echo(f"  stop rule (no new entry for {QUIET_INTERVALS} intervals, at least {MIN_DURATION / 3600:g} h): "
               f"{'met' if met else 'not met'}")
    if L.curve:
        click.echo(f"  new entries per interval: {_sparkline(L.curve)}  (first {L.curve[0]}, last {L.curve[-1]})")
    click.echo(f"  findings that can be accepted: {len(b.pending)}")


@baseline.command(name="export")
@_BASELINE
@click.option("-o", "--output", default="-", metavar="FILE|-", help="Where to write the YAML (default stdout).")
def export_(baseline_path, output) -> None:
    """Write the stored baseline as reviewable YAML."""
    from .yamlio import dump

    text = dump(_load(baseline_path, missing_ok=False))
    if output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)


@baseline.command(name="import")
@click.argument("file")
@_BASELINE
def import_(file, baseline_path) -> None:
    """Replace the stored baseline with FILE (YAML, as `export` writes it); checked first."""
    from .store import save_baseline
    from .yamlio import BaselineFormatError, load

    try:
        with open(file, encoding="utf-8") as f:
            b = load(f.read(), file)
    except OSError as e:
        _fail(f"{escape(file)}: {e.strerror}")
    except BaselineFormatError as e:
        click.echo(_lines(e), err=True)           # file:line:column: key path: what is wrong
        sys.exit(2)
    path = save_baseline(b, baseline_path)
    click.echo(f"imported {len(b.assets)} assets, {len(b.pairs)} pairs into {escape(path)}")


def _side(arg: str, settings) -> Baseline:
    if arg.endswith((".yaml", ".yml")):
        from .yamlio import BaselineFormatError, load

        try:
            with open(arg, encoding="utf-8") as f:
                return load(f.read(), arg)
        except OSError as e:
            _fail(f"{escape(arg)}: {e.strerror}")
        except BaselineFormatError as e:
            _fail(_lines(e))
    b = Baseline()
    _, ok = learn_files([arg], b, settings)
    if not ok:
        sys.exit(2)
    return b


@baseline.command(name="diff")
@click.argument("a")
@click.argument("b")
@_INTERVAL
@_PORT
def diff_(a, b, interval, ports) -> None:
    """Compare two baselines (.yaml) or captures (learned on the fly): `-` only in A, `+` only in B.

    Exit status 0 when they agree, 1 when they differ.
    """
    from .diff import diff

    settings = _settings(interval, ports)
    d = diff(_side(a, settings), _side(b, settings))
    for line in d.lines():
        click.echo(escape(line, limit=1000))
    click.echo(f"{len(d.only_a)} only in {escape(a)}, {len(d.only_b)} only in {escape(b)}", err=True)
    sys.exit(0 if d.same else 1)


def _stored_alert(alert_id: str, db_path: str | None) -> tuple[str, dict | None]:
    """(database path, the stored alert with this id or unique prefix, or None when there is no database,
    no alerts table or no such alert).  Read-only: nothing is created here."""
    from otwatch.sensor.alerts import store as S
    from otwatch.sensor.store import StoreError

    path = db_path or S.default_path()
    try:
        db = S.connect(path, readonly=True)
    except FileNotFoundError:
        return path, None
    except StoreError as e:
        _fail(f"{escape(path)}: {escape(str(e))}")
    try:
        return path, S.get(db, alert_id)
    finally:
        db.close()


def _pending(b: Baseline, alert_id: str) -> tuple[str, str | None]:
    """(full id, entry) of a remembered finding, by id or unique prefix (at least 6 characters)."""
    if alert_id in b.pending:
        return alert_id, b.pending[alert_id]
    if len(alert_id) >= 6:
        hits = [k for k in b.pending if k.startswith(alert_id)]
        if len(hits) == 1:
            return hits[0], b.pending[hits[0]]
    return alert_id, None


def _close_accepted(db_path: str, row: dict, entry: str, note: str, by: str | None) -> str:
    """Close the stored alert as accepted; what to tell the user."""
    from otwatch.sensor.alerts import store as S
    from otwatch.sensor.store import StoreError

    if row["status"] == "closed" and row["close_reason"] == "accepted":
        return f"alert {row['id']} was closed as accepted already"
    try:
        st = S.AlertStore(S.connect(db_path, create=False))
    except (FileNotFoundError, StoreError) as e:
        _fail(f"learned, but the alert in {escape(db_path)} was not closed: {escape(str(e))}")
    try:
        if row["status"] == "closed":          # closed as resolved: it is accepted now
            st.reopen(row["id"], note, by)
        st.close(row["id"], "accepted", note or f"learned into the baseline: {entry}"[:NOTE_LIMIT], by)
    except (KeyError, ValueError, StoreError) as e:
        _fail(f"learned, but the alert {row['id']} was not closed: {escape(str(e))}")
    finally:
        st.close_db()
    return f"alert {row['id']} closed (accepted)"


NOTE_LIMIT = 500
"""Characters of the default close note (the entry learned; a topic can be long)."""


@baseline.command()
@click.argument("alert_id")
@_BASELINE
@db_option
@click.option("--note", default="", help="Why (stored with the alert; default: the entry learned).")
@click.option("--by", "by", metavar="NAME", default=None,
              help="Who accepts it (stored with the alert; default: your login name).")
def accept(alert_id, baseline_path, db_path, note, by) -> None:
    """Learn what the finding ALERT_ID departed from (its entry), so it is normal from now on, and close
    the stored alert as accepted (who and when are stored with it).

    ALERT_ID is the id (or a unique prefix of at least 6 hex digits) that `otwatch alerts`,
    `otwatch analyze --baseline` or `otwatch baseline check` shows.  The same steps as the TUI's `L`
    (sensor/baseline/accept.py: ``entry_of`` finds the entry, ``accept_entry`` learns and saves it).
    """
    from .accept import accept_entry, entry_of
    from .store import default_path

    b = _load(baseline_path, missing_ok=False)
    db, row = _stored_alert(alert_id, db_path)
    aid, _ = _pending(b, row["id"] if row is not None else alert_id)
    entry = entry_of(aid, row.get("details") if row is not None else None, b)
    if entry is None:
        _fail(f"{escape(alert_id, 64)}: no finding with this id that can be learned "
              "(sweeps, storms and brute force cannot; or it was accepted already)")
    try:
        parse_entry(entry)
    except ValueError as e:
        _fail(f"{escape(alert_id, 64)}: {escape(str(e), limit=1000)}")
    if row is not None and (row["status"], row["close_reason"]) == ("closed", "accepted") \
            and not b.add_entry(entry):             # (b is a scratch copy: accept_entry loads and saves its own)
        who = f" by {escape(row['status_by'], 64)}" if row.get("status_by") else ""
        _fail(f"alert {row['id']} was accepted already ({escape(row['status_at'], 32)}{who})")
    try:
        res = accept_entry(entry, baseline_path, aid)
    except FileNotFoundError:
        _fail(f"{escape(baseline_path or default_path())}: no baseline (run `otwatch baseline learn FILE...` first)")
    except ValueError as e:
        _fail(f"{escape(alert_id, 64)}: {escape(str(e), limit=1000)}")
    except OSError as e:
        _fail(f"{escape(baseline_path or default_path())}: {e.strerror}")
    click.echo(f"{'learned' if res.changed else 'already known'}: {escape(entry, limit=1000)}")
    if row is not None:
        click.echo(_close_accepted(db, row, entry, note, by))


@baseline.command()
@click.argument("entry")
@_BASELINE
def unlearn(entry, baseline_path) -> None:
    """Remove ENTRY from the baseline, e.g. 'pair 10.0.0.5>10.0.0.9 modbus/502 function_codes 6'.

    Entries are written as `export` and `diff` show them: 'asset IP', 'pair CLIENT>SERVER PROTO/PORT'
    (the whole pair), '... FIELD VALUE', '... coverage read|write unit=N/TABLE RANGES', '... timing'.
    """
    from .store import save_baseline

    try:
        parse_entry(entry)
    except ValueError as e:
        _fail(escape(str(e), limit=1000))
    b = _load(baseline_path, missing_ok=False)
    if not b.remove_entry(entry):
        _fail(f"not in the baseline: {escape(entry, limit=1000)}")
    save_baseline(b, baseline_path)
    click.echo(f"unlearned: {escape(entry, limit=1000)}")


@baseline.command()
@click.argument("files", nargs=-1, required=True)
@_BASELINE
@_INTERVAL
@_PORT
def check(files, baseline_path, interval, ports) -> None:
    """Compare capture FILES with the stored baseline and list what departs from it.

    (`otwatch analyze FILE --baseline PATH` does the same inside the alert pipeline.)
    Exit status 1 when anything was found.
    """
    from otwatch.sensor.alerts.model import ListSink

    from .detect import Detector
    from .store import save_baseline

    b = _load(baseline_path, missing_ok=False)
    settings = _settings(interval, ports)
    sink = ListSink()
    det = Detector(b, sink)
    ok = _run(files, [det], settings, on_file=lambda p: setattr(det, "source", p))
    for f in sink.findings:
        ev = f.evidence
        click.echo(f"{f.severity:8s} {f.rule:36s} {escape(ev.source)}#{ev.frame} {f.alert_id}  "
                   f"{escape(f.message, limit=400)}")
    click.echo(f"{len(sink.findings)} findings", err=True)
    save_baseline(b, baseline_path)    # remembers what `accept` can learn
    if not ok:
        sys.exit(2)
    sys.exit(1 if sink.findings else 0)


@baseline.command(name="suggest-policy")
@_BASELINE
@click.option("-o", "--output", default="-", metavar="FILE|-", help="Where to write the policy (default stdout).")
@click.option("--zones", type=click.Choice(["role", "host"]), default="role", show_default=True,
              help="One zone per role (controllers, servers, supervisory, ...) or one per host.")
def suggest_policy(baseline_path, output, zones) -> None:
    """Draft a zones-and-conduits policy from the baseline (deterministic, commented with counts and
    first-seen times; `otwatch rules check` accepts it; see docs/rules.md)."""
    from otwatch.sensor.policy.observed import from_baseline
    from otwatch.sensor.policy.suggest import suggest_policy as draft

    text = draft(from_baseline(_load(baseline_path, missing_ok=False)), zones=None if zones == "role" else "host")
    if output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
