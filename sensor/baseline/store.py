"""Where the learning state lives between runs: one YAML file (the export format).

Contract: ``default_path()`` is ``$OTWATCH_BASELINE``, else ``baseline.yaml``
beside the inventory database (``$XDG_DATA_HOME/otwatch/`` or
``~/.local/share/otwatch/``).  ``load_baseline(path)`` returns the stored
baseline, or a new empty one when the file does not exist;
``save_baseline(b, path)`` writes it atomically (a temporary file in the same
directory, fsync, rename), so a crash leaves the old or the new state, never a
torn one.  The stored file is the same reviewable YAML ``export`` writes
(yamlio.py): learning state survives restarts, and what the sensor "knows" is
a file an engineer can read and keep in version control.
"""
from __future__ import annotations

import os
import tempfile

from . import yamlio
from .model import Baseline


def default_path() -> str:
    """$OTWATCH_BASELINE, else baseline.yaml beside the inventory database ($OTWATCH_DB or the per-user one)."""
    env = os.environ.get("OTWATCH_BASELINE")
    if env:
        return env
    from ..inventory.store import default_path as inventory_path

    return os.path.join(os.path.dirname(inventory_path()), "baseline.yaml")


def load_baseline(path: str | None = None, missing_ok: bool = True) -> Baseline:
    path = path or default_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if missing_ok:
            return Baseline()
        raise
    return yamlio.load(text, path)


def save_baseline(b: Baseline, path: str | None = None) -> str:
    path = path or default_path()
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    text = yamlio.dump(b)
    fd, tmp = tempfile.mkstemp(prefix=".baseline-", suffix=".yaml", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
