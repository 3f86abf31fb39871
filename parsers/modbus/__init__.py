"""Modbus/TCP: spec tables, typed events, full decoder and the sans-IO connection.

    from otwatch.parsers.modbus import ModbusConnection
    events = ModbusConnection().feed(data, side)

``spec`` is the one definition of the wire format; the compiled kernel
(``otwatch.ext.modbus``) reads it too.  See docs/protocols/modbus.md.
"""
from __future__ import annotations

from .connection import ModbusConnection
from .decode import decode, describe
from .events import (
    Anomaly,
    DeviceIdObject,
    FileRecord,
    ModbusDeviceIdentification,
    ModbusExceptionResponse,
    ModbusRequest,
    ModbusResponse,
    to_dict,
)

__all__ = [
    "Anomaly",
    "DeviceIdObject",
    "FileRecord",
    "ModbusConnection",
    "ModbusDeviceIdentification",
    "ModbusExceptionResponse",
    "ModbusRequest",
    "ModbusResponse",
    "decode",
    "describe",
    "to_dict",
]
