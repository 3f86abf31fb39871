"""Definitions shared by every protocol parser.

Sides: the client is the TCP initiator (Zeek's ``is_orig``), never "the side
on port 502".  Sides are plain ints so the compiled kernels can use them.
"""
from __future__ import annotations

CLIENT = 0
SERVER = 1
SIDE_NAMES = ("client", "server")

# Record tags appended to the ``out`` list by protocol kernels (ext/<proto>.py).
REC_MSG = 1        # (REC_MSG, side, ts, frame, key, raw, ctx)
REC_ANOMALY = 2    # (REC_ANOMALY, side, ts, frame, anomaly_id, detail)

# Return values of kernel feed/gap/eof.
FEED_OK = 0          # consumed (messages may or may not have completed)
FEED_VIOLATION = -1  # "this is not my protocol"; the engine detaches an unconfirmed kernel

# Tally layout: the value stored in the per-link ``seen`` dict for each key.
T_COUNT = 0          # messages with this key, all time
T_BYTES = 1          # their bytes
T_FIRST_TS = 2
T_LAST_TS = 3
T_INT_COUNT = 4      # messages since the last aggregate flush
T_INT_BYTES = 5
T_FIRST_FRAME = 6    # frame number (1-based, as in Wireshark) of the first one


def new_tally(nbytes: int, ts: float, frame: int) -> list:
    return [1, nbytes, ts, ts, 1, nbytes, frame]


def escape(text: str | bytes, limit: int = 256) -> str:
    """Make an attacker-controlled string safe to show anywhere.

    Control characters (C0, DEL, C1, incl. ESC) and backslashes are rendered as
    ``\\xNN`` escapes; the result is cut to *limit* characters with a marker.
    Sinks with their own syntax (CEF, syslog SD) escape again for that syntax.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "backslashreplace")
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
