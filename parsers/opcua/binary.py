"""Bounded readers for the OPC UA binary encoding (Part 6 §5.2).

``Reader(buf, pos, end)`` walks one message body.  Every read checks the bytes
left first and raises :class:`DecodeError` (never IndexError, never a short
read); ``decode.py`` turns it into an event with ``malformed`` set.  A length
or count is validated against the bytes left *before* anything is allocated,
so a count claiming 2^31 elements fails at once instead of allocating.  Values
are summarised (strings cut at ``spec.MAX_STRING_CHARS``, lists at
``spec.MAX_LIST_ITEMS`` with the true count kept, nesting at
``spec.MAX_NESTING``).

NodeIds are rendered in the standard text form (Part 6 §5.3.1.10):
``i=2258``, ``ns=2;s=Temp``, ``ns=1;g=09087e75-…``, ``ns=1;b=<base64>``;
ExpandedNodeIds add ``nsu=`` and ``svr=``.
"""
from __future__ import annotations

import base64
import datetime
import struct
from dataclasses import dataclass

from . import spec

__all__ = ["DecodeError", "Reader", "VariantSummary", "DataValueSummary", "ExtensionObject"]

_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
_MAX_TICKS = 0x7FFFFFFFFFFFFFFF
_VALUE_CHARS = 64
"""Characters of one value's text summary (Variant scalars, array previews)."""
_ARRAY_PREVIEW = 8
"""Elements of a Variant array shown in its summary."""

# fixed-size built-in types: id -> (struct format, size)
_FIXED = {
    1: ("<?", 1), 2: ("<b", 1), 3: ("<B", 1), 4: ("<h", 2), 5: ("<H", 2), 6: ("<i", 4), 7: ("<I", 4),
    8: ("<q", 8), 9: ("<Q", 8), 10: ("<f", 4), 11: ("<d", 8), 19: ("<I", 4),
}


_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_STRING_BYTES = spec.MAX_STRING_CHARS * 4
"""Bytes of a String decoded at most (4 per character: the longest UTF-8 sequence)."""


class DecodeError(ValueError):
    """The body does not parse; ``str(exc)`` is the reason (never contains body bytes)."""


@dataclass(frozen=True)
class ExtensionObject:
    type_id: str
    """NodeId text of the encoding id."""
    type_num: int
    """Numeric ns=0 id of the encoding, -1 if not one."""
    encoding: int
    """0 no body, 1 binary body, 2 XML body."""
    body_length: int


@dataclass(frozen=True)
class VariantSummary:
    type: str
    """Built-in type name (``Double``, ``ExtensionObject``...)."""
    array_length: int | None
    """None for a scalar."""
    value: str
    """Escaped, shortened text of the value (arrays: the first elements)."""


@dataclass(frozen=True)
class DataValueSummary:
    value: VariantSummary | None
    status_code: int
    status_name: str
    source_timestamp: str | None
    server_timestamp: str | None


def _short(text: str) -> str:
    from ..common import escape

    return escape(text, _VALUE_CHARS)


def _quoted(text: str) -> str:
    """A wire string as a preview: in double quotes, control characters and backslashes as
    ``\\xNN`` (``parsers.common.escape``), cut at ``_VALUE_CHARS``."""
    return _short('"' + text + '"')


class Reader:
    """A cursor over buf[pos:end] (bytes-like)."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf, pos: int = 0, end: int | None = None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else min(end, len(buf))

    # ---------------------------------------------------------------- basics
    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int, what: str = "value") -> None:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError(f"truncated {what}: need {n} bytes at offset {self.pos}, {self.end - self.pos} left")

    def _unpack(self, fmt: str, size: int, what: str):
        p = self.pos
        if p + size > self.end:
            self.need(size, what)       # raises: the one message for a truncated value
        self.pos = p + size
        return struct.unpack_from(fmt, self.buf, p)[0]

    def skip(self, n: int, what: str = "bytes") -> None:
        self.need(n, what)
        self.pos += n

    def boolean(self) -> bool:
        return self._unpack("<B", 1, "Boolean") != 0

    def sbyte(self) -> int:
        return self._unpack("<b", 1, "SByte")

    # byte, uint16, int32, uint32 and string are most of a Read's decode (a node id, attribute id,
    # index range and encoding name per node): written out with a compiled Struct each, the same
    # checks and messages as _unpack
    def byte(self) -> int:
        p = self.pos
        if p + 1 > self.end:
            self.need(1, "Byte")
        self.pos = p + 1
        return _U8(self.buf, p)[0]

    def int16(self) -> int:
        return self._unpack("<h", 2, "Int16")

    def uint16(self) -> int:
        p = self.pos
        if p + 2 > self.end:
            self.need(2, "UInt16")
        self.pos = p + 2
        return _U16(self.buf, p)[0]

    def int32(self) -> int:
        p = self.pos
        if p + 4 > self.end:
            self.need(4, "Int32")
        self.pos = p + 4
        return _I32(self.buf, p)[0]

    def uint32(self) -> int:
        p = self.pos
        if p + 4 > self.end:
            self.need(4, "UInt32")
        self.pos = p + 4
        return _U32(self.buf, p)[0]

    def int64(self) -> int:
        return self._unpack("<q", 8, "Int64")

    def uint64(self) -> int:
        return self._unpack("<Q", 8, "UInt64")

    def float(self) -> float:
        return self._unpack("<f", 4, "Float")

    def double(self) -> float:
        return self._unpack("<d", 8, "Double")

    status_code = uint32

    # -------------------------------------------------------------- strings
    def _length(self, what: str) -> int:
        n = self.int32()
        if n == -1:
            return -1
        if n < -1:
            raise DecodeError(f"negative {what} length {n}")
        self.need(n, what)
        return n

    def string(self) -> str | None:
        """UTF-8 String; null (-1) is None; cut at MAX_STRING_CHARS."""
        p = self.pos
        if p + 4 > self.end:
            self.need(4, "Int32")           # (what _length's int32 says)
        n = _I32(self.buf, p)[0]
        p += 4
        self.pos = p
        if n < 0:
            if n == -1:
                return None
            raise DecodeError(f"negative String length {n}")
        if p + n > self.end:
            self.need(n, "String")
        raw = bytes(self.buf[p : p + (n if n <= _STRING_BYTES else _STRING_BYTES)])
        self.pos = p + n
        s = raw.decode("utf-8", "replace")
        if n > _STRING_BYTES or len(s) > spec.MAX_STRING_CHARS:
            s = s[: spec.MAX_STRING_CHARS] + "…[%d bytes]" % n
        return s

    def bytestring(self) -> bytes | None:
        n = self._length("ByteString")
        if n < 0:
            return None
        v = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return v

    def skip_bytestring(self) -> int:
        """Skip a ByteString; return its length (-1 for null)."""
        n = self._length("ByteString")
        if n > 0:
            self.pos += n
        return n

    def datetime(self) -> str | None:
        """DateTime → ISO 8601 UTC text; 0 and the maximum mean "not set" (None)."""
        ticks = self.int64()
        if ticks <= 0 or ticks >= _MAX_TICKS:
            return None
        try:
            t = _EPOCH + datetime.timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def guid(self) -> str:
        self.need(16, "Guid")
        d1, d2, d3 = struct.unpack_from("<IHH", self.buf, self.pos)
        d4 = bytes(self.buf[self.pos + 8 : self.pos + 16])
        self.pos += 16
        return "%08x-%04x-%04x-%s-%s" % (d1, d2, d3, d4[:2].hex(), d4[2:].hex())

    # -------------------------------------------------------------- node ids
    def _nodeid(self, enc: int) -> tuple[int, str]:
        form = enc & 0x3F
        if form == spec.NODEID_TWO_BYTE:
            return 0, "i=%d" % self.byte()
        if form == spec.NODEID_FOUR_BYTE:
            ns = self.byte()
            ident = "i=%d" % self.uint16()
        elif form == spec.NODEID_NUMERIC:
            ns = self.uint16()
            ident = "i=%d" % self.uint32()
        elif form == spec.NODEID_STRING:
            ns = self.uint16()
            s = self.string()
            ident = "s=" + (s if s is not None else "")
        elif form == spec.NODEID_GUID:
            ns = self.uint16()
            ident = "g=" + self.guid()
        elif form == spec.NODEID_BYTESTRING:
            ns = self.uint16()
            b = self.bytestring() or b""
            ident = "b=" + base64.b64encode(b[:256]).decode()
        else:
            raise DecodeError(f"invalid NodeId encoding 0x{enc:02x}")
        return ns, ident

    def nodeid(self) -> str:
        enc = self.byte()
        if enc & 0xC0:
            raise DecodeError(f"ExpandedNodeId flags in a NodeId (0x{enc:02x})")
        ns, ident = self._nodeid(enc)
        return ident if ns == 0 else "ns=%d;%s" % (ns, ident)

    def nodeid_numeric(self) -> tuple[str, int]:
        """NodeId text plus its numeric ns=0 id (-1 if it is not one)."""
        text = self.nodeid()
        return text, (int(text[2:]) if text.startswith("i=") else -1)

    def expanded_nodeid(self) -> str:
        enc = self.byte()
        ns, ident = self._nodeid(enc)
        text = ident if ns == 0 else "ns=%d;%s" % (ns, ident)
        if enc & spec.NODEID_NAMESPACE_URI_FLAG:
            uri = self.string()
            text = "nsu=%s;%s" % (uri or "", ident)
        if enc & spec.NODEID_SERVER_INDEX_FLAG:
            text = "svr=%d;%s" % (self.uint32(), text)
        return text

    def qualified_name(self) -> str:
        ns = self.uint16()
        name = self.string() or ""
        return name if ns == 0 else "%d:%s" % (ns, name)

    def localized_text(self) -> str | None:
        mask = self.byte()
        text = None
        if mask & 0x01:
            self.string()  # locale
        if mask & 0x02:
            text = self.string()
        return text

    # ------------------------------------------------------------ composites
    def diagnostic_info(self, depth: int = 0) -> None:
        """Skip a DiagnosticInfo (bounded recursion)."""
        if depth > spec.MAX_NESTING:
            raise DecodeError("DiagnosticInfo nested too deeply")
        mask = self.byte()
        for bit in (0x01, 0x02, 0x08, 0x04):  # SymbolicId, NamespaceUri, Locale, LocalizedText
            if mask & bit:
                self.int32()
        if mask & 0x10:
            self.string()
        if mask & 0x20:
            self.uint32()
        if mask & 0x40:
            self.diagnostic_info(depth + 1)

    def extension_object(self) -> ExtensionObject:
        """Keep the type id; skip the body."""
        text, num = self.nodeid_numeric()
        enc = self.byte()
        length = 0
        if enc in (1, 2):
            length = self._length("ExtensionObject body")
            if length > 0:
                self.pos += length
            length = max(length, 0)
        elif enc != 0:
            raise DecodeError(f"invalid ExtensionObject encoding {enc}")
        return ExtensionObject(text, num, enc, length)

    def extension_object_body(self) -> tuple[ExtensionObject, Reader | None]:
        """ExtensionObject plus a Reader over its binary body (None if no binary body)."""
        text, num = self.nodeid_numeric()
        enc = self.byte()
        if enc == 0:
            return ExtensionObject(text, num, 0, 0), None
        if enc not in (1, 2):
            raise DecodeError(f"invalid ExtensionObject encoding {enc}")
        length = max(self._length("ExtensionObject body"), 0)
        sub = Reader(self.buf, self.pos, self.pos + length) if enc == 1 else None
        self.pos += length
        return ExtensionObject(text, num, enc, length), sub

    def _element(self, t: int, depth: int) -> str:
        """Read one built-in value of type *t*; return its summary text."""
        if t in _FIXED:
            fmt, size = _FIXED[t]
            v = self._unpack(fmt, size, spec.BUILTIN_TYPE_NAMES[t])
            if t == 19:
                return spec.status_name(v)
            return repr(v)
        if t == 12 or t == 16:
            s = self.string()
            return "null" if s is None else _quoted(s)
        if t == 15:
            n = self.skip_bytestring()
            return "null" if n < 0 else "<%d bytes>" % n
        if t == 13:
            return self.datetime() or "null"
        if t == 14:
            return self.guid()
        if t == 17:
            return _short(self.nodeid())
        if t == 18:
            return _short(self.expanded_nodeid())
        if t == 20:
            return _short(self.qualified_name())
        if t == 21:
            s = self.localized_text()
            return "null" if s is None else _quoted(s)
        if t == 22:
            eo = self.extension_object()
            return "%s<%d bytes>" % (eo.type_id, eo.body_length)
        if t == 23:
            dv = self.data_value(depth + 1)
            return "DataValue(%s)" % (dv.value.value if dv.value else dv.status_name)
        if t == 24:
            v = self.variant(depth + 1)
            return "%s:%s" % (v.type, v.value)
        if t == 25:
            self.diagnostic_info(depth + 1)
            return "DiagnosticInfo"
        raise DecodeError(f"invalid built-in type {t}")

    def variant(self, depth: int = 0) -> VariantSummary:
        if depth > spec.MAX_NESTING:
            raise DecodeError("Variant nested too deeply")
        mask = self.byte()
        t = mask & 0x3F
        if t > 25:
            raise DecodeError(f"invalid Variant type {t}")
        name = spec.BUILTIN_TYPE_NAMES[t]
        if not mask & 0x80:
            if t == 0:
                return VariantSummary(name, None, "null")
            return VariantSummary(name, None, self._element(t, depth))
        n = self.int32()
        if n < -1:
            raise DecodeError(f"negative Variant array length {n}")
        count = max(n, 0)
        if t in _FIXED:
            size = _FIXED[t][1]
            self.need(count * size, "Variant array")
            preview = []
            for _ in range(min(count, _ARRAY_PREVIEW)):
                preview.append(self._element(t, depth))
            self.pos += (count - len(preview)) * size
        else:
            self.need(count, "Variant array")  # every element takes at least one byte
            if t == 0 and count:
                raise DecodeError("Variant array of Null")
            preview = []
            for i in range(count):
                s = self._element(t, depth)
                if i < _ARRAY_PREVIEW:
                    preview.append(s)
        if mask & 0x40:
            dims = self.int32()
            if dims < -1:
                raise DecodeError("negative ArrayDimensions length")
            self.skip(max(dims, 0) * 4, "ArrayDimensions")
        text = "[" + ", ".join(preview) + (", …" if count > len(preview) else "") + "]"
        return VariantSummary(name, count if n >= 0 else None, _short(text) if len(text) > _VALUE_CHARS else text)

    def data_value(self, depth: int = 0) -> DataValueSummary:
        if depth > spec.MAX_NESTING:
            raise DecodeError("DataValue nested too deeply")
        mask = self.byte()
        value = self.variant(depth + 1) if mask & 0x01 else None
        status = self.uint32() if mask & 0x02 else 0
        src = self.datetime() if mask & 0x04 else None
        if mask & 0x10:
            self.uint16()
        srv = self.datetime() if mask & 0x08 else None
        if mask & 0x20:
            self.uint16()
        return DataValueSummary(value, status, spec.status_name(status), src, srv)

    def array(self, read_one, min_size: int = 1, what: str = "array") -> tuple[int, list]:
        """Read an array: (true count, first MAX_LIST_ITEMS items).  Null (-1) is (0, [])."""
        n = self.int32()
        if n == -1:
            return 0, []
        if n < -1:
            raise DecodeError(f"negative {what} length {n}")
        self.need(n * min_size, what)  # before any allocation
        items = []
        for i in range(n):
            v = read_one()
            if i < spec.MAX_LIST_ITEMS:
                items.append(v)
        return n, items
