"""Full decoder: one Modbus/TCP ADU -> one typed event.

    decode(key, raw, ctx, side) -> ModbusRequest | ModbusResponse |
                                   ModbusDeviceIdentification | ModbusExceptionResponse
    describe(key) -> (kind, op, target)

``key``, ``raw`` and ``ctx`` come from a kernel ``REC_MSG`` record
(``otwatch.ext.modbus``): ``key[0]`` says request, response or exception;
``raw`` is the whole ADU, MBAP header included; ``ctx`` is ``None`` or, for a
paired response or exception, ``(request_key, request_frame, request_ts,
response_time)``.

Never raises.  A body that does not match its function's layout gives an event
with ``malformed`` set to the reason(s) and every field read before the problem.
Layouts follow [APP] §6 (see ``spec``); field names are documented in ``events``.
"""
from __future__ import annotations

from . import spec
from .events import (
    DeviceIdObject,
    FileRecord,
    ModbusDeviceIdentification,
    ModbusExceptionResponse,
    ModbusRequest,
    ModbusResponse,
)

__all__ = ["decode", "describe"]


class _Short(Exception):
    """The body ended before a field (internal; never escapes decode)."""


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    @property
    def left(self) -> int:
        return len(self.buf) - self.pos

    def u8(self, what: str) -> int:
        if self.pos + 1 > len(self.buf):
            raise _Short(what)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u16(self, what: str) -> int:
        if self.pos + 2 > len(self.buf):
            raise _Short(what)
        v = (self.buf[self.pos] << 8) | self.buf[self.pos + 1]
        self.pos += 2
        return v

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise _Short(what)
        v = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(v)

    def rest(self) -> bytes:
        v = bytes(self.buf[self.pos :])
        self.pos = len(self.buf)
        return v


def _bits(data: bytes, count: int | None = None) -> list[int]:
    """Coil/input states, LSB of the first byte first [APP §6.1]."""
    out = [(byte >> i) & 1 for byte in data for i in range(8)]
    return out if count is None else out[:count]


def _regs(data: bytes) -> list[int]:
    return [(data[i] << 8) | data[i + 1] for i in range(0, len(data) - 1, 2)]


def _text(raw: bytes) -> str:
    return bytes(raw).decode("utf-8", "backslashreplace")


def _check_qty(f: dict, probs: list, qty: int, hi: int) -> None:
    if not 1 <= qty <= hi:
        probs.append("quantity %d outside 1..%d" % (qty, hi))


def _coil_value(f: dict, probs: list, value: int) -> None:
    if value == spec.COIL_ON:
        f["values"] = [1]
    elif value == spec.COIL_OFF:
        f["values"] = [0]
    else:
        f["values"] = [value]
        probs.append("coil value 0x%04X is neither 0xFF00 nor 0x0000" % value)


def _sub_name(sub: int) -> str:
    return spec.DIAGNOSTIC_NAMES.get(sub, "Reserved (%d)" % sub)


def _mei_name(mei: int) -> str:
    return spec.MEI_NAMES.get(mei, "Reserved (%d)" % mei)


# --- requests ------------------------------------------------------------------


def _req_read(r, f, probs, fc):
    f["address"] = r.u16("start address")
    f["quantity"] = q = r.u16("quantity")
    _check_qty(f, probs, q, spec.MAX_READ_BITS if fc <= 2 else spec.MAX_READ_REGISTERS)


def _req_single(r, f, probs, fc):
    f["address"] = r.u16("address")
    f["quantity"] = 1
    value = r.u16("value")
    if fc == 5:
        _coil_value(f, probs, value)
    else:
        f["values"] = [value]


def _req_write_multiple(r, f, probs, fc):
    f["address"] = r.u16("start address")
    f["quantity"] = q = r.u16("quantity")
    f["byte_count"] = bc = r.u8("byte count")
    if fc == 15:
        _check_qty(f, probs, q, spec.MAX_WRITE_BITS)
        want = (q + 7) // 8
    else:
        _check_qty(f, probs, q, spec.MAX_WRITE_REGISTERS)
        want = 2 * q
    if bc != want:
        probs.append("byte count %d, quantity %d needs %d" % (bc, q, want))
    data = r.take(min(bc, r.left), "values")
    if len(data) < bc:
        probs.append("byte count %d but %d byte(s) follow" % (bc, len(data)))
    f["values"] = _bits(data, q) if fc == 15 else _regs(data)


def _req_diag(r, f, probs, fc):
    f["sub_function"] = sub = r.u16("sub-function")
    f["sub_function_name"] = _sub_name(sub)
    f["data"] = r.rest()


def _req_read_file(r, f, probs, fc):
    f["byte_count"] = bc = r.u8("byte count")
    if bc != r.left:
        probs.append("byte count %d but %d byte(s) follow" % (bc, r.left))
    if bc % 7:
        probs.append("byte count %d is not a multiple of 7" % bc)
    recs = f["file_records"] = []
    while r.left >= 7:
        ref = r.u8("reference type")
        recs.append(FileRecord(ref, r.u16("file number"), r.u16("record number"), r.u16("record length"),
                               index=len(recs)))
        if ref != spec.FILE_REFERENCE_TYPE:
            probs.append("reference type %d is not 6" % ref)


def _req_write_file(r, f, probs, fc):
    f["byte_count"] = bc = r.u8("byte count")
    if bc != r.left:
        probs.append("byte count %d but %d byte(s) follow" % (bc, r.left))
    recs = f["file_records"] = []
    while r.left > 0:
        ref = r.u8("reference type")
        fileno = r.u16("file number")
        recno = r.u16("record number")
        n = r.u16("record length")
        data = r.take(2 * n, "record data")
        recs.append(FileRecord(ref, fileno, recno, n, tuple(_regs(data)), len(recs)))
        if ref != spec.FILE_REFERENCE_TYPE:
            probs.append("reference type %d is not 6" % ref)


def _req_mask(r, f, probs, fc):
    f["address"] = r.u16("address")
    f["quantity"] = 1
    f["and_mask"] = r.u16("and mask")
    f["or_mask"] = r.u16("or mask")


def _req_rw(r, f, probs, fc):
    f["read_address"] = r.u16("read start address")
    f["read_quantity"] = rq = r.u16("read quantity")
    f["address"] = r.u16("write start address")
    f["quantity"] = wq = r.u16("write quantity")
    f["byte_count"] = bc = r.u8("write byte count")
    _check_qty(f, probs, rq, spec.MAX_READ_REGISTERS)
    if not 1 <= wq <= spec.MAX_RW_WRITE_REGISTERS:
        probs.append("write quantity %d outside 1..%d" % (wq, spec.MAX_RW_WRITE_REGISTERS))
    if bc != 2 * wq:
        probs.append("byte count %d, write quantity %d needs %d" % (bc, wq, 2 * wq))
    data = r.take(min(bc, r.left), "values")
    if len(data) < bc:
        probs.append("byte count %d but %d byte(s) follow" % (bc, len(data)))
    f["values"] = _regs(data)


def _req_fifo(r, f, probs, fc):
    f["address"] = r.u16("FIFO pointer address")


def _req_mei(r, f, probs, fc):
    f["mei_type"] = mei = r.u8("MEI type")
    f["mei_name"] = _mei_name(mei)
    if mei == spec.MEIType.READ_DEVICE_IDENTIFICATION:
        f["read_device_id_code"] = code = r.u8("read device id code")
        f["object_id"] = r.u8("object id")
        if code not in spec.READ_DEVICE_ID_NAMES:
            probs.append("read device id code %d not 1..4" % code)
    else:
        f["table"] = ""
        f["data"] = r.rest()


def _req_umas(r, f, probs, fc):
    f["umas_pairing_key"] = r.u8("UMAS pairing key")
    f["umas_function"] = code = r.u8("UMAS function code")
    f["umas_function_name"] = spec.umas_function_name(code)
    f["umas_class"] = spec.umas_class(code)
    f["data"] = r.rest()


def _no_body(r, f, probs, fc):
    pass


def _raw_body(r, f, probs, fc):
    f["data"] = r.rest()


_REQUEST = {
    1: _req_read, 2: _req_read, 3: _req_read, 4: _req_read,
    5: _req_single, 6: _req_single,
    7: _no_body, 8: _req_diag, 11: _no_body, 12: _no_body,
    15: _req_write_multiple, 16: _req_write_multiple,
    17: _no_body, 20: _req_read_file, 21: _req_write_file,
    22: _req_mask, 23: _req_rw, 24: _req_fifo, 43: _req_mei,
    spec.UMAS_FUNCTION: _req_umas,
}


# --- responses -----------------------------------------------------------------


def _resp_read(r, f, probs, fc, req):
    f["byte_count"] = bc = r.u8("byte count")
    data = r.take(min(bc, r.left), "values")
    if len(data) < bc:
        probs.append("byte count %d but %d byte(s) follow" % (bc, len(data)))
    qty = f.get("quantity")
    if fc <= 2:
        if qty is not None and bc != (qty + 7) // 8:
            probs.append("byte count %d, requested %d bit(s) need %d" % (bc, qty, (qty + 7) // 8))
        f["values"] = _bits(data, qty)
    else:
        if bc % 2:
            probs.append("odd byte count %d" % bc)
        if qty is not None and bc != 2 * qty:
            probs.append("byte count %d, requested %d register(s) need %d" % (bc, qty, 2 * qty))
        f["values"] = _regs(data)


def _resp_single(r, f, probs, fc, req):
    f["address"] = r.u16("address")
    f["quantity"] = 1
    value = r.u16("value")
    if fc == 5:
        _coil_value(f, probs, value)
    else:
        f["values"] = [value]


def _resp_exception_status(r, f, probs, fc, req):
    f["status"] = r.u8("output data")


def _resp_diag(r, f, probs, fc, req):
    f["sub_function"] = sub = r.u16("sub-function")
    f["sub_function_name"] = _sub_name(sub)
    f["data"] = r.rest()
    if req is not None and req[3] >= 0 and req[3] != sub:
        probs.append("sub-function %d answers a request for %d" % (sub, req[3]))


def _resp_event_counter(r, f, probs, fc, req):
    f["status"] = r.u16("status")
    f["event_count"] = r.u16("event count")


def _resp_event_log(r, f, probs, fc, req):
    f["byte_count"] = bc = r.u8("byte count")
    if bc != r.left:
        probs.append("byte count %d but %d byte(s) follow" % (bc, r.left))
    f["status"] = r.u16("status")
    f["event_count"] = r.u16("event count")
    f["message_count"] = r.u16("message count")
    f["events"] = list(r.rest())
    if len(f["events"]) > 64:
        probs.append("%d events, at most 64" % len(f["events"]))


def _resp_write_multiple(r, f, probs, fc, req):
    f["address"] = r.u16("start address")
    f["quantity"] = r.u16("quantity")
    if req is not None and (req[3], req[4]) != (f["address"], f["quantity"]):
        probs.append("echo %d+%d differs from the request's %d+%d" % (f["address"], f["quantity"], req[3], req[4]))


def _resp_server_id(r, f, probs, fc, req):
    f["byte_count"] = bc = r.u8("byte count")
    data = r.take(min(bc, r.left), "server id")
    if len(data) < bc:
        probs.append("byte count %d but %d byte(s) follow" % (bc, len(data)))
    f["data"] = data
    if len(data) >= 1:
        f["server_id"] = data[0]
    if len(data) >= 2:
        f["run_indicator"] = {0xFF: True, 0x00: False}.get(data[1])
        f["additional_data"] = data[2:]


def _resp_read_file(r, f, probs, fc, req):
    f["byte_count"] = bc = r.u8("response data length")
    if bc != r.left:
        probs.append("byte count %d but %d byte(s) follow" % (bc, r.left))
    # The i-th sub-response answers the i-th sub-request; the request key holds the
    # first sub-request's file and record number (FileRecord documents the rest).
    first = (_known(req[3]), _known(req[4])) if req is not None and len(req) >= 5 and req[2] == fc else (None, None)
    recs = f["file_records"] = []
    while r.left > 0:
        n = r.u8("file response length")
        ref = r.u8("reference type")
        if n < 1:
            probs.append("file response length 0")
            continue
        data = r.take(n - 1, "record data")
        if (n - 1) % 2:
            probs.append("odd record data length %d" % (n - 1))
        fileno, recno = first if not recs else (None, None)
        recs.append(FileRecord(ref, fileno, recno, (n - 1) // 2, tuple(_regs(data)), len(recs)))
        if ref != spec.FILE_REFERENCE_TYPE:
            probs.append("reference type %d is not 6" % ref)


def _resp_write_file(r, f, probs, fc, req):
    _req_write_file(r, f, probs, fc)


def _resp_mask(r, f, probs, fc, req):
    _req_mask(r, f, probs, fc)


def _resp_rw(r, f, probs, fc, req):
    _resp_read(r, f, probs, fc, req)


def _resp_fifo(r, f, probs, fc, req):
    f["byte_count"] = bc = r.u16("byte count")
    f["fifo_count"] = n = r.u16("FIFO count")
    if n > spec.MAX_FIFO_COUNT:
        probs.append("FIFO count %d above %d" % (n, spec.MAX_FIFO_COUNT))
    if bc != 2 + 2 * n:
        probs.append("byte count %d, FIFO count %d needs %d" % (bc, n, 2 + 2 * n))
    data = r.take(min(2 * n, r.left), "FIFO values")
    if len(data) < 2 * n:
        probs.append("FIFO count %d but %d byte(s) follow" % (n, len(data)))
    f["values"] = _regs(data)


def _resp_umas(r, f, probs, fc, req):
    f["umas_pairing_key"] = r.u8("UMAS pairing key")
    f["umas_status_code"] = status = r.u8("UMAS status")
    f["umas_status"] = spec.UMAS_STATUS_NAMES.get(status, "unknown_0x%02x" % status)
    if status not in spec.UMAS_STATUS_NAMES:
        probs.append("UMAS status 0x%02X is neither 0xFE (ok) nor 0xFD (error)" % status)
    f["data"] = r.rest()


def _resp_mei(r, f, probs, fc, req):
    f["mei_type"] = mei = r.u8("MEI type")
    f["mei_name"] = _mei_name(mei)
    if mei != spec.MEIType.READ_DEVICE_IDENTIFICATION:
        f["table"] = ""
        f["data"] = r.rest()
        return
    f["_cls"] = ModbusDeviceIdentification
    f["read_device_id_code"] = r.u8("read device id code")
    f["conformity_level"] = lvl = r.u8("conformity level")
    f["conformity_level_name"] = spec.CONFORMITY_LEVEL_NAMES.get(lvl, "unknown (0x%02X)" % lvl)
    mf = r.u8("more follows")
    f["more_follows"] = mf == spec.MORE_FOLLOWS
    if mf not in (0, spec.MORE_FOLLOWS):
        probs.append("more follows 0x%02X is neither 0x00 nor 0xFF" % mf)
    f["next_object_id"] = r.u8("next object id")
    count = r.u8("number of objects")
    objs = f["objects"] = []
    for i in range(count):
        oid = r.u8("object %d id" % i)
        n = r.u8("object %d length" % i)
        if n > r.left:
            value = r.rest()
            objs.append(DeviceIdObject(oid, spec.device_id_object_name(oid), _text(value), value))
            probs.append("object 0x%02X length %d but %d byte(s) follow" % (oid, n, len(value)))
            break
        value = r.take(n, "object value")
        objs.append(DeviceIdObject(oid, spec.device_id_object_name(oid), _text(value), value))


_RESPONSE = {
    1: _resp_read, 2: _resp_read, 3: _resp_read, 4: _resp_read,
    5: _resp_single, 6: _resp_single,
    7: _resp_exception_status, 8: _resp_diag, 11: _resp_event_counter, 12: _resp_event_log,
    15: _resp_write_multiple, 16: _resp_write_multiple,
    17: _resp_server_id, 20: _resp_read_file, 21: _resp_write_file,
    22: _resp_mask, 23: _resp_rw, 24: _resp_fifo, 43: _resp_mei,
    spec.UMAS_FUNCTION: _resp_umas,
}


# --- entry points ----------------------------------------------------------------


def _known(v):
    return v if isinstance(v, int) and v >= 0 else None


_FUNCTION_FACTS = [(spec.function_name(fc), spec.function_kind(fc), spec.op_class(fc), spec.table(fc))
                   for fc in range(256)]
"""Per function code byte: (function_name, kind, op, table), the spec's answers computed once."""


def _common(raw: bytes, side: int, fc: int) -> dict:
    name, kind, op, table = _FUNCTION_FACTS[fc & 0xFF]
    return {
        "side": side,
        "transaction_id": (raw[0] << 8) | raw[1] if len(raw) >= 2 else 0,
        "unit": raw[6] if len(raw) >= 7 else 0,
        "function": fc,
        "function_name": name,
        "kind": kind,
        "op": op,
        "table": table,
    }


def _finish(cls, f: dict, probs: list, r: _Reader | None):
    if r is not None and r.left > 0:
        probs.append("%d unexpected trailing byte(s)" % r.left)
    cls = f.pop("_cls", cls)
    for name in ("values", "events", "file_records", "objects"):
        if name in f:
            f[name] = tuple(f[name])
    if probs:
        f["malformed"] = "; ".join(probs)
    return cls(**f)


_ADDRESSED = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 22, 23})
"""Functions whose request key holds (address, quantity) in key[3], key[4]
(FC 23: the read part, which is what its response carries)."""


def _pairing(f: dict, ctx) -> tuple | None:
    """Fill request_frame/response_time/address/quantity from ctx; return the request key."""
    if not (isinstance(ctx, tuple) and len(ctx) >= 4 and isinstance(ctx[0], tuple)):
        return None
    req = ctx[0]
    f["request_frame"] = ctx[1]
    f["response_time"] = ctx[3]
    if len(req) >= 5 and req[2] in _ADDRESSED:
        f["address"], f["quantity"] = _known(req[3]), _known(req[4])
    return req


def _decode(key, raw: bytes, ctx, side: int):
    raw = bytes(raw)
    if len(raw) < spec.HEADER_AND_FC_LEN:
        f = _common(raw, side, 0)
        return _finish(ModbusRequest if side == 0 else ModbusResponse, f,
                       ["ADU of %d byte(s) is shorter than MBAP header + function code" % len(raw)], None)
    fc = raw[7]
    mtype = key[0] if isinstance(key, tuple) and key and key[0] in spec.MSG_TYPE_NAMES else None
    if mtype is None:
        mtype = spec.MSG_REQUEST if side == 0 else (
            spec.MSG_EXCEPTION if spec.is_exception(fc) else spec.MSG_RESPONSE)
    f = _common(raw, side, fc)
    probs: list[str] = []
    r = _Reader(raw, spec.HEADER_AND_FC_LEN)
    length = (raw[4] << 8) | raw[5]
    if length + 6 != len(raw):
        probs.append("MBAP length %d but the ADU has %d byte(s) after it" % (length, len(raw) - 6))
    if mtype == spec.MSG_EXCEPTION:
        f["kind"] = "modbus.exception"
        _pairing(f, ctx)
        cls = ModbusExceptionResponse
        try:
            code = r.u8("exception code")
            f["exception_code"] = code
            f["exception_name"] = spec.EXCEPTION_NAMES.get(code, "Unknown (%d)" % code)
        except _Short as exc:
            probs.append("truncated before the %s" % exc)
        return _finish(cls, f, probs, r)
    if mtype == spec.MSG_REQUEST:
        cls = ModbusRequest
        handler = _REQUEST.get(fc, _raw_body)
        args = (r, f, probs, fc)
    else:
        cls = ModbusResponse
        req = _pairing(f, ctx)
        handler = _RESPONSE.get(fc, _raw_body)
        args = (r, f, probs, fc, req) if fc in _RESPONSE else (r, f, probs, fc)
    try:
        handler(*args)
    except _Short as exc:
        probs.append("truncated before the %s" % exc)
    return _finish(cls, f, probs, r)


def decode(key, raw, ctx=None, side: int = 0):
    """One ADU (MBAP header included) to one event.  Never raises."""
    try:
        return _decode(key, raw, ctx, side)
    except Exception as exc:  # a decoder bug must not take the sensor down
        try:
            f = _common(bytes(raw), side, bytes(raw)[7] if len(raw) > 7 else 0)
        except Exception:
            f = _common(b"", side, 0)
        f["malformed"] = "internal decoder error: %s" % type(exc).__name__
        return (ModbusRequest if side == 0 else ModbusResponse)(**f)


# --- describe ---------------------------------------------------------------------


def _range(a, b) -> str:
    a = "?" if a is None or a < 0 else str(a)
    b = "?" if b is None or b < 0 else str(b)
    return "%s+%s" % (a, b)


def _op(fc: int) -> str:
    cls = _FUNCTION_FACTS[fc][2]
    return cls if cls in (spec.OP_READ, spec.OP_WRITE, spec.OP_DIAGNOSTIC, spec.OP_PROGRAM) else "other"


def describe(key) -> tuple[str, str, str]:
    """(kind, op, target) of a kernel key, without its bytes.

    ``op`` uses the architecture's vocabulary: read, write, diagnostic, program,
    or other (user-defined and unknown functions).  ``target`` examples:
    ``unit=1/holding_registers/0+10``, ``unit=1/holding_registers/100+2/read=0+10``
    (FC 23), ``unit=1/diagnostics/sub=4``, ``unit=1/file/4/7``, ``unit=1/fifo/1234``,
    ``unit=1/device_id/code=1/object=0``, ``unit=1/mei=13``, ``unit=1/fc=90``,
    ``unit=1/holding_registers/fc=3/exception=2``; ``?`` marks an unknown field.
    """
    try:
        mtype, unit, fc = key[0], key[1], key[2]
        if unit == spec.KEY_OVERFLOW:
            return "modbus.key_overflow", "other", "overflow"
        fc &= 0x7F
        op = _op(fc)
        _, kind, _, tbl = _FUNCTION_FACTS[fc]
        base = "unit=%d" % unit
        if mtype == spec.MSG_EXCEPTION:
            where = base + ("/" + tbl if tbl else "")
            return "modbus.exception", op, "%s/fc=%d/exception=%s" % (where, fc, "?" if key[3] < 0 else key[3])
        if fc == 23 and len(key) >= 7:
            return kind, op, "%s/%s/%s/read=%s" % (base, tbl, _range(key[5], key[6]), _range(key[3], key[4]))
        if fc == 43:
            mei = key[3] if len(key) > 3 else -1
            if mei == spec.MEIType.READ_DEVICE_IDENTIFICATION and len(key) >= 6:
                code = "?" if key[4] < 0 else key[4]
                obj = "?" if key[5] < 0 else key[5]
                return kind, op, "%s/device_id/code=%s/object=%s" % (base, code, obj)
            return kind, op, "%s/mei=%s" % (base, "?" if mei < 0 else mei)
        a, b = key[3], key[4]
        if a == spec.KEY_COVERED and fc in spec.COVERAGE_TABLES:
            return kind, op, "%s/%s/covered" % (base, tbl)
        if fc == 8:
            return kind, op, "%s/diagnostics/sub=%s" % (base, "?" if a < 0 else a)
        if fc in (20, 21):
            return kind, op, "%s/file/%s/%s" % (base, "?" if a < 0 else a, "?" if b < 0 else b)
        if fc == 24:
            return kind, op, "%s/fifo/%s" % (base, "?" if a < 0 else a)
        if tbl:
            return kind, op, "%s/%s/%s" % (base, tbl, _range(a, b))
        return kind, op, "%s/fc=%d" % (base, fc)
    except Exception:
        return "modbus.unknown", "other", "?"
