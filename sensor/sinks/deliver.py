"""One delivery thread per destination: outbox cursor → format → transport.

The capture side only ever appends to the outbox; a collector that is down,
slow or refusing never blocks it.  Each ``Deliverer`` owns its SQLite
connection and its socket:

1. connect (timeouts; on failure wait with exponential back-off, 0.5 s to 30 s);
2. read the records after what it has *sent*, format and send them in order;
3. move the durable cursor to what the peer has *acknowledged* (TCP/TLS: the
   socket's send queue is empty, ``TCPTransport.drained``; UDP: once sent);
4. on any error, close, and resend from the durable cursor after the back-off:
   at least once, in order; duplicates carry the same ``id``.  A TCP
   acknowledgement only says the collector's *kernel* has the bytes: a
   collector killed before it read its socket loses them.  So the records
   acknowledged in the last ``REPLAY_SECONDS`` before a failure (at most
   ``REPLAY_MAX``) are sent again too.  (Syslog has no application-level
   acknowledgement; RELP would, and is a later transport.)

Records below the destination's ``min_severity`` are passed over (the cursor
moves past them).
"""
from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
from collections import deque

from ..alerts.model import severity_rank
from ..store import StoreError
from .formats import FORMATS, syslog_line
from .outbox import Outbox
from .syslog import Destination, transport

log = logging.getLogger("otwatch.sinks")

BATCH = 256
"""Records read from the outbox per round."""
POLL = 0.2
"""Seconds between looks at the outbox when it has nothing new (a condition
variable would need the writer in this process; the sensor's writer may not be)."""
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
REPLAY_SECONDS = 10.0
"""Records acknowledged this recently before a connection failed are resent (see above)."""
REPLAY_MAX = 2048
UNACKED_LIMIT = 10.0
"""Seconds sent data may stay unacknowledged by the peer before the connection is
taken as dead and the records resent."""


class Deliverer(threading.Thread):
    def __init__(self, db_path: str, dest: Destination, hostname: str | None = None):
        super().__init__(name=f"otwatch-deliver-{dest.scheme}-{dest.host}:{dest.port}", daemon=True)
        self.db_path = db_path
        self.dest = dest
        self.hostname = dest.hostname or hostname or socket.gethostname()
        self.stop_event = threading.Event()
        self._deadline = float("inf")
        self.sent = 0             # records written to the transport (resends included)
        self.delivered = 0        # records the cursor moved past (filtered ones included)
        self.errors = 0
        self.replayed = 0         # reconnections that resent acknowledged records
        self.connected = False
        self.last_error = ""

    def stats(self) -> dict:
        return {"url": self.dest.url, "connected": self.connected, "sent": self.sent,
                "delivered": self.delivered, "errors": self.errors, "replayed": self.replayed, "last_error": self.last_error}

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to deliver what is waiting (the sensor's last alerts and heartbeat) for at
        most *timeout* seconds, and end; what is left stays in the outbox for the next start."""
        self._deadline = time.monotonic() + timeout
        self.stop_event.set()
        self.join(timeout + 2.0)

    def _line(self, r) -> str:
        d = self.dest
        if d.scheme == "file":      # a file gets the bare format, one record a line (no syslog header)
            return FORMATS[d.format](r)
        return syslog_line(d.format, r, self.hostname, facility=d.facility, sd_id=d.sd_id)

    def run(self) -> None:
        name = self.dest.name
        ob = None
        while ob is None:                      # the database refused (locked past the wait, unreadable): retry
            try:
                ob = Outbox(self.db_path, create=False)
                cursor = ob.register(name)
            except (StoreError, sqlite3.Error) as exc:
                if ob is not None:
                    ob.close()
                    ob = None
                self._failed(exc, "open the outbox")
                if self.stop_event.wait(BACKOFF_MAX):
                    return
        try:
            sent_upto = cursor
            t = None
            backoff = BACKOFF_MIN
            unacked_since = 0.0
            recent: deque = deque(maxlen=REPLAY_MAX)   # (seq before the batch, time it was acknowledged)
            min_rank = severity_rank(self.dest.min_severity)
            while True:
                stopping = self.stop_event.is_set()
                if stopping and time.monotonic() > self._deadline:
                    break
                if t is None:
                    if stopping:
                        break
                    t = transport(self.dest)
                    try:
                        t.connect()
                        self.connected = True
                        backoff = BACKOFF_MIN
                    except (OSError, ValueError) as exc:
                        t = None
                        self._failed(exc, "connect")
                        self.stop_event.wait(backoff)
                        backoff = min(backoff * 2, BACKOFF_MAX)
                        continue
                try:
                    recs = ob.after(sent_upto, BATCH)
                    for r in recs:
                        if severity_rank(r.severity) >= min_rank:
                            t.send(self._line(r))
                            self.sent += 1
                    if recs:
                        sent_upto = recs[-1].seq
                    if sent_upto > cursor:
                        if t.drained():
                            n = ob.conn.execute("SELECT COUNT(*) FROM outbox WHERE seq > ? AND seq <= ?",
                                                (cursor, sent_upto)).fetchone()[0]
                            ob.advance(name, sent_upto, n)
                            self.delivered += n
                            recent.append((cursor, time.monotonic()))
                            cursor = sent_upto
                            unacked_since = 0.0
                        else:
                            now = time.monotonic()
                            unacked_since = unacked_since or now
                            if now - unacked_since > UNACKED_LIMIT:
                                raise OSError("collector has not acknowledged for %.0f s" % UNACKED_LIMIT)
                    if not recs:
                        if stopping and sent_upto == cursor:
                            break
                        if hasattr(t, "alive") and not t.alive():
                            raise OSError("collector closed the connection")
                        if stopping and unacked_since and time.monotonic() - unacked_since > 2.0:
                            break
                        self.stop_event.wait(POLL) if not stopping else time.sleep(0.05)
                except (OSError, ValueError, StoreError, sqlite3.Error) as exc:   # the collector, or the database
                    self._failed(exc, "send")
                    t.close()
                    t = None
                    self.connected = False
                    sent_upto = cursor          # resend what was not acknowledged ...
                    horizon = time.monotonic() - REPLAY_SECONDS
                    for before, when in recent:  # ... and what was, too recently to be sure
                        if when >= horizon:
                            sent_upto = min(sent_upto, before)
                            break
                    if sent_upto < cursor:
                        self.replayed += 1
                    recent.clear()
                    unacked_since = 0.0
                    if stopping:
                        time.sleep(min(backoff, max(0.0, self._deadline - time.monotonic())))
                        continue
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
            if t is not None:
                t.close()
        finally:
            self.connected = False
            ob.close()

    def _failed(self, exc: BaseException, what: str) -> None:
        self.errors += 1
        msg = f"{self.dest.url}: {what} failed: {exc}"
        if msg != self.last_error:
            log.warning("%s (retrying; records wait in the outbox)", msg)
        self.last_error = msg
