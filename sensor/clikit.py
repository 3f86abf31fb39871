"""What every ``otwatch`` command shares: fatal errors, and the options that mean the same everywhere.

* ``Fatal``: one line on stderr (``otwatch: <what>``), exit status 2, nothing
  else printed.  The command group turns ``StoreError`` (sensor.store) and
  ``CaptureError`` (sensor.source) raised by any command into it, so a
  command never needs its own try/except for them.
* Options: ``db_option`` (``--db PATH``, one help text), ``output_option``
  (``-o/--output PATH``, '-' for stdout) and ``format_option(choices)``
  (``--format``).  A command that writes a file takes ``-o``; a command with
  several output forms takes ``--format``.  Commands added later (alerts,
  rules, baseline, sensor) use the same three.
* ``run_captures(consumers, files, settings)``: capture files through one
  pipeline for a command that reads several (``baseline learn/check``,
  ``rules suggest``): a file that cannot be read is one escaped line on
  stderr and the others are still read; returns whether all were.
"""
from __future__ import annotations

import click

EXIT_FATAL = 2
"""Bad input or an unusable database (a missing capture, a folder, not a capture, a read-only path)."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT: the shell convention for a run stopped with Ctrl-C."""


class Fatal(click.ClickException):
    """A fatal error for the user: printed as one line ``otwatch: <message>``, exit status 2."""

    exit_code = EXIT_FATAL

    def show(self, file=None) -> None:
        click.echo(f"otwatch: {self.format_message()}", err=True)


DB_HELP = ("Database file (default: $OTWATCH_DB, else ~/.local/share/otwatch/inventory.db); "
           "shared by analyze, inventory and the other commands.")

db_option = click.option("--db", "db_path", metavar="PATH", default=None, help=DB_HELP)


def output_option(help_text: str = "Write to PATH instead of standard output ('-' for stdout).", default="-"):
    return click.option("-o", "--output", metavar="PATH", default=default, help=help_text)


def format_option(choices: tuple[str, ...], default: str):
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default, show_default=True,
                        help="Output format.")


def fatal_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that become ``Fatal`` (one line, exit 2) wherever a command raises them."""
    from .source import CaptureError
    from .store.database import StoreError

    return (StoreError, CaptureError)


GC_THRESHOLDS = (100_000, 50, 10)
"""The cyclic collector's thresholds for every command that runs the pipeline (``gc.set_threshold``:
``analyze``, the live ``sensor``, the TUI's worker).  With
Python's default (700, 10, 10) a flood of new flows, each a handful of tracked objects in the
engine and pipeline, spent half its CPU time in 16,787 young collections a million SYNs
(docs/performance.md, "Hostile traffic"); a young generation of 100,000 objects makes that 38.
What the tables hold is bounded by the memcap, not by the collector: garbage in cycles waits
at most one young generation (a few MB) or ten old collections."""


def tune_gc() -> None:
    """Set GC_THRESHOLDS for the process: called by every command that runs the pipeline."""
    import gc

    gc.set_threshold(*GC_THRESHOLDS)


def memcap_limits(text: str | int | None, hint: str = "--memcap"):
    """The ``Limits`` shared out of a ``--memcap``/``memcap:`` size (``parsers.budget``); the default
    budget when None.  A size that cannot be read or is below the minimum is ``Fatal``: one line
    (``otwatch: --memcap: not a size: '12X' (use e.g. 512M or 2G)``), exit status 2."""
    from otwatch.parsers import budget

    if text is None:
        return budget.DEFAULT_BUDGET_LIMITS
    try:
        return budget.limits_for(budget.parse_size(text))
    except ValueError as exc:
        raise Fatal(f"{hint}: {exc}") from None


def run_captures(consumers, files, settings=None, on_file=None) -> bool:
    """Run *files* through one ``Pipeline(consumers, settings)`` (finished at the end); False when one
    could not be read (said on stderr, ``otwatch: FILE: why``).  *on_file(path)* is called before each."""
    from otwatch.parsers.common import escape

    from .pipeline import Pipeline
    from .source import CaptureError

    pipe = Pipeline(consumers, settings)
    ok = True
    for path in files:
        if on_file:
            on_file(path)
        try:
            pipe.run_file(path)
        except (CaptureError, ValueError) as exc:
            click.echo(f"otwatch: {escape(path)}: {escape(str(exc))}", err=True)
            ok = False
    pipe.finish()
    return ok
