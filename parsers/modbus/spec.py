"""Modbus/TCP wire format: the one definition.

Read by the kernel (``otwatch.ext.modbus``), the full decoder
(``parsers/modbus/decode.py``), the docs (``docs/protocols/modbus.md``) and the
tests.  Nothing here does I/O; everything is a constant, a table or a pure
function of an int.

References:

* [APP]  MODBUS Application Protocol Specification V1.1b3 (modbus.org, 2012).
* [TCP]  MODBUS Messaging on TCP/IP Implementation Guide V1.0b (modbus.org, 2006).
* [PI]   Modicon Modbus Protocol Reference Guide PI-MBUS-300 Rev. J (1996),
         for the legacy function codes that [APP] Annex A only reserves.

Modbus/TCP application data unit (ADU) [TCP §3.1.3]::

     0       2       4       6    7    8
    +-------+-------+-------+----+----+------------------------+
    |  tid  |  pid  |  len  |unit| fc |  data (len - 2 bytes)  |
    +-------+-------+-------+----+----+------------------------+
    \\________ MBAP header ________/\\_________ PDU ____________/

    tid   transaction identifier, chosen by the client, echoed by the server
    pid   protocol identifier, 0 for Modbus
    len   bytes that follow: unit + PDU (2 .. 254)
    unit  unit identifier (the serial slave behind a gateway; 0xFF or 0 otherwise)
    fc    function code; a server sets bit 7 (0x80) in an exception response

All multi-byte fields are big-endian [APP §4.2].
"""
from __future__ import annotations

from enum import IntEnum

# --- framing ----------------------------------------------------------------

MBAP_HEADER_LEN = 7
"""tid(2) pid(2) len(2) unit(1) [TCP §3.1.3]."""
MBAP_LENGTH_OFFSET = 4
"""Offset of the big-endian length field; the ADU is ``MBAP_LENGTH_OFFSET + 2 + len`` bytes."""
MODBUS_PROTOCOL_ID = 0
"""The only protocol identifier that means Modbus [TCP §3.1.3]."""
MAX_PDU_LEN = 253
"""Largest PDU: the RS-485 ADU limit of 256 minus address and CRC [APP §4.1]."""
MAX_ADU_LEN = MBAP_HEADER_LEN + MAX_PDU_LEN
"""260 bytes [APP §4.1]."""
MIN_LENGTH_FIELD = 2
"""unit + function code: the smallest legal MBAP length."""
MAX_LENGTH_FIELD = MAX_PDU_LEN + 1
"""unit + the largest PDU: 254."""
HEADER_AND_FC_LEN = MBAP_HEADER_LEN + 1
"""Bytes needed to judge a header: MBAP plus the function code."""
EXCEPTION_BIT = 0x80
"""Set in the function code of an exception response [APP §7]."""

# Quantity limits of the public functions [APP §6.x]; exceeding them is legal on
# the wire for a passive observer, but decode() records it in ``malformed``/notes.
MAX_READ_BITS = 2000           # FC 1, 2: 0x0001..0x07D0 [APP §6.1, §6.2]
MAX_READ_REGISTERS = 125       # FC 3, 4: 0x0001..0x007D [APP §6.3, §6.4]
MAX_WRITE_BITS = 1968          # FC 15: 0x0001..0x07B0 [APP §6.11]
MAX_WRITE_REGISTERS = 123      # FC 16: 0x0001..0x007B [APP §6.12]
MAX_RW_WRITE_REGISTERS = 121   # FC 23 write part: 0x0001..0x0079 [APP §6.17]
MAX_FIFO_COUNT = 31            # FC 24 [APP §6.18]
FILE_REFERENCE_TYPE = 6        # FC 20/21 sub-request reference type [APP §6.14]
COIL_ON = 0xFF00               # FC 5 value for ON [APP §6.5]
COIL_OFF = 0x0000

# --- message type codes: key[0] of every kernel key ---------------------------

MSG_REQUEST = 1      # client -> server
MSG_RESPONSE = 2     # server -> client, normal response
MSG_EXCEPTION = 3    # server -> client, function code with EXCEPTION_BIT
MSG_TYPE_NAMES = {MSG_REQUEST: "request", MSG_RESPONSE: "response", MSG_EXCEPTION: "exception"}

ABSENT = -1
"""Key field whose value is unknown: an unpaired response, or a body too short to hold it."""


class FunctionCode(IntEnum):
    """Public function codes [APP §5.1, §6]."""

    READ_COILS = 1
    READ_DISCRETE_INPUTS = 2
    READ_HOLDING_REGISTERS = 3
    READ_INPUT_REGISTERS = 4
    WRITE_SINGLE_COIL = 5
    WRITE_SINGLE_REGISTER = 6
    READ_EXCEPTION_STATUS = 7      # serial line only [APP §6.7]
    DIAGNOSTICS = 8                # serial line only [APP §6.8]
    GET_COMM_EVENT_COUNTER = 11    # serial line only [APP §6.9]
    GET_COMM_EVENT_LOG = 12        # serial line only [APP §6.10]
    WRITE_MULTIPLE_COILS = 15
    WRITE_MULTIPLE_REGISTERS = 16
    REPORT_SERVER_ID = 17          # serial line only [APP §6.13]
    READ_FILE_RECORD = 20
    WRITE_FILE_RECORD = 21
    MASK_WRITE_REGISTER = 22
    READ_WRITE_MULTIPLE_REGISTERS = 23
    READ_FIFO_QUEUE = 24
    ENCAPSULATED_INTERFACE_TRANSPORT = 43


FUNCTION_NAMES: dict[int, str] = {
    1: "Read Coils",
    2: "Read Discrete Inputs",
    3: "Read Holding Registers",
    4: "Read Input Registers",
    5: "Write Single Coil",
    6: "Write Single Register",
    7: "Read Exception Status",
    8: "Diagnostics",
    11: "Get Comm Event Counter",
    12: "Get Comm Event Log",
    15: "Write Multiple Coils",
    16: "Write Multiple Registers",
    17: "Report Server ID",
    20: "Read File Record",
    21: "Write File Record",
    22: "Mask Write Register",
    23: "Read/Write Multiple Registers",
    24: "Read FIFO Queue",
    43: "Encapsulated Interface Transport",
    # Reserved in [APP] Annex A for legacy products; names from [PI] and vendors.
    9: "Program (484)",
    10: "Poll (484)",
    13: "Program Controller",
    14: "Poll Controller",
    90: "Unity/UMAS (Schneider)",
    91: "Reserved (legacy)",
    125: "Reserved (legacy programming)",
    126: "Reserved (legacy programming)",
}


class DiagnosticSubFunction(IntEnum):
    """FC 8 sub-function codes [APP §6.8.1]; 19 and 21..65535 are reserved (Annex A)."""

    RETURN_QUERY_DATA = 0x00
    RESTART_COMMUNICATIONS_OPTION = 0x01
    RETURN_DIAGNOSTIC_REGISTER = 0x02
    CHANGE_ASCII_INPUT_DELIMITER = 0x03
    FORCE_LISTEN_ONLY_MODE = 0x04
    CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER = 0x0A
    RETURN_BUS_MESSAGE_COUNT = 0x0B
    RETURN_BUS_COMMUNICATION_ERROR_COUNT = 0x0C
    RETURN_BUS_EXCEPTION_ERROR_COUNT = 0x0D
    RETURN_SERVER_MESSAGE_COUNT = 0x0E
    RETURN_SERVER_NO_RESPONSE_COUNT = 0x0F
    RETURN_SERVER_NAK_COUNT = 0x10
    RETURN_SERVER_BUSY_COUNT = 0x11
    RETURN_BUS_CHARACTER_OVERRUN_COUNT = 0x12
    CLEAR_OVERRUN_COUNTER_AND_FLAG = 0x14


DIAGNOSTIC_NAMES: dict[int, str] = {
    0x00: "Return Query Data",
    0x01: "Restart Communications Option",
    0x02: "Return Diagnostic Register",
    0x03: "Change ASCII Input Delimiter",
    0x04: "Force Listen Only Mode",
    0x0A: "Clear Counters and Diagnostic Register",
    0x0B: "Return Bus Message Count",
    0x0C: "Return Bus Communication Error Count",
    0x0D: "Return Bus Exception Error Count",
    0x0E: "Return Server Message Count",
    0x0F: "Return Server No Response Count",
    0x10: "Return Server NAK Count",
    0x11: "Return Server Busy Count",
    0x12: "Return Bus Character Overrun Count",
    0x14: "Clear Overrun Counter and Flag",
}

DIAGNOSTIC_DISRUPTIVE = frozenset({0x01, 0x04, 0x0A, 0x14})
"""Sub-functions that change the server's state (restart, listen-only, clearing counters)."""


class MEIType(IntEnum):
    """FC 43 MEI types [APP §6.19-6.21]; 0..12 and 15..255 reserved (Annex A)."""

    CANOPEN_GENERAL_REFERENCE = 13
    READ_DEVICE_IDENTIFICATION = 14


MEI_NAMES = {13: "CANopen General Reference", 14: "Read Device Identification"}


class ReadDeviceIdCode(IntEnum):
    """FC 43/14 "Read Device ID code" [APP §6.21]."""

    BASIC = 1       # stream access, objects 0x00-0x02
    REGULAR = 2     # stream access, objects 0x03-0x7F
    EXTENDED = 3    # stream access, objects 0x80-0xFF
    SPECIFIC = 4    # one specific object


READ_DEVICE_ID_NAMES = {1: "basic", 2: "regular", 3: "extended", 4: "specific"}

DEVICE_ID_OBJECT_NAMES: dict[int, str] = {
    0x00: "VendorName",
    0x01: "ProductCode",
    0x02: "MajorMinorRevision",
    0x03: "VendorUrl",
    0x04: "ProductName",
    0x05: "ModelName",
    0x06: "UserApplicationName",
}
"""0x07-0x7F reserved (regular category); 0x80-0xFF private (extended) [APP §6.21]."""


def device_id_object_name(object_id: int) -> str:
    if object_id in DEVICE_ID_OBJECT_NAMES:
        return DEVICE_ID_OBJECT_NAMES[object_id]
    if object_id >= 0x80:
        return "Private_0x%02X" % object_id
    return "Reserved_0x%02X" % object_id


CONFORMITY_LEVEL_NAMES = {
    0x01: "basic (stream only)",
    0x02: "regular (stream only)",
    0x03: "extended (stream only)",
    0x81: "basic (stream and individual)",
    0x82: "regular (stream and individual)",
    0x83: "extended (stream and individual)",
}

MORE_FOLLOWS = 0xFF
"""FC 43/14 "More Follows" value meaning another transaction is needed [APP §6.21]."""
RUN_INDICATOR_ON = 0xFF
"""FC 17 run indicator status: 0x00 OFF, 0xFF ON [APP §6.13]."""


class ExceptionCode(IntEnum):
    """Exception codes [APP §7]."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    NEGATIVE_ACKNOWLEDGE = 0x07      # [PI] only; no longer listed in [APP]
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND = 0x0B


EXCEPTION_NAMES: dict[int, str] = {
    0x01: "Illegal Function",
    0x02: "Illegal Data Address",
    0x03: "Illegal Data Value",
    0x04: "Server Device Failure",
    0x05: "Acknowledge",
    0x06: "Server Device Busy",
    0x07: "Negative Acknowledge",
    0x08: "Memory Parity Error",
    0x0A: "Gateway Path Unavailable",
    0x0B: "Gateway Target Device Failed to Respond",
}


def is_exception(function_raw: int) -> bool:
    """The one exception test (pymodbus shows why there must be only one)."""
    return bool(function_raw & EXCEPTION_BIT)


# --- classification: operation class and table --------------------------------

OP_READ = "read"
OP_WRITE = "write"
OP_DIAGNOSTIC = "diagnostic"
OP_PROGRAM = "program"
OP_USER_DEFINED = "user_defined"
OP_UNKNOWN = "unknown"

T_COILS = "coils"
T_DISCRETE_INPUTS = "discrete_inputs"
T_INPUT_REGISTERS = "input_registers"
T_HOLDING_REGISTERS = "holding_registers"
T_FILE = "file"
T_FIFO = "fifo"
T_DEVICE_ID = "device_id"

USER_DEFINED_RANGES = ((65, 72), (100, 110))
"""User-defined function codes [APP §5 fig. 10]."""

PROGRAM_FUNCTIONS = frozenset({9, 10, 13, 14, 90, 91, 125, 126})
"""Vendor programming.  [APP] Annex A reserves 9, 10, 13, 14, 41, 42, 90, 91,
125, 126 and 127 "for legacy products"; [PI] names 9/10/13/14 Program/Poll
(484 and controller); 90 (0x5A) is Schneider's UMAS (Unity/EcoStruxure
programming, Wireshark's "Unity (Schneider)"); 91, 125 and 126 are used by
Modicon programming and firmware tools (Concept, ProWORX) and are flagged as
such by Suricata's ``function reserved`` category and public ICS IDS rules."""

# --- UMAS: Schneider Electric's programming protocol inside FC 90 (0x5A) -------------
#
# Not public.  The layout and the function table follow what the public
# reverse-engineering work agrees on:
#
# * [WS-UMAS]  Wireshark UMAS dissector, packet-umas.h / packet-umas.c (Ben
#              Hutcheson, 2024): function_code_vals and the request/response layouts.
# * [UMAS-LUA] biero-el-corridor, Wireshark-UMAS-Modicon-M340-protocol,
#              modbus-umas-schneider.lua (and forks that fixed 0x40/0x41, which the
#              original listed under decimal 58/59).
# * [KASP]     Kaspersky ICS CERT, "The secrets of Schneider Electric's UMAS
#              protocol" (2022); [LIRAS] "The Unity (UMAS) protocol", Part I
#              (lirasenlared.blogspot.com, 2017), the source the others cite.
#
# Request PDU::   0x5A | pairing key (1) | UMAS function (1) | data
# Response PDU::  0x5A | pairing key (1) | status (1): 0xFE ok, 0xFD error | data
#
# The pairing key is 0x00 until TAKE_PLC_RESERVATION hands one out.  A response
# does not repeat the UMAS function: it is known only from the paired request.

UMAS_FUNCTION = 0x5A
UMAS_STATUS_OK = 0xFE
UMAS_STATUS_ERROR = 0xFD
UMAS_STATUS_NAMES = {UMAS_STATUS_OK: "ok", UMAS_STATUS_ERROR: "error"}

UMAS_SESSION = "session"     # connection set-up, reservation, keep-alive
UMAS_READ = "read"           # identification, status, memory, variables
UMAS_WRITE = "write"         # variables, coils/registers, I/O objects
UMAS_PROGRAM = "program"     # program transfer and run state: program/firmware class

UMAS_FUNCTIONS: dict[int, tuple[str, str, str]] = {
    # code: (stable id, description [WS-UMAS], class)
    0x01: ("init_comm", "Initialize a UMAS communication", UMAS_SESSION),
    0x02: ("read_id", "Request a PLC ID", UMAS_READ),
    0x03: ("read_project_info", "Read project information", UMAS_READ),
    0x04: ("read_plc_info", "Get internal PLC info", UMAS_READ),
    0x06: ("read_card_info", "Get internal PLC SD card info", UMAS_READ),
    0x0A: ("repeat", "Send back data sent to the PLC (synchronisation)", UMAS_SESSION),
    0x10: ("take_plc_reservation", "Assign an owner to the PLC", UMAS_SESSION),
    0x11: ("release_plc_reservation", "Release the reservation of a PLC", UMAS_SESSION),
    0x12: ("keep_alive", "Keep alive", UMAS_SESSION),
    0x20: ("read_memory_block", "Read a memory block of the PLC", UMAS_READ),
    0x22: ("read_variables", "Read system bits, system words and strategy variables", UMAS_READ),
    0x23: ("write_variables", "Write system bits, system words and strategy variables", UMAS_WRITE),
    0x24: ("read_coils_registers", "Read coils and holding registers", UMAS_READ),
    0x25: ("write_coils_registers", "Write coils and holding registers", UMAS_WRITE),
    0x26: ("data_dictionary", "Read data dictionary (variables and data types)", UMAS_READ),
    0x30: ("initialize_upload", "Initialize strategy upload (engineering station to PLC)", UMAS_PROGRAM),
    0x31: ("upload_block", "Upload a strategy block to the PLC", UMAS_PROGRAM),
    0x32: ("end_strategy_upload", "Finish strategy upload (engineering station to PLC)", UMAS_PROGRAM),
    0x33: ("initialize_download", "Initialize strategy download (PLC to engineering station)", UMAS_PROGRAM),
    0x34: ("download_block", "Download a strategy block from the PLC", UMAS_PROGRAM),
    0x35: ("end_strategy_download", "Finish strategy download (PLC to engineering station)", UMAS_PROGRAM),
    0x39: ("read_eth_master_data", "Read Ethernet master data", UMAS_READ),
    0x40: ("start_plc", "Start the PLC", UMAS_PROGRAM),
    0x41: ("stop_plc", "Stop the PLC", UMAS_PROGRAM),
    0x50: ("monitor_plc", "Monitor variables, system bits and words", UMAS_READ),
    0x58: ("check_plc", "Check PLC connection status", UMAS_SESSION),
    0x70: ("read_io_object", "Read I/O object", UMAS_READ),
    0x71: ("write_io_object", "Write I/O object", UMAS_WRITE),
    0x73: ("get_status_module", "Get status module", UMAS_READ),
}
"""UMAS functions.  "Upload"/"download" are UMAS's own words and run opposite to
the usual engineering-tool sense ([WS-UMAS]: upload = engineering station to PLC);
both directions of a strategy transfer, and start/stop, are program class."""


def umas_function_name(code: int) -> str:
    entry = UMAS_FUNCTIONS.get(code)
    return entry[0] if entry else "unknown_0x%02x" % code


def umas_class(code: int) -> str:
    entry = UMAS_FUNCTIONS.get(code)
    return entry[2] if entry else "unknown"


_PUBLIC_CLASS: dict[int, tuple[str, str]] = {
    1: (OP_READ, T_COILS),
    2: (OP_READ, T_DISCRETE_INPUTS),
    3: (OP_READ, T_HOLDING_REGISTERS),
    4: (OP_READ, T_INPUT_REGISTERS),
    5: (OP_WRITE, T_COILS),
    6: (OP_WRITE, T_HOLDING_REGISTERS),
    7: (OP_DIAGNOSTIC, ""),
    8: (OP_DIAGNOSTIC, ""),
    11: (OP_DIAGNOSTIC, ""),
    12: (OP_DIAGNOSTIC, ""),
    15: (OP_WRITE, T_COILS),
    16: (OP_WRITE, T_HOLDING_REGISTERS),
    17: (OP_DIAGNOSTIC, ""),
    20: (OP_READ, T_FILE),
    21: (OP_WRITE, T_FILE),
    22: (OP_WRITE, T_HOLDING_REGISTERS),
    23: (OP_WRITE, T_HOLDING_REGISTERS),   # reads too, but a write is what matters
    24: (OP_READ, T_FIFO),
    43: (OP_DIAGNOSTIC, T_DEVICE_ID),      # MEI 14; MEI 13 (CANopen) has no table
}


def is_user_defined(fc: int) -> bool:
    return any(lo <= fc <= hi for lo, hi in USER_DEFINED_RANGES)


def op_class(fc: int) -> str:
    """read / write / diagnostic / program / user_defined / unknown (exception bit ignored)."""
    fc &= 0x7F
    if fc in _PUBLIC_CLASS:
        return _PUBLIC_CLASS[fc][0]
    if fc in PROGRAM_FUNCTIONS:
        return OP_PROGRAM
    if is_user_defined(fc):
        return OP_USER_DEFINED
    return OP_UNKNOWN


def table(fc: int) -> str:
    """The data table a function touches, or "" (exception bit ignored)."""
    return _PUBLIC_CLASS.get(fc & 0x7F, (None, ""))[1]


def function_name(fc: int) -> str:
    fc &= 0x7F
    if fc in FUNCTION_NAMES:
        return FUNCTION_NAMES[fc]
    if is_user_defined(fc):
        return "User Defined (%d)" % fc
    return "Unknown (%d)" % fc


def function_kind(fc: int) -> str:
    """Stable dotted id of a function: ``modbus.read_holding_registers``."""
    fc &= 0x7F
    try:
        return "modbus." + FunctionCode(fc).name.lower()
    except ValueError:
        pass
    cls = op_class(fc)
    if cls == OP_PROGRAM:
        return "modbus.program_function_%d" % fc
    if cls == OP_USER_DEFINED:
        return "modbus.user_defined_function_%d" % fc
    return "modbus.unknown_function_%d" % fc


# --- what the kernel always reports in full --------------------------------

DETAIL_REQUEST = 1
DETAIL_RESPONSE = 2

ALWAYS_DETAILED_REQUESTS = frozenset({8, 17, 21, 43})
"""Requests reported even when their key is known: diagnostics, identification and
file writes.  Register and coil reads and writes (FC 1-6, 15, 16, 22, 23) are
reported when they reach an address not seen before on the link (COVERAGE_TABLES)."""
ALWAYS_DETAILED_RESPONSES = frozenset({8, 17, 43})
"""Responses reported even when their key is known: diagnostics and identity."""


def _detail_flags(fc: int) -> int:
    flags = 0
    if fc in ALWAYS_DETAILED_REQUESTS:
        flags |= DETAIL_REQUEST
    if fc in ALWAYS_DETAILED_RESPONSES:
        flags |= DETAIL_RESPONSE
    if op_class(fc) == OP_PROGRAM and 0 < fc < 0x80:
        flags |= DETAIL_REQUEST | DETAIL_RESPONSE
    return flags


DETAIL_TABLE: bytes = bytes(_detail_flags(fc) for fc in range(256))
"""Indexed by the raw function code (request) or code & 0x7F (response):
DETAIL_REQUEST / DETAIL_RESPONSE bits.  Programming functions (UMAS, FC 90 …)
are always detailed; user-defined, unknown and invalid function codes and
exceptions are reported when their key is new on the link (a function-code or
unit-id sweep is one message per new key, then the key cap, not one per
packet; invalid codes also raise modbus.invalid_function_code every time)."""


def _sane(fc: int) -> bool:
    return op_class(fc) != OP_UNKNOWN and fc & 0x7F != 0


SANE_FC_TABLE: bytes = bytes(1 if _sane(fc) else 0 for fc in range(256))
"""1 where ``fc & 0x7F`` is public, programming or user-defined: what a resync
accepts as the function code of a plausible header (the exception bit is
allowed only from the server, which the kernel checks)."""


def always_detailed(fc: int, msg_type: int) -> bool:
    if msg_type == MSG_EXCEPTION:
        return False
    bit = DETAIL_REQUEST if msg_type == MSG_REQUEST else DETAIL_RESPONSE
    return bool(DETAIL_TABLE[fc & 0xFF] & bit)


# --- key layouts (see docs/protocols/modbus.md) --------------------------------
#
# request    (MSG_REQUEST, unit, fc, a, b)
#            FC 1-4, 15, 16: a = start address, b = quantity
#            FC 5, 6, 22:    a = address, b = 1
#            FC 8:           a = sub-function, b = 0
#            FC 20, 21:      a = file number, b = record number (first sub-request)
#            FC 24:          a = FIFO pointer address, b = 0
#            others:         a = b = 0
#            ABSENT (-1) where the body is too short to hold the field
# request    (MSG_REQUEST, unit, 23, read start, read qty, write start, write qty)
# request    (MSG_REQUEST, unit, 43, MEI type, read device id code, object id)
# response   the paired request's key with key[0] = MSG_RESPONSE, or
#            (MSG_RESPONSE, unit, fc, ABSENT, ABSENT) when unpaired
# exception  (MSG_EXCEPTION, unit, fc without EXCEPTION_BIT, exception code)

KEY_SHAPE_RW = 23
KEY_SHAPE_MEI = 43

KEY_OVERFLOW = -2
"""Fields 1-4 of the overflow key ``(message type, -2, -2, -2, -2)``: the bucket of a link
direction whose keys reached ``limits.link_keys_max``."""

KEY_COVERED = -4
"""Fields 3-4 of the lump key ``(message type, unit, fc, -4, -4)``: requests of a register
function (COVERAGE_TABLES) whose addresses all lie inside the link's exact coverage set of
that unit and function code and that have no key of their own (and their paired responses),
counted together (docs/protocols/modbus.md, "Register coverage")."""

# --- register coverage (what "new" means for reads and writes) ----------------------
#
# coverage key   (KEY_COVERAGE, unit, function code, rw) -> the addresses requested so far
#                on the link with that function code (runs of [start, end) in the kernel's
#                _Cover); rw 0 read, 1 write (FC 23 has both).  The function code names the
#                table, and a new function code is new to the consumers (policy and baseline
#                judge operations by it).  Held in the link's client tallies beside the
#                message keys; never an aggregate (its int_count stays 0).
KEY_COVERAGE = 0
COVER_COILS, COVER_DISCRETE_INPUTS, COVER_HOLDING, COVER_INPUT = 0, 1, 2, 3
COVER_TABLE_NAMES = ("coils", "discrete_inputs", "holding_registers", "input_registers")
COVERAGE_TABLES: dict[int, tuple[int, int]] = {
    1: (COVER_COILS, 0), 2: (COVER_DISCRETE_INPUTS, 0), 3: (COVER_HOLDING, 0), 4: (COVER_INPUT, 0),
    5: (COVER_COILS, 1), 15: (COVER_COILS, 1), 6: (COVER_HOLDING, 1), 16: (COVER_HOLDING, 1),
    22: (COVER_HOLDING, 1), 23: (COVER_HOLDING, 1),   # FC 23 reads too: (fc 23, rw 0)
}
"""Function code -> (table, rw) of the addresses its request names."""
COVER_TABLE: bytes = bytes((COVERAGE_TABLES[fc][0] * 2 + COVERAGE_TABLES[fc][1] + 1) if fc in COVERAGE_TABLES else 0
                           for fc in range(256))
"""Indexed by function code: 0 when it names no register range, else table * 2 + rw + 1."""

# Anomaly ids the kernel and the connection emit (docs/protocols/modbus.md).
ANOMALIES: dict[str, str] = {
    "modbus.invalid_protocol_id": "MBAP protocol identifier is not 0 on a confirmed connection; resynchronising",
    "modbus.invalid_length": "MBAP length outside 2..254 on a confirmed connection; resynchronising",
    "modbus.invalid_function_code": "function code 0, or a request with the exception bit set",
    "modbus.resync": "bytes skipped before a plausible MBAP header was found again",
    "modbus.unsolicited_response": "response or exception with no pending request of that transaction id and unit",
    "modbus.response_mismatch": "response function code differs from the pending request's",
    "modbus.unanswered_request": "requests never answered (reported at the server's end of stream)",
    "modbus.pending_overflow": "more outstanding requests than limits.modbus_max_pending; oldest dropped",
    "modbus.truncated": "partial ADU dropped at the end of the stream",
    "modbus.key_overflow": "a link direction reached limits.link_keys_max distinct keys; new ones are counted in its overflow key",
    "modbus.not_modbus": "the stream is not Modbus/TCP (ModbusConnection only; the engine detaches the kernel)",
}
