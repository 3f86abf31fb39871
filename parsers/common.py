"""Definitions shared by every protocol parser.

Sides: the client is the TCP initiator (Zeek's ``is_orig``), never "the side
on port 502".  Sides are plain ints so the compiled kernels can use them.
"""
from __future__ import annotations

import re

CLIENT = 0
SERVER = 1
SIDE_NAMES = ("client", "server")

# Record tags appended to the ``out`` list by protocol kernels (ext/<proto>.py).
REC_MSG = 1        # (REC_MSG, side, ts, frame, key, raw, ctx)
REC_ANOMALY = 2    # (REC_ANOMALY, side, ts, frame, anomaly_id, detail)

# Return values of kernel feed/gap/eof.
FEED_OK = 0          # consumed (messages may or may not have completed)
FEED_VIOLATION = -1  # "this is not my protocol"; the engine detaches an unconfirmed kernel

# Tally: the value stored in the per-link ``seen`` dict for each key.  An object with
# these attributes (the compiled kernels bump them as C fields; the engine reads them
# at each interval flush and zeroes int_count/int_bytes).  Read as a sequence it
# gives them in this order, so ``t[T_COUNT]`` works too.
PEAK_WINDOW = 1.0
"""Seconds: besides its interval count, a key's tally keeps the most messages it carried in one
window of this length within the interval (``int_peak``; windows start at a message at least this
long after the current window's start, so a fixed rate's peak is its rate, and any burst's peak is
at least half its busiest sliding second).  ``peak_frame``/``peak_ts``: the 2^k-th message of the window that
raised the peak past 2^k (deep inside the burst: the window's first and last messages may be the poll's own,
just before or after it).  The alert stage's flood rule reads it: a flood that
repeats a key the link already used is averaged away by the interval's count (sensor/alerts/rates.py)."""
KEY_SCAN = (-3,)
"""Where the engine puts a link's scan hook in both of its tally dicts (``ext/engine.py``
``_LinkScan``): kernels call ``seen[KEY_SCAN].new_key(unit, code, ts, frame)`` before
reporting a key new to the link (not an always-detailed message) and report it only when that
returns True (the source's budget, ``limits.scan_keys_per_source``).  Without the engine (the
sans-IO connections, kernel tests) there is no hook and every new key is reported.  Its
``int_count`` is always 0: the interval flush never reports it."""

T_COUNT = 0          # count: messages with this key, all time
T_BYTES = 1          # nbytes: their bytes
T_FIRST_TS = 2       # first_ts
T_LAST_TS = 3        # last_ts
T_INT_COUNT = 4      # int_count: messages since the last aggregate flush
T_INT_BYTES = 5      # int_bytes
T_FIRST_FRAME = 6    # first_frame: frame number (1-based, as in Wireshark) of the first one
T_LAST_FRAME = 7     # last_frame: frame number of the latest one (evidence of an interval's counts)


class Tally:
    """Reference (pure Python) tally, for kernels written outside ext/ (e.g. test kernels).

    The kernels in ext/ each declare the same class as a Cython cclass, so that a
    repeat is a C counter bump.
    """

    __slots__ = ("count", "nbytes", "first_ts", "last_ts", "int_count", "int_bytes", "first_frame", "last_frame",
                 "int_peak", "win_ts", "win_n", "peak_ts", "peak_frame")

    def __init__(self, nbytes: int, ts: float, frame: int):
        self.count = 1
        self.nbytes = nbytes
        self.first_ts = ts
        self.last_ts = ts
        self.int_count = 1
        self.int_bytes = nbytes
        self.first_frame = frame
        self.last_frame = frame
        self.int_peak = 1            # most messages in one PEAK_WINDOW of the interval, and where
        self.win_ts = ts
        self.win_n = 1
        self.peak_ts = ts
        self.peak_frame = frame

    def bump(self, nbytes: int, ts: float, frame: int) -> None:
        self.count += 1
        self.last_frame = frame
        self.nbytes += nbytes
        self.last_ts = ts
        self.int_count += 1
        self.int_bytes += nbytes
        if ts - self.win_ts < PEAK_WINDOW:
            self.win_n += 1
            if self.win_n > self.int_peak:
                self.int_peak = self.win_n
                if (self.win_n & (self.win_n - 1)) == 0:
                    self.peak_ts, self.peak_frame = ts, frame
        else:
            self.win_ts, self.win_n = ts, 1
            if self.int_peak < 1:
                self.int_peak, self.peak_ts, self.peak_frame = 1, ts, frame

    def as_list(self) -> list:
        return [self.count, self.nbytes, self.first_ts, self.last_ts, self.int_count, self.int_bytes,
                self.first_frame, self.last_frame]

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.as_list()[i]

    def __iter__(self):
        return iter(self.as_list())

    def __eq__(self, other):
        if isinstance(other, (list, tuple)) or hasattr(other, "as_list"):
            return self.as_list() == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "Tally(%r)" % (self.as_list(),)


def new_tally(nbytes: int, ts: float, frame: int) -> Tally:
    return Tally(nbytes, ts, frame)


# What escape() rewrites: C0, DEL, C1, the backslash, LINE/PARAGRAPH SEPARATOR.
_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\\\\\u2028\\u2029]")


def escape(text: str | bytes, limit: int = 256) -> str:
    """Make an attacker-controlled string safe to show anywhere.

    Control characters (C0, DEL, C1, incl. ESC) and backslashes are rendered as
    ``\\xNN`` escapes; the result is cut to *limit* characters with a marker.
    Sinks with their own syntax (CEF, syslog SD) escape again for that syntax.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "backslashreplace")
    if _UNSAFE.search(text) is None:        # the common case: nothing to escape, one C scan
        if len(text) > limit:
            return text[:limit] + "…[+%d]" % (len(text) - limit)
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or ch == "\\" or o in (0x2028, 0x2029):
            out.append("\\x%02x" % o if o < 0x100 else "\\u%04x" % o)
        else:
            out.append(ch)
    s = "".join(out)
    if len(s) > limit:
        s = s[:limit] + "…[+%d]" % (len(s) - limit)
    return s
