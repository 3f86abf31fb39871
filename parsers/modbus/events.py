"""Typed, frozen events of a Modbus/TCP connection.

Every event is inert data: ints, strs, bytes, tuples and nested frozen
dataclasses.  Strings taken from the wire are decoded with
``errors="backslashreplace"`` and are otherwise as sent: escaping them for a
terminal, a log line or a SIEM is the sink's job (``parsers.common.escape``).

Fields shared by the three message events (``ModbusRequest``,
``ModbusResponse``, ``ModbusExceptionResponse``; ``ModbusDeviceIdentification``
is a ``ModbusResponse``):

* ``side``: 0 client, 1 server (``parsers.common``).
* ``transaction_id``, ``unit``: from the MBAP header.
* ``function``: the function code byte as sent (an exception keeps bit 7 set).
* ``function_name``: spec name ("Read Holding Registers"; "Unknown (99)").
* ``kind``: stable dotted id (``modbus.read_holding_registers``), see ``spec.function_kind``.
* ``op``: read / write / diagnostic / program / user_defined / unknown (``spec.op_class``).
* ``table``: coils / discrete_inputs / input_registers / holding_registers / file /
  fifo / device_id, or "" when the function addresses no table.
* ``malformed``: ``None``, or why the body does not match the function's layout.
  Whatever could be read before the problem is still filled in.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Anomaly:
    """Something wrong or noteworthy on the stream that is not one message.

    ``id`` is a stable dotted id listed in ``spec.ANOMALIES`` and documented in
    docs/protocols/modbus.md; ``detail`` a short human-readable explanation.
    """

    id: str
    side: int
    detail: str


@dataclass(frozen=True)
class FileRecord:
    """One FC 20/21 sub-request or sub-response.

    ``reference_type`` should be 6; ``record_length`` is in registers; ``data``
    the record's registers; ``index`` the 0-based position in its message.

    A FC 20 sub-response does not repeat its file and record number: they are the
    ``index``-th sub-request's.  The kernel's pairing context carries only the
    first sub-request's (the request key), so in a paired response record 0 has
    ``file_number`` and ``record_number`` filled in and later records ``None``
    (match them to the request by ``index``, e.g. via ``request_frame``).
    """

    reference_type: int
    file_number: int | None
    record_number: int | None
    record_length: int
    data: tuple[int, ...] = ()
    index: int | None = None


@dataclass(frozen=True)
class DeviceIdObject:
    """One FC 43/14 object: ``object_id``, its spec name (``VendorName``,
    ``Private_0x80`` …), ``value`` decoded as text and ``raw`` as sent."""

    object_id: int
    name: str
    value: str
    raw: bytes


@dataclass(frozen=True)
class ModbusRequest:
    """A client request.

    Attributes (beyond the shared ones; ``None`` when the function has no such field):

    * ``address``: start address (FC 1-4, 15, 16), the address (FC 5, 6, 22), the
      write start (FC 23), the FIFO pointer address (FC 24).
    * ``quantity``: number of coils/registers (FC 1-4, 15, 16), 1 for FC 5/6/22,
      the write quantity for FC 23.
    * ``byte_count``: the byte count field (FC 15, 16, 20, 21, 23).
    * ``values``: what is written: coil states 0/1 (FC 5, 15), register values
      (FC 6, 16, 23).
    * ``read_address``, ``read_quantity``: the read part of FC 23.
    * ``and_mask``, ``or_mask``: FC 22.
    * ``sub_function``, ``sub_function_name``: FC 8.
    * ``mei_type``, ``mei_name``, ``read_device_id_code``, ``object_id``: FC 43.
    * ``file_records``: FC 20/21 sub-requests.
    * ``umas_pairing_key``, ``umas_function``, ``umas_function_name``,
      ``umas_class``: FC 90 (Schneider UMAS): the session's pairing key, the UMAS
      function code, its stable name (``stop_plc``; ``unknown_0xNN``) and class
      (session / read / write / program, ``spec.UMAS_FUNCTIONS``).
    * ``data``: FC 8 data, FC 43/13 payload, the UMAS data after its function
      code, or the whole body of a function without a public layout
      (programming, user-defined, unknown).
    """

    side: int
    transaction_id: int
    unit: int
    function: int
    function_name: str
    kind: str
    op: str
    table: str
    address: int | None = None
    quantity: int | None = None
    byte_count: int | None = None
    values: tuple[int, ...] = ()
    read_address: int | None = None
    read_quantity: int | None = None
    and_mask: int | None = None
    or_mask: int | None = None
    sub_function: int | None = None
    sub_function_name: str | None = None
    mei_type: int | None = None
    mei_name: str | None = None
    read_device_id_code: int | None = None
    object_id: int | None = None
    file_records: tuple[FileRecord, ...] = ()
    umas_pairing_key: int | None = None
    umas_function: int | None = None
    umas_function_name: str | None = None
    umas_class: str | None = None
    data: bytes = b""
    malformed: str | None = None


@dataclass(frozen=True)
class ModbusResponse:
    """A normal server response.

    Pairing (from the kernel; ``None`` when the response is unsolicited):

    * ``request_frame``: frame number of the paired request.
    * ``response_time``: seconds between request and response (packet time).
    * ``address``, ``quantity``: the paired request's start address and quantity
      (FC 1-4, 23 read part; FC 5, 6, 15, 16, 22 take them from the echo).
      ``values[i]`` then belongs to ``address + i``.

    Body:

    * ``byte_count``: the byte count field where the function has one.
    * ``values``: coil/input states 0/1 (FC 1, 2; cut to the request's quantity when
      paired), register values (FC 3, 4, 23), the echoed value (FC 5, 6), FIFO
      values (FC 24).
    * ``status``: FC 7 exception status byte, FC 11/12 status word.
    * ``event_count``, ``message_count``, ``events``: FC 11/12.
    * ``sub_function``, ``sub_function_name``, ``data``: FC 8 (echo or counter).
    * ``and_mask``, ``or_mask``: FC 22 echo.
    * ``fifo_count``: FC 24.
    * ``server_id``, ``run_indicator``, ``additional_data``: FC 17.  The spec leaves
      the server id's length device-specific; like libmodbus and most devices we
      read one byte of server id, one run-indicator byte (``True`` for 0xFF,
      ``False`` for 0x00, ``None`` otherwise) and the rest as additional data.
      ``data`` keeps the whole body after the byte count.
    * ``file_records``: FC 20 sub-responses / FC 21 echo (see ``FileRecord``
      for how FC 20 sub-responses are labelled).
    * ``mei_type``, ``mei_name``, ``data``: FC 43 other than MEI 14.
    * ``umas_pairing_key``, ``umas_status_code``, ``umas_status`` (``ok`` for
      0xFE, ``error`` for 0xFD), ``data`` (after the status): FC 90 (UMAS).  The
      response does not carry the UMAS function; the request key does not either
      (kernel contract), so it is not repeated here.
    * ``data``: the whole body of a function without a public layout.
    """

    side: int
    transaction_id: int
    unit: int
    function: int
    function_name: str
    kind: str
    op: str
    table: str
    request_frame: int | None = None
    response_time: float | None = None
    address: int | None = None
    quantity: int | None = None
    byte_count: int | None = None
    values: tuple[int, ...] = ()
    status: int | None = None
    event_count: int | None = None
    message_count: int | None = None
    events: tuple[int, ...] = ()
    sub_function: int | None = None
    sub_function_name: str | None = None
    and_mask: int | None = None
    or_mask: int | None = None
    fifo_count: int | None = None
    server_id: int | None = None
    run_indicator: bool | None = None
    additional_data: bytes = b""
    file_records: tuple[FileRecord, ...] = ()
    mei_type: int | None = None
    mei_name: str | None = None
    umas_pairing_key: int | None = None
    umas_status_code: int | None = None
    umas_status: str | None = None
    data: bytes = b""
    malformed: str | None = None


@dataclass(frozen=True)
class ModbusDeviceIdentification(ModbusResponse):
    """FC 43 / MEI 14 Read Device Identification response.

    * ``read_device_id_code``: 1 basic, 2 regular, 3 extended, 4 one specific object.
    * ``conformity_level`` and its name (``spec.CONFORMITY_LEVEL_NAMES``).
    * ``more_follows``: another transaction is needed (0xFF on the wire).
    * ``next_object_id``: where that transaction starts.
    * ``objects``: every object in order, private ones (0x80-0xFF) included.
    """

    read_device_id_code: int | None = None
    conformity_level: int | None = None
    conformity_level_name: str | None = None
    more_follows: bool | None = None
    next_object_id: int | None = None
    objects: tuple[DeviceIdObject, ...] = ()

    def object_values(self) -> dict[str, str]:
        """{object name: value}; a repeated object keeps its last value."""
        return {o.name: o.value for o in self.objects}


@dataclass(frozen=True)
class ModbusExceptionResponse:
    """A server exception response (function code with bit 7 set).

    * ``exception_code`` (``None`` when the body is empty) and ``exception_name``.
    * ``request_frame``, ``response_time``, ``address``, ``quantity``: from the
      paired request, as in ``ModbusResponse``.
    """

    side: int
    transaction_id: int
    unit: int
    function: int
    function_name: str
    kind: str
    op: str
    table: str
    exception_code: int | None = None
    exception_name: str | None = None
    request_frame: int | None = None
    response_time: float | None = None
    address: int | None = None
    quantity: int | None = None
    malformed: str | None = None


Event = ModbusRequest | ModbusResponse | ModbusExceptionResponse


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def to_dict(event) -> dict:
    """A JSON-friendly dict: ``{"event": class name, field: value, …}``.

    ``None`` fields are left out; bytes become lower-case hex strings; tuples
    become lists; nested dataclasses become dicts.
    """
    d = {"event": type(event).__name__}
    d.update(_jsonable(dataclasses.asdict(event)))
    return d
