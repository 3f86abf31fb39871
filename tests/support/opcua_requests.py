"""OPC UA service requests encoded by asyncua (a real implementation), as single plaintext MSG chunks.

Node ids are given as strings (``"ns=2;i=10"``, ``"ns=2;s=Line1.Temp"``, ``"i=2258"``); a Write
value may be a Python value or one of the names in ``SPECIAL`` for the built-in types a plain
Python value does not select (NodeId, QualifiedName, LocalizedText, nested Variant array, Guid,
StatusCode, ExtensionObject).
"""
from __future__ import annotations

import datetime
import struct
import uuid

from asyncua import ua
from asyncua.ua.ua_binary import struct_to_binary


def _msg(req, reqid=1, seq=1) -> bytes:
    req.RequestHeader.Timestamp = datetime.datetime(2026, 12, 5)     # deterministic bytes
    body = struct_to_binary(req)
    payload = struct.pack("<IIII", 1, 1, seq, reqid) + body
    return b"MSGF" + struct.pack("<I", 8 + len(payload)) + payload


def _special(name):
    if name == "nodeid":
        return ua.Variant(ua.NodeId.from_string("ns=4;s=Some.Node"), ua.VariantType.NodeId)
    if name == "qualified":
        return ua.Variant(ua.QualifiedName("Name", 3), ua.VariantType.QualifiedName)
    if name == "localized":
        return ua.Variant(ua.LocalizedText("Hallo", "de-DE"), ua.VariantType.LocalizedText)
    if name == "variant-array":
        return ua.Variant([ua.Variant(1, ua.VariantType.Int32), ua.Variant("x", ua.VariantType.String)],
                          ua.VariantType.Variant)
    if name == "guid":
        return ua.Variant(uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63"), ua.VariantType.Guid)
    if name == "status":
        return ua.Variant(ua.StatusCode(0x80340000), ua.VariantType.StatusCode)
    if name == "extension":
        return ua.Variant(ua.Argument(Name="arg", DataType=ua.NodeId(11), ValueRank=-1), ua.VariantType.ExtensionObject)
    return None


SPECIAL = ("nodeid", "qualified", "localized", "variant-array", "guid", "status", "extension")


def _variant(value) -> ua.Variant:
    if isinstance(value, str) and value in SPECIAL:
        return _special(value)
    if isinstance(value, float):
        return ua.Variant(value, ua.VariantType.Double)
    if isinstance(value, list) and value and isinstance(value[0], float):
        return ua.Variant(value, ua.VariantType.Double)
    if isinstance(value, int) and not isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.Int64 if abs(value) >= 2 ** 31 else ua.VariantType.Int32)
    return ua.Variant(value)


def write(nodes, attribute=13, timestamps=False, reqid=1) -> bytes:
    req = ua.WriteRequest()
    vals = []
    for node, value in nodes:
        wv = ua.WriteValue()
        wv.NodeId = ua.NodeId.from_string(node)
        wv.AttributeId = attribute
        dv = ua.DataValue(_variant(value))
        if timestamps:
            dv = ua.DataValue(_variant(value), SourceTimestamp=datetime.datetime(2026, 12, 5),
                              ServerTimestamp=datetime.datetime(2026, 12, 5), SourcePicoseconds=5)
        wv.Value = dv
        vals.append(wv)
    req.Parameters.NodesToWrite = vals
    return _msg(req, reqid)


def call(obj: str, method: str, args, reqid=1) -> bytes:
    req = ua.CallRequest()
    cm = ua.CallMethodRequest()
    cm.ObjectId = ua.NodeId.from_string(obj)
    cm.MethodId = ua.NodeId.from_string(method)
    cm.InputArguments = [_variant(a) for a in args]
    req.Parameters.MethodsToCall = [cm]
    return _msg(req, reqid)


def read(nodes, reqid=1) -> bytes:
    req = ua.ReadRequest()
    out = []
    for n in nodes:
        rv = ua.ReadValueId()
        rv.NodeId = ua.NodeId.from_string(n)
        rv.AttributeId = ua.AttributeIds.Value
        out.append(rv)
    req.Parameters.NodesToRead = out
    return _msg(req, reqid)


def browse(nodes, reqid=1) -> bytes:
    req = ua.BrowseRequest()
    out = []
    for n in nodes:
        bd = ua.BrowseDescription()
        bd.NodeId = ua.NodeId.from_string(n)
        bd.ReferenceTypeId = ua.NodeId(33)
        out.append(bd)
    req.Parameters.NodesToBrowse = out
    return _msg(req, reqid)


def history_read(nodes, reqid=1) -> bytes:
    req = ua.HistoryReadRequest()
    req.Parameters.HistoryReadDetails = ua.ReadRawModifiedDetails(NumValuesPerNode=10)
    out = []
    for n in nodes:
        hv = ua.HistoryReadValueId()
        hv.NodeId = ua.NodeId.from_string(n)
        out.append(hv)
    req.Parameters.NodesToRead = out
    return _msg(req, reqid)
