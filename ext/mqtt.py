"""MQTT protocol kernel (3.1, 3.1.1, 5.0), Cython pure-Python mode.

One ``MQTTCore`` per TCP connection; the contract is "Protocol kernel" in
docs/architecture.md.  This file runs as it is (the pure path) and is compiled
into ``otwatch.ext._mqtt`` (the fast path); constants come from
``otwatch.parsers.mqtt.spec``.

Per direction the kernel frames packets (fixed header + varint remaining length),
computes each packet's key (layouts in ``spec``), tallies it in ``seen`` and
appends a record for new keys, always-detailed types, or everything in
``detail_all`` mode.  It keeps per connection the protocol level (from CONNECT,
or v5 inferred from a CONNACK with properties when the capture started late) and
per direction the v5 topic aliases.

Outcomes of bytes that are not a valid packet start:

* unconfirmed connection: ``FEED_VIOLATION`` (the engine detaches us) and every
  later call answers ``FEED_VIOLATION`` too;
* confirmed: ``mqtt.invalid_header`` and the direction is abandoned; MQTT has no
  sync marker, so decoding resumes only at a segment that parses as whole valid
  packets (``mqtt.resynchronised``).  Skipped bytes are counted.

A stream that opens with a TLS record (MQTT over TLS) puts the kernel in
encrypted mode: bytes are only counted in ``bytes_encrypted``.

Records: ``(REC_MSG, side, ts, frame, key, raw, ctx)`` with ``raw`` the complete
packet (CONNECT passwords overwritten with zero bytes, length kept) and
``ctx = (protocol_level, topic)``: ``topic`` is the PUBLISH's effective topic
(alias resolved) or ``None``.  A packet over ``limits.mqtt_max_message`` gives
key ``(MSG_TRUNCATED, type, size)`` with ``raw`` = its fixed header; its body is
skipped as it arrives, never buffered.

Repeats: a PUBLISH whose flags byte, topic and protocol level were seen before
on this direction (and that carries no v5 properties) is a counter bump on the
cached ``Tally`` of its key, without decoding the topic or building the key;
the cache (per direction, keyed by the topic bytes) is bounded by
``limits.shape_cache_entries``.  The compiled engine calls ``_feed_c`` through
``c_feed()`` without boxing its arguments.

Pure-mode rules: byte buffers are read as ``const unsigned char *`` when
compiled (``bytes`` objects when interpreted), indexed with ``buf[i]`` and
masked; every read is preceded by an explicit length check (pointer reads are
not bounds-checked).
"""
from typing import Optional

import cython

from otwatch.parsers import common as _common
from otwatch.parsers.limits import DEFAULT_LIMITS
from otwatch.parsers.mqtt import spec as _spec

_REC_MSG = cython.declare(cython.int, _common.REC_MSG)
_REC_ANOMALY = cython.declare(cython.int, _common.REC_ANOMALY)
_FEED_OK = cython.declare(cython.int, _common.FEED_OK)
_FEED_VIOLATION = cython.declare(cython.int, _common.FEED_VIOLATION)

_CONNECT = cython.declare(cython.int, _spec.MSG_CONNECT)
_CONNACK = cython.declare(cython.int, _spec.MSG_CONNACK)
_PUBLISH = cython.declare(cython.int, _spec.MSG_PUBLISH)
_PUBLISH_B0 = cython.declare(cython.int, _spec.MSG_PUBLISH << 4)   # its first byte, flags masked
_PUBACK = cython.declare(cython.int, _spec.MSG_PUBACK)
_PUBCOMP = cython.declare(cython.int, _spec.MSG_PUBCOMP)
_SUBSCRIBE = cython.declare(cython.int, _spec.MSG_SUBSCRIBE)
_SUBACK = cython.declare(cython.int, _spec.MSG_SUBACK)
_UNSUBSCRIBE = cython.declare(cython.int, _spec.MSG_UNSUBSCRIBE)
_UNSUBACK = cython.declare(cython.int, _spec.MSG_UNSUBACK)
_PINGREQ = cython.declare(cython.int, _spec.MSG_PINGREQ)
_PINGRESP = cython.declare(cython.int, _spec.MSG_PINGRESP)
_DISCONNECT = cython.declare(cython.int, _spec.MSG_DISCONNECT)
_AUTH = cython.declare(cython.int, _spec.MSG_AUTH)
_TRUNCATED = cython.declare(cython.int, _spec.MSG_TRUNCATED)

_LEVEL_UNKNOWN = cython.declare(cython.int, _spec.LEVEL_UNKNOWN)
_LEVEL_31 = cython.declare(cython.int, _spec.LEVEL_31)
_LEVEL_311 = cython.declare(cython.int, _spec.LEVEL_311)
_LEVEL_5 = cython.declare(cython.int, _spec.LEVEL_5)
_LEVEL_MASK = cython.declare(cython.int, 0xFF & ~_spec.LEVEL_BRIDGE_BIT)
_FLAG_DUP = cython.declare(cython.int, _spec.FLAG_DUP)
_QOS_SHIFT = cython.declare(cython.int, _spec.FLAG_QOS_SHIFT)
_QOS_INVALID = cython.declare(cython.int, _spec.QOS_INVALID)
_VARINT_MAX_BYTES = cython.declare(cython.int, _spec.VARINT_MAX_BYTES)
_CONNECT_WILL = cython.declare(cython.int, _spec.CONNECT_WILL)
_CONNECT_USERNAME = cython.declare(cython.int, _spec.CONNECT_USERNAME)
_CONNECT_PASSWORD = cython.declare(cython.int, _spec.CONNECT_PASSWORD)
_PROP_TOPIC_ALIAS = cython.declare(cython.int, _spec.PROP_TOPIC_ALIAS)
_PT_BYTE = cython.declare(cython.int, _spec.PropType.BYTE)
_PT_TWO = cython.declare(cython.int, _spec.PropType.TWO_BYTE_INT)
_PT_FOUR = cython.declare(cython.int, _spec.PropType.FOUR_BYTE_INT)
_PT_VARINT = cython.declare(cython.int, _spec.PropType.VARINT)
_PT_UTF8 = cython.declare(cython.int, _spec.PropType.UTF8)
_PT_BINARY = cython.declare(cython.int, _spec.PropType.BINARY)
_PT_PAIR = cython.declare(cython.int, _spec.PropType.UTF8_PAIR)
_PROP_TYPES = cython.declare(tuple, _spec.PROP_TYPE_TABLE)
_PROTOCOL_NAMES = cython.declare(dict, dict(_spec.PROTOCOL_NAMES))
_PACKET_NAMES = cython.declare(dict, dict(_spec.PACKET_NAMES))


def _mask(types) -> int:
    m = 0
    for t in types:
        m |= 1 << int(t)
    return m


# Bit t set <=> packet type t has that property (read from spec at import).
_FLAGS2_MASK = cython.declare(cython.int, _mask(t for t, f in _spec.REQUIRED_FLAGS.items() if f == 0x02))
_DETAIL_MASK = cython.declare(cython.int, _mask(_spec.ALWAYS_DETAILED))
_KEY_OVERFLOW = cython.declare(cython.int, _spec.KEY_OVERFLOW)
_KEY_SCAN = cython.declare(tuple, _common.KEY_SCAN)
PEAK_WINDOW = cython.declare(cython.double, _common.PEAK_WINDOW)
_CLIENT_MASK = cython.declare(cython.int, _mask(_spec.CLIENT_TYPES))
_SERVER_MASK = cython.declare(cython.int, _mask(_spec.SERVER_TYPES))
assert _spec.MSG_PUBLISH in _spec.CLIENT_TYPES and _spec.MSG_PUBLISH in _spec.SERVER_TYPES  # MQTTCore._publish, repeat path

# _scan() results below zero (>= 0 is total * 8 + header length).
_S_NEED = cython.declare(cython.int, -1)
_S_BAD_TYPE = cython.declare(cython.int, -2)
_S_BAD_FLAGS = cython.declare(cython.int, -3)
_S_BAD_QOS = cython.declare(cython.int, -4)
_S_BAD_VARINT = cython.declare(cython.int, -5)
_BAD_REASONS = cython.declare(
    tuple, ("", "", "reserved packet type", "invalid fixed header flags", "PUBLISH QoS 3", "remaining length over 4 bytes")
)


@cython.cfunc
@cython.exceptval(check=False)
def _scan(buf: cython.p_const_uchar, off: cython.Py_ssize_t, stop: cython.Py_ssize_t, level: cython.int) -> cython.longlong:
    """Fixed header at buf[off:stop]: total * 8 + header length, or an _S_* code."""
    b0: cython.int
    typ: cython.int
    fl: cython.int
    b: cython.int
    i: cython.int
    rl: cython.longlong = 0
    if off >= stop:
        return _S_NEED
    b0 = buf[off] & 0xFF
    typ = b0 >> 4
    fl = b0 & 0x0F
    if typ == 0:
        return _S_BAD_TYPE
    if typ == _AUTH and (level == _LEVEL_31 or level == _LEVEL_311):
        return _S_BAD_TYPE
    if typ == _PUBLISH:
        if ((fl >> _QOS_SHIFT) & 3) == _QOS_INVALID:
            return _S_BAD_QOS
    elif level != _LEVEL_31:  # 3.1 left these flags unchecked (as Mosquitto does)
        if (_FLAGS2_MASK >> typ) & 1:
            if level == _LEVEL_UNKNOWN:
                fl = fl & ~_FLAG_DUP
            if fl != 2:
                return _S_BAD_FLAGS
        elif fl != 0:
            return _S_BAD_FLAGS
    if off + 1 < stop and not (buf[off + 1] & 0x80):
        # remaining length < 128 (most packets): the loop's first round, without the loop
        return ((buf[off + 1] & 0xFF) + 2) * 8 + 2
    for i in range(1, _VARINT_MAX_BYTES + 1):
        if off + i >= stop:
            return _S_NEED
        b = buf[off + i] & 0xFF
        rl |= (b & 0x7F) << (7 * (i - 1))   # i <= 4: at most 28 bits, no overflow
        if not (b & 0x80):
            return (rl + i + 1) * 8 + i + 1
    return _S_BAD_VARINT


@cython.cfunc
@cython.exceptval(check=False)
def _u16(buf: cython.p_const_uchar, p: cython.Py_ssize_t) -> cython.int:
    return ((buf[p] & 0xFF) << 8) | (buf[p + 1] & 0xFF)


@cython.cfunc
@cython.exceptval(check=False)
def _varint(buf: cython.p_const_uchar, p: cython.Py_ssize_t, stop: cython.Py_ssize_t) -> cython.longlong:
    """Variable byte integer at buf[p:stop]: value * 8 + its size, or -1."""
    i: cython.int
    b: cython.int
    v: cython.longlong = 0
    for i in range(_VARINT_MAX_BYTES):
        if p + i >= stop:
            return -1
        b = buf[p + i] & 0xFF
        v |= (b & 0x7F) << (7 * i)   # i <= 3: at most 28 bits, no overflow
        if not (b & 0x80):
            return v * 8 + i + 1
    return -1


@cython.cfunc
@cython.exceptval(check=False)
def _skip_props(buf: cython.p_const_uchar, p: cython.Py_ssize_t, stop: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """Skip a v5 property block at p: the position after it, or -1."""
    v: cython.longlong = _varint(buf, p, stop)
    if v < 0:
        return -1
    p = p + (v & 7) + (v >> 3)
    return p if p <= stop else -1


@cython.cfunc
@cython.exceptval(check=False)
def _skip_str(buf: cython.p_const_uchar, p: cython.Py_ssize_t, stop: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """Skip a length-prefixed string or binary field at p: the position after it, or -1."""
    if p + 2 > stop:
        return -1
    p = p + 2 + _u16(buf, p)
    return p if p <= stop else -1


@cython.cfunc
@cython.exceptval(check=False)
def _chain(buf: cython.p_const_uchar, p: cython.Py_ssize_t, stop: cython.Py_ssize_t, level: cython.int,
           allowed: cython.int, max_message: cython.longlong) -> cython.bint:
    """True if buf[p:stop] is one or more whole packets with strict headers of
    types in *allowed* (the resynchronisation and probe test)."""
    r: cython.longlong
    total: cython.longlong
    if p >= stop:
        return False
    while p < stop:
        r = _scan(buf, p, stop, level)
        if r < 0:
            return False
        total = r >> 3
        if total > max_message or not ((allowed >> ((buf[p] & 0xFF) >> 4)) & 1):
            return False
        p += total
    return p == stop


def probe(data, start, end) -> int:
    """2: a CONNECT naming MQTT or MQIsdp; 1: whole valid MQTT packets; 0: no."""
    buf: bytes
    s: cython.Py_ssize_t = max(0, start)
    e: cython.Py_ssize_t = min(len(data), end)
    r: cython.longlong
    p: cython.Py_ssize_t
    q: cython.Py_ssize_t
    if s >= e:
        return 0
    buf = bytes(data[s:e])
    e = e - s
    r = _scan(buf, 0, e, _LEVEL_UNKNOWN)
    if r >= 0 and (buf[0] & 0xFF) >> 4 == _CONNECT:
        p = r & 7
        q = _skip_str(buf, p, e)
        if q > 0 and buf[p + 2 : q] in _PROTOCOL_NAMES:
            return 2
    if _chain(buf, 0, e, _LEVEL_UNKNOWN, _CLIENT_MASK | _SERVER_MASK, DEFAULT_LIMITS.mqtt_max_message):
        return 1
    return 0


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
def _bump(t: Tally, nbytes: cython.longlong, ts: cython.double, frame: cython.longlong) -> cython.void:
    t.count += 1
    t.last_frame = frame
    t.nbytes += nbytes
    t.last_ts = ts
    t.int_count += 1
    t.int_bytes += nbytes
    _peak(t, ts, frame)     # the busiest window of the interval (Tally)


@cython.final
@cython.no_gc      # refers to a tuple, a str and a Tally: no cycles, so no GC tracking
@cython.cclass
class _Pub:
    """A PUBLISH shape seen before on one direction: what it counts under."""

    b0: cython.int            # the fixed header's first byte (type, DUP, QoS, RETAIN)
    level: cython.int         # the protocol level it was parsed at
    key: tuple
    tally: Tally
    topic: str


@cython.final
@cython.cclass
class _Direction:
    """Stream state of one direction."""

    buf: bytearray          # an incomplete packet (header, or header + body)
    need: cython.longlong   # its total size once the header is complete, else 0
    hl: cython.int          # its header length
    skip: cython.longlong   # body bytes of a truncated packet still to skip
    dead: cython.bint       # framing lost; waiting for a segment to resynchronise on
    lost: cython.longlong   # bytes skipped while dead
    fresh: cython.bint      # no packet framed yet
    wrong_reported: cython.bint
    alias_full_reported: cython.bint
    aliases: dict           # v5 topic alias -> topic
    pubs: dict              # PUBLISH shape (topic length + topic bytes) -> _Pub

    def __init__(self):
        self.buf = bytearray()
        self.need = 0
        self.hl = 0
        self.skip = 0
        self.dead = False
        self.lost = 0
        self.fresh = True
        self.wrong_reported = False
        self.alias_full_reported = False
        self.aliases = {}
        self.pubs = {}


@cython.final
@cython.cclass
class MQTTCore:
    """Framing, keys and tallies for one MQTT connection (both directions)."""

    confirmed = cython.declare(cython.bint, visibility="readonly")
    level = cython.declare(cython.int, visibility="readonly")
    messages = cython.declare(cython.longlong, visibility="readonly")
    bytes_decoded = cython.declare(cython.longlong, visibility="readonly")
    bytes_skipped = cython.declare(cython.longlong, visibility="readonly")
    bytes_encrypted = cython.declare(cython.longlong, visibility="readonly")
    violation = cython.declare(str, visibility="readonly")
    # set by the engine when the flow is MQTT because of its port (1883, --port): a framed
    # packet whose body does not parse is a message with mqtt.malformed, bytes that do not
    # frame are skipped to the next segment that does (never a violation)
    port_bound = cython.declare(cython.bint, visibility="public")
    seen: dict              # tallies of the client's packets
    seen_s: dict            # ... of the server's; `seen` itself when not given
    detail_all: cython.bint
    max_message: cython.longlong
    max_aliases: cython.Py_ssize_t
    connects: cython.int
    violated: cython.bint
    encrypted: cython.bint
    alias_value: cython.int   # topic alias of the PUBLISH being finished, -1 none
    last_tally: Tally         # the tally the last _finish counted under
    last_key: tuple           # ... and its key (the overflow key past keys_max)
    keys_max: cython.Py_ssize_t   # limits.link_keys_max
    shape_max: cython.Py_ssize_t
    shape_bytes: cython.Py_ssize_t
    d0: _Direction
    d1: _Direction

    def __init__(self, seen: dict, detail_all: bool = False, limits=DEFAULT_LIMITS, seen_server: dict = None):
        self.seen = seen
        self.seen_s = seen if seen_server is None else seen_server
        self.detail_all = detail_all
        self.max_message = min(limits.mqtt_max_message, limits.stream_max_buffer)
        self.max_aliases = limits.mqtt_max_aliases
        self.confirmed = False
        self.port_bound = False
        self.level = _LEVEL_UNKNOWN
        self.messages = 0
        self.bytes_decoded = 0
        self.bytes_skipped = 0
        self.bytes_encrypted = 0
        self.violation = ""
        self.connects = 0
        self.violated = False
        self.encrypted = False
        self.alias_value = -1
        self.last_tally = None
        self.shape_max = limits.shape_cache_entries
        self.keys_max = getattr(limits, "link_keys_max", 4096)
        self.last_key = None
        self.shape_bytes = limits.shape_cache_max_bytes
        self.d0 = _Direction()
        self.d1 = _Direction()

    # ------------------------------------------------------------------ API
    def feed(self, side: cython.int, data, start: cython.Py_ssize_t, end: cython.Py_ssize_t,
             ts: cython.double, frame: cython.longlong, out: list) -> int:
        """Consume data[start:end], the next in-order bytes of *side*."""
        n: cython.Py_ssize_t = len(data)
        if end > n:
            end = n
        if start < 0:
            start = 0
        if start < end and type(data) is not bytes:
            data = bytes(data[start:end])
            end = end - start
            start = 0
        return self._feed_c(side, data, start, end, float(ts), int(frame), out)

    def c_feed(self) -> int:
        """Address of the C-level feed entry (``_feed_entry``) for the compiled engine; 0 when
        interpreted, or for a subclass (whose ``feed`` may differ)."""
        if cython.compiled and type(self) is MQTTCore:
            return cython.cast(cython.Py_ssize_t, cython.address(_feed_entry))
        return 0

    def shapes_cached(self, side: cython.int) -> int:
        """PUBLISH shapes in *side*'s repeat cache (for tests; bounded by limits.shape_cache_entries)."""
        d: _Direction = self.d1 if side else self.d0
        return len(d.pubs)

    @cython.cfunc
    @cython.exceptval(-99, check=True)
    def _feed_c(self, side: cython.int, buf: cython.p_const_uchar, start: cython.Py_ssize_t,
                end: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """feed() after argument checks: 0 <= start <= end <= len(buf)."""
        d: _Direction = self.d1 if side else self.d0
        if start >= end:
            return _FEED_VIOLATION if self.violated else _FEED_OK
        if self.violated:
            self.bytes_skipped += end - start
            return _FEED_VIOLATION
        if self.encrypted:
            self.bytes_encrypted += end - start
            return _FEED_OK
        r: cython.int = self._feed(d, 1 if side else 0, buf, start, end, ts, frame, out)
        if self.violated:
            # not MQTT: the other direction's held-back bytes will never be parsed either
            o: _Direction = self.d0 if side else self.d1
            self.bytes_skipped += len(o.buf)
            o.buf = bytearray()
            o.need = 0
        return r

    def gap(self, side: cython.int, nbytes: cython.longlong, ts: cython.double, frame: cython.longlong,
            out: list) -> int:
        """*nbytes* of *side* are missing from the stream."""
        d: _Direction = self.d1 if side else self.d0
        rem: cython.longlong
        k: cython.longlong
        typ: cython.int
        side = 1 if side else 0
        ts = float(ts)
        frame = int(frame)
        if self.violated:
            return _FEED_VIOLATION
        if nbytes <= 0:
            return _FEED_OK
        if self.encrypted:  # bytes never seen are not counted as encrypted
            return _FEED_OK
        if d.dead:
            d.lost += nbytes
            self.bytes_skipped += nbytes
            return _FEED_OK
        if d.skip > 0:  # inside a truncated packet's body: nothing we decode is lost
            k = min(d.skip, nbytes)
            d.skip -= k
            nbytes -= k
            self.bytes_skipped += k
            if nbytes == 0:
                return _FEED_OK
        elif d.need > 0:  # inside a buffered packet: it is lost, its end is known
            rem = d.need - len(d.buf)
            typ = (d.buf[0] & 0xFF) >> 4
            self.bytes_skipped += len(d.buf)
            self._anomaly(out, side, ts, frame, "mqtt.lost_packet",
                          "%s of %d bytes, %d missing" % (_PACKET_NAMES[typ], d.need, min(rem, nbytes)))
            d.buf = bytearray()
            d.need = 0
            if nbytes <= rem:
                d.skip = rem - nbytes
                self.bytes_skipped += nbytes
                return _FEED_OK
            self.bytes_skipped += rem
            nbytes -= rem
        d.lost = nbytes + len(d.buf)
        self.bytes_skipped += d.lost
        d.buf = bytearray()
        d.dead = True
        self._anomaly(out, side, ts, frame, "mqtt.desynchronised", "%d bytes missing at a packet boundary" % nbytes)
        return _FEED_OK

    def resync(self, side: cython.int) -> int:
        """The next bytes of *side* may start inside a packet (the capture started mid-stream):
        decode from the first segment that parses as whole packets (as after a gap)."""
        d: _Direction = self.d1 if side else self.d0
        if self.violated:
            return _FEED_VIOLATION
        if not self.encrypted:
            self.bytes_skipped += len(d.buf)
            d.buf = bytearray()
            d.need = 0
            d.skip = 0
            d.dead = True
        return _FEED_OK

    def eof(self, side: cython.int, ts: cython.double, frame: cython.longlong, out: list) -> int:
        """*side* has closed; an incomplete packet is reported."""
        d: _Direction = self.d1 if side else self.d0
        side = 1 if side else 0
        if self.violated:
            return _FEED_VIOLATION
        if len(d.buf) > 0:
            self.bytes_skipped += len(d.buf)
            if d.need > 0:
                detail = "%s: %d of %d bytes" % (_PACKET_NAMES[(d.buf[0] & 0xFF) >> 4], len(d.buf), d.need)
            else:
                detail = "%d bytes of a fixed header" % len(d.buf)
            self._anomaly(out, side, float(ts), int(frame), "mqtt.truncated_at_eof", detail)
            d.buf = bytearray()
            d.need = 0
        return _FEED_OK

    # ------------------------------------------------------------ framing
    @cython.cfunc
    def _feed(self, d: _Direction, side: cython.int, buf: cython.p_const_uchar, pos: cython.Py_ssize_t, stop: cython.Py_ssize_t,
              ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        r: cython.longlong
        total: cython.longlong
        k: cython.longlong
        hl: cython.int
        hb: bytes
        if d.dead:
            if not _chain(buf, pos, stop, self.level, _CLIENT_MASK if side == 0 else _SERVER_MASK, self.max_message):
                d.lost += stop - pos
                self.bytes_skipped += stop - pos
                return _FEED_OK
            d.dead = False
            if d.lost > 0:
                self._anomaly(out, side, ts, frame, "mqtt.resynchronised", "after %d bytes skipped" % d.lost)
            d.lost = 0
        while pos < stop:
            if d.skip > 0:
                k = min(d.skip, stop - pos)
                d.skip -= k
                pos += k
                self.bytes_skipped += k
                continue
            if not d.buf:    # (a truth test: len() is a builtin call when interpreted)
                r = _scan(buf, pos, stop, self.level)
                if r == _S_NEED:
                    d.buf += buf[pos:stop]
                    return _FEED_OK
                if r < 0:
                    if self._tls(d, buf, pos, stop, False):
                        return _FEED_OK
                    return self._bad(d, side, r, stop - pos, ts, frame, out)
                total = r >> 3
                hl = r & 7
                if total > self.max_message:
                    self._truncated(d, side, buf, pos, hl, total, ts, frame, out)
                    k = min(total, stop - pos)
                    d.skip = total - k
                    self.bytes_skipped += k - hl
                    pos += k
                    continue
                if stop - pos >= total:
                    # (PUBLISH, the usual packet, goes straight to _publish: a call fewer)
                    if (self._publish(d, side, buf, pos, hl, total, ts, frame, out)
                            if (buf[pos] & 0xF0) == _PUBLISH_B0 else
                            self._packet(d, side, buf, pos, hl, total, ts, frame, out)) < 0:
                        self.bytes_skipped += stop - pos
                        return _FEED_VIOLATION
                    pos += total
                    continue
                d.buf += buf[pos:stop]
                d.need = total
                d.hl = hl
                return _FEED_OK
            if d.need == 0:  # header incomplete: take one byte at a time (5 at most)
                d.buf.append(buf[pos] & 0xFF)
                pos += 1
                hb = bytes(d.buf)
                r = _scan(hb, 0, len(hb), self.level)
                if r == _S_NEED:
                    continue
                if r < 0:
                    if self._tls(d, hb, 0, len(hb), True):
                        if self.encrypted:
                            self.bytes_encrypted += stop - pos
                            return _FEED_OK
                        continue
                    d.buf = bytearray()
                    return self._bad(d, side, r, len(hb) + stop - pos, ts, frame, out)
                total = r >> 3
                hl = r & 7
                if total > self.max_message:
                    d.buf = bytearray()
                    self._truncated(d, side, hb, 0, hl, total, ts, frame, out)
                    d.skip = total - hl
                    continue
                if total == hl:
                    d.buf = bytearray()
                    if self._packet(d, side, hb, 0, hl, total, ts, frame, out) < 0:
                        self.bytes_skipped += len(hb) + stop - pos   # the buffered packet and the rest
                        return _FEED_VIOLATION
                    continue
                d.need = total
                d.hl = hl
                continue
            k = min(d.need - len(d.buf), stop - pos)
            d.buf += buf[pos : pos + k]
            pos += k
            if len(d.buf) == d.need:
                hb = bytes(d.buf)
                d.buf = bytearray()
                d.need = 0
                if self._packet(d, side, hb, 0, d.hl, len(hb), ts, frame, out) < 0:
                    self.bytes_skipped += len(hb) + stop - pos   # the buffered packet and the rest
                    return _FEED_VIOLATION
        return _FEED_OK

    @cython.cfunc
    def _tls(self, d: _Direction, buf: cython.p_const_uchar, pos: cython.Py_ssize_t, stop: cython.Py_ssize_t,
             buffered: cython.bint) -> cython.bint:
        """At the start of an unconfirmed stream, a TLS record header (content
        type 20-23, version 3.x) switches to encrypted mode.  Those first bytes
        are no valid MQTT start, so waiting for 3 of them costs nothing."""
        b0: cython.int = buf[pos] & 0xFF
        if self.confirmed or not d.fresh or b0 < 0x14 or b0 > 0x17:
            return False
        if stop - pos < 3:
            if not buffered:
                d.buf += buf[pos:stop]
            return True
        if (buf[pos + 1] & 0xFF) != 3 or (buf[pos + 2] & 0xFF) > 4:
            return False
        self.encrypted = True
        self.bytes_encrypted += stop - pos
        d.buf = bytearray()
        return True

    @cython.cfunc
    def _bad(self, d: _Direction, side: cython.int, r: cython.longlong, nbytes: cython.Py_ssize_t,
             ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """An invalid fixed header: a violation, or the direction is abandoned."""
        reason: str = _BAD_REASONS[-r]
        self.bytes_skipped += nbytes
        if not self.confirmed and not self.port_bound:
            self.violated = True
            self.violation = reason
            return _FEED_VIOLATION
        d.dead = True
        d.lost = nbytes
        self._anomaly(out, side, ts, frame, "mqtt.invalid_header", reason)
        return _FEED_OK

    @cython.cfunc
    def _anomaly(self, out: list, side: cython.int, ts: cython.double, frame: cython.longlong, aid: str,
                 detail: str) -> cython.int:
        out.append((_REC_ANOMALY, side, ts, frame, aid, detail))
        return 0

    @cython.cfunc
    def _first(self, d: _Direction, side: cython.int, typ: cython.int, ts: cython.double,
               frame: cython.longlong, out: list) -> cython.int:
        """Checks of every framed packet: missing CONNECT, direction."""
        if d.fresh:
            d.fresh = False
            if side == 0 and typ != _CONNECT:
                self._anomaly(out, side, ts, frame, "mqtt.missing_connect",
                              "first client packet is " + _PACKET_NAMES[typ])
        if not d.wrong_reported and not (((_CLIENT_MASK if side == 0 else _SERVER_MASK) >> typ) & 1):
            d.wrong_reported = True
            self._anomaly(out, side, ts, frame, "mqtt.wrong_direction",
                          "%s sent by the %s" % (_PACKET_NAMES[typ], "client" if side == 0 else "server"))
        return 0

    @cython.cfunc
    def _tally(self, side: cython.int, key: tuple, typ: cython.int, nbytes: cython.longlong, ts: cython.double,
               frame: cython.longlong, out: list) -> cython.bint:
        """Count one message of *side* under *key* (its Tally is left in last_tally, the key
        counted in last_key); True if it must be reported.  A new key when the link direction
        holds ``keys_max`` keys is counted under the overflow key ``(type, KEY_OVERFLOW)``
        and reported only if always detailed; the first overflow is the ``mqtt.key_overflow``
        anomaly."""
        seen: dict = self.seen_s if side else self.seen
        t = seen.get(key)
        self.last_key = key
        if t is None:
            if len(seen) < self.keys_max:
                n: Tally = Tally(nbytes, ts, frame)
                seen[key] = n
                self.last_tally = n
                if self.detail_all or ((_DETAIL_MASK >> typ) & 1) != 0:
                    return True
                # new to the link: reported within the client's budget (the engine's scan hook)
                hook = seen.get(_KEY_SCAN)
                return hook is None or hook.new_key(-1, typ, ts, frame)
            key = (key[0], _KEY_OVERFLOW)
            self.last_key = key
            t = seen.get(key)
            if t is None:
                self._anomaly(out, side, ts, frame, "mqtt.key_overflow",
                              "more than %d keys on this link direction; new keys counted together" % self.keys_max)
                n = Tally(nbytes, ts, frame)
                seen[key] = n
                self.last_tally = n
                return self.detail_all or ((_DETAIL_MASK >> typ) & 1) != 0
        tt: Tally = t
        # _bump, written out: a call costs more than the bumps when interpreted
        tt.count += 1
        tt.nbytes += nbytes
        tt.last_ts = ts
        tt.last_frame = frame
        tt.int_count += 1
        tt.int_bytes += nbytes
        _peak(tt, ts, frame)     # the busiest window of the interval (Tally)
        self.last_tally = tt
        return self.detail_all or ((_DETAIL_MASK >> typ) & 1) != 0

    @cython.cfunc
    def _truncated(self, d: _Direction, side: cython.int, buf: cython.p_const_uchar, off: cython.Py_ssize_t, hl: cython.int,
                   total: cython.longlong, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """A packet over the size limit: reported by its header, body skipped."""
        typ: cython.int = (buf[off] & 0xFF) >> 4
        key: tuple = (_TRUNCATED, typ, total)
        self._first(d, side, typ, ts, frame, out)
        self.messages += 1
        self.bytes_decoded += hl
        if self._tally(side, key, _TRUNCATED, total, ts, frame, out):
            out.append((_REC_MSG, side, ts, frame, key, buf[off : off + hl], (self.level, None)))
        return 0

    # ------------------------------------------------------------- packets
    @cython.cfunc
    def _packet(self, d: _Direction, side: cython.int, buf: cython.p_const_uchar, off: cython.Py_ssize_t, hl: cython.int,
                total: cython.longlong, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """One complete packet at buf[off:off+total]: -1 if it makes this a violation."""
        typ: cython.int = (buf[off] & 0xFF) >> 4
        if typ == _PUBLISH:
            return self._publish(d, side, buf, off, hl, total, ts, frame, out)
        if typ == _CONNECT:
            return self._connect(d, side, buf, off, hl, total, ts, frame, out)
        p: cython.Py_ssize_t = off + hl
        stop: cython.Py_ssize_t = off + total
        rl: cython.Py_ssize_t = total - hl
        level: cython.int = self.level
        bad: str = None
        key: tuple
        first: str = ""
        q: cython.Py_ssize_t
        e: cython.Py_ssize_t
        n: cython.int = 0
        code: cython.int = 0
        # a body only v5 allows tells the level of a capture that missed CONNECT
        if level == _LEVEL_UNKNOWN and (
            (typ == _CONNACK and rl > 2)
            or (_PUBACK <= typ <= _PUBCOMP and rl > 2)
            or (typ == _UNSUBACK and rl > 2)
            or (typ == _DISCONNECT and rl > 0)
            or typ == _AUTH
        ):
            level = _LEVEL_5
        if typ == _CONNACK:
            if rl < 2 or (rl != 2 and level != _LEVEL_5):
                bad = "CONNACK with remaining length %d" % rl
            else:
                code = buf[p + 1] & 0xFF
                if rl > 2 and _skip_props(buf, p + 2, stop) != stop:
                    bad = "CONNACK properties do not parse"
            key = (_CONNACK, code)
        elif _PUBACK <= typ <= _PUBCOMP:
            if rl < 2 or (rl != 2 and level != _LEVEL_5):
                bad = "%s with remaining length %d" % (_PACKET_NAMES[typ], rl)
            elif rl > 2:
                code = buf[p + 2] & 0xFF
                if rl > 3 and _skip_props(buf, p + 3, stop) != stop:
                    bad = "%s properties do not parse" % _PACKET_NAMES[typ]
            key = (typ, code)
        elif typ == _SUBSCRIBE or typ == _UNSUBSCRIBE:
            q = p + 2
            if q > stop:
                q = -1
            elif level == _LEVEL_5:
                q = _skip_props(buf, q, stop)
            while 0 <= q < stop:
                e = _skip_str(buf, q, stop)
                if e < 0:
                    q = -1
                    break
                if n == 0:
                    first = buf[q + 2 : e].decode("utf-8", "backslashreplace")
                q = e
                if typ == _SUBSCRIBE:
                    q = q + 1 if q < stop else -1
                n += 1
            if q != stop or n == 0:
                bad = "%s topic filters do not parse" % _PACKET_NAMES[typ]
                first = ""
                n = 0
            key = (typ, first, n)
        elif typ == _SUBACK or typ == _UNSUBACK:
            q = p + 2
            if q > stop:
                q = -1
            elif level == _LEVEL_5:
                q = _skip_props(buf, q, stop)
            if q < 0 or (q == stop and (typ == _SUBACK or level == _LEVEL_5)) or (
                q != stop and typ == _UNSUBACK and level != _LEVEL_5
            ):
                bad = "%s does not parse" % _PACKET_NAMES[typ]
            else:
                while q < stop:
                    code = max(code, buf[q] & 0xFF)
                    q += 1
            key = (typ, code)
        elif typ == _PINGREQ or typ == _PINGRESP:
            if rl != 0:
                bad = "%s with remaining length %d" % (_PACKET_NAMES[typ], rl)
            key = (typ,)
        else:  # DISCONNECT, AUTH
            if rl > 0:
                if level == _LEVEL_5:
                    code = buf[p] & 0xFF
                    if rl > 1 and _skip_props(buf, p + 1, stop) != stop:
                        bad = "%s properties do not parse" % _PACKET_NAMES[typ]
                else:
                    bad = "%s with remaining length %d" % (_PACKET_NAMES[typ], rl)
            key = (typ, code)
        return self._finish(d, side, typ, key, buf, off, total, None, bad, level, ts, frame, out)

    @cython.cfunc
    def _finish(self, d: _Direction, side: cython.int, typ: cython.int, key: tuple, buf: cython.p_const_uchar,
                off: cython.Py_ssize_t, total: cython.longlong, raw: Optional[bytes], bad: Optional[str],
                level: cython.int,
                ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """Common tail: violation test, per-packet checks, aliases, tally, record."""
        topic: object = None
        if bad is not None and not self.confirmed and not self.port_bound:
            self.violated = True
            self.violation = bad
            return -1
        if bad is None:
            self.confirmed = True
        if d.fresh or not (((_CLIENT_MASK if side == 0 else _SERVER_MASK) >> typ) & 1):
            self._first(d, side, typ, ts, frame, out)   # (only then can it report anything)
        if bad is not None:
            self._anomaly(out, side, ts, frame, "mqtt.malformed", bad)
        elif typ == _PUBLISH and self.alias_value >= 0:
            topic = self._alias(d, side, key[1], ts, frame, out)
            if topic is not None:
                key = (_PUBLISH, topic)
        if bad is None or typ == _CONNECT:
            self.level = level
        self.messages += 1
        self.bytes_decoded += total
        if self._tally(side, key, typ, total, ts, frame, out):
            key = self.last_key
            if raw is None:
                raw = buf[off : off + total]
            if typ == _PUBLISH:
                topic = key[1] if key[1] != "" else None
            out.append((_REC_MSG, side, ts, frame, key, raw, (level, topic)))
        return 0

    @cython.cfunc
    def _alias(self, d: _Direction, side: cython.int, topic: str, ts: cython.double, frame: cython.longlong,
               out: list) -> object:
        """Apply the v5 topic alias of the PUBLISH being finished: the topic it
        resolves to, or None when the packet's own topic stands."""
        a: cython.int = self.alias_value
        if a == 0:
            self._anomaly(out, side, ts, frame, "mqtt.invalid_topic_alias", "topic alias 0")
            return None
        if topic == "":
            known = d.aliases.get(a)
            if known is None:
                self._anomaly(out, side, ts, frame, "mqtt.unknown_topic_alias", "alias %d" % a)
            return known
        if a in d.aliases or len(d.aliases) < self.max_aliases:
            d.aliases[a] = topic
        elif not d.alias_full_reported:
            d.alias_full_reported = True
            self._anomaly(out, side, ts, frame, "mqtt.topic_alias_limit", "more than %d aliases" % self.max_aliases)
        return None

    @cython.cfunc
    def _publish(self, d: _Direction, side: cython.int, buf: cython.p_const_uchar, off: cython.Py_ssize_t, hl: cython.int,
                 total: cython.longlong, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """PUBLISH: topic, QoS, retain; in v5 the topic alias property."""
        b0: cython.int = buf[off] & 0xFF
        p: cython.Py_ssize_t = off + hl
        stop: cython.Py_ssize_t = off + total
        tl: cython.Py_ssize_t
        pe: cython.Py_ssize_t
        v: cython.longlong
        pid: cython.int
        pt: cython.int
        qos: cython.int = (b0 >> _QOS_SHIFT) & 3
        bad: str
        topic: str
        shape: bytes = None
        q: cython.Py_ssize_t
        e: _Pub
        level: cython.int = self.level
        if p + 2 <= stop:
            tl = ((buf[p] & 0xFF) << 8) | (buf[p + 1] & 0xFF)     # _u16, without the call
            q = p + 2 + tl + (2 if qos else 0)      # after the topic and packet identifier
            # a shape is cacheable when the packet is valid without decoding the topic: a
            # topic (no alias), and in v5 an empty property block (no alias property)
            if tl > 0 and tl + 2 <= self.shape_bytes and q <= stop and (
                    level != _LEVEL_5 or (q < stop and (buf[q] & 0xFF) == 0)):
                shape = buf[p:p + 2 + tl]
                o = d.pubs.get(shape)
                if o is not None:
                    e = o
                    if e.b0 == b0 and e.level == level:
                        # a repeat: what _finish does for a valid, known, alias-free PUBLISH
                        # (written out here: a call costs more than this when interpreted)
                        t: Tally = e.tally
                        self.confirmed = True
                        if d.fresh:     # (PUBLISH is allowed both ways, so _first reports nothing else)
                            self._first(d, side, _PUBLISH, ts, frame, out)
                        self.messages += 1
                        self.bytes_decoded += total
                        # _bump, written out
                        t.count += 1
                        t.nbytes += total
                        t.last_ts = ts
                        t.last_frame = frame
                        t.int_count += 1
                        t.int_bytes += total
                        _peak(t, ts, frame)     # the busiest window of the interval (Tally)
                        if self.detail_all or ((_DETAIL_MASK >> _PUBLISH) & 1) != 0:
                            out.append((_REC_MSG, side, ts, frame, e.key, buf[off:off + total], (e.level, e.topic)))
                        return 0
        bad = None
        topic = ""
        self.alias_value = -1
        if p + 2 > stop or p + 2 + _u16(buf, p) > stop:
            bad = "PUBLISH topic overruns the packet"
        else:
            tl = _u16(buf, p)
            if tl:
                topic = buf[p + 2 : p + 2 + tl].decode("utf-8", "backslashreplace")
                bad = _topic_name_bad(buf[p + 2 : p + 2 + tl], topic)
            p += 2 + tl
            if qos:
                p += 2
                if p > stop:
                    bad = "PUBLISH without its packet identifier"
            if bad is None and self.level == _LEVEL_5:
                v = _varint(buf, p, stop)
                if v < 0 or p + (v & 7) + (v >> 3) > stop:
                    bad = "PUBLISH properties overrun the packet"
                else:
                    pe = p + (v & 7) + (v >> 3)
                    p += v & 7
                    while p < pe:
                        pid = buf[p] & 0xFF
                        pt = _PROP_TYPES[pid]
                        p += 1
                        if pt == _PT_BYTE:
                            p += 1
                        elif pt == _PT_TWO:
                            if pid == _PROP_TOPIC_ALIAS and p + 2 <= pe:
                                self.alias_value = _u16(buf, p)
                            p += 2
                        elif pt == _PT_FOUR:
                            p += 4
                        elif pt == _PT_VARINT:
                            v = _varint(buf, p, pe)
                            p = p + (v & 7) if v >= 0 else pe + 1
                        elif pt == _PT_UTF8 or pt == _PT_BINARY:
                            p = _skip_str(buf, p, pe)
                        elif pt == _PT_PAIR:
                            p = _skip_str(buf, p, pe)
                            if p >= 0:
                                p = _skip_str(buf, p, pe)
                        else:
                            p = pe + 1
                        if p < 0:
                            p = pe + 1
                    if p != pe:
                        bad = "PUBLISH properties do not parse"
                        self.alias_value = -1
            if bad is None and tl == 0 and self.alias_value < 0:
                bad = "PUBLISH with an empty topic and no topic alias"
        key: tuple = (_PUBLISH, topic)     # new per (topic, direction): QoS and retain are in the event
        if self._finish(d, side, _PUBLISH, key, buf, off, total, None, bad, level, ts, frame, out) < 0:
            return -1
        if shape is not None and bad is None and self.alias_value < 0:
            if len(d.pubs) >= self.shape_max:
                d.pubs.clear()
            e = _Pub.__new__(_Pub)
            e.b0 = b0
            e.level = level
            e.key = self.last_key
            e.tally = self.last_tally
            e.topic = topic
            d.pubs[shape] = e
        return 0

    @cython.cfunc
    def _connect(self, d: _Direction, side: cython.int, buf: cython.p_const_uchar, off: cython.Py_ssize_t, hl: cython.int,
                 total: cython.longlong, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """CONNECT: protocol name and level.  The password is overwritten with
        zero bytes in raw (its length is kept); when the payload does not parse,
        everything from where it stopped parsing is overwritten."""
        p: cython.Py_ssize_t = off + hl
        stop: cython.Py_ssize_t = off + total
        q: cython.Py_ssize_t
        blank: cython.Py_ssize_t = -1
        flags: cython.int = 0
        level: cython.int = self.level
        raw_level: cython.int = 0
        bad: str = None
        raw: bytes = None
        name = None
        q = _skip_str(buf, p, stop)
        if q > 0:
            name = _PROTOCOL_NAMES.get(buf[p + 2 : q])
        if name is None:
            bad = "CONNECT protocol name is not MQTT or MQIsdp"
            blank = p  # layout unknown: keep nothing of the body
        elif q + 4 > stop:
            bad = "CONNECT variable header overruns the packet"
            blank = q
        else:
            raw_level = buf[q] & 0xFF
            level = raw_level & _LEVEL_MASK
            flags = buf[q + 1] & 0xFF
            p = q + 4
            if level == _LEVEL_5:
                p = _skip_props(buf, p, stop)
            blank = p if p >= 0 else q + 4
            if p >= 0:
                p = _skip_str(buf, p, stop)  # client identifier
            if p >= 0 and flags & _CONNECT_WILL:
                if level == _LEVEL_5:
                    p = _skip_props(buf, p, stop)  # will properties
                if p >= 0:
                    p = _skip_str(buf, p, stop)  # will topic
                if p >= 0:
                    p = _skip_str(buf, p, stop)  # will payload
            if p >= 0 and flags & _CONNECT_USERNAME:
                p = _skip_str(buf, p, stop)
            if p >= 0:
                blank = p
            if flags & _CONNECT_PASSWORD:
                if p >= 0 and p + 2 <= stop:
                    blank = p + 2
                p = _skip_str(buf, p, stop) if p >= 0 else -1
            else:
                blank = -1
            if p != stop:
                bad = "CONNECT payload does not parse"
            elif level != _LEVEL_31:
                bad = _connect_flags_bad(flags, level)
        if bad is not None and not self.confirmed and not self.port_bound:
            self.violated = True
            self.violation = bad
            return -1
        if blank >= 0 and blank < stop:
            raw = buf[off:blank] + bytes(stop - blank)
        if side == 0:
            self.connects += 1
            if self.connects > 1:
                self._anomaly(out, side, ts, frame, "mqtt.double_connect", "CONNECT number %d" % self.connects)
        if name is not None and bad is None and level != _LEVEL_31 and level != _LEVEL_311 and level != _LEVEL_5:
            self._anomaly(out, side, ts, frame, "mqtt.unknown_protocol_level", "level %d" % raw_level)
        return self._finish(d, side, _CONNECT, (_CONNECT, level), buf, off, total, raw, bad, level, ts, frame, out)


def _connect_flags_bad(flags: cython.int, level: cython.int) -> object:
    """What is wrong with a CONNECT's flags byte (MQTT 3.1.1 §3.1.2.3-3.1.2.9, 5.0 §3.1.2.3-3.1.2.9), or None.
    A broker closes the connection on each; MQTT 3.1 left them unchecked, as Mosquitto does."""
    if flags & 0x01:
        return "CONNECT reserved flag set"
    if (flags >> 3) & 3 == 3:
        return "CONNECT will QoS 3"
    if not (flags & _CONNECT_WILL) and flags & 0x38:
        return "CONNECT will QoS or retain without a will"
    if level != _LEVEL_5 and flags & _CONNECT_PASSWORD and not (flags & _CONNECT_USERNAME):
        return "CONNECT password without a user name"
    return None


def _topic_name_bad(name: bytes, topic: str) -> object:
    """What is wrong with a PUBLISH topic name (MQTT 3.1.1 §1.5.3, §4.7.1; 5.0 §1.5.4, §4.7), or None:
    not UTF-8, a U+0000, or a wildcard (allowed in filters only)."""
    if "\\" in topic:
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            return "PUBLISH topic is not UTF-8"
    if "\x00" in topic:
        return "PUBLISH topic contains U+0000"
    if "#" in topic or "+" in topic:
        return "PUBLISH topic contains a wildcard"
    return None


@cython.cfunc
@cython.exceptval(-99, check=True)
def _feed_entry(core: object, side: cython.int, data: cython.p_const_uchar, start: cython.Py_ssize_t,
                end: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
    """The compiled engine's entry (see ``MQTTCore.c_feed``): *core* is an MQTTCore and
    data[start:end] lies inside the caller's buffer."""
    return cython.cast(MQTTCore, core)._feed_c(side, data, start, end, ts, frame, out)
