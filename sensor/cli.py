"""The ``otwatch`` command line (click).

Commands stay thin: parse options, build a Pipeline with its consumers, run.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

import click

from otwatch import ext
from otwatch.parsers.common import escape

from . import __version__
from .clikit import (EXIT_FATAL, EXIT_INTERRUPTED, Fatal, db_option, fatal_errors, memcap_limits, output_option,
                     tune_gc)
from .pipeline import DEFAULT_PORTS, DEFAULT_TLS_PORTS, Pipeline, Settings
from .source import CaptureError, check_path, source_name

log = logging.getLogger("otwatch")


class Progress:
    """A progress bar on stderr (rich): file, bar, percent, bytes, packets/s, time left.

    Shown only when stderr is a terminal and --quiet is not given (rich itself
    falls back to nothing on a dumb terminal); rich refreshes it a few times a
    second (wall clock is fine here: this is the UI edge).
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._bar = None
        self._task = None
        self.start = time.monotonic()

    def begin(self, label: str) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress, TaskProgressColumn,
                                       TextColumn, TimeRemainingColumn)

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                     DownloadColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
            self._bar.start()
        if self._task is not None:
            self._bar.remove_task(self._task)
        self.start = time.monotonic()
        self._task = self._bar.add_task(escape(label, 40), total=None, rate="")

    def __call__(self, done: int, total: int | None, packets: int) -> None:
        if self._bar is None or self._task is None:
            return
        el = max(time.monotonic() - self.start, 1e-6)
        self._bar.update(self._task, completed=done, total=total, rate=f"{packets / el:,.0f} pkt/s")

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None


def _port_option(values: tuple[str, ...], base: dict) -> dict:
    ports = dict(base)
    for v in values:
        try:
            proto, port = v.split("=", 1)
            port_i = int(port)
            if not 0 < port_i < 65536:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{v!r}: expected PROTOCOL=PORT, e.g. modbus=5020") from None
        if proto not in ("modbus", "mqtt", "opcua"):
            raise click.BadParameter(f"{v!r}: protocol must be modbus, mqtt or opcua")
        ports[port_i] = proto
    return ports


class _LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when used.

    ``inventory`` pulls in sqlite-utils and the store; ``otwatch analyze
    --no-inventory`` should not pay for that at start-up.  Other packages add
    their commands here (name -> (module, attribute)).  Every command's
    ``StoreError``/``CaptureError`` becomes one line and exit 2 (``clikit.Fatal``).
    """

    LAZY = {"inventory": ("otwatch.sensor.inventory.cli", "inventory"),
            "alerts": ("otwatch.sensor.alerts.cli", "alerts"),
            "baseline": ("otwatch.sensor.baseline.cli", "baseline"),
            "rules": ("otwatch.sensor.policy.cli", "rules"),
            "sensor": ("otwatch.sensor.live.cli", "sensor"),
            "tui": ("otwatch.sensor.tui.cli", "tui")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx, name):
        if name in self.LAZY and name not in self.commands:
            import importlib

            module, attr = self.LAZY[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except fatal_errors() as exc:
            raise Fatal(escape(str(exc), 1024)) from None


def _show_version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"otwatch {__version__} ({ext.IMPLEMENTATION} kernels)")
    ctx.exit()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit (`otwatch version` says more).")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """otwatch: passive monitor and asset inventory for OT networks (Modbus/TCP, MQTT, OPC UA)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="otwatch: %(levelname)s: %(message)s")


@cli.command()
def version() -> None:
    """Show the version and which kernel implementation (compiled or pure) is active."""
    click.echo(f"otwatch {__version__}")
    click.echo(f"kernels: {ext.IMPLEMENTATION}")
    if ext.WHY_PURE:
        click.echo(f"  (pure because: {ext.WHY_PURE})")
    from .live.capture import describe

    click.echo(f"live capture: {describe()}")
    click.echo(f"python: {sys.version.split()[0]}")


class _Stop(Exception):
    """SIGTERM during a run: stop like Ctrl-C."""


@cli.command()
@click.argument("files", nargs=-1, required=True)
@output_option("Write the observation stream as JSON lines to PATH ('-' for stdout; docs/observations.md).",
               default=None)
@click.option("--json", "json_out", metavar="PATH", hidden=True, help="Same as -o/--output (older spelling).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--every-message", is_flag=True,
              help="Report every protocol message in full, not only the first of each kind per link.")
@click.option("--interval", type=float, default=60.0, show_default=True,
              help="Seconds of capture time per aggregate interval.")
@click.option("--port", "ports", multiple=True, metavar="PROTO=PORT",
              help="Also decode PROTO on PORT, e.g. --port modbus=5020 (repeatable).")
@db_option
@click.option("--no-inventory", is_flag=True, help="Do not update the inventory database (no run is recorded).")
@click.option("--policy", "policy_path", metavar="PATH", default=None,
              help="Policy file: zones, conduits and detection settings (docs/rules.md, docs/alerts.md).")
@click.option("--baseline", "baseline_path", metavar="PATH", default=None,
              help="Detect departures from this learned baseline (otwatch baseline learn).")
@click.option("--fail-on", type=click.Choice(("none", "info", "low", "medium", "high", "critical"),
                                             case_sensitive=False), default="none", show_default=True,
              help="Exit 1 when an alert at or above this severity was raised (exit 2 on errors).")
@click.option("--alerts-json", metavar="PATH|-", default=None,
              help="Write the alerts as JSON lines (docs/alerts.md; '-' for stdout).")
@click.option("--evidence", "evidence_dir", metavar="DIR", default=None,
              help="Write one small pcap per alert with the packets behind it into DIR.")
@click.option("--no-alerts", is_flag=True, help="Do not raise alerts.")
@click.option("--posture-alerts", is_flag=True,
              help="Also raise configuration posture findings as alerts (Modbus without authentication, anonymous "
                   "MQTT, OPC UA SecurityPolicy None, certificates ...); by default the inventory keeps them "
                   "(docs/alerts.md).")
@click.option("--memcap", metavar="SIZE", default=None,
              help="Memory budget shared out over flows, hosts, links, tallies and reassembly (e.g. 512M, 2G; "
                   "default 512M, sized for a 2 GB Raspberry Pi 4; docs/architecture.md \"Memory budget\").")
def analyze(files, output, json_out, quiet, every_message, interval, ports, db_path, no_inventory, policy_path,
            baseline_path, fail_on, alerts_json, evidence_dir, no_alerts, posture_alerts, memcap) -> None:
    """Analyse capture FILES (pcap, pcapng, gzip-compressed; '-' for stdin).

    Prints a summary: packets, flows, hosts, messages per protocol and kind,
    anomalies and decode coverage (docs/user-guide.md explains each part).
    The inventory database is updated, and the run recorded, unless
    --no-inventory is given.  Alerts (docs/alerts.md) are listed after the
    summary and stored with the inventory; the exit status is a linter's: 0
    when no alert reaches --fail-on, 1 when one does, 2 on an error.  A capture that cannot be read stops the run
    with one line and exit status 2; Ctrl-C stops it with status 130 and the
    run is marked interrupted.
    """
    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    json_out = output or json_out
    fail_on = fail_on.lower()
    if no_alerts and (policy_path or alerts_json or evidence_dir or baseline_path or fail_on != "none"
                      or posture_alerts):
        raise click.UsageError("--no-alerts cannot be combined with --policy, --baseline, --alerts-json, --evidence, "
                               "--posture-alerts or --fail-on")
    alert_settings = policy = None
    if policy_path and not no_alerts:
        from .alerts.policyfile import PolicyFileError, load as load_policy_file

        try:
            alert_settings, policy = load_policy_file(policy_path, posture_alerts)
        except PolicyFileError as exc:
            raise Fatal(str(exc)) from None
    elif posture_alerts:
        from .alerts.settings import AlertSettings

        alert_settings = AlertSettings(posture_alerts=True)
    settings = Settings(ports=_port_option(ports, DEFAULT_PORTS), tls_ports=dict(DEFAULT_TLS_PORTS),
                        detail_all=every_message, interval=interval, limits=memcap_limits(memcap, "--memcap"))
    for path in files:          # refuse what cannot be a capture before anything is written
        check_path(path)
    from .report import Summary, render

    summary = Summary(settings.limits.max_hosts)
    consumers = [summary]
    jsonw = None
    out_stream = None
    if json_out:
        from .jsonout import JSONLines

        if json_out == "-":
            out_stream = sys.stdout
        else:
            try:
                out_stream = open(json_out, "w", encoding="utf-8")
            except OSError as exc:
                raise Fatal(f"{escape(json_out)}: cannot write ({exc.strerror or exc})") from None
        jsonw = JSONLines(out_stream)
        consumers.append(jsonw)
    inventory = run = None
    if not no_inventory:
        from .inventory.store import open_inventory
        from .store.runs import RunLog

        inventory = open_inventory(db_path)
        consumers.append(inventory)
    alerts = alerts_stream = None
    if not no_alerts:
        from .alerts.analysis import OfflineAlerts, baseline_detector

        if alerts_json == "-":
            alerts_stream = sys.stdout
        elif alerts_json:
            try:
                alerts_stream = open(alerts_json, "w", encoding="ascii")
            except OSError as exc:
                raise Fatal(f"{escape(alerts_json)}: cannot write ({exc.strerror or exc})") from None
        alerts = OfflineAlerts(alert_settings, inventory, inventory.db if inventory is not None else None,
                               alerts_stream)
        if policy is not None:
            from .policy.checker import PolicyChecker

            checker = PolicyChecker(policy, alerts.sink)
            alerts.add_producer(checker)
            if inventory is not None:     # the inventory's zone column and modbus.cross_zone: the checker's zones
                inventory.zone_of = checker.zone_of
        if baseline_path:
            try:
                alerts.add_producer(baseline_detector(baseline_path, alerts.sink))
            except (OSError, ValueError, ImportError) as exc:
                raise Fatal(f"baseline {escape(baseline_path)}: {escape(str(exc))}") from None
        consumers += alerts.consumers
    tune_gc()
    pipe = Pipeline(consumers, settings)
    if inventory is not None:   # recorded last: from here on an interruption is caught and marks the run
        run = RunLog(inventory.db, "analyze", [source_name(f) for f in files], __version__)
    prog = Progress(not quiet and sys.stderr.isatty())
    started = time.monotonic()
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    status, error, unexpected = "completed", "", None
    try:
        for path in files:
            prog.begin(os.path.basename(path) if path != "-" else "stdin")
            if alerts is not None:
                alerts.start_file(source_name(path), 0)
            pipe.run_file(path, progress=prog)
        prog.done()
        pipe.finish()
        if alerts is not None:
            alerts.finish()
    except (KeyboardInterrupt, _Stop) as exc:
        prog.done()
        status = "interrupted"
        code = EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 128 + signal.SIGTERM
    except CaptureError as exc:
        prog.done()
        status, error = "error", str(exc)
        code = EXIT_FATAL
    except Exception as exc:    # a store problem (disk full …) or a bug: the run is marked 'error', then it goes on
        prog.done()
        status, unexpected = "error", exc
        if isinstance(exc, fatal_errors()):
            error = str(exc)
        elif isinstance(exc, OSError):
            error = f"{exc.filename or getattr(out_stream, 'name', None) or 'output'}: {exc.strerror or exc}"
        else:
            error = f"{type(exc).__name__}: {exc}"
    finally:
        signal.signal(signal.SIGTERM, old_term)
        close_error = _close(jsonw, out_stream)
    if close_error and status == "completed":
        status, error, code = "error", close_error, EXIT_FATAL
    packets = pipe.stats().get("capture.packets", 0)
    if alerts is not None:
        if status != "completed" and unexpected is None:
            alerts.finish()           # what was raised before the stop is kept (stored, listed)
        if alerts_stream is not None and alerts_stream is not sys.stdout:
            alerts_stream.close()
    if inventory is not None:
        if unexpected is None:
            inventory.flush()
            run.finish(status, packets, summary.first_ts, summary.last_ts, error)
            inventory.close()
        else:
            _record_failed_run(inventory, run, packets, summary, error, unexpected)
    if isinstance(unexpected, OSError):       # an output that cannot be written (disk full …): one line, exit 2
        raise Fatal(escape(error, 1024)) from None
    if unexpected is not None:
        raise unexpected
    if status == "interrupted":
        kept = f"; the inventory keeps what was read (run {run.run_id} marked interrupted)" if run else ""
        click.echo(f"otwatch: interrupted after {_plural(packets, 'packet')}{kept}", err=True)
        sys.exit(code)
    if status == "error":
        raise Fatal(escape(error, 1024))
    seconds = time.monotonic() - started
    if not quiet and json_out != "-" and alerts_json != "-":
        click.echo(render(list(files), summary, pipe.stats(), pipe.implementation, seconds), nl=False)
        if alerts is not None:
            click.echo(alerts.render(), nl=False)
    if alerts is None:
        return
    if evidence_dir:
        from .alerts.evidence import write_evidence

        rep = write_evidence(alerts.alerts(), evidence_dir)
        if not quiet:
            click.echo(f"evidence: {len(rep.files)} pcaps ({rep.packets} packets) in {escape(evidence_dir)}", err=True)
        for src, why in rep.skipped_sources.items():
            click.echo(f"otwatch: evidence from {escape(src)} not written: {escape(why)}", err=True)
    code = alerts.exit_code(fail_on)
    if code:
        sys.exit(code)


def _record_failed_run(inventory, run, packets: int, summary, error: str, exc: BaseException | None = None) -> None:
    """After an unexpected error: keep what can be kept and mark the run 'error'.  When the database
    itself is what failed, nothing more can be written; the row stays 'running' and readers show it
    as killed once this process is gone.  After a wait for another process's lock that ran out
    (``DatabaseBusy``) these writes do not wait again (``FAILED_RUN_WAIT``)."""
    from .store import DatabaseBusy, wait_limit

    limit = FAILED_RUN_WAIT if isinstance(exc, DatabaseBusy) else None
    for step in (inventory.flush, lambda: run.finish("error", packets, summary.first_ts, summary.last_ts, error)):
        try:
            if limit is None:
                step()
            else:
                with wait_limit(limit):
                    step()
        except Exception:   # noqa: BLE001 - the first error is the one reported
            pass
    try:
        inventory.db.close()
    except Exception:   # noqa: BLE001
        pass


FAILED_RUN_WAIT = 1.0
"""Seconds the last writes of a run that gave up waiting for the database may wait (to mark it 'error')."""


def _on_sigterm(signum, frame):
    raise _Stop()


def _close(jsonw, out_stream) -> str:
    """Close the JSON lines output; returns "" or why it could not be written to the end (disk full …)."""
    if jsonw is None:
        return ""
    why = ""
    try:
        jsonw.close()
    except BrokenPipeError:
        pass
    except OSError as exc:
        why = f"{getattr(out_stream, 'name', 'output')}: {exc.strerror or exc}"
    if out_stream is not sys.stdout:
        try:
            out_stream.close()
        except OSError as exc:
            why = why or f"{getattr(out_stream, 'name', 'output')}: {exc.strerror or exc}"
    return why


def _plural(n: int, word: str) -> str:
    from .report import plural

    return plural(n, word)


def main() -> None:
    """The console entry point: click without its standalone handling, so that Ctrl-C anywhere exits 130
    with one line (click would print "Aborted!" and exit 1) and a closed pipe is not an error."""
    try:
        rc = cli.main(prog_name="otwatch", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            click.echo("otwatch: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("otwatch: aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("otwatch: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:   # `otwatch analyze -o - x.pcap | head`
        _quiet_stdout()
        sys.exit(0)
    sys.exit(rc if isinstance(rc, int) else 0)


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()
