"""The one SQLite database every part of otwatch shares: open it, migrate it, write to it.

Contract
--------
* ``open_write(path)`` for commands that change the database (``analyze``,
  the live sensor, ``baseline accept`` …): creates the file and its folder,
  switches to WAL, sets a busy timeout, and applies every registered
  migration set under one ``BEGIN IMMEDIATE`` (so two processes that start
  together on a new file cannot both migrate it).  A path that cannot be
  written raises ``StoreError`` with one line for the user.
* ``open_read(path)`` for commands that only read (``inventory``, ``alerts``,
  the TUI): opens with ``mode=ro`` and never migrates, never creates a file,
  and works on read-only media.  A missing database raises ``NoDatabase``
  (a ``StoreError``).  Readers never block a writer (WAL).
* ``write_transaction(db)``: a write transaction that waits its turn
  (``BEGIN IMMEDIATE``) for at most ``lock_wait()`` seconds in all
  (``$OTWATCH_DB_WAIT``, default ``LOCK_WAIT_SECONDS``); every batch a writer
  commits goes through it.  A wait longer than ``notice_after()`` seconds
  (``$OTWATCH_DB_NOTICE``) is told once, as one line naming the path and, on
  Linux, the process that holds the lock (``holder``), through ``on_wait``
  (default: ``otwatch: …`` on stderr; the live sensor logs it).  Past the wait:
  ``DatabaseBusy`` (a ``StoreError``), which the CLI prints and exits 2 on.
  ``read_snapshot(db)``: several SELECTs that see one committed state.
* ``register(migrations)``: a package adds its own ``sqlite_utils.Migrations``
  set (its tables) to the shared database.  ``open_write`` applies all of
  them; see docs/architecture.md ("The shared database").

Every ``sqlite3.OperationalError`` that is about the file rather than a bug
(locked for longer than the wait, read-only, disk full, not a database) is
turned into a ``StoreError`` whose text names the path once; the CLI prints it
as ``otwatch: <text>`` and exits 2.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import time
from typing import Callable, Iterator, TypeVar

from sqlite_utils import Database, Migrations

ENV_DB = "OTWATCH_DB"

ENV_WAIT = "OTWATCH_DB_WAIT"
ENV_NOTICE = "OTWATCH_DB_NOTICE"

BUSY_TIMEOUT_SECONDS = 10.0
"""SQLite's own wait for a lock (busy handler) for statements other than ``BEGIN IMMEDIATE``."""
LOCK_WAIT_SECONDS = 120.0
"""How long a writer waits in all for the write lock another process holds before it gives up with
``DatabaseBusy`` (``$OTWATCH_DB_WAIT`` overrides).  A batch of 20,000 observations commits in well
under a second; two minutes covers many writers queueing behind each other, and the user has been
told after ``NOTICE_AFTER_SECONDS`` who is holding it."""
NOTICE_AFTER_SECONDS = 2.0
"""A wait longer than this is told (one line) while it goes on (``$OTWATCH_DB_NOTICE`` overrides)."""
WAL_WRITE_LOCK_BYTE = 120
"""SQLite's unix VFS takes the WAL write lock as a POSIX lock on byte 120 of ``<db>-shm``
(``UNIX_SHM_BASE`` = (22 + SQLITE_SHM_NLOCK) * 4, ``WAL_WRITE_LOCK`` = 0): ``/proc/locks`` names its pid."""
RETRY_FIRST_SLEEP = 0.02
RETRY_MAX_SLEEP = 1.0
"""Back-off between retries: doubles from the first to the max."""

_REGISTERED: dict[str, Migrations] = {}
_DEFAULT_SETS = ("otwatch.sensor.inventory.migrations", "otwatch.sensor.store.runs")
"""Modules whose ``migrations`` set is always applied by ``open_write`` (imported on first use)."""

T = TypeVar("T")


class StoreError(Exception):
    """The database cannot be used as asked; the message is one line for the user (path included)."""


class NoDatabase(StoreError):
    """A reading command found no database at the path."""


class DatabaseBusy(StoreError):
    """Another process held the write lock for longer than the wait."""


def _env_seconds(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return v if v >= 0 else default


def lock_wait() -> float:
    """Seconds a writer waits for the write lock in all: ``$OTWATCH_DB_WAIT``, else ``LOCK_WAIT_SECONDS``."""
    return _env_seconds(ENV_WAIT, LOCK_WAIT_SECONDS)


def notice_after() -> float:
    """Seconds of waiting before it is told: ``$OTWATCH_DB_NOTICE``, else ``NOTICE_AFTER_SECONDS``."""
    return _env_seconds(ENV_NOTICE, NOTICE_AFTER_SECONDS)


def _print_notice(line: str) -> None:
    import sys

    try:
        print(f"otwatch: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


on_wait: Callable[[str], None] = _print_notice
"""Told one line when a write waits longer than ``notice_after()`` (the live sensor sets a logger)."""

_WAIT_CAP: list[float] = []
"""``wait_limit``: caps on every wait, innermost last."""


@contextlib.contextmanager
def wait_limit(seconds: float) -> Iterator[None]:
    """Writes inside wait at most *seconds*, without telling (after ``DatabaseBusy``: mark the run without
    waiting again, or saying so again)."""
    _WAIT_CAP.append(seconds)
    try:
        yield
    finally:
        _WAIT_CAP.pop()


def holder(path: str) -> str:
    """Who holds the write lock of the database at *path*: ``pid 123 (otwatch analyze a.pcap)``, ``this
    process`` or "" when it cannot be told (not Linux, not WAL, no ``/proc/locks``)."""
    try:
        return _holder(path)
    except Exception:   # noqa: BLE001 - only a courtesy in a message: never an error of its own
        return ""


def _holder(path: str) -> str:
    try:
        ino = os.stat(path + "-shm").st_ino
        with open("/proc/locks", "rb") as fh:       # bytes: no codec to import (the sensor may have
            lines = fh.read().decode("utf-8", "replace").splitlines()   # given up the right to read one)
    except OSError:
        return ""
    for line in lines:
        f = line.split()
        # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 120 120" (a blocked waiter is "1: -> POSIX …")
        if len(f) < 8 or f[1] == "->" or f[3] != "WRITE":
            continue
        try:
            pid, lock_ino, start, end = int(f[4]), int(f[5].rsplit(":", 1)[1]), int(f[6]), f[7]
        except (ValueError, IndexError):
            continue
        if lock_ino != ino or start > WAL_WRITE_LOCK_BYTE or (end != "EOF" and int(end) < WAL_WRITE_LOCK_BYTE):
            continue
        if pid == os.getpid():
            return "this process (another of its connections)"
        if pid <= 0:
            return ""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
        except OSError:
            return f"pid {pid}"
        cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))
        if len(argv) > 2 and os.path.basename(argv[0]).startswith("python") and argv[1:3] == ["-m", "otwatch.sensor"]:
            cmd = "otwatch " + " ".join(argv[3:])
        elif argv and os.path.basename(argv[0]).startswith("python") and len(argv) > 1 \
                and os.path.basename(argv[1]) == "otwatch":
            cmd = "otwatch " + " ".join(argv[2:])
        cmd = "".join(ch if ch.isprintable() else "?" for ch in cmd)
        if len(cmd) > 80:
            cmd = cmd[:79] + "…"
        return f"pid {pid} ({cmd})" if cmd else f"pid {pid}"
    return ""


def _held_by(path: str) -> str:
    who = holder(path) if path not in ("", "database", ":memory:") else ""
    return f"held by {who}" if who else "held by another process"


def default_path() -> str:
    """$OTWATCH_DB, else $XDG_DATA_HOME/otwatch/inventory.db (~/.local/share/otwatch/inventory.db)."""
    env = os.environ.get(ENV_DB)
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "otwatch", "inventory.db")


def register(migrations: Migrations) -> Migrations:
    """Add a migration set to the shared database (idempotent; returns it, so it can wrap a definition)."""
    _REGISTERED[migrations.name] = migrations
    return migrations


def registered() -> list[Migrations]:
    """Every migration set ``open_write`` applies: the default ones, then those registered, by name."""
    import importlib

    for mod in _DEFAULT_SETS:
        register(importlib.import_module(mod).migrations)
    return list(_REGISTERED.values())


def _busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _about_the_file(exc: BaseException) -> bool:
    """An error about the database file or its disk (not a bug in a statement)."""
    low = str(exc).lower()
    return _busy(exc) or any(w in low for w in ("disk", "full", "readonly", "read-only", "i/o error",
                                                 "not a database", "malformed"))


def _explain(path: str, exc: BaseException, writing: bool, waited: float | None = None) -> StoreError:
    text = str(exc)
    low = text.lower()
    if "readonly" in low or "read-only" in low or ("unable to open" in low and writing):
        return StoreError(f"{path}: cannot write the database here (read-only file or folder); "
                          "use --db PATH or $OTWATCH_DB to choose another place")
    if "unable to open" in low:
        return StoreError(f"{path}: cannot open the database ({text})")
    if "not a database" in low or "malformed" in low:
        return StoreError(f"{path}: not an otwatch database, or damaged ({text})")
    if "disk" in low and "full" in low:
        return StoreError(f"{path}: the disk is full")
    if _busy(exc):
        waited = lock_wait() if waited is None else waited
        return DatabaseBusy(f"{path}: the database is still {_held_by(path)} after {waited:g} s of "
                            f"waiting; gave up (try again when it is done, or set ${ENV_WAIT} to wait longer)")
    return StoreError(f"{path}: {text}")


def retry(fn: Callable[[], T], wait: float | None = None) -> T:
    """``fn()``, retried with back-off while SQLite says the database is locked or busy (*wait*: seconds,
    default ``lock_wait()``)."""
    deadline = time.monotonic() + (lock_wait() if wait is None else wait)
    sleep = RETRY_FIRST_SLEEP
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() + sleep > deadline:
                raise
        time.sleep(sleep)
        sleep = min(sleep * 2, RETRY_MAX_SLEEP)


def _path_of(db: Database) -> str:
    return getattr(db, "_otwatch_path", "") or "database"


def _set_busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")


def _begin(db: Database, wait: float) -> None:
    """``BEGIN IMMEDIATE``, waiting at most *wait* seconds for the write lock; a wait longer than
    ``notice_after()`` is told once through ``on_wait``.  Raises ``DatabaseBusy`` past the wait."""
    conn = db.conn
    start = time.monotonic()
    deadline = start + wait
    notice_at = start + notice_after()
    told = False
    try:
        while True:
            now = time.monotonic()
            # SQLite's busy handler sleeps until the lock is free or this slice is over
            _set_busy_timeout(conn, max(0.001, min(deadline, deadline if told else notice_at) - now))
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise _explain(_path_of(db), exc, True) from None
                now = time.monotonic()
                if now >= deadline:
                    raise _explain(_path_of(db), exc, True, wait) from None
                if not told and now >= notice_at and not _WAIT_CAP:
                    told = True
                    path = _path_of(db)
                    on_wait(f"{path}: the database is busy, {_held_by(path)}; waiting up to "
                            f"{wait:g} s (${ENV_WAIT})")
    finally:
        _set_busy_timeout(conn, BUSY_TIMEOUT_SECONDS)


@contextlib.contextmanager
def write_transaction(db: Database, wait: float | None = None) -> Iterator[Database]:
    """One write transaction that waits for other writers: ``BEGIN IMMEDIATE``, for at most *wait* seconds
    in all (default ``lock_wait()``; ``wait_limit`` caps it).  Longer than ``notice_after()``: told once
    (``on_wait``); past *wait*: ``DatabaseBusy``.

    Nested use (already in a transaction) becomes a savepoint, as ``db.atomic()``.
    """
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    wait = lock_wait() if wait is None else wait
    if _WAIT_CAP:
        wait = min(wait, _WAIT_CAP[-1])
    _begin(db, wait)
    try:
        yield db
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if _about_the_file(exc):       # disk full, read-only, I/O error: one line for the user, not a traceback
            raise _explain(_path_of(db), exc, True, BUSY_TIMEOUT_SECONDS) from None
        raise
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        retry(lambda: conn.execute("COMMIT"), wait)
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise _explain(_path_of(db), exc, True, wait) from None


@contextlib.contextmanager
def read_snapshot(db: Database) -> Iterator[Database]:
    """SELECTs inside see one committed state (a deferred read transaction; WAL: no writer waits)."""
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    conn.execute("BEGIN")
    try:
        yield db
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return conn


def _wrap(conn: sqlite3.Connection, path: str) -> Database:
    # execute_plugins=False: sqlite-utils plugins installed beside otwatch do not get to change its
    # connections (prepare_connection), and finding them (an entry-point scan of every installed
    # distribution, ~13 ms) is not paid by every command
    db = Database(conn, execute_plugins=False)
    db._otwatch_path = path
    return db


def open_write(path: str | None = None, sets: tuple[Migrations, ...] = ()) -> Database:
    """The database at *path* (default: ``default_path()``), created and migrated, ready to write.

    *sets*: migration sets to apply besides the registered ones.  Raises ``StoreError``.
    """
    p = path or default_path()
    if p == ":memory:":
        db = _wrap(_connect(":memory:"), p)
        migrate(db, sets)
        return db
    folder = pathlib.Path(p).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{p}: cannot create the folder {folder} ({exc.strerror or exc}); "
                         "use --db PATH or $OTWATCH_DB to choose another place") from None
    if os.path.isdir(p):
        raise StoreError(f"{p}: is a folder, not a database file")
    try:
        conn = _connect(p)
    except sqlite3.OperationalError as exc:
        raise _explain(p, exc, True) from None
    db = _wrap(conn, p)
    try:
        mode = retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError("attempt to write a readonly database")
        conn.execute("PRAGMA synchronous = NORMAL")   # WAL + NORMAL: a crash loses at most the last commit
        migrate(db, sets)
    except sqlite3.OperationalError as exc:
        conn.close()
        raise _explain(p, exc, True) from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _explain(p, exc, True) from None
    return db


def migrate(db: Database, sets: tuple[Migrations, ...] = ()) -> None:
    """Apply every pending migration of every registered set (and *sets*), under one write lock.

    The check is repeated inside ``BEGIN IMMEDIATE``: a process that waited while another migrated
    finds nothing left to do.
    """
    all_sets = registered() + [s for s in sets if s.name not in _REGISTERED]
    if not any(m.pending(db) for m in all_sets):
        return
    with write_transaction(db):
        for m in all_sets:
            if m.pending(db):
                m.apply(db)


def open_read(path: str | None = None) -> Database:
    """The database at *path* opened read-only (``mode=ro``): never created, never migrated.

    Raises ``NoDatabase`` when there is none, ``StoreError`` when it cannot be read.  On read-only
    media where SQLite cannot create the WAL index next to the file, it is opened as immutable
    (nobody can be writing it there).
    """
    p = path or default_path()
    if not os.path.exists(p):
        raise NoDatabase(f"no inventory at {p} (run `otwatch analyze CAPTURE` first, or give --db PATH)")
    if os.path.isdir(p):
        raise StoreError(f"{p}: is a folder, not a database file")
    uri = pathlib.Path(p).absolute().as_uri()
    last: Exception | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        try:
            conn = _connect(uri + query, uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return _wrap(conn, p)
        except sqlite3.DatabaseError as exc:
            last = exc
            if _busy(exc) or os.access(os.path.dirname(os.path.abspath(p)), os.W_OK) and _writable_fs(p):
                break
    raise _explain(p, last, False)


def _writable_fs(p: str) -> bool:
    """False on a read-only mount (where even root cannot create the WAL index)."""
    try:
        return not (os.statvfs(os.path.dirname(os.path.abspath(p))).f_flag & os.ST_RDONLY)
    except OSError:
        return True
