"""Accept a departure into the baseline: learn the entry a finding departed from, so it is normal from now on.

Contract
--------
* ``entry_of(alert_id, details, baseline) -> str | None``: the entry a
  baseline finding departed from: the baseline's remembered ``pending`` entry
  for that alert id, else the entry the detector put in the alert's details
  (``details["entry"]``; ``analyze`` does not write pending entries to the
  file); None for findings that cannot be learned (sweeps, storms, brute force).
* ``accept_entry(entry, path=None, alert_id="") -> Accepted``: load the
  stored baseline (``store.load_baseline``, ``FileNotFoundError`` when there is
  none), learn *entry* (``ValueError`` when it is not an entry), forget the
  alert as pending, save atomically (``store.save_baseline``).  ``changed`` is
  False when the baseline knew it already.
The caller closes the alert as ``accepted`` in its store (``otwatch baseline
accept`` and the TUI both do).
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Baseline, parse_entry
from .store import default_path, load_baseline, save_baseline


@dataclass(frozen=True)
class Accepted:
    changed: bool
    entry: str
    path: str


def entry_of(alert_id: str, details: dict | None, baseline: Baseline | None = None) -> str | None:
    if baseline is not None and alert_id in baseline.pending:
        return baseline.pending[alert_id]
    e = (details or {}).get("entry")
    return e if isinstance(e, str) and e else None


def accept_entry(entry: str, path: str | None = None, alert_id: str = "") -> Accepted:
    parse_entry(entry)
    path = path or default_path()
    b = load_baseline(path, missing_ok=False)
    changed = b.add_entry(entry)
    if alert_id:
        b.pending.pop(alert_id, None)
    save_baseline(b, path)
    return Accepted(changed, entry, path)


__all__ = ["Accepted", "entry_of", "accept_entry"]
