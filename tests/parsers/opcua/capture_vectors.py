"""Capture real OPC UA binary traffic between asyncua peers on 127.0.0.1.

    /tmp/venv/bin/python tests/parsers/opcua/capture_vectors.py   # rewrites opcua_vectors.json

An in-process TCP proxy sits between an asyncua client and an asyncua server and
records every byte, per connection and direction, in arrival order.  The
scenarios exercise every decoded service under SecurityPolicy None, a UserName
login with a plaintext password (the test checks it never surfaces), Basic256Sha256
Sign and SignAndEncrypt channels with real self-signed certificates, chunked
requests and responses, a ServiceFault and a transport ERR.

The stored vectors (opcua_vectors.json) are what the tests use, so test runs are
deterministic; ``capture()`` is also called live by test_opcua_live.py.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import struct
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE / "opcua_vectors.json"
PASSWORD = "s3cret-Pa55w0rd!"
USERNAME = "operator"
BIG = 150_000  # bytes of the large value: forces chunking both ways (65535-byte chunks)


def make_cert(directory: pathlib.Path, name: str, uri: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "otwatch tests"),
    ])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650 * 3))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri),
                                                     x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                              x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cpath = directory / f"{name}.der"
    kpath = directory / f"{name}.pem"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()))
    return cpath, kpath


class Recorder:
    """A TCP proxy recording [(side, bytes), ...] per accepted connection."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.connections: list[list[tuple[int, bytes]]] = []
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, creader, cwriter):
        log: list[tuple[int, bytes]] = []
        self.connections.append(log)
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(reader, writer, side):
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    log.append((side, data))
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                try:
                    writer.close()
                except Exception:
                    pass

        await asyncio.gather(pump(creader, swriter, 0), pump(sreader, cwriter, 1))

    async def stop(self):
        self.server.close()


async def _scenarios(tmp: pathlib.Path) -> dict[str, list[tuple[int, bytes]]]:
    import logging

    from asyncua import Client, Server, ua, uamethod
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
    from asyncua.server.user_managers import UserManager
    from asyncua.crypto.permission_rules import User, UserRole

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    server_cert, server_key = make_cert(tmp, "otwatch-test-server", "urn:otwatch:test:server")
    client_cert, client_key = make_cert(tmp, "otwatch-test-client", "urn:otwatch:test:client")

    class Users(UserManager):
        def get_user(self, iserver, username=None, password=None, certificate=None):
            if username is None or (username == USERNAME and password == PASSWORD):
                return User(role=UserRole.User)
            return None

    server = Server(user_manager=Users())
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/otwatch/")
    server.set_server_name("otwatch test server")
    await server.set_application_uri("urn:otwatch:test:server")
    await server.load_certificate(str(server_cert))
    await server.load_private_key(str(server_key))
    server.set_security_policy([
        ua.SecurityPolicyType.NoSecurity,
        ua.SecurityPolicyType.Basic256Sha256_Sign,
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ])
    server.set_security_IDs(["Anonymous", "Username", "Basic256Sha256"])
    idx = await server.register_namespace("urn:otwatch:plant")
    plc = await server.nodes.objects.add_object(idx, "PLC1")
    temp = await plc.add_variable(idx, "Temperature", 21.5)
    await temp.set_writable()
    setpoint = await plc.add_variable(idx, "Setpoint", 40)
    await setpoint.set_writable()
    blob = await plc.add_variable(idx, "Blob", b"\x00" * BIG, varianttype=ua.VariantType.ByteString)
    await blob.set_writable()

    @uamethod
    def start_pump(parent, speed):
        return speed * 2

    await plc.add_method(idx, "StartPump", start_pump, [ua.VariantType.Int32], [ua.VariantType.Int32])

    # bind to a free port
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/otwatch/")
    await server.start()
    rec = Recorder(port)
    await rec.start()
    url = f"opc.tcp://127.0.0.1:{rec.port}/otwatch/"
    result: dict[str, list[tuple[int, bytes]]] = {}

    def take(name):
        result[name] = rec.connections[-1]

    try:
        # 1. discovery
        c = Client(url)
        await c.connect_and_get_server_endpoints()
        await asyncio.sleep(0.05)
        take("get_endpoints")
        c = Client(url)
        await c.connect_and_find_servers()
        await asyncio.sleep(0.05)
        take("find_servers")

        # 2. policy None, anonymous: every decoded service
        c = Client(url)
        c.name = "otwatch anonymous client"
        c.application_uri = "urn:otwatch:test:client"
        await c.connect()
        t = c.get_node(temp.nodeid)
        await t.read_value()
        await t.write_value(ua.DataValue(ua.Variant(22.25, ua.VariantType.Double)))
        await c.get_node(setpoint.nodeid).write_value(ua.DataValue(ua.Variant(41, ua.VariantType.Int64)))
        await c.get_node(plc.nodeid).get_children()
        await c.get_node(plc.nodeid).call_method(f"{idx}:StartPump", ua.Variant(3, ua.VariantType.Int32))

        class Handler:
            def datachange_notification(self, node, val, data):
                pass

        sub = await c.create_subscription(100, Handler())
        await sub.subscribe_data_change(t)
        await asyncio.sleep(0.4)
        await sub.delete()
        # chunked both ways: a large read response and a large write request
        b = c.get_node(blob.nodeid)
        await b.read_value()
        await b.write_value(ua.DataValue(ua.Variant(b"\x01" * BIG, ua.VariantType.ByteString)))
        # a ServiceFault: a request after the session is closed
        await c.close_session()
        try:
            params = ua.ReadParameters()
            rv = ua.ReadValueId()
            rv.NodeId = temp.nodeid
            rv.AttributeId = ua.AttributeIds.Value
            params.NodesToRead = [rv]
            await c.uaclient.read(params)
        except Exception:
            pass
        await c.disconnect_socket() if False else None
        try:
            await c.uaclient.disconnect()
        except Exception:
            pass
        await asyncio.sleep(0.05)
        take("none_anonymous")

        # 3. policy None, UserName with a plaintext password
        c = Client(url)
        c.set_user(USERNAME)
        c.set_password(PASSWORD)
        await c.connect()
        await c.get_node(temp.nodeid).read_value()
        await c.disconnect()
        await asyncio.sleep(0.05)
        take("none_username")

        # 4./5. Basic256Sha256 SignAndEncrypt and Sign with real certificates
        for mode, name in ((ua.MessageSecurityMode.SignAndEncrypt, "basic256sha256_encrypt"),
                           (ua.MessageSecurityMode.Sign, "basic256sha256_sign")):
            c = Client(url)
            c.application_uri = "urn:otwatch:test:client"
            await c.set_security(SecurityPolicyBasic256Sha256, str(client_cert), str(client_key),
                                 server_certificate=str(server_cert), mode=mode)
            await c.connect()
            await c.get_node(temp.nodeid).read_value()
            await c.get_node(blob.nodeid).read_value()
            await c.disconnect()
            await asyncio.sleep(0.05)
            take(name)

        # 6. a truncated MSG on a secure channel that was never opened (the server just closes)
        r, w = await asyncio.open_connection("127.0.0.1", rec.port)
        endpoint = url.encode()
        hel = struct.pack("<IIIII", 0, 65535, 65535, 0, 0) + struct.pack("<i", len(endpoint)) + endpoint
        w.write(b"HELF" + struct.pack("<I", 8 + len(hel)) + hel)
        await w.drain()
        await r.read(65536)
        body = struct.pack("<IIII", 4242, 1, 1, 1) + bytes([1, 0]) + struct.pack("<H", 631)
        w.write(b"MSGF" + struct.pack("<I", 8 + len(body)) + body)
        await w.drain()
        try:
            await asyncio.wait_for(r.read(65536), 2)
        except Exception:
            pass
        w.close()
        await asyncio.sleep(0.1)
        take("unopened_channel")
    finally:
        await rec.stop()
        await server.stop()
    return result


def capture() -> dict[str, list[tuple[int, bytes]]]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_scenarios(pathlib.Path(tmp)))


def load() -> dict[str, list[tuple[int, bytes]]]:
    data = json.loads(VECTORS.read_text())
    return {name: [(side, bytes.fromhex(h)) for side, h in segs] for name, segs in data["connections"].items()}


if __name__ == "__main__":
    conns = capture()
    VECTORS.write_text(json.dumps({
        "source": "tests/parsers/opcua/capture_vectors.py: asyncua client and server on 127.0.0.1 through a "
                  "recording proxy; segments are (side, hex) in arrival order, side 0 = client",
        "connections": {name: [[side, data.hex()] for side, data in segs] for name, segs in conns.items()},
    }, indent=1))
    for name, segs in conns.items():
        print(name, len(segs), "segments", sum(len(d) for _, d in segs), "bytes")
