"""OPC UA binary (UA TCP) protocol kernel, Cython pure-Python mode.

One ``OPCUACore`` per TCP connection (see docs/architecture.md, "Protocol
kernel").  It frames chunks by the 8-byte message header, learns the secure
channel's security policy (from OPN) and message security mode (inferred),
reassembles chunked messages, extracts the service type id and keys every
complete message:

    HEL ACK ERR RHE OPN CLO   (type,)
    plaintext MSG             (MSG_SERVICE, type_id)   type_id -1: not a ns=0 numeric NodeId
    encrypted MSG             (MSG_ENCRYPTED,)
    aborted message ('A')     (MSG_ABORT,)

Records: ``(REC_MSG, side, ts, frame, key, raw, ctx)`` with

    ctx = (security_policy_uri or None, mode, secure_channel_id)
          mode: 1 None, 2 Sign, 3 SignAndEncrypt, -1 unknown
                (3 also when this message was judged encrypted on a channel
                whose mode is otherwise unknown)
          secure_channel_id: -1 until seen

    raw = one synthetic final chunk holding the whole message:

        | type | 'F' | size = len(raw) | security header and sequence header
        | of the FIRST chunk | body of chunk 1 | body of chunk 2 | ... |

      where "body" is what follows the sequence header (plaintext MSG/CLO)
      or the security header (encrypted chunks, OPN), without the Sign-mode
      signature (its length is known from the policy).  A single-chunk
      message without a signature is exactly its wire bytes.  An abort
      (MSG_ABORT) raw is the 'A' chunk as on the wire.

The same source runs interpreted and compiled: buffers are indexed only with
``buf[i]`` and ``len(buf)``, integers are masked explicitly, nothing is
cimported.  ``feed``/``probe`` accept any byte buffer (bytes, bytearray, mmap,
memoryview; the last two are copied per segment); the walkers take the buffer
as ``const unsigned char *`` when compiled (bytes/bytearray coerce without a
copy; interpreted, the annotation is ignored and they index the object).
Pointer reads are not bounds-checked by Cython, so every read is preceded by an
explicit length check against the chunk end (covered by the hypothesis
differential tests: an over-read raises IndexError in the pure path).  The
bytearray a walker reads is never resized while it runs.

Tallies: every key this connection counted under a fixed key or a known
service id has a slot in ``_tallies`` (``_S_*``, ``_TID_SLOT``), so a repeat
is a list index and C counter bumps on its ``Tally``; other keys go through
``seen``.  The compiled engine calls ``_feed_c`` through ``c_feed()`` without
boxing its arguments.
"""
import struct

import cython

from otwatch.parsers import common as _common
from otwatch.parsers.common import FEED_OK, FEED_VIOLATION, KEY_SCAN, REC_ANOMALY, REC_MSG
from otwatch.parsers.limits import DEFAULT_LIMITS
from otwatch.parsers.opcua import spec as _spec

# --- constants from the spec, as C globals in the compiled build -------------
# (cython.declare: a module-level annotation would stay a Python global, looked
# up by name and boxed on every use)
_REC_MSG = cython.declare(cython.int, REC_MSG)
_REC_ANOMALY = cython.declare(cython.int, REC_ANOMALY)
_FEED_OK = cython.declare(cython.int, FEED_OK)
_FEED_VIOLATION = cython.declare(cython.int, FEED_VIOLATION)
PEAK_WINDOW = cython.declare(cython.double, _common.PEAK_WINDOW)

_HEADER_LEN = cython.declare(cython.Py_ssize_t, _spec.HEADER_LEN)
_SYM_PREFIX = cython.declare(cython.Py_ssize_t, _spec.SYMMETRIC_PREFIX_LEN)
_SYM_BODY = cython.declare(cython.Py_ssize_t, _spec.SYMMETRIC_BODY_OFFSET)
_SEQ_LEN = cython.declare(cython.Py_ssize_t, _spec.SEQUENCE_HEADER_LEN)

_TAG_HEL = cython.declare(cython.long, _spec.TAG_HEL)
_TAG_ACK = cython.declare(cython.long, _spec.TAG_ACK)
_TAG_ERR = cython.declare(cython.long, _spec.TAG_ERR)
_TAG_RHE = cython.declare(cython.long, _spec.TAG_RHE)
_TAG_OPN = cython.declare(cython.long, _spec.TAG_OPN)
_TAG_MSG = cython.declare(cython.long, _spec.TAG_MSG)
_TAG_CLO = cython.declare(cython.long, _spec.TAG_CLO)

_HEL = cython.declare(cython.int, _spec.HEL)
_ACK = cython.declare(cython.int, _spec.ACK)
_ERR = cython.declare(cython.int, _spec.ERR)
_RHE = cython.declare(cython.int, _spec.RHE)
_OPN = cython.declare(cython.int, _spec.OPN)
_CLO = cython.declare(cython.int, _spec.CLO)
_MSG = cython.declare(cython.int, _spec.MSG_SERVICE)
_MSG_ENCRYPTED = cython.declare(cython.int, _spec.MSG_ENCRYPTED)
_MSG_ABORT = cython.declare(cython.int, _spec.MSG_ABORT)

_MIN_HEL = cython.declare(cython.Py_ssize_t, _spec.MIN_SIZE[_spec.HEL])
_MIN_ACK = cython.declare(cython.Py_ssize_t, _spec.MIN_SIZE[_spec.ACK])
_MIN_ERR = cython.declare(cython.Py_ssize_t, _spec.MIN_SIZE[_spec.ERR])
_MIN_RHE = cython.declare(cython.Py_ssize_t, _spec.MIN_SIZE[_spec.RHE])
_MIN_OPN = cython.declare(cython.Py_ssize_t, _spec.MIN_SIZE[_spec.OPN])
_MIN_SYM = cython.declare(cython.Py_ssize_t, _spec.MIN_SIZE[_spec.MSG_SERVICE])

_F = cython.declare(cython.int, _spec.CHUNK_FINAL)
_C = cython.declare(cython.int, _spec.CHUNK_INTERMEDIATE)
_A = cython.declare(cython.int, _spec.CHUNK_ABORT)

_PROTOCOL_VERSION_MAX = cython.declare(cython.long, _spec.MAX_SANE_PROTOCOL_VERSION)
_POLICY_URI_MAX = cython.declare(cython.Py_ssize_t, _spec.POLICY_URI_MAX)
_POLICY_NONE = cython.declare(str, _spec.POLICY_NONE_URI)
_MAX_PENDING = cython.declare(cython.Py_ssize_t, _spec.MAX_PENDING_MESSAGES)
_MODE_SIGN = cython.declare(cython.int, int(_spec.MessageSecurityMode.SIGN))
_MODE_ENCRYPT = cython.declare(cython.int, int(_spec.MessageSecurityMode.SIGN_AND_ENCRYPT))
_MODE_NONE = cython.declare(cython.int, int(_spec.MessageSecurityMode.NONE))
# _header packs the key code of a message header into 3 bits
assert 0 < min(_spec.HEL, _spec.ACK, _spec.ERR, _spec.RHE, _spec.OPN, _spec.CLO, _spec.MSG_SERVICE)
assert max(_spec.HEL, _spec.ACK, _spec.ERR, _spec.RHE, _spec.OPN, _spec.CLO, _spec.MSG_SERVICE) < 8

# Interpreted, one ``struct`` call reads a message header (or a symmetric chunk's
# channel and request ids) faster than the byte arithmetic the compiled path uses; compiled,
# the branch is removed (``not cython.compiled`` is a constant there).  Each Struct reads
# exactly the fields of the arithmetic beside it; tests/ext/test_kernel_struct_reads.py
# runs the interpreted kernel both ways (STRUCT_READS False/True) and compares the records.
STRUCT_READS = True
_HEADER = struct.Struct("<BBBBI")   # message type (3 bytes), chunk type, message size
_SYM_IDS = struct.Struct("<I8xI")   # secure channel id; request id (after the token id and sequence number)

# Per type id flags (1 known service, 2 always detailed) and ready-made keys, indexed by
# the numeric id: no int objects or set lookups on the per-message path.
_TID_MAX = cython.declare(cython.long, 16384)
assert max(_spec.SERVICE_IDS) < 16384
_TID_FLAGS = cython.declare(bytes, bytes(
    (1 if t in _spec.SERVICE_IDS else 0) | (2 if t in _spec.ALWAYS_DETAILED_SERVICE_IDS else 0) for t in range(16384)
))
_TID_KEYS = cython.declare(list, [(_spec.MSG_SERVICE, t) if t in _spec.SERVICE_IDS else None for t in range(16384)])
# node-keyed request ids (flag 4) and which node list each has (_NK_*)
_NK_READ = cython.declare(cython.int, 1)
_NK_WRITE = cython.declare(cython.int, 2)
_NK_CALL = cython.declare(cython.int, 3)
_NK_BROWSE = cython.declare(cython.int, 4)
_NK_HISTORY = cython.declare(cython.int, 5)
_NK_OF: dict = {"Read": 1, "Write": 2, "Call": 3, "Browse": 4, "HistoryRead": 5}
assert set(_NK_OF) == set(_spec.NODE_KEYED_SERVICES)
_TID_NK = cython.declare(bytes, bytes(
    _NK_OF[_spec.SERVICES[t].service] if t in _spec.NODE_KEYED_REQUEST_IDS else 0 for t in range(16384)
))
_KEY_NODES = cython.declare(cython.int, _spec.KEY_NODES)
_KEY_SCAN = cython.declare(tuple, KEY_SCAN)
_KEY_OVERFLOW = cython.declare(cython.int, _spec.KEY_OVERFLOW)
_KEY_UNPARSED = cython.declare(cython.int, _spec.KEY_UNPARSED)
_NODES_MAX = cython.declare(cython.longlong, _spec.NODES_MAX_PER_REQUEST)
_MAX_NESTING = cython.declare(cython.int, _spec.MAX_NESTING)
# encoded size of the fixed-size built-in types (Part 6 §5.2.2), 0 for the others
_FIXED_SIZE = cython.declare(bytes, bytes([0, 1, 1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 0, 8, 16, 0, 0, 0, 0, 4,
                                           0, 0, 0, 0, 0, 0]))
_FNV_OFFSET = cython.declare(cython.ulonglong, 0xCBF29CE484222325)
_FNV_PRIME = cython.declare(cython.ulonglong, 0x100000001B3)
_SIG_LEN = cython.declare(dict, {uri: entry[3] for uri, entry in _spec.SECURITY_POLICIES.items()})

# Each connection keeps the Tally of every fixed key it counted in a small list indexed
# by "slot", so that a repeat is a list index and C counter bumps (no dict lookup, no
# tuple hash).  Slots 1-8 are the fixed keys below; known service ids get 9, 10, ...
_S_HEL = cython.declare(cython.int, 1)
_S_ACK = cython.declare(cython.int, 2)
_S_ERR = cython.declare(cython.int, 3)
_S_RHE = cython.declare(cython.int, 4)
_S_OPN = cython.declare(cython.int, 5)
_S_CLO = cython.declare(cython.int, 6)
_S_ENCRYPTED = cython.declare(cython.int, 7)
_S_ABORT = cython.declare(cython.int, 8)
_SERVICE_SLOTS: dict = {t: 9 + i for i, t in enumerate(sorted(_spec.SERVICE_IDS))}
assert 9 + len(_SERVICE_SLOTS) <= 256
_TID_SLOT = cython.declare(bytes, bytes(_SERVICE_SLOTS.get(t, 0) for t in range(16384)))
_NSLOTS = cython.declare(cython.Py_ssize_t, 9 + len(_SERVICE_SLOTS))
# OPCUACore._service relies on it: a type id with no slot is never always detailed
assert _spec.ALWAYS_DETAILED_SERVICE_IDS <= _spec.SERVICE_IDS

_KEY_HEL = cython.declare(tuple, (_spec.HEL,))
_KEY_ACK = cython.declare(tuple, (_spec.ACK,))
_KEY_ERR = cython.declare(tuple, (_spec.ERR,))
_KEY_RHE = cython.declare(tuple, (_spec.RHE,))
_KEY_OPN = cython.declare(tuple, (_spec.OPN,))
_KEY_CLO = cython.declare(tuple, (_spec.CLO,))
_KEY_ENCRYPTED = cython.declare(tuple, (_spec.MSG_ENCRYPTED,))
_KEY_ABORT = cython.declare(tuple, (_spec.MSG_ABORT,))

# anomaly ids (documented in docs/protocols/opcua.md)
A_BAD_HEADER = "opcua.bad_header"
A_CHUNK_TOO_LARGE = "opcua.chunk_too_large"
A_NEGOTIATED = "opcua.negotiated_limit_exceeded"
A_MESSAGE_TOO_LARGE = "opcua.message_too_large"
A_TOO_MANY_CHUNKS = "opcua.too_many_chunks"
A_TOO_MANY_PARTIAL = "opcua.too_many_partial_messages"
A_SHORT_CHUNK = "opcua.short_chunk"
A_CHANNEL_MISMATCH = "opcua.secure_channel_mismatch"
A_GAP = "opcua.gap_in_message"
A_TRUNCATED = "opcua.truncated_chunk"
A_INCOMPLETE = "opcua.incomplete_message"
A_KEY_OVERFLOW = "opcua.key_overflow"

ANOMALY_IDS = (
    A_BAD_HEADER, A_CHUNK_TOO_LARGE, A_NEGOTIATED, A_MESSAGE_TOO_LARGE, A_TOO_MANY_CHUNKS,
    A_TOO_MANY_PARTIAL, A_SHORT_CHUNK, A_CHANNEL_MISMATCH, A_GAP, A_TRUNCATED, A_INCOMPLETE, A_KEY_OVERFLOW,
)


# --- byte helpers ---------------------------------------------------------
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _u16(buf: cython.p_const_uchar, i: cython.Py_ssize_t) -> cython.long:
    return (buf[i] & 0xFF) | ((buf[i + 1] & 0xFF) << 8)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _u32(buf: cython.p_const_uchar, i: cython.Py_ssize_t) -> cython.longlong:
    a: cython.longlong = buf[i] & 0xFF
    b: cython.longlong = buf[i + 1] & 0xFF
    c: cython.longlong = buf[i + 2] & 0xFF
    d: cython.longlong = buf[i + 3] & 0xFF
    return a | (b << 8) | (c << 16) | (d << 24)


@cython.cfunc
@cython.exceptval(check=False)
def _i32(buf: cython.p_const_uchar, i: cython.Py_ssize_t) -> cython.longlong:
    v: cython.longlong = _u32(buf, i)
    if v >= 0x80000000:
        v -= 0x100000000
    return v


@cython.cfunc
@cython.exceptval(check=False)
def _header(buf: cython.p_const_uchar, p: cython.Py_ssize_t, limit: cython.longlong) -> cython.longlong:
    """A valid message header at buf[p:p+8]: its size * 8 + its key code; else 0
    (the caller checked that 8 bytes exist).

    Once per chunk (and per byte of a resync scan), so it calls nothing: a call is
    dear on the interpreted path."""
    code: cython.int
    min_size: cython.Py_ssize_t
    size: cython.longlong
    tag: cython.long
    ct: cython.int
    if not cython.compiled and STRUCT_READS:
        # interpreted: one struct call for the fields of the arithmetic below
        b0, b1, b2, ct, size = _HEADER.unpack_from(buf, p)
        tag = (b0 << 16) | (b1 << 8) | b2
    else:
        tag = ((buf[p] & 0xFF) << 16) | ((buf[p + 1] & 0xFF) << 8) | (buf[p + 2] & 0xFF)
        ct = buf[p + 3] & 0xFF
        size = buf[p + 7] & 0xFF    # a long long first: the shift by 24 cannot overflow
        size = (size << 24) | ((buf[p + 6] & 0xFF) << 16) | ((buf[p + 5] & 0xFF) << 8) | (buf[p + 4] & 0xFF)
    if tag == _TAG_MSG:
        code = _MSG
        min_size = _MIN_SYM
    elif tag == _TAG_OPN:
        code = _OPN
        min_size = _MIN_OPN
    elif tag == _TAG_CLO:
        code = _CLO
        min_size = _MIN_SYM
    else:
        # HEL ACK ERR RHE are single-chunk only
        if ct != _F:
            return 0
        if tag == _TAG_HEL:
            code = _HEL
            min_size = _MIN_HEL
        elif tag == _TAG_ACK:
            code = _ACK
            min_size = _MIN_ACK
        elif tag == _TAG_ERR:
            code = _ERR
            min_size = _MIN_ERR
        elif tag == _TAG_RHE:
            code = _RHE
            min_size = _MIN_RHE
        else:
            return 0
    if ct != _F and ct != _C and ct != _A:
        return 0
    if size < min_size:
        return 0
    if limit > 0 and size > limit:
        return 0
    return size * 8 + code


@cython.cfunc
@cython.exceptval(check=False)
def _type_id(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t) -> cython.long:
    """Numeric namespace-0 NodeId at buf[i] (two-byte, four-byte or numeric form), else -1."""
    if i >= end:
        return -1
    enc: cython.int = buf[i] & 0xFF
    if enc == 0:
        if i + 2 > end:
            return -1
        return buf[i + 1] & 0xFF
    if enc == 1:
        if i + 4 > end or (buf[i + 1] & 0xFF) != 0:
            return -1
        return (buf[i + 2] & 0xFF) | ((buf[i + 3] & 0xFF) << 8)
    if enc == 2:
        if i + 7 > end or _u16(buf, i + 1) != 0:
            return -1
        return _u32(buf, i + 3) & 0x7FFFFFFF
    return -1


@cython.cfunc
@cython.exceptval(check=False)
def _tid_flags(tid: cython.long) -> cython.int:
    if tid < 0 or tid >= _TID_MAX:
        return 0
    return _TID_FLAGS[tid]


# --- skipping encoded values (Part 6 §5.2): each returns the offset after the value, or -1
# when it overruns *end* or is invalid.  Every read is checked against *end* first.
@cython.cfunc
@cython.exceptval(check=False)
def _skip_string(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """String, ByteString, XmlElement: Int32 length (-1 null) and the bytes."""
    if i < 0 or i + 4 > end:
        return -1
    n: cython.longlong = _i32(buf, i)
    if n < -1:
        return -1
    if n <= 0:
        return i + 4
    if n > end - i - 4:
        return -1
    return i + 4 + n


@cython.cfunc
@cython.exceptval(check=False)
def _skip_nodeid(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t,
                 expanded: cython.bint) -> cython.Py_ssize_t:
    """NodeId (the flag bits 0x80 namespace URI, 0x40 server index only when *expanded*)."""
    if i < 0 or i >= end:
        return -1
    enc: cython.int = buf[i] & 0xFF
    t: cython.int = enc & 0x3F
    n: cython.Py_ssize_t
    if (enc & 0xC0) != 0 and not expanded:
        return -1
    if t == 0:
        n = i + 2
    elif t == 1:
        n = i + 4
    elif t == 2:
        n = i + 7
    elif t == 3 or t == 5:
        n = _skip_string(buf, i + 3, end)
    elif t == 4:
        n = i + 19
    else:
        return -1
    if n < 0 or n > end:
        return -1
    if enc & 0x80:
        n = _skip_string(buf, n, end)
    if n >= 0 and (enc & 0x40):
        n += 4
        if n > end:
            return -1
    return n


@cython.cfunc
@cython.exceptval(check=False)
def _skip_ext(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """ExtensionObject: NodeId, encoding byte, and a length-prefixed body for 1 and 2."""
    i = _skip_nodeid(buf, i, end, False)
    if i < 0 or i >= end:
        return -1
    enc: cython.int = buf[i] & 0xFF
    if enc == 0:
        return i + 1
    if enc == 1 or enc == 2:
        return _skip_string(buf, i + 1, end)
    return -1


@cython.cfunc
@cython.exceptval(check=False)
def _skip_diag(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t,
               depth: cython.int) -> cython.Py_ssize_t:
    """DiagnosticInfo: mask; SymbolicId, NamespaceUri, Locale, LocalizedText (Int32 each),
    AdditionalInfo (String), InnerStatusCode, InnerDiagnosticInfo."""
    while True:
        if depth > _MAX_NESTING or i < 0 or i >= end:
            return -1
        m: cython.int = buf[i] & 0xFF
        i += 1
        i += 4 * (((m >> 0) & 1) + ((m >> 1) & 1) + ((m >> 2) & 1) + ((m >> 3) & 1))
        if m & 0x10:
            i = _skip_string(buf, i, end)
            if i < 0:
                return -1
        if m & 0x20:
            i += 4
        if i > end:
            return -1
        if not (m & 0x40):
            return i
        depth += 1


@cython.cfunc
@cython.exceptval(check=False)
def _skip_element(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t, t: cython.int,
                  depth: cython.int) -> cython.Py_ssize_t:
    """One value of built-in type *t* (1..25)."""
    size: cython.int = _FIXED_SIZE[t] if 0 <= t <= 25 else 0
    if size > 0:
        return i + size if i + size <= end else -1
    if t == 12 or t == 15 or t == 16:
        return _skip_string(buf, i, end)
    if t == 17:
        return _skip_nodeid(buf, i, end, False)
    if t == 18:
        return _skip_nodeid(buf, i, end, True)
    if t == 20:
        return _skip_string(buf, i + 2, end)
    if t == 21:
        if i >= end:
            return -1
        m: cython.int = buf[i] & 0xFF
        i += 1
        if m & 1:
            i = _skip_string(buf, i, end)
        if i >= 0 and (m & 2):
            i = _skip_string(buf, i, end)
        return i
    if t == 22:
        return _skip_ext(buf, i, end)
    if t == 23:
        return _skip_datavalue(buf, i, end, depth + 1)
    if t == 24:
        return _skip_variant(buf, i, end, depth + 1)
    if t == 25:
        return _skip_diag(buf, i, end, depth + 1)
    return -1


@cython.cfunc
@cython.exceptval(check=False)
def _skip_variant(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t,
                  depth: cython.int) -> cython.Py_ssize_t:
    if depth > _MAX_NESTING or i < 0 or i >= end:
        return -1
    m: cython.int = buf[i] & 0xFF
    t: cython.int = m & 0x3F
    i += 1
    if t > 25:
        return -1
    if not (m & 0x80):
        if t == 0:
            return i
        return _skip_element(buf, i, end, t, depth)
    if i + 4 > end:
        return -1
    n: cython.longlong = _i32(buf, i)
    i += 4
    if n < -1 or (n > 0 and t == 0):
        return -1
    k: cython.longlong
    size: cython.int = _FIXED_SIZE[t]
    if n > 0:
        if n > end - i:     # every element takes at least one byte
            return -1
        if size > 0:
            if n * size > end - i:
                return -1
            i += n * size
        else:
            for k in range(n):
                i = _skip_element(buf, i, end, t, depth)
                if i < 0:
                    return -1
    if m & 0x40:
        if i + 4 > end:
            return -1
        n = _i32(buf, i)
        i += 4
        if n < -1 or (n > 0 and n * 4 > end - i):
            return -1
        if n > 0:
            i += n * 4
    return i


@cython.cfunc
@cython.exceptval(check=False)
def _skip_datavalue(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t,
                    depth: cython.int) -> cython.Py_ssize_t:
    """DataValue: mask; Variant, StatusCode, SourceTimestamp, SourcePicoseconds, ServerTimestamp,
    ServerPicoseconds."""
    if depth > _MAX_NESTING or i < 0 or i >= end:
        return -1
    m: cython.int = buf[i] & 0xFF
    i += 1
    if m & 0x01:
        i = _skip_variant(buf, i, end, depth + 1)
        if i < 0:
            return -1
    if m & 0x02:
        i += 4
    if m & 0x04:
        i += 8
    if m & 0x10:
        i += 2
    if m & 0x08:
        i += 8
    if m & 0x20:
        i += 2
    return i if i <= end else -1


def _nodes(buf, body: cython.Py_ssize_t, end: cython.Py_ssize_t, nk: cython.int):
    """The node list of a node-keyed request whose encoded body (after its type id) is
    buf[body:end]: a list of the encoded bytes that identify each node (spec.NODE_KEYED_SERVICES),
    or None when it does not parse."""
    return _nodes_c(buf, body, end, nk)


@cython.cfunc
def _nodes_c(buf: cython.p_const_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t, nk: cython.int) -> list:
    # RequestHeader: AuthenticationToken, Timestamp, RequestHandle, ReturnDiagnostics,
    # AuditEntryId, TimeoutHint, AdditionalHeader
    i = _skip_nodeid(buf, i, end, False)
    if i < 0:
        return None
    i = _skip_string(buf, i + 16, end)
    if i < 0:
        return None
    i = _skip_ext(buf, i + 4, end)
    if i < 0:
        return None
    if nk == _NK_READ:
        i += 12                     # MaxAge, TimestampsToReturn
    elif nk == _NK_BROWSE:
        i = _skip_nodeid(buf, i, end, False)    # View: ViewId, Timestamp, ViewVersion
        if i < 0:
            return None
        i += 16                     # ... and RequestedMaxReferencesPerNode
    elif nk == _NK_HISTORY:
        i = _skip_ext(buf, i, end)  # HistoryReadDetails
        if i < 0:
            return None
        i += 5                      # TimestampsToReturn, ReleaseContinuationPoints
    if i < 0 or i + 4 > end:
        return None
    n: cython.longlong = _i32(buf, i)
    i += 4
    if n < -1 or n > _NODES_MAX or (n > 0 and n > end - i):
        return None
    nodes: list = []
    k: cython.longlong
    a: cython.Py_ssize_t
    z: cython.Py_ssize_t
    for k in range(n):
        a = i
        i = _skip_nodeid(buf, i, end, False)
        if i < 0:
            return None
        if nk == _NK_READ or nk == _NK_WRITE:
            i += 4                  # AttributeId
            z = i
            i = _skip_string(buf, i, end)           # IndexRange
            if i < 0:
                return None
            if nk == _NK_READ:
                i = _skip_string(buf, i + 2, end)   # DataEncoding (QualifiedName)
            else:
                i = _skip_datavalue(buf, i, end, 0)
        elif nk == _NK_CALL:
            i = _skip_nodeid(buf, i, end, False)    # MethodId
            z = i
            if i < 0 or i + 4 > end:
                return None
            m: cython.longlong = _i32(buf, i)      # InputArguments
            i += 4
            if m < -1 or (m > 0 and m > end - i):
                return None
            while m > 0 and i >= 0:
                i = _skip_variant(buf, i, end, 0)
                m -= 1
        elif nk == _NK_BROWSE:
            z = i
            i = _skip_nodeid(buf, i + 4, end, False)   # BrowseDirection, ReferenceTypeId
            if i >= 0:
                i += 9              # IncludeSubtypes, NodeClassMask, ResultMask
        else:
            z = i
            i = _skip_string(buf, i, end)           # IndexRange
            if i >= 0:
                i = _skip_string(buf, i + 2, end)   # DataEncoding
            if i >= 0:
                i = _skip_string(buf, i, end)       # ContinuationPoint
        if i < 0 or i > end or z > end:
            return None
        nodes.append(bytes(buf[a:z]))
    return nodes


@cython.cfunc
@cython.exceptval(check=False)
def _fnv(nodes: list) -> cython.ulonglong:
    """FNV-1a (64 bits) over the nodes' bytes, each followed by its length (so that a different
    cut of the same bytes differs): one number for the key, the same compiled and interpreted."""
    h: cython.ulonglong = _FNV_OFFSET
    b: bytes
    j: cython.Py_ssize_t
    n: cython.Py_ssize_t
    p: cython.p_const_uchar
    for o in nodes:
        b = o
        n = len(b)
        if cython.compiled:
            p = b
            for j in range(n):
                h = (h ^ p[j]) * _FNV_PRIME
        else:
            for j in range(n):
                h = ((h ^ b[j]) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (n & 0xFF)) * _FNV_PRIME if cython.compiled else ((h ^ (n & 0xFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def probe(data, start, end) -> int:
    """2: a HEL/RHE with chunk 'F', sane size and protocol version; 1: any other
    plausible UA TCP header (or a prefix of one); 0: not OPC UA."""
    s: cython.Py_ssize_t = start
    e: cython.Py_ssize_t = end
    n: cython.Py_ssize_t = len(data)
    if e > n:
        e = n
    if s < 0:
        s = 0
    avail: cython.Py_ssize_t = e - s
    if avail <= 0:
        return 0
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data[s:e])
        e -= s
        s = 0
    if avail < 8:
        k: cython.Py_ssize_t
        for tag in (b"HEL", b"ACK", b"ERR", b"RHE", b"OPN", b"MSG", b"CLO"):
            ok: cython.bint = True
            for k in range(min(avail, 3)):
                if (data[s + k] & 0xFF) != tag[k]:
                    ok = False
                    break
            if ok and (avail < 4 or (data[s + 3] & 0xFF) in (_F, _C, _A)):
                return 1
        return 0
    h: cython.longlong = _header(data, s, 0x7FFFFFFF)
    if h == 0:
        return 0
    code: cython.int = h & 7
    if code == _HEL or code == _RHE:
        size: cython.longlong = h >> 3
        if size > 65535 + 8:
            return 1
        if code == _HEL:
            if avail < 12:
                return 1
            if _u32(data, s + 8) > _PROTOCOL_VERSION_MAX:
                return 1
        return 2
    return 1


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
@cython.cclass
class _NodeSet:
    """The nodes one node-keyed service named on a link direction so far (encoded bytes, see
    spec.NODE_KEYED_SERVICES), at most ``limits.link_keys_max``.  Stored in the link's tallies
    under ``(spec.KEY_NODES, type_id)``; ``int_count`` is always 0, so the engine's interval flush
    never reports it."""

    nodes = cython.declare(set, visibility="readonly")
    int_count = cython.declare(cython.longlong, visibility="readonly")

    def __init__(self):
        self.nodes = set()
        self.int_count = 0

    def as_list(self) -> list:
        return sorted(self.nodes)

    def __eq__(self, other):
        if hasattr(other, "nodes"):     # (the other implementation's class too)
            return self.nodes == other.nodes
        return NotImplemented

    def __repr__(self):
        return "_NodeSet(%d nodes)" % len(self.nodes)


@cython.final
@cython.cclass
class _Partial:
    """One message being assembled from chunks."""

    kind: cython.int  # _MSG (plaintext, by request id) or the sequential kind (_MSG_ENCRYPTED/_OPN/_CLO)
    parts: list
    nbytes: cython.longlong  # assembled bytes so far
    wire: cython.longlong  # wire bytes of its chunks
    chunks: cython.longlong
    dropped: cython.bint
    flagged: cython.bint  # negotiated-limit anomaly already reported

    def __init__(self, kind: cython.int):
        self.kind = kind
        self.parts = []
        self.nbytes = 0
        self.wire = 0
        self.chunks = 0
        self.dropped = False
        self.flagged = False


@cython.final
@cython.cclass
class _Direction:
    """Per-side stream state."""

    buf: bytearray
    skip: cython.longlong
    resync: cython.bint
    pending: dict  # request id -> _Partial (plaintext MSG/CLO)
    seq: object  # _Partial or None (encrypted MSG/CLO, OPN)
    max_chunk: cython.longlong  # negotiated by HEL/ACK, 0 = unknown/unlimited
    max_message: cython.longlong
    max_chunks: cython.longlong

    def __init__(self):
        self.buf = bytearray()
        self.skip = 0
        self.resync = False
        self.pending = {}
        self.seq = None
        self.max_chunk = 0
        self.max_message = 0
        self.max_chunks = 0


@cython.final
@cython.cclass
class OPCUACore:
    """OPC UA kernel for one TCP connection; see the module docstring."""

    seen = cython.declare(dict, visibility="public")
    detail_all = cython.declare(cython.bint, visibility="public")
    confirmed = cython.declare(cython.bint, visibility="readonly")
    # set by the engine when the flow is OPC UA because of its port (4840, --port): bytes
    # that are no valid message header are an anomaly and a resync scan, never a violation
    port_bound = cython.declare(cython.bint, visibility="public")
    messages = cython.declare(cython.longlong, visibility="readonly")
    bytes_decoded = cython.declare(cython.longlong, visibility="readonly")
    bytes_skipped = cython.declare(cython.longlong, visibility="readonly")
    bytes_encrypted = cython.declare(cython.longlong, visibility="readonly")
    policy = cython.declare(object, visibility="readonly")  # SecurityPolicyUri (str) or None
    mode = cython.declare(cython.int, visibility="readonly")  # -1 unknown, 1 None, 2 Sign, 3 SignAndEncrypt
    channel_id = cython.declare(cython.longlong, visibility="readonly")
    _plain: cython.int  # -1 undecided, 0 encrypted, 1 plaintext
    _sig: cython.Py_ssize_t  # Sign-mode signature length, -1 unknown
    _chunk_limit: cython.longlong
    _max_message: cython.longlong
    _max_chunks: cython.longlong
    _mismatch_reported: cython.bint
    _d0: _Direction
    _d1: _Direction
    _tallies: list  # slot (+ _NSLOTS for the server's messages) -> Tally counted by this connection (see _S_*)
    seen_s: dict    # tallies of the server's messages (`seen`: the client's); `seen` itself when not given
    _keys_max: cython.Py_ssize_t    # limits.link_keys_max: keys per link direction, nodes per node set

    def __init__(self, seen, detail_all=False, limits=DEFAULT_LIMITS, seen_server=None):
        self.seen = seen if seen is not None else {}
        self.seen_s = self.seen if seen_server is None else seen_server
        self.detail_all = bool(detail_all)
        self.confirmed = False
        self.port_bound = False
        self.messages = 0
        self.bytes_decoded = 0
        self.bytes_skipped = 0
        self.bytes_encrypted = 0
        self.policy = None
        self.mode = -1
        self.channel_id = -1
        self._plain = -1
        self._sig = -1
        self._max_message = limits.opcua_max_message
        self._chunk_limit = min(limits.stream_max_buffer, limits.opcua_max_message)
        self._max_chunks = limits.opcua_max_chunks
        self._keys_max = getattr(limits, "link_keys_max", 4096)
        self._mismatch_reported = False
        self._d0 = _Direction()
        self._d1 = _Direction()
        self._tallies = [None] * (2 * _NSLOTS)   # the client's slots, then the server's

    # ------------------------------------------------------------------ api
    def feed(self, side, data, start, end, ts, frame, out) -> int:
        n: cython.Py_ssize_t = len(data)
        s: cython.Py_ssize_t = start
        e: cython.Py_ssize_t = end
        if e > n:
            e = n
        if s < 0:
            s = 0
        if s >= e:
            return _FEED_OK
        if not isinstance(data, (bytes, bytearray)):
            # mmap, memoryview...: copy this segment once; the walkers index bytes/bytearray
            data = bytes(data[s:e])
            e -= s
            s = 0
        return self._feed_c(side & 1, data, s, e, float(ts), int(frame), out)

    def c_feed(self) -> int:
        """Address of the C-level feed entry (``_feed_entry``) for the compiled engine; 0 when
        interpreted, or for a subclass (whose ``feed`` may differ)."""
        if cython.compiled and type(self) is OPCUACore:
            return cython.cast(cython.Py_ssize_t, cython.address(_feed_entry))
        return 0

    @cython.cfunc
    @cython.exceptval(-99, check=True)
    def _feed_c(self, side: cython.int, data: cython.p_const_uchar, s: cython.Py_ssize_t, e: cython.Py_ssize_t,
                ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
        """feed() after argument checks: 0 <= s <= e <= len(data)."""
        sd: cython.int = side & 1
        d: _Direction = self._d1 if sd else self._d0
        if s >= e:
            return _FEED_OK
        k: cython.longlong
        if d.skip > 0:
            k = min(d.skip, e - s)
            d.skip -= k
            s += k
            self.bytes_skipped += k
            if s >= e:
                return _FEED_OK
        pos: cython.Py_ssize_t
        # bytes accounted so far: on a violation, only what _frames has not already counted
        # (a resync scan, an oversized chunk) is added as skipped
        acc: cython.longlong = self.bytes_decoded + self.bytes_skipped + self.bytes_encrypted
        if not d.buf:    # (a truth test: len() is a builtin call when interpreted)
            pos = self._frames(sd, d, data, s, e, ts, frame, out)
            if pos < 0:
                return self._violation(d, (e - s) - (self.bytes_decoded + self.bytes_skipped
                                                     + self.bytes_encrypted - acc))
            if pos < e and d.skip == 0:
                d.buf += data[pos:e]
        else:
            d.buf += data[s:e]
            pos = self._frames(sd, d, d.buf, 0, len(d.buf), ts, frame, out)
            if pos < 0:
                return self._violation(d, len(d.buf) - (self.bytes_decoded + self.bytes_skipped
                                                        + self.bytes_encrypted - acc))
            if d.skip > 0:
                d.buf.clear()
            else:
                del d.buf[:pos]
        return _FEED_OK

    def gap(self, side, nbytes, ts, frame, out) -> int:
        ts = float(ts)
        frame = int(frame)
        sd: cython.int = side & 1
        d: _Direction = self._d1 if sd else self._d0
        nb: cython.longlong = nbytes
        k: cython.longlong
        if d.skip > 0:
            k = min(d.skip, nb)
            d.skip -= k
            nb -= k
            if nb <= 0:
                return _FEED_OK
        lost: cython.Py_ssize_t = len(d.buf) + len(d.pending) + (0 if d.seq is None else 1)
        if lost:
            self._anomaly(
                out, sd, ts, frame, A_GAP,
                "gap of %d bytes lost %d buffered bytes and %d partial messages"
                % (nb, len(d.buf), len(d.pending) + (0 if d.seq is None else 1)),
            )
        self.bytes_skipped += len(d.buf)
        d.buf.clear()
        d.pending.clear()
        d.seq = None
        d.resync = True
        return _FEED_OK

    def resync(self, side) -> int:
        """The next bytes of *side* may start inside a chunk (the capture started mid-stream):
        scan for the next valid message header before decoding."""
        d: _Direction = self._d1 if side & 1 else self._d0
        self.bytes_skipped += len(d.buf)
        d.buf.clear()
        d.pending.clear()
        d.seq = None
        d.skip = 0
        d.resync = True
        return _FEED_OK

    def eof(self, side, ts, frame, out) -> int:
        ts = float(ts)
        frame = int(frame)
        sd: cython.int = side & 1
        d: _Direction = self._d1 if sd else self._d0
        if len(d.buf) or d.skip > 0:
            self._anomaly(out, sd, ts, frame, A_TRUNCATED,
                          "stream ended inside a chunk (%d bytes buffered, %d missing)" % (len(d.buf), d.skip))
        if len(d.pending) or d.seq is not None:
            self._anomaly(out, sd, ts, frame, A_INCOMPLETE,
                          "stream ended with %d partially assembled messages"
                          % (len(d.pending) + (0 if d.seq is None else 1)))
        self.bytes_skipped += len(d.buf)
        d.buf.clear()
        d.pending.clear()
        d.seq = None
        d.skip = 0
        return _FEED_OK

    # ------------------------------------------------------------ internals
    @cython.cfunc
    def _violation(self, d: _Direction, nbytes: cython.Py_ssize_t) -> cython.int:
        # not OPC UA: the other direction's held-back bytes will never be parsed either
        other: _Direction = self._d0 if d is self._d1 else self._d1
        self.bytes_skipped += nbytes + len(other.buf)
        other.buf.clear()
        d.buf.clear()
        d.pending.clear()
        d.seq = None
        d.resync = True
        return _FEED_VIOLATION

    @cython.cfunc
    def _anomaly(self, out: list, side: cython.int, ts: cython.double, frame: cython.longlong, aid: str,
                 detail: str):
        out.append((_REC_ANOMALY, side, ts, frame, aid, detail))

    @cython.cfunc
    def _frames(self, side: cython.int, d: _Direction, buf: cython.p_const_uchar, pos: cython.Py_ssize_t, end: cython.Py_ssize_t,
                ts: cython.double, frame: cython.longlong, out: list) -> cython.Py_ssize_t:
        """Frame chunks in buf[pos:end]; return the first unconsumed offset, or -1 for
        "not OPC UA" on an unconfirmed connection."""
        avail: cython.Py_ssize_t
        h: cython.longlong
        code: cython.int
        size: cython.longlong
        take: cython.longlong
        i: cython.Py_ssize_t
        start: cython.Py_ssize_t
        while True:
            if d.resync:
                start = pos
                i = pos
                while i + 8 <= end:
                    if _header(buf, i, self._chunk_limit) != 0:
                        break
                    i += 1
                if i + 8 > end:
                    # keep the last 7 bytes: a header may straddle segments
                    i = end - 7 if end - 7 > pos else pos
                if not self.confirmed and not self.port_bound and i > start:
                    return -1
                self.bytes_skipped += i - start
                pos = i
                if end - pos < 8:
                    return pos
                d.resync = False
            avail = end - pos
            if avail < 8:
                return pos
            h = _header(buf, pos, 0)
            if h == 0:
                if not self.confirmed and not self.port_bound:
                    return -1
                self._anomaly(out, side, ts, frame, A_BAD_HEADER,
                              "invalid message header %s; resynchronising" % bytes(buf[pos:pos + 8]).hex())
                d.resync = True
                self.bytes_skipped += 1
                pos += 1
                continue
            code = h & 7
            size = h >> 3
            if size > self._chunk_limit:
                self._anomaly(out, side, ts, frame, A_CHUNK_TOO_LARGE,
                              "%s chunk of %d bytes exceeds the limit of %d; skipped"
                              % (bytes(buf[pos:pos + 3]).decode("ascii"), size, self._chunk_limit))
                take = min(size, avail)
                self.bytes_skipped += take
                d.skip = size - take
                pos += take
                self._drop_for(d, code, buf, pos - take, take)
                if d.skip > 0:
                    return pos
                continue
            if size > avail:
                return pos
            # a complete chunk (what every type shares is done here; MSG and CLO, the usual
            # ones, go straight to _symmetric: a call fewer per message when interpreted)
            self.confirmed = True
            if d.max_chunk > 0 and size > d.max_chunk:
                self._anomaly(out, side, ts, frame, A_NEGOTIATED,
                              "chunk of %d bytes exceeds the negotiated buffer size %d" % (size, d.max_chunk))
            if code == _MSG or code == _CLO:
                self._symmetric(side, d, code, buf[pos + 3] & 0xFF, buf, pos, pos + size, ts, frame, out)
            else:
                self._chunk(side, d, code, buf, pos, pos + size, ts, frame, out)
            pos += size

    @cython.cfunc
    def _drop_for(self, d: _Direction, code: cython.int, buf: cython.p_const_uchar, p: cython.Py_ssize_t, avail: cython.longlong):
        """An oversized chunk was skipped: forget the message it belonged to."""
        if code == _MSG or code == _CLO:
            if avail >= 24 and self._plain != 0:
                d.pending.pop(_u32(buf, p + 20), None)
            else:
                d.seq = None

    @cython.cfunc
    def _record(self, side: cython.int, key: tuple, slot: cython.int, nbytes: cython.longlong,
                ts: cython.double, frame: cython.longlong, always: cython.bint) -> cython.bint:
        """Tally *key* (whose slot is *slot*, 0 for none); True when a record must be emitted."""
        tt: Tally
        self.messages += 1
        if slot > 0:
            if side:
                slot += _NSLOTS
            o = self._tallies[slot]
            if o is not None:
                tt = o
                # _bump, written out: a call costs more than the bumps when interpreted
                tt.count += 1
                tt.nbytes += nbytes
                tt.last_ts = ts
                tt.last_frame = frame
                tt.int_count += 1
                tt.int_bytes += nbytes
                _peak(tt, ts, frame)     # the busiest window of the interval (Tally)
                return always or self.detail_all
        seen: dict = self.seen_s if side else self.seen
        t = seen.get(key)
        if t is None:
            n: Tally = Tally(nbytes, ts, frame)
            seen[key] = n
            if slot > 0:
                self._tallies[slot] = n
            if always or self.detail_all:
                return True
            # new to the link: reported within the client's budget (the engine's scan hook)
            hook = seen.get(_KEY_SCAN)
            return hook is None or hook.new_key(-1, key[1] if len(key) > 1 and key[0] == _MSG else key[0], ts, frame)
        tt = t
        _bump(tt, nbytes, ts, frame)
        if slot > 0:
            self._tallies[slot] = tt
        return always or self.detail_all

    @cython.cfunc
    def _nodes_key(self, side: cython.int, tid: cython.long, nk: cython.int, buf: cython.p_const_uchar,
                   b: cython.Py_ssize_t, e: cython.Py_ssize_t, nbytes: cython.longlong, ts: cython.double,
                   frame: cython.longlong, out: list) -> tuple:
        """Tally a node-keyed request (its type id at buf[b], its end at *e*): keyed
        ``(MSG_SERVICE, tid, node count, FNV-1a of the nodes)``; reported when its key is new
        and it names a node the link direction's node set of *tid* does not hold, or no node
        at all (every node
        is added; a full set holds no more, so past it a new key is reported).  Past
        ``link_keys_max`` keys a new key counts under ``(MSG_SERVICE, tid, -2, -2)``
        (the first time per service: ``opcua.key_overflow``); a node list that does not
        parse under ``(MSG_SERVICE, tid, -1, 0)``."""
        self.messages += 1
        body: cython.Py_ssize_t = _skip_nodeid(buf, b, e, False)
        nodes: list = None
        if body >= 0:
            nodes = _nodes_c(buf, body, e, nk)
        key: tuple
        if nodes is None:
            key = (_MSG, tid, _KEY_UNPARSED, 0)
        else:
            key = (_MSG, tid, len(nodes), _fnv(nodes))
        seen: dict = self.seen_s if side else self.seen
        t = seen.get(key)
        tt: Tally
        if t is not None:
            tt = t
            _bump(tt, nbytes, ts, frame)
            return key if self.detail_all else None
        if len(seen) >= self._keys_max:
            key = (_MSG, tid, _KEY_OVERFLOW, _KEY_OVERFLOW)
            t = seen.get(key)
            if t is not None:
                tt = t
                _bump(tt, nbytes, ts, frame)
                return key if self.detail_all else None
            self._anomaly(out, side, ts, frame, A_KEY_OVERFLOW,
                          "more than %d keys on this link direction; new %s requests counted together"
                          % (self._keys_max, _spec.SERVICES[tid].service))
            seen[key] = Tally(nbytes, ts, frame)
            return key if self.detail_all else None
        seen[key] = Tally(nbytes, ts, frame)
        if nodes is None or self.detail_all:
            return key
        sk = (_KEY_NODES, tid)
        o = seen.get(sk)
        if o is None:
            o = _NodeSet()
            seen[sk] = o
        ns: _NodeSet = o
        have: set = ns.nodes
        new: cython.bint = len(nodes) == 0      # an empty list (Bad_NothingToDo) is new once
        for x in nodes:
            if x not in have:
                new = True
                if len(have) < self._keys_max:
                    have.add(x)
        if not new:
            return None
        # new to the link: reported within the client's budget (the engine's scan hook)
        hook = seen.get(_KEY_SCAN)
        return key if hook is None or hook.new_key(-1, tid, ts, frame) else None

    @cython.cfunc
    def _service(self, side: cython.int, tid: cython.long, buf: cython.p_const_uchar, b: cython.Py_ssize_t,
                 e: cython.Py_ssize_t, nbytes: cython.longlong, ts: cython.double, frame: cython.longlong,
                 out: list) -> tuple:
        """Tally a plaintext service message of type id *tid* (-1: not a ns=0 numeric
        NodeId) whose type id is at buf[b] and which ends at *e*: its key when a record must
        be emitted, else None.  One call where there were four (key, slot, flags, _record):
        calls dominate interpreted."""
        slot: cython.int = 0
        nk: cython.int
        if 0 <= tid < _TID_MAX:
            nk = _TID_NK[tid]
            if nk != 0:
                return self._nodes_key(side, tid, nk, buf, b, e, nbytes, ts, frame, out)
            slot = _TID_SLOT[tid]
        if slot == 0:
            # not a known service: no slot, never always detailed
            key = (_MSG, tid)
            return key if self._record(side, key, 0, nbytes, ts, frame, False) else None
        always: cython.bint = (_TID_FLAGS[tid] & 2) != 0
        o = self._tallies[slot + _NSLOTS if side else slot]
        if o is not None:
            tt: Tally = o
            self.messages += 1
            # _bump, written out: a call costs more than the bumps when interpreted
            tt.count += 1
            tt.nbytes += nbytes
            tt.last_ts = ts
            tt.last_frame = frame
            tt.int_count += 1
            tt.int_bytes += nbytes
            _peak(tt, ts, frame)     # the busiest window of the interval (Tally)
            return _TID_KEYS[tid] if always or self.detail_all else None
        key = _TID_KEYS[tid]
        return key if self._record(side, key, slot, nbytes, ts, frame, always) else None

    @cython.cfunc
    def _ctx(self, encrypted: cython.bint) -> tuple:
        mode: cython.int = self.mode
        if encrypted and mode == -1:
            mode = _MODE_ENCRYPT
        return (self.policy, mode, self.channel_id)

    @cython.cfunc
    def _chunk(self, side: cython.int, d: _Direction, code: cython.int, buf: cython.p_const_uchar, p: cython.Py_ssize_t,
               q: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list):
        """A complete HEL, ACK, ERR, RHE or OPN chunk (_frames has set confirmed, checked
        the negotiated size, and handed MSG and CLO to _symmetric)."""
        size: cython.longlong = q - p
        ct: cython.int = buf[p + 3] & 0xFF
        other: _Direction
        key: tuple
        if code == _HEL or code == _ACK:
            other = self._d0 if side else self._d1
            self.bytes_decoded += size
            # HEL/ACK: ReceiveBufferSize, SendBufferSize, MaxMessageSize, MaxChunkCount
            # (the sender's receive limits bound the other side; Part 6 §7.1.2.3/4)
            other.max_chunk = _u32(buf, p + 12)
            d.max_chunk = _u32(buf, p + 16)
            other.max_message = _u32(buf, p + 20)
            other.max_chunks = _u32(buf, p + 24)
            key = _KEY_HEL if code == _HEL else _KEY_ACK
            if self._record(side, key, _S_HEL if code == _HEL else _S_ACK, size, ts, frame, True):
                out.append((_REC_MSG, side, ts, frame, key, bytes(buf[p:q]), self._ctx(False)))
            return
        if code == _ERR or code == _RHE:
            self.bytes_decoded += size
            key = _KEY_ERR if code == _ERR else _KEY_RHE
            if self._record(side, key, _S_ERR if code == _ERR else _S_RHE, size, ts, frame, True):
                out.append((_REC_MSG, side, ts, frame, key, bytes(buf[p:q]), self._ctx(False)))
            return
        self._opn(side, d, ct, buf, p, q, ts, frame, out)

    @cython.cfunc
    def _opn(self, side: cython.int, d: _Direction, ct: cython.int, buf: cython.p_const_uchar, p: cython.Py_ssize_t,
             q: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list):
        size: cython.longlong = q - p
        cid: cython.longlong = _u32(buf, p + 8)
        i: cython.Py_ssize_t = p + 12
        ln: cython.longlong = _i32(buf, i)
        uri = None
        encrypted: cython.bint = False
        body: cython.Py_ssize_t = -1
        if ln <= _POLICY_URI_MAX and i + 4 + max(ln, 0) + 8 <= q:
            if ln >= 0:
                uri = bytes(buf[i + 4:i + 4 + ln]).decode("utf-8", "replace")
            i += 4 + max(ln, 0)
            ln = _i32(buf, i)  # SenderCertificate
            if i + 4 + max(ln, 0) + 4 <= q:
                i += 4 + max(ln, 0)
                ln = _i32(buf, i)  # ReceiverCertificateThumbprint: present only when encrypted
                if i + 4 + max(ln, 0) <= q:
                    i += 4 + max(ln, 0)
                    encrypted = ln > 0
                    body = i if encrypted else i + _SEQ_LEN
                    if body > q:
                        body = q
        if uri is not None and uri != self.policy:
            self.policy = uri
            if uri == _POLICY_NONE:
                self.mode = _MODE_NONE
                self._plain = 1
                self._sig = 0
            else:
                self.mode = -1
                self._plain = -1
                self._sig = _SIG_LEN.get(uri, -1)
        if cid != 0:
            self.channel_id = cid
        if encrypted:
            self.bytes_encrypted += size
        else:
            self.bytes_decoded += size
        if ct == _F and d.seq is None:
            if self._record(side, _KEY_OPN, _S_OPN, size, ts, frame, True):
                out.append((_REC_MSG, side, ts, frame, _KEY_OPN, bytes(buf[p:q]), self._ctx(False)))
            return
        if body < 0:
            body = q
        self._sequential(side, d, _OPN, ct, buf, p, q, body, 0, ts, frame, out)

    @cython.cfunc
    def _plausible(self, buf: cython.p_const_uchar, p: cython.Py_ssize_t, q: cython.Py_ssize_t) -> cython.bint:
        """Does this chunk read as sequence header + a known service type id?"""
        if q - p < _SYM_BODY + 2:
            return False
        return (_tid_flags(_type_id(buf, p + _SYM_BODY, q)) & 1) != 0

    @cython.cfunc
    def _symmetric(self, side: cython.int, d: _Direction, code: cython.int, ct: cython.int, buf: cython.p_const_uchar,
                   p: cython.Py_ssize_t, q: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list):
        size: cython.longlong = q - p
        cid: cython.longlong
        reqid: cython.longlong = -1
        if not cython.compiled and STRUCT_READS:
            # interpreted: one struct call for the two fields of the arithmetic below
            if size >= _SYM_BODY:
                cid, reqid = _SYM_IDS.unpack_from(buf, p + 8)
            else:
                cid = _u32(buf, p + 8)
        else:
            # _u32(buf, p + 8) and _u32(buf, p + 20), without the calls
            cid = buf[p + 11] & 0xFF    # a long long first: the shift by 24 cannot overflow
            cid = (cid << 24) | ((buf[p + 10] & 0xFF) << 16) | ((buf[p + 9] & 0xFF) << 8) | (buf[p + 8] & 0xFF)
            if size >= _SYM_BODY:
                reqid = buf[p + 23] & 0xFF
                reqid = (reqid << 24) | ((buf[p + 22] & 0xFF) << 16) | ((buf[p + 21] & 0xFF) << 8) | (buf[p + 20] & 0xFF)
        if self.channel_id < 0:
            if cid != 0:
                self.channel_id = cid
        elif cid != self.channel_id and not self._mismatch_reported:
            self._mismatch_reported = True
            self._anomaly(out, side, ts, frame, A_CHANNEL_MISMATCH,
                          "secure channel id %d differs from the channel's %d" % (cid, self.channel_id))
        encrypted: cython.bint
        if self._plain == 1:
            encrypted = False
        elif self._plain == 0:
            encrypted = True
        else:
            if (reqid >= 0 and reqid in d.pending) or (ct != _A and self._plausible(buf, p, q)):
                encrypted = False
                if self.policy is not None and ct != _A and reqid not in d.pending:
                    self._plain = 1
                    if self.policy != _POLICY_NONE:
                        self.mode = _MODE_SIGN
            else:
                encrypted = True
                if self.policy is not None and ct == _F and d.seq is None:
                    self._plain = 0
                    self.mode = _MODE_ENCRYPT
        if encrypted:
            self.bytes_encrypted += size
            if ct == _A:
                d.seq = None
                if self._record(side, _KEY_ABORT, _S_ABORT, size, ts, frame, True):
                    out.append((_REC_MSG, side, ts, frame, _KEY_ABORT, bytes(buf[p:q]), self._ctx(True)))
                return
            self._sequential(side, d, _MSG_ENCRYPTED if code == _MSG else _CLO, ct, buf, p, q,
                             p + _SYM_PREFIX, 0, ts, frame, out)
            return
        self.bytes_decoded += size
        if size < _SYM_BODY:
            self._anomaly(out, side, ts, frame, A_SHORT_CHUNK,
                          "%d-byte chunk too short for a sequence header" % size)
            return
        sig: cython.Py_ssize_t = self._sig if (self.mode == _MODE_SIGN and self._sig > 0) else 0
        if q - sig < p + _SYM_BODY:
            sig = 0
        key: tuple
        part: _Partial
        if ct == _A:
            d.pending.pop(reqid, None)
            if self._record(side, _KEY_ABORT, _S_ABORT, size, ts, frame, True):
                out.append((_REC_MSG, side, ts, frame, _KEY_ABORT, bytes(buf[p:q]), self._ctx(False)))
            return
        pobj = None
        if d.pending:
            pobj = d.pending.get(reqid)
        if pobj is None and ct == _F:
            # a single-chunk message (the usual case), also while others are being assembled
            if code == _CLO:
                key = _KEY_CLO if self._record(side, _KEY_CLO, _S_CLO, size, ts, frame, True) else None
            else:
                key = self._service(side, _type_id(buf, p + _SYM_BODY, q - sig), buf, p + _SYM_BODY, q - sig,
                                    size, ts, frame, out)
            if key is not None:
                out.append((_REC_MSG, side, ts, frame, key, self._raw_single(buf, p, q - sig, sig), self._ctx(False)))
            return
        if pobj is None:
            if len(d.pending) >= _MAX_PENDING:
                oldest = next(iter(d.pending))
                del d.pending[oldest]
                self._anomaly(out, side, ts, frame, A_TOO_MANY_PARTIAL,
                              "more than %d partially assembled messages; dropped request id %d"
                              % (_MAX_PENDING, oldest))
            part = _Partial(_MSG if code == _MSG else _CLO)
            d.pending[reqid] = part
            self._add(side, d, part, buf, p, q - sig, p, ts, frame, out)
            return
        part = pobj
        self._add(side, d, part, buf, p, q - sig, p + _SYM_BODY, ts, frame, out)
        if ct == _F:
            del d.pending[reqid]
            self._finish(side, part, buf, p, ts, frame, out, False)

    @cython.cfunc
    def _raw_single(self, buf: cython.p_const_uchar, p: cython.Py_ssize_t, q: cython.Py_ssize_t, sig: cython.Py_ssize_t) -> bytes:
        if sig == 0:
            return bytes(buf[p:q])
        raw = bytearray(buf[p:q])
        n: cython.longlong = len(raw)
        raw[4] = n & 0xFF
        raw[5] = (n >> 8) & 0xFF
        raw[6] = (n >> 16) & 0xFF
        raw[7] = (n >> 24) & 0xFF
        return bytes(raw)

    @cython.cfunc
    def _add(self, side: cython.int, d: _Direction, part: _Partial, buf: cython.p_const_uchar, p: cython.Py_ssize_t,
             q: cython.Py_ssize_t, body: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list):
        """Append one chunk (buf[p:q], its payload from *body*) to *part*, enforcing the bounds."""
        wire: cython.longlong = _u32(buf, p + 4)
        part.chunks += 1
        part.wire += wire
        if part.dropped:
            return      # its bytes were counted when the chunk was framed (decoded or encrypted)
        n: cython.longlong = q - body if q > body else 0
        if part.chunks == 1:
            n = q - p
        if not part.flagged and (
            (d.max_chunks > 0 and part.chunks > d.max_chunks) or (d.max_message > 0 and part.wire > d.max_message)
        ):
            part.flagged = True
            self._anomaly(out, side, ts, frame, A_NEGOTIATED,
                          "message exceeds the negotiated MaxChunkCount %d / MaxMessageSize %d"
                          % (d.max_chunks, d.max_message))
        if self._max_chunks > 0 and part.chunks > self._max_chunks:
            part.dropped = True
            part.parts = []
            self._anomaly(out, side, ts, frame, A_TOO_MANY_CHUNKS,
                          "message has more than %d chunks; dropped" % self._max_chunks)
            return
        if part.nbytes + n > self._max_message:
            part.dropped = True
            part.parts = []
            self._anomaly(out, side, ts, frame, A_MESSAGE_TOO_LARGE,
                          "assembled message exceeds %d bytes; dropped" % self._max_message)
            return
        part.nbytes += n
        if part.chunks == 1:
            part.parts.append(bytes(buf[p:q]))
        elif n > 0:
            part.parts.append(bytes(buf[body:q]))

    @cython.cfunc
    def _finish(self, side: cython.int, part: _Partial, buf: cython.p_const_uchar, p: cython.Py_ssize_t,
                ts: cython.double, frame: cython.longlong, out: list, encrypted: cython.bint):
        if part.dropped:
            return
        raw = bytearray(b"".join(part.parts))
        n: cython.longlong = len(raw)
        raw[3] = _F
        raw[4] = n & 0xFF
        raw[5] = (n >> 8) & 0xFF
        raw[6] = (n >> 16) & 0xFF
        raw[7] = (n >> 24) & 0xFF
        key: tuple
        slot: cython.int
        always: cython.bint = True
        if part.kind == _MSG:
            key = self._service(side, _type_id(raw, _SYM_BODY, n), raw, _SYM_BODY, n, part.wire, ts, frame, out)
            if key is not None:
                out.append((_REC_MSG, side, ts, frame, key, bytes(raw), self._ctx(encrypted)))
            return
        if part.kind == _CLO:
            key = _KEY_CLO
            slot = _S_CLO
        elif part.kind == _OPN:
            key = _KEY_OPN
            slot = _S_OPN
        else:
            key = _KEY_ENCRYPTED
            slot = _S_ENCRYPTED
            always = False
        if self._record(side, key, slot, part.wire, ts, frame, always):
            out.append((_REC_MSG, side, ts, frame, key, bytes(raw), self._ctx(encrypted)))

    @cython.cfunc
    def _sequential(self, side: cython.int, d: _Direction, kind: cython.int, ct: cython.int, buf: cython.p_const_uchar,
                    p: cython.Py_ssize_t, q: cython.Py_ssize_t, body: cython.Py_ssize_t, sig: cython.Py_ssize_t,
                    ts: cython.double, frame: cython.longlong, out: list):
        """Chunks assembled in arrival order (encrypted bodies, chunked OPN); *body* is the
        absolute offset of a continuation chunk's payload."""
        part: _Partial
        encrypted: cython.bint = kind == _MSG_ENCRYPTED or (kind == _CLO and self._plain != 1)
        if ct == _A:
            d.seq = None
            return
        if d.seq is None:
            if ct == _F:
                key: tuple = _KEY_ENCRYPTED if kind == _MSG_ENCRYPTED else (_KEY_CLO if kind == _CLO else _KEY_OPN)
                slot: cython.int = _S_ENCRYPTED if kind == _MSG_ENCRYPTED else (_S_CLO if kind == _CLO else _S_OPN)
                if self._record(side, key, slot, q - p, ts, frame, kind != _MSG_ENCRYPTED):
                    out.append((_REC_MSG, side, ts, frame, key, bytes(buf[p:q]), self._ctx(encrypted)))
                return
            part = _Partial(kind)
            d.seq = part
            self._add(side, d, part, buf, p, q - sig, body, ts, frame, out)
            return
        part = d.seq
        self._add(side, d, part, buf, p, q - sig, body, ts, frame, out)
        if ct == _F:
            d.seq = None
            self._finish(side, part, buf, p, ts, frame, out, encrypted)


@cython.cfunc
@cython.exceptval(-99, check=True)
def _feed_entry(core: object, side: cython.int, data: cython.p_const_uchar, start: cython.Py_ssize_t,
                end: cython.Py_ssize_t, ts: cython.double, frame: cython.longlong, out: list) -> cython.int:
    """The compiled engine's entry (see ``OPCUACore.c_feed``): *core* is an OPCUACore and
    data[start:end] lies inside the caller's buffer."""
    return cython.cast(OPCUACore, core)._feed_c(side, data, start, end, ts, frame, out)
