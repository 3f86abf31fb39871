"""``otwatch tui``: the terminal UI over a capture file, a live interface or a database.

    otwatch tui FILE.pcap [--speed 1x|10x|max] [--policy P]
    otwatch tui --db PATH [--policy P] [--read-only]     (attached when a sensor writes PATH)
    otwatch tui --interface IFACE [--policy P]
    [--memcap SIZE]: replay and live: the pipeline's memory budget (the Overview's Memory tile)
    [--baseline B]: detect departures from the learned baseline B (replay and live) and accept them into it
    [--posture-alerts]: replay and live: configuration posture findings raised as alerts too (as analyze, sensor)

Exactly one source.  Errors (missing file, bad speed) are one line and exit 2;
a policy file with problems is not an error here: the Policy screen lists them.
"""
from __future__ import annotations

import os
import sys

import click

from otwatch.parsers.common import escape


@click.command()
@click.argument("capture", required=False)
@click.option("--db", "db_path", metavar="PATH", default=None, help="Browse (or attach to) this database.")
@click.option("-i", "--interface", default=None, help="Capture live on this interface (needs CAP_NET_RAW).")
@click.option("--speed", default="max", type=click.Choice(["1x", "10x", "max"]), show_default=True,
              help="Replay speed of a capture file: packet time, ten times faster, or as fast as it goes.")
@click.option("--policy", default=None, metavar="PATH", help="Segmentation policy (YAML) to check and show.")
@click.option("--baseline", "baseline_path", default=None, metavar="PATH",
              help="Detect departures from this learned baseline (default file: shown on the Baseline screen).")
@click.option("--memcap", default=None, metavar="SIZE",
              help="Replay and live: memory budget of the pipeline (e.g. 512M, 2G; default 512M; the Overview's "
                   "Memory tile shows it; docs/architecture.md \"Memory budget\").")
@click.option("--posture-alerts", is_flag=True,
              help="Replay and live: also raise configuration posture findings as alerts (Modbus without "
                   "authentication, anonymous MQTT, OPC UA SecurityPolicy None ...), as analyze and sensor do; by "
                   "default the inventory keeps them (docs/alerts.md).")
@click.option("--read-only", is_flag=True, help="Never write (hides acknowledge and accept).")
@click.option("--ansi", is_flag=True, help="Use the terminal's own 16 colours (Textual's ansi-dark theme).")
def tui(capture, db_path, interface, speed, policy, baseline_path, memcap, posture_alerts, read_only, ansi) -> None:
    """Watch the plant in the terminal: a capture FILE, --db PATH, or --interface IFACE."""
    given = [x for x in (capture, db_path, interface) if x]
    if len(given) != 1:
        click.echo("otwatch tui: give exactly one of FILE, --db PATH, --interface IFACE", err=True)
        sys.exit(2)
    if baseline_path and not os.path.exists(baseline_path):
        click.echo(f"otwatch tui: {escape(baseline_path)}: no such baseline (otwatch baseline learn)", err=True)
        sys.exit(2)
    for flag, given_ in (("--memcap", memcap is not None), ("--posture-alerts", posture_alerts)):
        if db_path and given_:      # on a database the sensor that wrote it raised (or not) the alerts
            click.echo(f"otwatch tui: {flag} applies to a capture or an interface, not to --db", err=True)
            sys.exit(2)
    limits = None
    if memcap is not None:
        from otwatch.parsers import budget

        try:
            limits = budget.limits_for(budget.parse_size(memcap))
        except ValueError as exc:
            click.echo(f"otwatch tui: --memcap: {escape(str(exc))}", err=True)
            sys.exit(2)
    for path, what in ((capture, "file"), (db_path, "database")):
        if path and path != "-" and not os.path.exists(path):
            click.echo(f"otwatch tui: {escape(path)}: no such {what}", err=True)
            sys.exit(2)
    model = make_model(capture, db_path, interface, speed=speed, policy=policy, baseline_path=baseline_path,
                       limits=limits, read_only=read_only, posture_alerts=posture_alerts)
    from .app import OtwatchApp

    OtwatchApp(model, ansi=ansi).run()
    err = getattr(model, "error", "")
    if err:
        click.echo(f"otwatch tui: {escape(err)}", err=True)
        sys.exit(1)


def make_model(capture=None, db_path=None, interface=None, *, speed="max", policy=None, baseline_path=None,
               limits=None, read_only=False, posture_alerts=False):
    """The model the screens read, from the command's options (exactly one source, already checked)."""
    from .model import DbModel, LiveModel

    if db_path:
        return DbModel(db_path, policy, read_only=read_only, baseline_path=baseline_path)
    if capture:
        from .feed import ReplayFeed, parse_speed

        feed, source = ReplayFeed(capture, parse_speed(speed), limits), capture
    else:
        from .feed import LiveFeed

        feed, source = LiveFeed(interface, limits=limits), f"iface:{interface}"
    model = LiveModel(feed, policy, source=source, baseline_path=baseline_path, posture_alerts=posture_alerts)
    model.read_only = read_only
    return model
