"""TLS hello metadata (parsers/tls.py): real hellos from Python's ssl over
memory BIOs, hand-built edge cases, and never raising on any bytes."""
from __future__ import annotations

import datetime
import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otwatch.parsers.tls import (
    TLSClientHello,
    TLSServerHello,
    is_grease,
    parse_client_hello,
    parse_server_hello,
)


def _cert(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker.example")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    cp, kp = tmp_path / "c.pem", tmp_path / "k.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp


def _hellos(tmp_path, max_version=ssl.TLSVersion.TLSv1_3):
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    cctx.maximum_version = max_version
    cctx.set_alpn_protocols(["mqtt", "x-amzn-mqtt-ca"])
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(*_cert(tmp_path))
    sctx.set_alpn_protocols(["mqtt"])
    ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = cctx.wrap_bio(ci, co, server_hostname="broker.example")
    server = sctx.wrap_bio(si, so, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    ch = co.read()
    si.write(ch)
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    return ch, so.read()


def test_tls13_hellos(tmp_path):
    ch, sh = _hellos(tmp_path)
    c = parse_client_hello(ch)
    assert c == TLSClientHello(record_version=c.record_version, handshake_version=0x0303,
                               supported_versions=c.supported_versions, sni="broker.example",
                               alpn=("mqtt", "x-amzn-mqtt-ca"), cipher_suites=c.cipher_suites)
    assert 0x0304 in c.supported_versions and c.max_version == "TLS 1.3" and c.cipher_suites > 3
    s = parse_server_hello(sh)
    assert s.selected_version == 0x0304 and s.version == "TLS 1.3" and s.handshake_version == 0x0303
    assert s.cipher_suite is not None and not s.truncated
    assert parse_server_hello(ch) is None and parse_client_hello(sh) is None


def test_tls12_server_hello_alpn(tmp_path):
    ch, sh = _hellos(tmp_path, ssl.TLSVersion.TLSv1_2)
    assert parse_client_hello(ch).max_version == "TLS 1.2"
    s = parse_server_hello(sh)
    assert s.version == "TLS 1.2" and s.selected_version is None and s.alpn == "mqtt"


def test_truncated_and_split_records(tmp_path):
    ch, _ = _hellos(tmp_path)
    part = parse_client_hello(ch[:60])
    assert part.truncated and part.handshake_version == 0x0303 and part.sni is None
    # the same hello split over two handshake records
    body = ch[5:]
    split = b"\x16\x03\x01" + (100).to_bytes(2, "big") + body[:100] + b"\x16\x03\x01" + \
        (len(body) - 100).to_bytes(2, "big") + body[100:]
    assert parse_client_hello(split) == parse_client_hello(ch)


def test_minimal_hand_built_hellos():
    body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x04\x0a\x0a\x13\x01" + b"\x01\x00"
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    c = parse_client_hello(b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs)
    assert c == TLSClientHello(record_version=0x0301, handshake_version=0x0303, cipher_suites=1)
    body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x13\x01\x00" + b"\x00\x06\x00\x2b\x00\x02\x03\x04"
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    s = parse_server_hello(b"\x16\x03\x03" + len(hs).to_bytes(2, "big") + hs)
    assert s == TLSServerHello(record_version=0x0303, handshake_version=0x0303, selected_version=0x0304,
                               cipher_suite=0x1301)


@pytest.mark.parametrize("data", [b"", b"\x16", b"\x10\x0c\x00\x04MQTT", b"\x16\x03\x01\x00\x00", b"\x17\x03\x03\x00\x01\x00"])
def test_not_a_hello(data):
    assert parse_client_hello(data) is None and parse_server_hello(data) is None


def test_grease():
    assert is_grease(0x0A0A) and is_grease(0xFAFA) and not is_grease(0x0A1A) and not is_grease(0x1301)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_never_raises(prefix, tail):
    for data in (prefix, b"\x16\x03\x01" + prefix, b"\x16\x03\x01\x00\x40\x01" + prefix + tail,
                 b"\x16\x03\x03\x00\x40\x02" + prefix):
        parse_client_hello(data)
        parse_server_hello(data)
