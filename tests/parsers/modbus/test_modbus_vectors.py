"""Vector table: every public function code, request and response, plus
exceptions, vendor/user-defined codes and malformed bodies.

Each row is fed through ``ModbusConnection`` whole, byte by byte, split at every
point and three times back to back (``assert_decodes``), for both kernel
implementations.  Wire examples follow the Modbus Application Protocol
Specification V1.1b3 §6 where it gives one.
"""
from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

from otwatch.parsers.modbus import (
    Anomaly,
    DeviceIdObject,
    FileRecord,
    ModbusConnection,
    ModbusDeviceIdentification,
    ModbusExceptionResponse,
    ModbusRequest,
    ModbusResponse,
    to_dict,
)
from otwatch.parsers.modbus import spec

_h = importlib.util.spec_from_file_location(
    "otwatch_test_parsers_helpers", pathlib.Path(__file__).resolve().parents[1] / "helpers.py")
helpers = importlib.util.module_from_spec(_h)
_h.loader.exec_module(helpers)
assert_decodes = helpers.assert_decodes


def adu(pdu_hex: str, tid: int = 1, unit: int = 1) -> bytes:
    pdu = bytes.fromhex(pdu_hex.replace(" ", ""))
    return tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit]) + pdu


def _common(fc: int, side: int, tid: int, unit: int) -> dict:
    return dict(side=side, transaction_id=tid, unit=unit, function=fc,
                function_name=spec.function_name(fc), kind=spec.function_kind(fc),
                op=spec.op_class(fc), table=spec.table(fc))


def rq(fc, tid=1, unit=1, **kw):
    return ModbusRequest(**{**_common(fc, 0, tid, unit), **kw})


def rs(fc, tid=1, unit=1, paired=True, cls=ModbusResponse, **kw):
    if paired:
        kw.setdefault("request_frame", 0)
        kw.setdefault("response_time", 0.0)
    return cls(**_common(fc, 1, tid, unit), **kw)


def ex(fc, code, name, tid=1, unit=1, paired=True, **kw):
    c = _common(fc | 0x80, 1, tid, unit)
    c["kind"] = "modbus.exception"
    if paired:
        kw.setdefault("request_frame", 0)
        kw.setdefault("response_time", 0.0)
    return ModbusExceptionResponse(**c, exception_code=code, exception_name=name, **kw)


def _obj(oid, name, text):
    return DeviceIdObject(oid, name, text, text.encode())


_DEVID = ("2B 0E 01 01 00 00 03"
          + "00 16" + b"Company identification".hex()
          + "01 0F" + b"Product code XX".hex()
          + "02 05" + b"V2.11".hex())
_DEVID_EXT = ("2B 0E 03 83 FF 81 02"
              + "80 04" + b"priv".hex()
              + "06 05" + b"app\xff\x1b".hex())

# (name, prime: request wire or None, side, wire, expected events)
VECTORS = [
    # FC 1 [APP §6.1 example]
    ("fc1_request", None, 0, adu("01 0013 0013"), [rq(1, address=19, quantity=19)]),
    ("fc1_response", adu("01 0013 0013"), 1, adu("01 03 CD 6B 05"),
     [rs(1, address=19, quantity=19, byte_count=3,
         values=(1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1))]),
    # FC 2 [APP §6.2]
    ("fc2_request", None, 0, adu("02 00C4 0016"), [rq(2, address=196, quantity=22)]),
    ("fc2_response", adu("02 00C4 0016"), 1, adu("02 03 AC DB 35"),
     [rs(2, address=196, quantity=22, byte_count=3,
         values=(0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1))]),
    # FC 3 [APP §6.3]
    ("fc3_request", None, 0, adu("03 006B 0003"), [rq(3, address=107, quantity=3)]),
    ("fc3_response", adu("03 006B 0003"), 1, adu("03 06 022B 0000 0064"),
     [rs(3, address=107, quantity=3, byte_count=6, values=(555, 0, 100))]),
    # FC 4 [APP §6.4]
    ("fc4_request", None, 0, adu("04 0008 0001", unit=0xFF), [rq(4, unit=0xFF, address=8, quantity=1)]),
    ("fc4_response", adu("04 0008 0001", unit=0xFF), 1, adu("04 02 000A", unit=0xFF),
     [rs(4, unit=0xFF, address=8, quantity=1, byte_count=2, values=(10,))]),
    # FC 5 [APP §6.5]
    ("fc5_request", None, 0, adu("05 00AC FF00"), [rq(5, address=172, quantity=1, values=(1,))]),
    ("fc5_response", adu("05 00AC FF00"), 1, adu("05 00AC FF00"), [rs(5, address=172, quantity=1, values=(1,))]),
    ("fc5_request_off", None, 0, adu("05 0000 0000"), [rq(5, address=0, quantity=1, values=(0,))]),
    ("fc5_request_bad_value", None, 0, adu("05 0001 1234"),
     [rq(5, address=1, quantity=1, values=(0x1234,),
         malformed="coil value 0x1234 is neither 0xFF00 nor 0x0000")]),
    # FC 6 [APP §6.6]
    ("fc6_request", None, 0, adu("06 0001 0003"), [rq(6, address=1, quantity=1, values=(3,))]),
    ("fc6_response", adu("06 0001 0003"), 1, adu("06 0001 0003"), [rs(6, address=1, quantity=1, values=(3,))]),
    # FC 7 [APP §6.7]
    ("fc7_request", None, 0, adu("07"), [rq(7)]),
    ("fc7_response", adu("07"), 1, adu("07 6D"), [rs(7, status=0x6D)]),
    # FC 8 [APP §6.8]
    ("fc8_request", None, 0, adu("08 0000 A537"),
     [rq(8, sub_function=0, sub_function_name="Return Query Data", data=b"\xa5\x37")]),
    ("fc8_response", adu("08 0000 A537"), 1, adu("08 0000 A537"),
     [rs(8, sub_function=0, sub_function_name="Return Query Data", data=b"\xa5\x37")]),
    ("fc8_listen_only", None, 0, adu("08 0004 0000"),
     [rq(8, sub_function=4, sub_function_name="Force Listen Only Mode", data=b"\x00\x00")]),
    ("fc8_restart", None, 0, adu("08 0001 FF00"),
     [rq(8, sub_function=1, sub_function_name="Restart Communications Option", data=b"\xff\x00")]),
    ("fc8_reserved_sub", None, 0, adu("08 0013"),
     [rq(8, sub_function=19, sub_function_name="Reserved (19)", data=b"")]),
    # FC 11 [APP §6.9]
    ("fc11_request", None, 0, adu("0B"), [rq(11)]),
    ("fc11_response", adu("0B"), 1, adu("0B FFFF 0108"), [rs(11, status=0xFFFF, event_count=264)]),
    # FC 12 [APP §6.10]
    ("fc12_request", None, 0, adu("0C"), [rq(12)]),
    ("fc12_response", adu("0C"), 1, adu("0C 08 0000 0108 0121 20 00"),
     [rs(12, byte_count=8, status=0, event_count=264, message_count=289, events=(0x20, 0x00))]),
    # FC 15 [APP §6.11]
    ("fc15_request", None, 0, adu("0F 0013 000A 02 CD 01"),
     [rq(15, address=19, quantity=10, byte_count=2, values=(1, 0, 1, 1, 0, 0, 1, 1, 1, 0))]),
    ("fc15_response", adu("0F 0013 000A 02 CD 01"), 1, adu("0F 0013 000A"), [rs(15, address=19, quantity=10)]),
    # FC 16 [APP §6.12]
    ("fc16_request", None, 0, adu("10 0001 0002 04 000A 0102"),
     [rq(16, address=1, quantity=2, byte_count=4, values=(10, 258))]),
    ("fc16_response", adu("10 0001 0002 04 000A 0102"), 1, adu("10 0001 0002"), [rs(16, address=1, quantity=2)]),
    ("fc16_bad_byte_count", None, 0, adu("10 0001 0002 03 000A 01"),
     [rq(16, address=1, quantity=2, byte_count=3, values=(10,), malformed="byte count 3, quantity 2 needs 4")]),
    # FC 17 [APP §6.13]
    ("fc17_request", None, 0, adu("11"), [rq(17)]),
    ("fc17_response", adu("11"), 1, adu("11 05 01 FF 41 42 43"),
     [rs(17, byte_count=5, server_id=1, run_indicator=True, additional_data=b"ABC", data=b"\x01\xffABC")]),
    ("fc17_response_off", adu("11"), 1, adu("11 02 07 00"),
     [rs(17, byte_count=2, server_id=7, run_indicator=False, data=b"\x07\x00")]),
    # FC 20 [APP §6.14]
    ("fc20_request", None, 0, adu("14 0E 06 0004 0001 0002 06 0003 0009 0002"),
     [rq(20, byte_count=14, file_records=(FileRecord(6, 4, 1, 2, (), 0), FileRecord(6, 3, 9, 2, (), 1)))]),
    # the paired request key labels sub-response 0 with its file and record; the rest by index
    ("fc20_response", adu("14 0E 06 0004 0001 0002 06 0003 0009 0002"), 1,
     adu("14 0C 05 06 0DFE 0020 05 06 33CD 0040"),
     [rs(20, byte_count=12, file_records=(FileRecord(6, 4, 1, 2, (0x0DFE, 0x20), 0),
                                          FileRecord(6, None, None, 2, (0x33CD, 0x40), 1)))]),
    ("fc20_response_unpaired", None, 1, adu("14 04 03 06 0DFE"),
     [rs(20, paired=False, byte_count=4, file_records=(FileRecord(6, None, None, 1, (0x0DFE,), 0),)),
      Anomaly("modbus.unsolicited_response", 1, "tid=1 unit=1 fc=20")]),
    # FC 21 [APP §6.15]
    ("fc21_request", None, 0, adu("15 0D 06 0004 0007 0003 06AF 04BE 100D"),
     [rq(21, byte_count=13, file_records=(FileRecord(6, 4, 7, 3, (0x06AF, 0x04BE, 0x100D), 0),))]),
    ("fc21_response", adu("15 0D 06 0004 0007 0003 06AF 04BE 100D"), 1,
     adu("15 0D 06 0004 0007 0003 06AF 04BE 100D"),
     [rs(21, byte_count=13, file_records=(FileRecord(6, 4, 7, 3, (0x06AF, 0x04BE, 0x100D), 0),))]),
    # FC 22 [APP §6.16]
    ("fc22_request", None, 0, adu("16 0004 00F2 0025"),
     [rq(22, address=4, quantity=1, and_mask=0xF2, or_mask=0x25)]),
    ("fc22_response", adu("16 0004 00F2 0025"), 1, adu("16 0004 00F2 0025"),
     [rs(22, address=4, quantity=1, and_mask=0xF2, or_mask=0x25)]),
    # FC 23 [APP §6.17]
    ("fc23_request", None, 0, adu("17 0003 0006 000E 0003 06 00FF 00FF 00FF"),
     [rq(23, read_address=3, read_quantity=6, address=14, quantity=3, byte_count=6, values=(255, 255, 255))]),
    ("fc23_response", adu("17 0003 0006 000E 0003 06 00FF 00FF 00FF"), 1,
     adu("17 0C 00FE 0ACD 0001 0003 000D 00FF"),
     [rs(23, address=3, quantity=6, byte_count=12, values=(0xFE, 0x0ACD, 1, 3, 0x0D, 0xFF))]),
    # FC 24 [APP §6.18]
    ("fc24_request", None, 0, adu("18 04DE"), [rq(24, address=1246)]),
    ("fc24_response", adu("18 04DE"), 1, adu("18 0006 0002 01B8 1284"),
     [rs(24, byte_count=6, fifo_count=2, values=(440, 4740))]),
    # FC 43 / 14 [APP §6.21]
    ("fc43_request", None, 0, adu("2B 0E 01 00"),
     [rq(43, mei_type=14, mei_name="Read Device Identification", read_device_id_code=1, object_id=0)]),
    ("fc43_response", adu("2B 0E 01 00"), 1, adu(_DEVID),
     [rs(43, cls=ModbusDeviceIdentification, mei_type=14, mei_name="Read Device Identification",
         read_device_id_code=1, conformity_level=1, conformity_level_name="basic (stream only)",
         more_follows=False, next_object_id=0,
         objects=(_obj(0, "VendorName", "Company identification"),
                  _obj(1, "ProductCode", "Product code XX"),
                  _obj(2, "MajorMinorRevision", "V2.11")))]),
    ("fc43_response_private", adu("2B 0E 03 00"), 1, adu(_DEVID_EXT),
     [rs(43, cls=ModbusDeviceIdentification, mei_type=14, mei_name="Read Device Identification",
         read_device_id_code=3, conformity_level=0x83,
         conformity_level_name="extended (stream and individual)", more_follows=True, next_object_id=0x81,
         objects=(_obj(0x80, "Private_0x80", "priv"),
                  DeviceIdObject(6, "UserApplicationName", "app\\xff\x1b", b"app\xff\x1b")))]),
    ("fc43_response_truncated_object", adu("2B 0E 01 00"), 1, adu("2B 0E 01 01 00 00 01 00 09 414243"),
     [rs(43, cls=ModbusDeviceIdentification, mei_type=14, mei_name="Read Device Identification",
         read_device_id_code=1, conformity_level=1, conformity_level_name="basic (stream only)",
         more_follows=False, next_object_id=0, objects=(_obj(0, "VendorName", "ABC"),),
         malformed="object 0x00 length 9 but 3 byte(s) follow")]),
    # FC 43 / 13 CANopen
    ("fc43_canopen_request", None, 0, adu("2B 0D 01 02 03"),
     [rq(43, mei_type=13, mei_name="CANopen General Reference", data=b"\x01\x02\x03", table="")]),
    # exceptions [APP §7]
    ("exception_illegal_address", adu("03 006B 0003"), 1, adu("83 02"),
     [ex(3, 2, "Illegal Data Address", address=107, quantity=3)]),
    ("exception_gateway", adu("01 0000 0001", unit=9), 1, adu("81 0B", unit=9),
     [ex(1, 11, "Gateway Target Device Failed to Respond", unit=9, address=0, quantity=1)]),
    ("exception_unknown_code", adu("10 0001 0001 02 0000"), 1, adu("90 42"),
     [ex(16, 0x42, "Unknown (66)", address=1, quantity=1)]),
    ("exception_truncated", adu("06 0001 0003"), 1, adu("86"),
     [ex(6, None, None, address=1, quantity=1, malformed="truncated before the exception code")]),
    # programming, user-defined and unknown functions keep their data
    # FC 90: Schneider UMAS (pairing key, UMAS function; status 0xFE ok / 0xFD error)
    ("fc90_umas_request", None, 0, adu("5A 00 02"),
     [rq(90, umas_pairing_key=0, umas_function=2, umas_function_name="read_id", umas_class="read")]),
    ("fc90_umas_response", adu("5A 00 02"), 1, adu("5A 00 FE 01"),
     [rs(90, umas_pairing_key=0, umas_status_code=0xFE, umas_status="ok", data=b"\x01")]),
    ("fc90_umas_stop_plc", None, 0, adu("5A 5B 41 FF 00"),
     [rq(90, umas_pairing_key=0x5B, umas_function=0x41, umas_function_name="stop_plc", umas_class="program",
         data=b"\xff\x00")]),
    ("fc90_umas_upload_block", None, 0, adu("5A 5B 31 0001 0100 0400 DEADBEEF"),
     [rq(90, umas_pairing_key=0x5B, umas_function=0x31, umas_function_name="upload_block", umas_class="program",
         data=bytes.fromhex("000101000400deadbeef"))]),
    ("fc90_umas_write_variables", None, 0, adu("5A 5B 23 00"),
     [rq(90, umas_pairing_key=0x5B, umas_function=0x23, umas_function_name="write_variables", umas_class="write",
         data=b"\x00")]),
    ("fc90_umas_unknown_function", None, 0, adu("5A 00 99"),
     [rq(90, umas_pairing_key=0, umas_function=0x99, umas_function_name="unknown_0x99", umas_class="unknown")]),
    ("fc90_umas_error", adu("5A 00 06"), 1, adu("5A 00 FD 12 00"),
     [rs(90, umas_pairing_key=0, umas_status_code=0xFD, umas_status="error", data=b"\x12\x00")]),
    ("fc90_umas_bad_status", adu("5A 00 06"), 1, adu("5A 00 07"),
     [rs(90, umas_pairing_key=0, umas_status_code=7, umas_status="unknown_0x07",
         malformed="UMAS status 0x07 is neither 0xFE (ok) nor 0xFD (error)")]),
    ("fc90_umas_truncated", None, 0, adu("5A 00"),
     [rq(90, umas_pairing_key=0, malformed="truncated before the UMAS function code")]),
    ("fc65_user_defined", None, 0, adu("41 0102"), [rq(65, data=b"\x01\x02")]),
    ("fc99_unknown", None, 0, adu("63"), [rq(99)]),
    # malformed public bodies: what could be read is kept
    ("fc3_truncated", None, 0, adu("03 006B"),
     [rq(3, address=107, malformed="truncated before the quantity")]),
    ("fc3_quantity_zero", None, 0, adu("03 0000 0000"),
     [rq(3, address=0, quantity=0, malformed="quantity 0 outside 1..125")]),
    ("fc3_trailing", None, 0, adu("03 0000 0001 FF"),
     [rq(3, address=0, quantity=1, malformed="1 unexpected trailing byte(s)")]),
    ("fc3_response_short", adu("03 0000 0002"), 1, adu("03 04 0001"),
     [rs(3, address=0, quantity=2, byte_count=4, values=(1,),
         malformed="byte count 4 but 2 byte(s) follow")]),
    ("fc1_request_too_many", None, 0, adu("01 0000 07D1"),
     [rq(1, address=0, quantity=2001, malformed="quantity 2001 outside 1..2000")]),
]

BY_NAME = {v[0]: v for v in VECTORS}
assert len(BY_NAME) == len(VECTORS)


@pytest.mark.parametrize("name,prime,side,wire,expected", VECTORS, ids=[v[0] for v in VECTORS])
def test_vector(impl, name, prime, side, wire, expected):
    make = lambda: ModbusConnection(implementation=impl)  # noqa: E731
    assert_decodes(make, side, wire, expected, prime=[(0, prime)] if prime else None)


@pytest.mark.parametrize("name,prime,side,wire,expected", VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_json(name, prime, side, wire, expected):
    for event in expected:
        d = to_dict(event)
        assert d["event"] == type(event).__name__
        json.dumps(d)  # bytes became hex, tuples lists, nothing else unserialisable


def test_every_public_function_has_request_and_response_vectors():
    names = {v[0] for v in VECTORS}
    for fc in spec.FunctionCode:
        assert f"fc{int(fc)}_request" in names, fc
        if fc != 43:
            assert f"fc{int(fc)}_response" in names, fc
    assert "fc43_response" in names


def test_literal_names():
    e = BY_NAME["fc3_response"][4][0]
    assert (e.kind, e.op, e.table, e.function_name) == (
        "modbus.read_holding_registers", "read", "holding_registers", "Read Holding Registers")
    assert spec.function_kind(90) == "modbus.program_function_90"
    assert spec.op_class(90) == "program"
    assert spec.op_class(66) == "user_defined"
    assert spec.op_class(105) == "user_defined"
    assert spec.op_class(50) == "unknown"
    assert spec.op_class(0x83) == "read"
    assert spec.is_exception(0x80) and not spec.is_exception(0x7F)


def test_to_dict_shape():
    d = to_dict(BY_NAME["fc43_response_private"][4][0])
    assert d["event"] == "ModbusDeviceIdentification"
    assert d["objects"][0] == {"object_id": 0x80, "name": "Private_0x80", "value": "priv", "raw": "70726976"}
    assert "malformed" not in d
