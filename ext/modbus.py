"""Modbus/TCP protocol kernel (Cython pure-Python mode).

One ``ModbusCore`` per TCP connection.  It frames ADUs from both directions,
validates MBAP headers, pairs requests with responses by (transaction id,
unit), computes each message's key and either bumps the key's tally in the
shared ``seen`` dict or appends a record to ``out``.  The contract is in
docs/architecture.md ("Protocol kernel"); keys, ctx layouts and anomaly ids are
in docs/protocols/modbus.md and ``otwatch.parsers.modbus.spec``.

This file runs as plain Python (the pure path) and is compiled by Cython into
``otwatch.ext._modbus`` (the fast path).  Rules that keep the two identical:
bytes are read only with ``buf[i]`` and ``len(buf)``; every integer is masked
or range-checked explicitly; booleans are assigned ``True``/``False``.

Buffering: the kernel reads the caller's buffer in place (compiled: through a
``const unsigned char *``, so every read is preceded by an explicit length
check).  Only an incomplete ADU (at most ``MAX_ADU_LEN`` bytes) or the tail of a
resync scan (fewer than ``HEADER_AND_FC_LEN`` bytes) is copied into a per-side
bytearray.

Repeats: a request's key depends only on its bytes after the transaction and
protocol ids, so those bytes (its *shape*) index a per-connection cache of
``_Req`` entries holding the key and its ``Tally`` (and, once answered, the
response key and tally).  A polling HMI's requests then cost a dict lookup and
C counter bumps, its responses a pending-table pop and C counter bumps; only a
new shape builds a key tuple.  Shapes of always-detailed requests are not
cached (every one is a record anyway).  The compiled engine calls ``_feed``
through ``c_feed()`` without boxing its arguments.
"""
import struct

import cython

from otwatch.parsers import common
from otwatch.parsers.limits import DEFAULT_LIMITS
from otwatch.parsers.modbus import spec

# Constants from spec, as C globals in the compiled build.  A module-level
# annotation (``X: cython.int = 1``) would compile but stay a Python global,
# looked up by name on every use; cython.declare makes a C variable.
HDR_FC = cython.declare(cython.Py_ssize_t, spec.HEADER_AND_FC_LEN)
MIN_LEN = cython.declare(cython.Py_ssize_t, spec.MIN_LENGTH_FIELD)
MAX_LEN = cython.declare(cython.Py_ssize_t, spec.MAX_LENGTH_FIELD)
PROTO_ID = cython.declare(cython.int, spec.MODBUS_PROTOCOL_ID)
EXC_BIT = cython.declare(cython.int, spec.EXCEPTION_BIT)
ABSENT = cython.declare(cython.int, spec.ABSENT)
MSG_REQUEST = cython.declare(cython.int, spec.MSG_REQUEST)
MSG_RESPONSE = cython.declare(cython.int, spec.MSG_RESPONSE)
MSG_EXCEPTION = cython.declare(cython.int, spec.MSG_EXCEPTION)
DETAIL_REQ = cython.declare(cython.int, spec.DETAIL_REQUEST)
DETAIL_RESP = cython.declare(cython.int, spec.DETAIL_RESPONSE)
FC_DIAG = cython.declare(cython.int, spec.FunctionCode.DIAGNOSTICS)
FC_RW = cython.declare(cython.int, spec.FunctionCode.READ_WRITE_MULTIPLE_REGISTERS)
FC_MEI = cython.declare(cython.int, spec.FunctionCode.ENCAPSULATED_INTERFACE_TRANSPORT)
FC_READ_FILE = cython.declare(cython.int, spec.FunctionCode.READ_FILE_RECORD)
FC_WRITE_FILE = cython.declare(cython.int, spec.FunctionCode.WRITE_FILE_RECORD)
FC_FIFO = cython.declare(cython.int, spec.FunctionCode.READ_FIFO_QUEUE)
SUB_LISTEN_ONLY = cython.declare(cython.int, spec.DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE)
MEI_DEVICE_ID = cython.declare(cython.int, spec.MEIType.READ_DEVICE_IDENTIFICATION)
REC_MSG = cython.declare(cython.int, common.REC_MSG)
REC_ANOMALY = cython.declare(cython.int, common.REC_ANOMALY)
FEED_OK = cython.declare(cython.int, common.FEED_OK)
FEED_VIOLATION = cython.declare(cython.int, common.FEED_VIOLATION)
DETAIL = cython.declare(cython.const_uchar[:], spec.DETAIL_TABLE)
COVER = cython.declare(cython.const_uchar[:], spec.COVER_TABLE)
KEY_COVERAGE = cython.declare(cython.int, spec.KEY_COVERAGE)
KEY_OVERFLOW = cython.declare(cython.int, spec.KEY_OVERFLOW)
KEY_COVERED = cython.declare(cython.int, spec.KEY_COVERED)
KEY_SCAN = cython.declare(tuple, common.KEY_SCAN)
PEAK_WINDOW = cython.declare(cython.double, common.PEAK_WINDOW)
SANE = cython.declare(cython.const_uchar[:], spec.SANE_FC_TABLE)
# An MBAP length over MAX_LEN but at most this (an ADU of at most 266 bytes, a few over the
# 260 of the spec) is framed by its length when a plausible header follows it: that is how
# a device reads it, so the request is seen and its answer is not "unsolicited".  Longer
# lengths are resynchronised over (a 64 KiB "ADU" would hide what follows).
OVERLONG_MAX = cython.declare(cython.Py_ssize_t, spec.MAX_LENGTH_FIELD + 6)

# Interpreted, one ``struct`` call reads a complete MBAP header + function code faster
# than the byte arithmetic the compiled path uses (~0.1 us against ~0.3 us); compiled,
# the branch is removed (``not cython.compiled`` is a constant there).  It reads exactly
# the fields of the arithmetic beside it: transaction id, protocol id, length, unit id,
# function code.  tests/ext/test_kernel_struct_reads.py runs the interpreted kernel both
# ways (STRUCT_READS False/True) and compares the records.
STRUCT_READS = True
_MBAP = struct.Struct(">HHHBB")


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _u16(buf: cython.p_const_uchar, i: cython.Py_ssize_t) -> cython.int:
    return (buf[i] << 8) | buf[i + 1]


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _fc_allowed(fc: cython.int, side: cython.int) -> cython.bint:
    """Loose test used before confirmation: not 0, exception bit only from the server."""
    if fc & 0x7F == 0:
        return False
    if fc & EXC_BIT and side == 0:
        return False
    return True


@cython.cfunc
@cython.exceptval(-1, check=False)
def _plausible(buf: cython.p_const_uchar, p: cython.Py_ssize_t, end: cython.Py_ssize_t, side: cython.int) -> cython.int:
    """Is there a plausible MBAP header (and sane function code) at buf[p]?

    0 no; 1 yes; 2 consistent so far, need more bytes.  Used to resynchronise.
    """
    n: cython.Py_ssize_t = end - p
    length: cython.int
    fc: cython.int
    if n >= 4 and (buf[p + 2] != 0 or buf[p + 3] != 0):
        return 0
    if n >= 6:
        length = _u16(buf, p + 4)
        if length < MIN_LEN or length > MAX_LEN:
            return 0
    if n < HDR_FC:
        return 2
    fc = buf[p + 7]
    if not _fc_allowed(fc, side) or SANE[fc] == 0:
        return 0
    return 1


def probe(data, start, end) -> int:
    """2 certainly Modbus/TCP, 1 plausible, 0 no.  Reads only data[start:end]."""
    s: cython.Py_ssize_t = start
    e: cython.Py_ssize_t = end
    if e > len(data):
        e = len(data)
    if s < 0:
        s = 0
    if e - s <= 0:
        return 0
    if type(data) is not bytes:
        data = bytes(data[s:e])
        e -= s
        s = 0
    buf: cython.p_const_uchar = data
    n: cython.Py_ssize_t = e - s
    length: cython.int
    fc: cython.int
    total: cython.Py_ssize_t
    r: cython.int = _plausible(buf, s, e, 1)
    if r == 0:
        return 0
    if r == 2:
        return 1
    length = _u16(buf, s + 4)
    total = 6 + length
    fc = buf[s + 7]
    if n < total:
        return 1
    if fc & EXC_BIT and total != 9:
        return 1
    if n == total:
        return 2
    return 2 if _plausible(buf, s + total, e, 1) != 0 else 1


def side_hint(data, start, end) -> int:
    """Mid-stream orientation between two Modbus ports (502 on both sides): 0 when the ADU at
    data[start:] has the shape only a request has, 1 only a response, -1 cannot tell
    (FC 5/6 echo their request).  Shapes [APP §6]: FC 1-4 request length 6, response
    3 + byte count; FC 15/16 request 7 + byte count, response 6; the exception bit: a response."""
    s = max(0, start)
    e = min(len(data), end)
    if e - s < 9 or data[s + 2] != 0 or data[s + 3] != 0:
        return -1
    length = (data[s + 4] << 8) | data[s + 5]
    fc = data[s + 7]
    if fc & EXC_BIT:
        return 1 if length == 3 else -1
    if 1 <= fc <= 4:
        req = length == 6
        rsp = length == 3 + data[s + 8]
        if req != rsp:
            return 0 if req else 1
        return -1
    if fc == 15 or fc == 16:
        if length == 6:
            return 1
        if e - s >= 13 and length == 7 + data[s + 12]:
            return 0
    return -1


@cython.final
@cython.cclass
class Tally:
    """The counts of one key: the value type of ``seen`` (layout in docs/architecture.md).

    Kernels bump the C fields; the engine reads them at each interval flush and
    zeroes ``int_count``/``int_bytes``.  For reading it also behaves as the list
    it replaced: ``t[common.T_COUNT]``, ``len(t)``, ``t == [count, ...]``.
    """

    count = cython.declare(cython.longlong, visibility="public")
    nbytes = cython.declare(cython.longlong, visibility="public")
    first_ts = cython.declare(cython.double, visibility="public")
    last_ts = cython.declare(cython.double, visibility="public")
    int_count = cython.declare(cython.longlong, visibility="public")
    int_bytes = cython.declare(cython.longlong, visibility="public")
    first_frame = cython.declare(cython.longlong, visibility="public")
    last_frame = cython.declare(cython.longlong, visibility="public")
    int_peak = cython.declare(cython.longlong, visibility="public")    # most messages in one window
    win_ts = cython.declare(cython.double, visibility="public")       # start of the current window
    win_n = cython.declare(cython.longlong, visibility="public")      # messages in it (this interval)
    peak_ts = cython.declare(cython.double, visibility="public")      # the message that made int_peak
    peak_frame = cython.declare(cython.longlong, visibility="public")

    def __init__(self, nbytes: cython.longlong, ts: cython.double, frame: cython.longlong):
        self.count = 1
        self.nbytes = nbytes
        self.first_ts = ts
        self.last_ts = ts
        self.int_count = 1
        self.int_bytes = nbytes
        self.first_frame = frame
        self.last_frame = frame
        self.int_peak = 1
        self.win_ts = ts
        self.win_n = 1
        self.peak_ts = ts
        self.peak_frame = frame

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

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __repr__(self):
        return "Tally(%r)" % (self.as_list(),)


@cython.cfunc
@cython.inline
def _peak(t: Tally, ts: cython.double, frame: cython.longlong) -> cython.void:
    """The busiest window of the interval: most messages in one PEAK_WINDOW from its first (Tally's int_peak);
    its evidence is the window's 2^k-th message, inside the burst rather than at its edge."""
    if ts - t.win_ts < PEAK_WINDOW:
        t.win_n += 1
        if t.win_n > t.int_peak:
            t.int_peak = t.win_n
            if (t.win_n & (t.win_n - 1)) == 0:
                t.peak_ts = ts
                t.peak_frame = frame
    else:
        t.win_ts = ts
        t.win_n = 1
        if t.int_peak < 1:
            t.int_peak = 1
            t.peak_ts = ts
            t.peak_frame = frame


@cython.cfunc
@cython.inline
def _bump(t: Tally, nbytes: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong) -> cython.void:
    t.count += 1
    t.last_frame = frame
    t.nbytes += nbytes
    t.last_ts = ts
    t.int_count += 1
    t.int_bytes += nbytes
    _peak(t, ts, frame)     # the busiest window of the interval (Tally)


@cython.final
@cython.no_gc      # holds a list of ints only
@cython.cclass
class _Cover:
    """The addresses of one (unit, function code, read or write) requested on a link so far:
    sorted, disjoint runs ``[start, end)`` flattened into ``runs`` (docs/protocols/modbus.md,
    "Register coverage").  At most ``max_runs`` runs: one more fills the smallest gap.
    Stored in the link's client tallies under ``(spec.KEY_COVERAGE, unit, fc, rw)``;
    ``int_count`` is always 0, so the engine's interval flush never reports it."""

    runs: list
    max_runs: cython.Py_ssize_t
    int_count = cython.declare(cython.longlong, visibility="readonly")
    filled = cython.declare(cython.longlong, visibility="readonly")

    def __init__(self, max_runs: cython.Py_ssize_t):
        self.runs = []
        self.max_runs = max_runs if max_runs > 0 else 1
        self.int_count = 0
        self.filled = 0

    def as_list(self) -> list:
        """The flattened runs (what tests comparing whole tally dicts read)."""
        return list(self.runs)

    def as_runs(self) -> list:
        """The runs as (start, end) pairs (for tests and docs)."""
        r = self.runs
        return [(r[i], r[i + 1]) for i in range(0, len(r), 2)]

    def __eq__(self, other):
        if hasattr(other, "as_runs"):
            return self.as_runs() == other.as_runs()
        return NotImplemented

    def __repr__(self):
        return "_Cover(%r)" % (self.as_runs(),)

    @cython.cfunc
    def covers(self, a: cython.longlong, e: cython.longlong) -> cython.bint:
        """Whether [a, e) lies inside one run and the set is exact (no gap was ever filled, so
        every address in it was requested)."""
        r: list = self.runs
        n: cython.Py_ssize_t = len(r)
        i: cython.Py_ssize_t = 0
        if self.filled > 0:
            return False
        while i < n and r[i + 1] < a:
            i += 2
        return i < n and r[i] <= a and r[i + 1] >= e

    @cython.cfunc
    def add(self, a: cython.longlong, e: cython.longlong) -> cython.bint:
        """Add [a, e); True if any of it was not covered yet."""
        r: list = self.runs
        n: cython.Py_ssize_t = len(r)
        i: cython.Py_ssize_t = 0
        j: cython.Py_ssize_t
        k: cython.Py_ssize_t
        best: cython.Py_ssize_t
        gap: cython.longlong
        g: cython.longlong
        s0: cython.longlong
        e0: cython.longlong
        while i < n and r[i + 1] < a:
            i += 2
        if i < n and r[i] <= a and r[i + 1] >= e:
            return False
        s0 = a
        e0 = e
        j = i
        while j < n and r[j] <= e:
            if r[j] < s0:
                s0 = r[j]
            if r[j + 1] > e0:
                e0 = r[j + 1]
            j += 2
        r[i:j] = [s0, e0]
        n = len(r)
        if n > 2 * self.max_runs:
            best = 1
            gap = r[2] - r[1]
            k = 3
            while k < n - 1:
                g = r[k + 1] - r[k]
                if g < gap:
                    gap = g
                    best = k
                k += 2
            del r[best:best + 2]      # the end of one run and the start of the next: one run
            self.filled += 1
        return True


@cython.final
@cython.no_gc      # refers to tuples and Tallies only: no cycles, so no GC tracking
@cython.cclass
class _Req:
    """What one request shape means (cached per connection; see the module docstring)."""

    key: tuple
    tally: Tally
    fc: cython.int
    detail: cython.bint          # always detailed (spec.DETAIL_TABLE)
    answered: cython.bint        # False for Force Listen Only Mode: no answer expected (one that comes is paired)
    new: cython.bint             # reported as new (its first paired response is reported too)
    resp_key: tuple              # (MSG_RESPONSE, ...) once a normal response was paired, else None
    resp_tally: Tally

    def __init__(self, key: tuple, tally: Tally, fc: cython.int, detail: cython.bint, answered: cython.bint):
        self.key = key
        self.tally = tally
        self.fc = fc
        self.detail = detail
        self.answered = answered
        self.new = False
        self.resp_key = None
        self.resp_tally = None


@cython.final
@cython.no_gc      # refers to a _Req only: no cycles, so no GC tracking
@cython.freelist(64)
@cython.cclass
class _Pending:
    """An outstanding request: its meaning, frame and time."""

    req: _Req
    frame: cython.Py_ssize_t
    ts: cython.double


@cython.final
@cython.cclass
class ModbusCore:
    """Kernel state of one Modbus/TCP connection (both directions)."""

    confirmed = cython.declare(cython.bint, visibility="public")
    messages = cython.declare(cython.Py_ssize_t, visibility="public")
    bytes_decoded = cython.declare(cython.Py_ssize_t, visibility="public")
    bytes_skipped = cython.declare(cython.Py_ssize_t, visibility="public")
    bytes_encrypted = cython.declare(cython.Py_ssize_t, visibility="public")
    requests = cython.declare(cython.Py_ssize_t, visibility="public")
    responses = cython.declare(cython.Py_ssize_t, visibility="public")
    exceptions = cython.declare(cython.Py_ssize_t, visibility="public")
    unsolicited = cython.declare(cython.Py_ssize_t, visibility="public")
    unanswered = cython.declare(cython.Py_ssize_t, visibility="public")
    violation = cython.declare(str, visibility="public")
    # set by the engine when the flow is Modbus because of its port (502, --port): framing
    # alone confirms, bad content is an anomaly, never a violation (see _parse)
    port_bound = cython.declare(cython.bint, visibility="public")

    seen: dict               # tallies of the client's messages (requests)
    seen_s: dict             # ... of the server's (responses, exceptions); `seen` itself when not given
    detail_all: cython.bint
    max_pending: cython.Py_ssize_t
    probe_max: cython.Py_ssize_t
    shape_max: cython.Py_ssize_t
    shape_bytes: cython.Py_ssize_t
    shapes: dict             # request shape (bytes) -> _Req
    keys_max: cython.Py_ssize_t     # limits.link_keys_max
    cover_max: cython.Py_ssize_t    # limits.coverage_max_runs
    ckey: tuple              # the key _count counted under (the overflow key past keys_max)
    pend: dict               # (tid << 8 | unit) -> _Pending, oldest first
    dead: cython.bint
    overflowed: cython.bint
    buf0: bytearray
    buf1: bytearray
    resync0: cython.bint
    resync1: cython.bint
    skip0: cython.Py_ssize_t
    skip1: cython.Py_ssize_t
    eof0: cython.bint
    eof1: cython.bint
    dropped: cython.Py_ssize_t
    fail_pos: cython.Py_ssize_t

    def __init__(self, seen: dict, detail_all: bool = False, limits=DEFAULT_LIMITS, seen_server: dict = None):
        self.seen = seen
        self.seen_s = seen if seen_server is None else seen_server
        self.detail_all = True if detail_all else False
        self.max_pending = limits.modbus_max_pending
        if self.max_pending < 1:
            self.max_pending = 1
        self.probe_max = limits.probe_max_bytes
        self.shape_max = limits.shape_cache_entries
        self.shape_bytes = limits.shape_cache_max_bytes
        self.shapes = {}
        self.keys_max = getattr(limits, "link_keys_max", 4096)
        self.cover_max = getattr(limits, "coverage_max_runs", 64)
        self.ckey = None
        self.confirmed = False
        self.port_bound = False
        self.messages = 0
        self.bytes_decoded = 0
        self.bytes_skipped = 0
        self.bytes_encrypted = 0
        self.requests = 0
        self.responses = 0
        self.exceptions = 0
        self.unsolicited = 0
        self.unanswered = 0
        self.violation = ""
        self.pend = {}
        self.dead = False
        self.overflowed = False
        self.buf0 = bytearray()
        self.buf1 = bytearray()
        self.resync0 = False
        self.resync1 = False
        self.skip0 = 0
        self.skip1 = 0
        self.eof0 = False
        self.eof1 = False
        self.dropped = 0
        self.fail_pos = 0

    @property
    def pending(self) -> dict:
        """Outstanding requests, oldest first: (tid << 8 | unit) -> (request key, frame, ts)."""
        p: _Pending
        d = {}
        for k, v in self.pend.items():
            p = v
            d[k] = (p.req.key, p.frame, p.ts)
        return d

    def shapes_cached(self) -> int:
        """Request shapes in the repeat cache (for tests; bounded by limits.shape_cache_entries)."""
        return len(self.shapes)

    def c_feed(self) -> int:
        """Address of the C-level feed entry (``_feed_entry``) for the compiled engine; 0 when
        interpreted, or for a subclass (whose ``feed`` may differ)."""
        if cython.compiled and type(self) is ModbusCore:
            return cython.cast(cython.Py_ssize_t, cython.address(_feed_entry))
        return 0

    # --- per-side state helpers -------------------------------------------

    @cython.cfunc
    def _pend(self, side: cython.int) -> bytearray:
        return self.buf1 if side else self.buf0

    @cython.cfunc
    def _set_resync(self, side: cython.int, on: cython.bint) -> cython.void:
        if side:
            self.resync1 = on
            self.skip1 = 0
        else:
            self.resync0 = on
            self.skip0 = 0

    # --- public API ---------------------------------------------------------

    def feed(self, side: cython.int, data, start: cython.Py_ssize_t, end: cython.Py_ssize_t,
             ts: cython.double, frame: cython.Py_ssize_t, out: list) -> int:
        """Consume data[start:end], the next in-order bytes of *side*."""
        if end > len(data):
            end = len(data)
        if start < 0:
            start = 0
        if start >= end:
            return FEED_VIOLATION if self.dead else FEED_OK
        if type(data) is not bytes:
            data = bytes(data[start:end])
            end -= start
            start = 0
        return self._feed(side, data, start, end, ts, frame, out)

    @cython.cfunc
    @cython.exceptval(-99, check=True)
    def _feed(self, side: cython.int, data: cython.p_const_uchar, start: cython.Py_ssize_t,
              end: cython.Py_ssize_t, ts: cython.double, frame: cython.Py_ssize_t, out: list) -> cython.int:
        """feed() after argument checks: 0 <= start <= end <= len(data)."""
        side = 1 if side else 0
        if start >= end:
            return FEED_VIOLATION if self.dead else FEED_OK
        if self.dead:
            self.bytes_skipped += end - start
            return FEED_VIOLATION
        pend: bytearray = self.buf1 if side else self.buf0
        n: cython.Py_ssize_t
        consumed: cython.Py_ssize_t
        while pend and start < end:      # (truth tests, not len(): no builtin call interpreted)
            n = self._need(side, pend)
            if n > end - start:
                n = end - start
            pend += data[start:start + n]
            start += n
            whole: bytes = bytes(pend)
            consumed = self._parse(side, whole, 0, len(whole), ts, frame, out)
            if consumed < 0:
                return self._die(side, len(pend) - self.fail_pos + end - start)
            if consumed > 0:
                del pend[:consumed]
        if start < end:
            consumed = self._parse(side, data, start, end, ts, frame, out)
            if consumed < 0:
                return self._die(side, end - self.fail_pos)
            if consumed < end:
                pend += data[consumed:end]
        return FEED_OK

    def gap(self, side: cython.int, nbytes: cython.Py_ssize_t, ts: cython.double,
            frame: cython.Py_ssize_t, out: list) -> int:
        """*nbytes* of *side* were lost: drop the partial ADU and resynchronise."""
        side = 1 if side else 0
        if nbytes < 0:
            nbytes = 0
        if self.dead:
            self.bytes_skipped += nbytes
            return FEED_VIOLATION
        pend: bytearray = self._pend(side)
        self.bytes_skipped += len(pend) + nbytes
        del pend[:]
        self._set_resync(side, True)
        return FEED_OK

    def resync(self, side: cython.int) -> int:
        """The next bytes of *side* may start inside an ADU (the capture started mid-stream):
        find the next plausible MBAP header before decoding."""
        side = 1 if side else 0
        if self.dead:
            return FEED_VIOLATION
        pend: bytearray = self._pend(side)
        self.bytes_skipped += len(pend)
        del pend[:]
        self._set_resync(side, True)
        return FEED_OK

    def eof(self, side: cython.int, ts: cython.double, frame: cython.Py_ssize_t, out: list) -> int:
        """End of *side*'s stream.  At the server's end (or both ends) report
        the requests that were never answered."""
        side = 1 if side else 0
        if self.dead:
            return FEED_VIOLATION
        pend: bytearray = self._pend(side)
        if len(pend) > 0:
            self.bytes_skipped += len(pend)
            if self.confirmed:
                out.append((REC_ANOMALY, side, ts, frame, "modbus.truncated",
                            "%d byte(s) of an incomplete ADU at end of stream" % len(pend)))
            del pend[:]
        if side:
            self.eof1 = True
        else:
            self.eof0 = True
        if side:
            # the server will answer nothing more (a client FIN is a half-close)
            self._report_unanswered(ts, frame, out)
        return FEED_OK

    def buffered(self, side: cython.int) -> int:
        """Bytes of *side* held back (an incomplete ADU or a resync tail)."""
        return len(self.buf1 if side else self.buf0)

    # --- internals ------------------------------------------------------------

    @cython.cfunc
    def _die(self, side: cython.int, rest: cython.Py_ssize_t) -> cython.int:
        """Not Modbus: count the *rest* of the bytes as skipped and ignore all further input."""
        pend: bytearray = self._pend(side)
        other: bytearray = self._pend(1 - side)
        # the other direction's held-back bytes will never be parsed either
        self.bytes_skipped += rest + len(other)
        del pend[:]
        del other[:]
        self.dead = True
        return FEED_VIOLATION

    @cython.cfunc
    @cython.exceptval(-1, check=True)
    def _need(self, side: cython.int, pend: bytearray) -> cython.Py_ssize_t:
        """Bytes to append to the partial unit before parsing it again."""
        have: cython.Py_ssize_t = len(pend)
        length: cython.Py_ssize_t
        if have < HDR_FC:
            return HDR_FC - have
        length = (pend[4] << 8) | pend[5]
        if length + 6 > have:
            return length + 6 - have
        return 1

    @cython.cfunc
    def _report_unanswered(self, ts: cython.double, frame: cython.Py_ssize_t, out: list) -> cython.void:
        waiting: cython.Py_ssize_t = 0
        first: _Pending = None
        v: _Pending
        for v in self.pend.values():
            if v.req.answered:           # a listen-only request expects no answer
                waiting += 1
                if first is None:
                    first = v
        n: cython.Py_ssize_t = waiting + self.dropped
        if n == 0:
            self.pend.clear()
            return
        detail: str = "%d request(s) never answered" % n
        if self.dropped:
            detail += " (%d dropped from the pending table or replaced by a retry)" % self.dropped
        if first is not None:
            k = first.req.key
            detail += "; oldest: unit=%d fc=%d frame=%d" % (k[1], k[2], first.frame)
        self.unanswered += waiting
        self.pend.clear()
        self.dropped = 0
        out.append((REC_ANOMALY, 1, ts, frame, "modbus.unanswered_request", detail))

    @cython.cfunc
    @cython.exceptval(-2, check=True)
    def _parse(self, side: cython.int, buf: cython.p_const_uchar, pos: cython.Py_ssize_t, end: cython.Py_ssize_t,
               ts: cython.double, frame: cython.Py_ssize_t, out: list) -> cython.Py_ssize_t:
        """Handle every complete ADU in buf[pos:end]; return where the first
        unconsumed byte is, or -1 if the bytes are not Modbus (unconfirmed)."""
        avail: cython.Py_ssize_t
        tid: cython.int
        pid: cython.int
        length: cython.Py_ssize_t
        unit: cython.int
        fc: cython.int
        r: cython.int
        skipped: cython.Py_ssize_t
        resync: cython.bint = self.resync1 if side else self.resync0
        length = tid = unit = fc = 0    # (each is read before it is used; this keeps gcc quiet)
        while pos < end:
            avail = end - pos
            if resync:
                r = _plausible(buf, pos, end, side)
                if r == 1:
                    # a header found by scanning must be followed, where the bytes are here to
                    # tell, by another plausible header: a lone "xx xx 00 00 00 LL" in garbage
                    # would otherwise swallow the next real request
                    length = (buf[pos + 4] << 8) | buf[pos + 5]
                    if pos + length + 6 < end and _plausible(buf, pos + length + 6, end, side) == 0:
                        r = 0
                if r == 0:
                    pos += 1
                    self.bytes_skipped += 1
                    if side:
                        self.skip1 += 1
                        skipped = self.skip1
                    else:
                        self.skip0 += 1
                        skipped = self.skip0
                    if not self.confirmed and skipped > self.probe_max:
                        self.violation = "no Modbus header within %d bytes" % self.probe_max
                        self.fail_pos = pos
                        return -1
                    continue
                if r == 2:
                    break
                skipped = self.skip1 if side else self.skip0
                self._set_resync(side, False)
                resync = False
                if skipped > 0:
                    out.append((REC_ANOMALY, side, ts, frame, "modbus.resync",
                                "skipped %d byte(s) to the next plausible MBAP header" % skipped))
            # the header's fields (no _u16 calls: a call costs more than the arithmetic interpreted)
            if avail >= HDR_FC:
                if not cython.compiled and STRUCT_READS:
                    # interpreted: one struct call for the five fields of the arithmetic below
                    tid, pid, length, unit, fc = _MBAP.unpack_from(buf, pos)
                else:
                    tid = (buf[pos] << 8) | buf[pos + 1]
                    pid = (buf[pos + 2] << 8) | buf[pos + 3]
                    length = (buf[pos + 4] << 8) | buf[pos + 5]
                    unit = buf[pos + 6]
                    fc = buf[pos + 7]
            elif avail >= 4:
                pid = (buf[pos + 2] << 8) | buf[pos + 3]
                if avail >= 6:
                    length = (buf[pos + 4] << 8) | buf[pos + 5]
            if avail >= 4:
                if pid != PROTO_ID:
                    if not self.confirmed and not self.port_bound:
                        self.violation = "protocol identifier %d is not Modbus" % pid
                        self.fail_pos = pos
                        return -1
                    out.append((REC_ANOMALY, side, ts, frame, "modbus.invalid_protocol_id",
                                "protocol id %d" % pid))
                    self._set_resync(side, True)
                    resync = True
                    continue
            if avail >= 6:
                if length < MIN_LEN or length > MAX_LEN:
                    if not self.confirmed and not self.port_bound:
                        self.violation = "MBAP length %d outside %d..%d" % (length, MIN_LEN, MAX_LEN)
                        self.fail_pos = pos
                        return -1
                    if MAX_LEN < length <= OVERLONG_MAX and avail >= length + 6:
                        # a little too long and all here: framed by its length, as a device
                        # (and tshark) frames it, when what follows it (if here) is a plausible
                        # header; never waited for (a short read would hide what follows)
                        if avail == length + 6 or _plausible(buf, pos + length + 6, end, side) != 0:
                            out.append((REC_ANOMALY, side, ts, frame, "modbus.invalid_length",
                                        "MBAP length %d outside %d..%d; framed by its length"
                                        % (length, MIN_LEN, MAX_LEN)))
                            if side == 0:
                                self._request(buf, pos, length + 6, tid, unit, fc, ts, frame, out)
                            else:
                                self._response(buf, pos, length + 6, tid, unit, fc, ts, frame, out)
                            pos += length + 6
                            continue
                    out.append((REC_ANOMALY, side, ts, frame, "modbus.invalid_length",
                                "MBAP length %d outside %d..%d" % (length, MIN_LEN, MAX_LEN)))
                    self._set_resync(side, True)
                    resync = True
                    continue
            if avail < HDR_FC:
                break
            if not self.confirmed and not self.port_bound and not _fc_allowed(fc, side):
                self.violation = "function code %d not plausible from the %s" % (
                    fc, "server" if side else "client")
                self.fail_pos = pos
                return -1
            if avail < length + 6:
                break
            if side == 0:
                self._request(buf, pos, length + 6, tid, unit, fc, ts, frame, out)
            else:
                self._response(buf, pos, length + 6, tid, unit, fc, ts, frame, out)
            pos += length + 6
        return pos

    @cython.cfunc
    def _count(self, seen: dict, key: tuple, nbytes: cython.Py_ssize_t, ts: cython.double,
               frame: cython.Py_ssize_t, side: cython.int, out: list) -> Tally:
        """Count one message under *key* in *seen* (a new key gets a Tally), or, when *key* is new and the
        link direction already holds ``keys_max`` keys, under the overflow key of its message
        type; the first overflow of the link direction (any type) is reported
        (``modbus.key_overflow``).  ``ckey`` is left
        holding the key counted."""
        t = seen.get(key)
        if t is not None:
            tt: Tally = t
            _bump(tt, nbytes, ts, frame)
            self.ckey = key
            return tt
        if len(seen) >= self.keys_max:
            key = (key[0], KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW)
            t = seen.get(key)
            if t is not None:
                tt = t
                _bump(tt, nbytes, ts, frame)
                self.ckey = key
                return tt
            if not ((MSG_REQUEST, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW) in seen
                    or (MSG_RESPONSE, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW) in seen
                    or (MSG_EXCEPTION, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW, KEY_OVERFLOW) in seen):
                out.append((REC_ANOMALY, side, ts, frame, "modbus.key_overflow",
                            "more than %d keys on this link direction; new keys counted together" % self.keys_max))
        n: Tally = Tally(nbytes, ts, frame)
        seen[key] = n
        self.ckey = key
        return n

    @cython.cfunc
    def _budget(self, unit: cython.int, fc: cython.int, ts: cython.double, frame: cython.Py_ssize_t) -> cython.bint:
        """A key new to the link, about to be reported: may it be (the engine's scan hook,
        ``common.KEY_SCAN``: the client's budget of new keys per interval)?  True without one."""
        hook = self.seen.get(KEY_SCAN)
        if hook is None:
            return True
        return hook.new_key(unit, fc, ts, frame)

    @cython.cfunc
    def _cover(self, unit: cython.int, fc: cython.int, rw: cython.int, a: cython.longlong,
               q: cython.longlong) -> cython.bint:
        """Add addresses [a, a + q) to the link's coverage set of (*unit*, *fc*, *rw*); True if
        any was not covered yet."""
        ck = (KEY_COVERAGE, unit, fc, rw)
        c = self.seen.get(ck)
        if c is None:
            c = _Cover(self.cover_max)
            self.seen[ck] = c
        cc: _Cover = c
        return cc.add(a, a + q)

    @cython.cfunc
    def _covered(self, key: tuple, unit: cython.int, fc: cython.int) -> cython.bint:
        """Whether a request of a register function (spec.COVER_TABLE) names only addresses inside
        the link's exact coverage set(s) of its unit and function code (``_Cover.covers``): then,
        with no key of its own yet, it is counted under the lump key (docs/protocols/modbus.md,
        "Register coverage").  Does not change the sets."""
        code: cython.int = COVER[fc]
        c = None
        cc: _Cover
        if code == 0 or len(key) < 5 or key[3] < 0 or key[4] <= 0:
            return False
        if fc == FC_RW:
            if len(key) < 7 or key[5] < 0 or key[6] <= 0:
                return False
            c = self.seen.get((KEY_COVERAGE, unit, fc, 1))
            if c is None:
                return False
            cc = c
            if not cc.covers(key[5], key[5] + key[6]):
                return False
            c = self.seen.get((KEY_COVERAGE, unit, fc, 0))
        else:
            c = self.seen.get((KEY_COVERAGE, unit, fc, (code - 1) & 1))
        if c is None:
            return False
        cc = c
        return cc.covers(key[3], key[3] + key[4])

    @cython.cfunc
    def _is_new(self, key: tuple, unit: cython.int, fc: cython.int) -> cython.bint:
        """Whether a request with a key new to the link is new to the consumers: one that names
        registers or coils (spec.COVER_TABLE) is new if it reaches an address not requested
        before on the link with that unit and function code (which names the table, and
        whether it reads or writes); any other is new."""
        code: cython.int = COVER[fc]
        new: cython.bint
        if code == 0 or len(key) < 5 or key[3] < 0 or key[4] <= 0:
            return True
        if fc == FC_RW:
            # key[3:5] is FC 23's read range, key[5:7] its write range
            if len(key) < 7 or key[5] < 0 or key[6] <= 0:
                return True
            new = self._cover(unit, fc, 1, key[5], key[6])
            return self._cover(unit, fc, 0, key[3], key[4]) | new
        return self._cover(unit, fc, (code - 1) & 1, key[3], key[4])

    @cython.cfunc
    def _request_key(self, buf: cython.p_const_uchar, unit: cython.int, fc: cython.int,
                     b: cython.Py_ssize_t, blen: cython.Py_ssize_t) -> tuple:
        a: cython.int = 0
        q: cython.int = 0
        if fc == FC_RW:
            if blen >= 8:
                return (MSG_REQUEST, unit, fc, _u16(buf, b), _u16(buf, b + 2),
                        _u16(buf, b + 4), _u16(buf, b + 6))
            return (MSG_REQUEST, unit, fc, ABSENT, ABSENT, ABSENT, ABSENT)
        if fc == FC_MEI:
            if blen >= 3:
                if buf[b] == MEI_DEVICE_ID:
                    return (MSG_REQUEST, unit, fc, buf[b], buf[b + 1], buf[b + 2])
                return (MSG_REQUEST, unit, fc, buf[b], 0, 0)
            if blen >= 1:
                if buf[b] == MEI_DEVICE_ID:
                    return (MSG_REQUEST, unit, fc, buf[b], ABSENT, ABSENT)
                return (MSG_REQUEST, unit, fc, buf[b], 0, 0)
            return (MSG_REQUEST, unit, fc, ABSENT, ABSENT, ABSENT)
        if fc <= 4 or fc == 15 or fc == 16:
            if blen >= 4:
                a = _u16(buf, b)
                q = _u16(buf, b + 2)
            else:
                a = ABSENT
                q = ABSENT
        elif fc == 5 or fc == 6 or fc == 22:
            if blen >= 2:
                a = _u16(buf, b)
                q = 1
            else:
                a = ABSENT
                q = ABSENT
        elif fc == FC_DIAG or fc == FC_FIFO:
            if blen >= 2:
                a = _u16(buf, b)
            else:
                a = ABSENT
                q = ABSENT
        elif fc == FC_READ_FILE or fc == FC_WRITE_FILE:
            if blen >= 6:
                a = _u16(buf, b + 2)
                q = _u16(buf, b + 4)
            else:
                a = ABSENT
                q = ABSENT
        return (MSG_REQUEST, unit, fc, a, q)

    @cython.cfunc
    def _request(self, buf: cython.p_const_uchar, pos: cython.Py_ssize_t, total: cython.Py_ssize_t,
                 tid: cython.int, unit: cython.int, fc: cython.int,
                 ts: cython.double, frame: cython.Py_ssize_t, out: list) -> cython.void:
        """One complete request ADU at buf[pos:pos+total] (header already validated and
        read by _parse: transaction id, unit id, function code).

        A repeated shape is the per-message path: helpers (_bump, _pending) are written
        out here, as a call costs more than their bodies when interpreted."""
        b: cython.Py_ssize_t
        blen: cython.Py_ssize_t
        pk: cython.int = (tid << 8) | unit
        detail: cython.bint
        req: _Req = None
        t: Tally
        shape: bytes = None
        pend: dict = self.pend
        pp: _Pending
        a1 = None
        d1 = None
        a2 = None
        d2 = None
        self.confirmed = True
        self.messages += 1
        self.bytes_decoded += total
        self.requests += 1
        # the shape: everything after the transaction and protocol ids
        if total - 4 <= self.shape_bytes:
            shape = buf[pos + 4:pos + total]
            req = self.shapes.get(shape)
        if req is not None:
            t = req.tally
            t.count += 1
            t.nbytes += total
            t.last_ts = ts
            t.last_frame = frame
            t.int_count += 1
            t.int_bytes += total
            _peak(t, ts, frame)     # the busiest window of the interval (Tally)
            detail = req.detail
        else:
            b = pos + 8
            blen = total - 8
            key: tuple = self._request_key(buf, unit, fc, b, blen)
            # a register range with no key of its own, inside the link's exact coverage: counted
            # under the lump key of its unit and function code (never in detail_all mode, where
            # every message is reported under its own key)
            if COVER[fc] != 0 and not self.detail_all and key not in self.seen and self._covered(key, unit, fc):
                key = (MSG_REQUEST, unit, fc, KEY_COVERED, KEY_COVERED)
            t = self._count(self.seen, key, total, ts, frame, 0, out)
            # Force Listen Only Mode expects no answer [APP §6.8.1]; devices that answer anyway are
            # paired like any other (tshark does), it is only left out of modbus.unanswered_request
            req = _Req(self.ckey, t, fc, (DETAIL[fc] & DETAIL_REQ) != 0,
                       not (fc == FC_DIAG and blen >= 2 and _u16(buf, b) == SUB_LISTEN_ONLY))
            # new: a key new to the link that reaches new addresses (past the key cap: only
            # counted, the overflow anomaly says so)
            req.new = t.count == 1 and self.ckey is key and key[3] != KEY_COVERED and self._is_new(key, unit, fc)
            if req.new and not req.detail and not self.detail_all:
                req.new = self._budget(unit, fc, ts, frame)
            detail = req.detail or req.new
            if fc & 0x7F == 0 or fc & EXC_BIT:
                a1 = "modbus.invalid_function_code"
                d1 = "request with function code %d" % fc
            elif shape is not None and not req.detail:
                if len(self.shapes) >= self.shape_max:
                    self.shapes.clear()
                self.shapes[shape] = req
        if True:
            if pk in pend:
                del pend[pk]
                self.dropped += 1
            elif len(pend) >= self.max_pending:
                for k in pend:
                    del pend[k]
                    break
                self.dropped += 1
                if not self.overflowed:
                    self.overflowed = True
                    a2 = "modbus.pending_overflow"
                    d2 = "more than %d outstanding requests; oldest dropped" % self.max_pending
            pp = _Pending.__new__(_Pending)
            pp.req = req
            pp.frame = frame
            pp.ts = ts
            pend[pk] = pp
        if detail or self.detail_all:
            out.append((REC_MSG, 0, ts, frame, req.key, buf[pos:pos + total], None))
        if a1 is not None:
            out.append((REC_ANOMALY, 0, ts, frame, a1, d1))
        if a2 is not None:
            out.append((REC_ANOMALY, 0, ts, frame, a2, d2))

    @cython.cfunc
    def _response(self, buf: cython.p_const_uchar, pos: cython.Py_ssize_t, total: cython.Py_ssize_t,
                  tid: cython.int, unit: cython.int, fc: cython.int,
                  ts: cython.double, frame: cython.Py_ssize_t, out: list) -> cython.void:
        """One complete response ADU at buf[pos:pos+total] (header already validated and
        read by _parse).  An answer to a cached request shape is the per-message path:
        _bump is written out (see _request)."""
        pk: cython.int = (tid << 8) | unit
        pend: dict = self.pend
        detail: cython.bint
        code: cython.int
        key: tuple
        t: Tally
        p: _Pending = None
        req: _Req = None
        ctx = None
        a1 = None
        d1 = None
        a2 = None
        d2 = None
        self.confirmed = True
        self.messages += 1
        self.bytes_decoded += total
        if pend:
            p = pend.pop(pk, None)
        if p is not None:
            req = p.req
            if req.fc != fc & 0x7F:
                a1 = "modbus.response_mismatch"
                d1 = "tid=%d unit=%d: request fc %d, response fc %d" % (tid, unit, req.fc, fc)
                req = None
        else:
            self.unsolicited += 1
            a1 = "modbus.unsolicited_response"
            d1 = "tid=%d unit=%d fc=%d" % (tid, unit, fc)
        if fc & EXC_BIT:
            self.exceptions += 1
            code = buf[pos + 8] if total >= 9 else ABSENT
            key = (MSG_EXCEPTION, unit, fc & 0x7F, code)
            t = self._count(self.seen_s, key, total, ts, frame, 1, out)
            # new (unit, function, code) on the link (spec.DETAIL_TABLE); past the key cap counted
            detail = t.count == 1 and self.ckey is key
            if detail and not self.detail_all:
                detail = self._budget(unit, fc & 0x7F, ts, frame)
            key = self.ckey
            if fc & 0x7F == 0:
                a2 = "modbus.invalid_function_code"
                d2 = "exception for function code 0"
        else:
            self.responses += 1
            if req is not None:
                t = req.resp_tally
                if t is not None:
                    t.count += 1
                    t.nbytes += total
                    t.last_ts = ts
                    t.last_frame = frame
                    t.int_count += 1
                    t.int_bytes += total
                    _peak(t, ts, frame)     # the busiest window of the interval (Tally)
                    key = req.resp_key
                else:
                    t = self._count(self.seen_s, (MSG_RESPONSE,) + req.key[1:], total, ts, frame, 1, out)
                    key = self.ckey
                    req.resp_key = key
                    req.resp_tally = t
                # the first response to a request reported as new
                detail = (DETAIL[fc] & DETAIL_RESP) != 0 or (t.count == 1 and req.new)
            else:
                t = self._count(self.seen_s, (MSG_RESPONSE, unit, fc, ABSENT, ABSENT), total, ts, frame, 1, out)
                key = self.ckey
                detail = (DETAIL[fc] & DETAIL_RESP) != 0 or (t.count == 1 and key[1] != KEY_OVERFLOW
                                                              and (self.detail_all or self._budget(unit, fc, ts, frame)))
            if fc == 0:
                a2 = "modbus.invalid_function_code"
                d2 = "response with function code 0"
        if detail or self.detail_all:
            if req is not None:
                ctx = (req.key, p.frame, p.ts, ts - p.ts)
            out.append((REC_MSG, 1, ts, frame, key, buf[pos:pos + total], ctx))
        if a1 is not None:
            out.append((REC_ANOMALY, 1, ts, frame, a1, d1))
        if a2 is not None:
            out.append((REC_ANOMALY, 1, ts, frame, a2, d2))


@cython.cfunc
@cython.exceptval(-99, check=True)
def _feed_entry(core: object, side: cython.int, data: cython.p_const_uchar, start: cython.Py_ssize_t,
                end: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
    """The compiled engine's entry (see ``ModbusCore.c_feed``): *core* is a ModbusCore and
    data[start:end] lies inside the caller's buffer."""
    return cython.cast(ModbusCore, core)._feed(side, data, start, end, ts, frame, out)
