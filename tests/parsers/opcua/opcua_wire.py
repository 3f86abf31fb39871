"""Build and split UA TCP messages for the tests (asyncua's encoders for bodies)."""
from __future__ import annotations

import struct


def split_messages(stream: bytes) -> list[bytes]:
    """Cut one direction's byte stream into chunks by the 8-byte header."""
    out, pos = [], 0
    while pos + 8 <= len(stream):
        size = struct.unpack_from("<I", stream, pos + 4)[0]
        out.append(stream[pos:pos + size])
        pos += size
    assert pos == len(stream), "stream does not end on a chunk boundary"
    return out


def chunks_by_side(segments) -> dict[int, list[bytes]]:
    streams = {0: b"", 1: b""}
    for side, data in segments:
        streams[side] += data
    return {s: split_messages(b) for s, b in streams.items()}


def ua_string(s: str | None) -> bytes:
    if s is None:
        return struct.pack("<i", -1)
    b = s.encode()
    return struct.pack("<i", len(b)) + b


def frame(mtype: bytes, chunk: bytes, payload: bytes) -> bytes:
    return mtype + chunk + struct.pack("<I", 8 + len(payload)) + payload


def symmetric(obj_or_body, channel=1, token=1, seq=1, reqid=1, chunk=b"F", mtype=b"MSG") -> bytes:
    """A plaintext MSG chunk around an asyncua request/response object (or raw body bytes)."""
    if isinstance(obj_or_body, (bytes, bytearray)):
        body = bytes(obj_or_body)
    else:
        from asyncua.ua.ua_binary import struct_to_binary

        body = struct_to_binary(obj_or_body)
    return frame(mtype, chunk, struct.pack("<IIII", channel, token, seq, reqid) + body)


def rechunk(message: bytes, parts: int) -> list[bytes]:
    """Split a single-chunk plaintext MSG into *parts* chunks ('C'... 'F') of one request id."""
    head, body = message[8:24], message[24:]
    step = max(1, -(-len(body) // parts))
    pieces = [body[i:i + step] for i in range(0, len(body), step)]
    out = []
    for i, piece in enumerate(pieces):
        ct = b"F" if i == len(pieces) - 1 else b"C"
        out.append(frame(message[:3], ct, head + piece))
    return out


def error(code: int, reason: str) -> bytes:
    from asyncua import ua
    from asyncua.ua.ua_binary import struct_to_binary

    return frame(b"ERR", b"F", struct_to_binary(ua.ErrorMessage(ua.StatusCode(code), reason)))


def reverse_hello(server_uri: str, url: str) -> bytes:
    return frame(b"RHE", b"F", ua_string(server_uri) + ua_string(url))


def abort(code: int, reason: str, channel=1, token=1, seq=9, reqid=7) -> bytes:
    return frame(b"MSG", b"A", struct.pack("<IIIII", channel, token, seq, reqid, code) + ua_string(reason))


def hello(url="opc.tcp://plc:4840/", version=0, rbuf=65535, sbuf=65535, maxmsg=0, maxchunks=0) -> bytes:
    return frame(b"HEL", b"F", struct.pack("<IIIII", version, rbuf, sbuf, maxmsg, maxchunks) + ua_string(url))


def acknowledge(rbuf=65535, sbuf=65535, maxmsg=0, maxchunks=0) -> bytes:
    return frame(b"ACK", b"F", struct.pack("<IIIII", 0, rbuf, sbuf, maxmsg, maxchunks))


def read_request(node: int = 2258, ns: int = 0, handle: int = 1, reqid: int = 1, seq: int = 1) -> bytes:
    from asyncua import ua

    req = ua.ReadRequest()
    req.RequestHeader.RequestHandle = handle
    rv = ua.ReadValueId()
    rv.NodeId = ua.NodeId(node, ns)
    rv.AttributeId = ua.AttributeIds.Value
    req.Parameters.NodesToRead = [rv]
    return symmetric(req, reqid=reqid, seq=seq)


def read_response(value: float = 1.5, handle: int = 1, reqid: int = 1, seq: int = 1) -> bytes:
    from asyncua import ua

    resp = ua.ReadResponse()
    resp.ResponseHeader.RequestHandle = handle
    resp.Results = [ua.DataValue(ua.Variant(value, ua.VariantType.Double))]
    return symmetric(resp, reqid=reqid, seq=seq)


def activate_session_plain_password(user: str, password: str) -> bytes:
    from asyncua import ua

    req = ua.ActivateSessionRequest()
    tok = ua.UserNameIdentityToken()
    tok.PolicyId = "username_basic"
    tok.UserName = user
    tok.Password = password.encode()
    tok.EncryptionAlgorithm = None
    req.Parameters.UserIdentityToken = tok
    return symmetric(req, reqid=3, seq=3)
