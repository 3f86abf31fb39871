"""The ``otwatch`` command line (click).

Commands stay thin: parse options, build a Pipeline with its consumers, run.
"""
from __future__ import annotations

import logging
import os
import sys
import time

import click

from otwatch import ext
from otwatch.parsers.common import escape

from . import __version__
from .pipeline import DEFAULT_PORTS, DEFAULT_TLS_PORTS, Pipeline, Settings
from .source import CaptureError

log = logging.getLogger("otwatch")


class Progress:
    """A one-line progress bar on stderr: percent, bytes, packets/s, time left.

    Shown only when stderr is a terminal and --quiet is not given; updated at
    most five times a second (wall clock is fine here: this is the UI edge).
    """

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int | None, packets: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        el = max(now - self.start, 1e-6)
        rate = packets / el
        if total:
            frac = min(done / total, 1.0)
            left = (el / frac - el) if frac > 0 else 0
            width = 24
            bar = "█" * int(frac * width) + "·" * (width - int(frac * width))
            msg = (f"\r{self.label} {bar} {frac * 100:5.1f}%  {done / 1e6:,.1f}/{total / 1e6:,.1f} MB  "
                   f"{rate:,.0f} pkt/s  {left:,.0f}s left ")
        else:
            msg = f"\r{self.label} {done / 1e6:,.1f} MB  {packets:,} packets  {rate:,.0f} pkt/s "
        sys.stderr.write(msg)
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


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
    --no-inventory`` should not pay for that at start-up.
    """

    LAZY = {"inventory": ("otwatch.sensor.inventory.cli", "inventory"),
            "rules": ("otwatch.sensor.policy.cli", "rules"),
            "sensor": ("otwatch.sensor.live.cli", "sensor")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx, name):
        if name in self.LAZY and name not in self.commands:
            import importlib

            module, attr = self.LAZY[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "json_out", metavar="PATH|-", help="Write the observations as JSON lines ('-' for stdout).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--every-message", is_flag=True,
              help="Report every protocol message in full, not only the first of each kind per link.")
@click.option("--interval", type=float, default=60.0, show_default=True,
              help="Seconds of capture time per aggregate interval.")
@click.option("--port", "ports", multiple=True, metavar="PROTO=PORT",
              help="Also decode PROTO on PORT, e.g. --port modbus=5020 (repeatable).")
@click.option("--db", "db_path", metavar="PATH", default=None,
              help="Inventory database to update (default: the per-user one; see `otwatch inventory`).")
@click.option("--no-inventory", is_flag=True, help="Do not update the inventory database.")
def analyze(files, json_out, quiet, every_message, interval, ports, db_path, no_inventory) -> None:
    """Analyse capture FILES (pcap, pcapng, gzip-compressed; '-' for stdin).

    Prints a summary: packets, flows, hosts, messages per protocol and kind,
    anomalies and decode coverage.  The inventory database is updated unless
    --no-inventory is given.
    """
    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    settings = Settings(ports=_port_option(ports, DEFAULT_PORTS), tls_ports=dict(DEFAULT_TLS_PORTS),
                        detail_all=every_message, interval=interval)
    from .report import Summary, render

    summary = Summary()
    consumers = [summary]
    jsonw = None
    out_stream = None
    if json_out:
        from .jsonout import JSONLines

        if json_out == "-":
            out_stream = sys.stdout
        else:
            out_stream = open(json_out, "w", encoding="utf-8")
        jsonw = JSONLines(out_stream)
        consumers.append(jsonw)
    inventory = None
    if not no_inventory:
        from .inventory.store import open_inventory

        inventory = open_inventory(db_path)
        consumers.append(inventory)
    pipe = Pipeline(consumers, settings)
    show = not quiet and sys.stderr.isatty()
    started = time.monotonic()
    failed = False
    for path in files:
        prog = Progress(os.path.basename(path) if path != "-" else "stdin", show)
        try:
            pipe.run_file(path, progress=prog)
        except (CaptureError, ValueError) as exc:
            prog.done()
            click.echo(f"otwatch: {escape(path)}: {exc}", err=True)
            failed = True
            continue
        prog.done()
    pipe.finish()
    if jsonw is not None:
        jsonw.close()
        if out_stream is not sys.stdout:
            out_stream.close()
    if inventory is not None:
        inventory.close()
    seconds = time.monotonic() - started
    if not quiet and json_out != "-":
        click.echo(render(list(files), summary, pipe.stats(), pipe.implementation, seconds), nl=False)
    if failed:
        sys.exit(2)


def main() -> None:
    try:
        cli(prog_name="otwatch")
    except BrokenPipeError:   # `otwatch analyze --json - x.pcap | head`
        sys.stderr.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
