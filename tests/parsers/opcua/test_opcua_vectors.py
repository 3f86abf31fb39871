"""Real asyncua wire bytes (opcua_vectors.json, see capture_vectors.py) through
OPCUAConnection, for both kernel implementations, fed every way they can arrive."""
from __future__ import annotations

import random

import pytest
from helpers import assert_decodes
from opcua_wire import chunks_by_side, rechunk

from otwatch.parsers.opcua import events as ev
from otwatch.parsers.opcua import spec
from otwatch.parsers.opcua.decode import decode, describe, to_dict

SMALL = 2048  # messages fed split at every point (bigger ones: whole and in random pieces)


def _whole(make_conn, segments):
    conn = make_conn()
    got = []
    for side, data in segments:
        got.extend(conn.feed(data, side))
    return got


def _messages(vectors, name):
    return chunks_by_side(vectors[name])


@pytest.mark.parametrize("name", ["get_endpoints", "find_servers", "none_anonymous", "none_username"])
def test_policy_none_messages_decode_every_way(make_conn, vectors, name):
    by_side = _messages(vectors, name)
    for side, msgs in by_side.items():
        for m in msgs:
            if len(m) > SMALL or m[3:4] != b"F":
                continue
            expected = make_conn().feed(m, side)
            assert len(expected) == 1 and not isinstance(expected[0], ev.Anomaly)
            assert expected[0].malformed is None, expected[0]
            assert_decodes(make_conn, side, m, expected)


def test_connection_none_anonymous(make_conn, vectors):
    got = _whole(make_conn, vectors["none_anonymous"])
    assert not [e for e in got if isinstance(e, ev.Anomaly)]
    assert all(e.malformed is None for e in got), [e for e in got if e.malformed]
    kinds = [type(e).__name__ for e in got]
    for name in ("OPCUAHello", "OPCUAAcknowledge", "OPCUAOpenSecureChannel", "OPCUACreateSessionRequest",
                 "OPCUACreateSessionResponse", "OPCUAActivateSessionRequest", "OPCUAActivateSessionResponse",
                 "OPCUAReadRequest", "OPCUAReadResponse", "OPCUAWriteRequest", "OPCUAWriteResponse",
                 "OPCUABrowseRequest", "OPCUABrowseResponse", "OPCUACallRequest", "OPCUACallResponse",
                 "OPCUACreateSubscriptionRequest", "OPCUACreateSubscriptionResponse",
                 "OPCUACreateMonitoredItemsRequest", "OPCUACreateMonitoredItemsResponse", "OPCUAPublishRequest",
                 "OPCUAPublishResponse", "OPCUACloseSessionRequest", "OPCUAServiceFault"):
        assert name in kinds, name
    hel = got[0]
    assert hel.endpoint_url.startswith("opc.tcp://127.0.0.1:") and hel.protocol_version == 0
    ack = got[1]
    assert (ack.receive_buffer_size, ack.send_buffer_size) == (65535, 65535)
    opn_req, opn_resp = got[2], got[3]
    assert opn_req.direction == "request" and opn_req.security_policy == "None"
    assert opn_req.security_mode_name == "None" and opn_req.request_type == "Issue"
    assert opn_req.requested_lifetime > 0
    assert opn_resp.direction == "response" and opn_resp.channel_id == opn_resp.secure_channel_id > 0
    assert opn_resp.revised_lifetime > 0 and opn_resp.token_id > 0
    cs = next(e for e in got if isinstance(e, ev.OPCUACreateSessionRequest))
    assert cs.client_description.application_uri == "urn:otwatch:test:client"
    assert cs.client_description.application_type_name == "Client"
    assert cs.session_name and cs.endpoint_url == hel.endpoint_url
    csr = next(e for e in got if isinstance(e, ev.OPCUACreateSessionResponse))
    assert csr.server_certificate.subject == "O=otwatch tests,CN=otwatch-test-server"
    assert csr.server_endpoint_count == len(csr.server_endpoints) == 3
    act = next(e for e in got if isinstance(e, ev.OPCUAActivateSessionRequest))
    assert act.user_token_type_name == "Anonymous" and act.identity_token == "AnonymousIdentityToken"
    w = [e for e in got if isinstance(e, ev.OPCUAWriteRequest)][0]
    assert w.nodes[0].value_type == "Double" and w.nodes[0].value == "22.25" and w.nodes[0].attribute == "Value"
    call = next(e for e in got if isinstance(e, ev.OPCUACallRequest))
    assert call.methods[0].argument_count == 1 and call.methods[0].argument_types == ("Int32",)
    br = next(e for e in got if isinstance(e, ev.OPCUABrowseResponse))
    assert ("ns=2;i=2", "2:Temperature") in br.results[0].references
    mi = next(e for e in got if isinstance(e, ev.OPCUACreateMonitoredItemsRequest))
    assert mi.items[0].node_id == "ns=2;i=2" and mi.items[0].attribute == "Value"
    pub = [e for e in got if isinstance(e, ev.OPCUAPublishResponse) and e.notification_count]
    assert pub and pub[0].notification_types == ("DataChangeNotification",)
    fault = next(e for e in got if isinstance(e, ev.OPCUAServiceFault))
    assert fault.header.service_result_name == "BadSessionNotActivated"
    big = [e for e in got if isinstance(e, ev.OPCUAReadResponse) and e.results[0].value.type == "ByteString"]
    assert big[0].results[0].value.value == "<150000 bytes>"  # assembled from 'C' + 'F' chunks
    bigw = [e for e in got if isinstance(e, ev.OPCUAWriteRequest) and e.nodes[0].value_type == "ByteString"]
    assert bigw, "chunked write request"
    assert all(isinstance(to_dict(e), dict) for e in got)


@pytest.mark.parametrize("name", ["none_anonymous", "basic256sha256_encrypt", "basic256sha256_sign"])
def test_whole_connection_random_segmentation(make_conn, vectors, name):
    expected = _whole(make_conn, vectors[name])
    stream = [(s, d) for s, d in vectors[name]]
    rng = random.Random(7)
    for _ in range(3):
        conn = make_conn()
        got = []
        for side, data in stream:
            pos = 0
            while pos < len(data):
                n = rng.randint(1, 3000)
                got.extend(conn.feed(data[pos:pos + n], side))
                pos += n
        assert got == expected


def test_get_endpoints(make_conn, vectors):
    got = _whole(make_conn, vectors["get_endpoints"])
    resp = next(e for e in got if isinstance(e, ev.OPCUAGetEndpointsResponse))
    assert resp.endpoint_count == 3
    modes = sorted((e.security_mode_name, e.security_policy_uri.rsplit("#", 1)[1]) for e in resp.endpoints)
    assert modes == [("None", "None"), ("Sign", "Basic256Sha256"), ("SignAndEncrypt", "Basic256Sha256")]
    e = resp.endpoints[0]
    assert e.server.application_uri == "urn:otwatch:test:server"
    assert e.server.product_uri and e.server.application_name == "otwatch test server"
    assert e.server.application_type_name in ("Server", "ClientAndServer")
    assert e.transport_profile_uri.endswith("uatcp-uasc-uabinary")
    tokens = {t.token_type_name for t in e.user_identity_tokens}
    assert {"Anonymous", "UserName"} <= tokens
    cert = e.server_certificate
    assert cert.key_type == "RSA" and cert.key_size == 2048 and cert.self_signed
    assert cert.san_uris == ("urn:otwatch:test:server",) and cert.signature_algorithm == "sha256WithRSAEncryption"
    assert len(cert.thumbprint_sha1) == 40
    req = next(e for e in got if isinstance(e, ev.OPCUAGetEndpointsRequest))
    assert req.endpoint_url.startswith("opc.tcp://")


def test_find_servers(make_conn, vectors):
    got = _whole(make_conn, vectors["find_servers"])
    resp = next(e for e in got if isinstance(e, ev.OPCUAFindServersResponse))
    assert resp.server_count == 1 and resp.servers[0].application_uri == "urn:otwatch:test:server"
    assert resp.servers[0].discovery_urls


def test_basic256sha256_sign_and_encrypt(make_conn, vectors):
    got = _whole(make_conn, vectors["basic256sha256_encrypt"])
    opn = [e for e in got if isinstance(e, ev.OPCUAOpenSecureChannel)]
    assert len(opn) == 2 and all(o.encrypted and o.direction is None for o in opn)
    assert opn[0].security_policy == "Basic256Sha256" and not opn[0].security_policy_deprecated
    assert opn[0].sender_certificate.subject == "O=otwatch tests,CN=otwatch-test-client"
    assert opn[0].receiver_thumbprint == opn[1].sender_certificate.thumbprint_sha1
    enc = [e for e in got if isinstance(e, ev.OPCUAEncryptedMessage)]
    assert len(enc) == 10 and all(e.secure_channel_id == opn[1].secure_channel_id for e in enc)
    clo = got[-1]
    assert isinstance(clo, ev.OPCUACloseSecureChannel) and clo.encrypted
    assert not [e for e in got if isinstance(e, ev.Anomaly)]


def test_basic256sha256_sign_only_is_readable(make_conn, vectors):
    got = _whole(make_conn, vectors["basic256sha256_sign"])
    assert not [e for e in got if isinstance(e, (ev.OPCUAEncryptedMessage, ev.Anomaly))]
    assert all(e.malformed is None for e in got)
    reads = [e for e in got if isinstance(e, ev.OPCUAReadResponse)]
    assert reads[1].results[0].value.value == "<150000 bytes>"  # chunks, signatures stripped


def test_kernel_learns_modes(kernels, vectors):
    for name, mode in (("basic256sha256_encrypt", 3), ("basic256sha256_sign", 2), ("none_anonymous", 1)):
        core = kernels("opcua").OPCUACore({}, False)
        out = []
        for side, data in vectors[name]:
            core.feed(side, data, 0, len(data), 0.0, 1, out)
        assert core.mode == mode and core.policy.endswith(("Basic256Sha256", "None"))
        if mode == 3:
            assert core.bytes_encrypted > 150000 and core.bytes_decoded == 28 + 66
        else:
            assert core.bytes_encrypted == (2976 if mode == 2 else 0)


def test_rechunked_write(make_conn, vectors):
    by_side = _messages(vectors, "none_anonymous")
    write = next(m for m in by_side[0] if m[:4] == b"MSGF" and m[24:28] == bytes([1, 0, 0xA1, 0x02]) and len(m) < 200)
    single = make_conn().feed(write, 0)
    chunks = rechunk(write, 3)
    assert [c[3:4] for c in chunks] == [b"C", b"C", b"F"]
    assert_decodes(make_conn, 0, b"".join(chunks), single)


def test_describe_every_key():
    assert describe((spec.HEL,)) == ("opcua.hello", "connect", "")
    assert describe((spec.MSG_SERVICE, 631)) == ("opcua.read_request", "read", "")
    assert describe((spec.MSG_SERVICE, 397)) == ("opcua.service_fault", "other", "")
    assert describe((spec.MSG_SERVICE, 9999)) == ("opcua.unknown_service", "other", "type_id=9999")
    assert describe((spec.MSG_SERVICE, -1))[0] == "opcua.unknown_service"
    ops = {"read", "write", "diagnostic", "program", "connect", "publish", "subscribe", "session", "browse", "call",
           "discovery", "secure_channel", "other"}
    for tid in spec.SERVICES:
        kind, op, _ = describe((spec.MSG_SERVICE, tid))
        assert kind.startswith("opcua.") and op in ops
    for code in spec.MessageType:
        if code != spec.MSG_SERVICE:
            assert describe((int(code),))[1] in ops


def test_decode_with_asyncua_for_every_decoded_service(vectors):
    """Cross-check with asyncua's own decoder: same type ids and request handles."""
    import io

    from asyncua.ua.ua_binary import nodeid_from_binary

    by_side = _messages(vectors, "none_anonymous")
    for side, msgs in by_side.items():
        prev = b""
        for m in msgs:
            continued, prev = prev[:4] == b"MSGC", m
            if m[:4] != b"MSGF" or continued:
                continue
            e = decode((spec.MSG_SERVICE, 0), m, None, side)
            assert nodeid_from_binary(io.BytesIO(m[24:])).Identifier == e.type_id
