"""``otwatch rules``: work with segmentation policies.

``otwatch rules check PATH...`` runs the loader alone: it prints every problem
as ``file:line:column: what is wrong`` (escaped for the terminal) and exits 1
when any file has one, 0 when all are valid (with a one-line summary per file
unless ``--quiet``).  It never reads a capture or the inventory.

``otwatch rules suggest CAPTURE...`` drafts a policy from captures (the pairs a
``PairCollector`` sees; ``otwatch baseline suggest-policy`` does the same from a
learned baseline) and writes it to stdout or ``-o FILE``; exit 2 when a capture
cannot be read, 1 when the captures hold no traffic between hosts.
"""
from __future__ import annotations

import sys

import click

from otwatch.parsers.common import escape

from .errors import PolicyError
from .loader import load_policy

MESSAGE_LIMIT = 1000
"""Characters shown per problem (a message quotes at most a few values from the file)."""


@click.group()
def rules() -> None:
    """Segmentation policies (zones and conduits): check them (docs/rules.md)."""


@rules.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no summary of valid files.")
def check(paths, quiet) -> None:
    """Validate policy files: every problem as file:line:column, exit 1 if any."""
    bad = 0
    for path in paths:
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            bad += 1
            for p in exc.problems:
                click.echo(escape(str(p), MESSAGE_LIMIT))
            n = len(exc.problems)
            click.echo(f"{escape(path)}: {n} problem{'s' if n != 1 else ''}", err=True)
            continue
        if not quiet:
            click.echo(f"{escape(path)}: ok ({len(policy.zones)} zones, {len(policy.conduits)} conduits, "
                       f"{len(policy.detections)} detection settings)")
    sys.exit(1 if bad else 0)


@rules.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", default="-", metavar="FILE|-", help="Where to write the draft (default stdout).")
@click.option("--zones", "zone_mode", type=click.Choice(["role", "host"]), default="role", show_default=True,
              help="One zone per role (controllers, servers, supervisory, field-devices, hosts) or per host.")
@click.option("--name", default="suggested policy", show_default=True, help="The policy's name.")
def suggest(files, output, zone_mode, name) -> None:
    """Draft a policy that allows exactly what the capture FILES show (review it before use)."""
    from otwatch.sensor.clikit import run_captures

    from .observed import PairCollector
    from .suggest import suggest_policy

    collector = PairCollector()
    failed = not run_captures([collector], files)
    try:
        text = suggest_policy(collector.seen(), zones=None if zone_mode == "role" else "host", name=name)
    except ValueError as exc:
        click.echo(f"otwatch: {exc}", err=True)
        sys.exit(2 if failed else 1)
    if output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    if failed:
        sys.exit(2)


__all__ = ["rules", "check", "suggest"]
