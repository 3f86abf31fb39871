#!/usr/bin/env python3
"""Capture OPC UA security postures between real asyncua peers (network namespaces).

Contract
--------
``sudo python pcaps/make_opcua_security.py [--duration 20] [--out pcaps/]``
writes ``opcua-security.pcap`` (classic pcap, Ethernet, snaplen 262144) into
``--out`` (a directory, or a file path ending in ``.pcap``).  It needs root,
``ip`` (iproute2 with ``ip netns``) and ``tcpdump``; the peers are asyncua
servers and clients, the certificates are generated at run time with
``cryptography`` (nothing is read from or written to the repository but the
capture).

The namespace, bridge and tcpdump machinery is make_demo_plant.py's
(``build_topology``, ``Plant``, ``wait_for_tcpdump``, ``cleanup_namespaces``):
four hosts in namespaces ``<prefix>-<host>`` on one bridge ``br0`` in
``<prefix>-sw``, captured there like a SPAN port.  Nothing touches the host's
interfaces or addresses; every address in the capture is one of ``HOSTS``.

Two servers, two clients:

* ``legacy`` (server A) offers SecurityPolicy None, the deprecated SHA-1
  policies Basic128Rsa15 and Basic256 (Sign and SignAndEncrypt), anonymous and
  user-name tokens; its application certificate is self-signed, RSA 1024 and
  expired (2016-2021).  Its user-name token on the None endpoint carries
  SecurityPolicy None, so the password crosses the wire in clear (asyncua would
  otherwise RSA-encrypt it: a deliberate legacy misconfiguration).
* ``modern`` (server B) offers Basic256Sha256 SignAndEncrypt and
  Aes128_Sha256_RsaOaep Sign / SignAndEncrypt only, user-name tokens only (no
  anonymous); RSA 2048 certificate, valid, issued by a throwaway CA.
* ``hmi`` uses legacy over SecurityPolicy None: anonymous session,
  TranslateBrowsePathsToNodeIds (one path that resolves, one that does not),
  a Read with an unknown node id (BadNodeIdUnknown per operation), a Write, a
  subscription (DataChange notifications for a Double, a UInt32, a Boolean
  and a String with control characters, and events), a second session as user
  ``operator`` with the password in clear, and at the end a Read after
  CloseSession (a ServiceFault: the whole service fails).
* ``eng`` (RSA 2048 certificate from the same CA) runs GetEndpoints and
  FindServers against both servers, opens a Basic128Rsa15 SignAndEncrypt
  channel and a Basic256 **Sign** channel to legacy (anonymous sessions), and
  user-name sessions on modern over Aes128_Sha256_RsaOaep Sign (the user name
  stays readable, the password is RSA-OAEP encrypted) and Basic256Sha256
  SignAndEncrypt (nothing readable after the OPN security header).

The same file is the program that runs inside each namespace (``--role``).
Each role gets the scenario's start and end time and acts at the fractions in
``TIMELINE``, so a short ``--duration`` (the test uses 6 s) shows every event.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import make_demo_plant as plant  # noqa: E402  (namespace/bridge/tcpdump helpers)
from make_demo_plant import Host  # noqa: E402

DEFAULT_PREFIX = "otwsec"
DEFAULT_DURATION = 20.0
MIN_DURATION = 6.0
PCAP_NAME = "opcua-security.pcap"

# --------------------------------------------------------------------------
# The scenario, declared once.  README.md's host table is this table.
# --------------------------------------------------------------------------
SUBNET_PREFIX_LEN = 24  # 10.30.0.0/24 (not the demo plant's 10.10.0.0/24: its README host regex is 10.10.x.x)
BRIDGE_MAC = "02:00:0a:1e:00:fe"
HOSTS: tuple[Host, ...] = (
    Host("legacy", "10.30.0.10", "02:00:0a:1e:00:0a",
         "OPC UA server A 4840: None, Basic128Rsa15, Basic256; anonymous + user name; "
         "self-signed RSA 1024 certificate, expired"),
    Host("modern", "10.30.0.20", "02:00:0a:1e:00:14",
         "OPC UA server B 4840: Basic256Sha256, Aes128_Sha256_RsaOaep; user name only; "
         "CA-issued RSA 2048 certificate"),
    Host("hmi", "10.30.0.31", "02:00:0a:1e:00:1f",
         "OPC UA client over None: anonymous + user-name sessions, translate, read, write, subscription"),
    Host("eng", "10.30.0.41", "02:00:0a:1e:00:29",
         "OPC UA client with a CA-issued certificate: discovery, deprecated-policy channels, secure sessions"),
)
IP = {h.name: h.ip for h in HOSTS}
SERVERS = ("legacy", "modern")
CLIENTS = ("hmi", "eng")

OPCUA_PORT = 4840
LEGACY_URL = f"opc.tcp://{IP['legacy']}:{OPCUA_PORT}/legacy"
MODERN_URL = f"opc.tcp://{IP['modern']}:{OPCUA_PORT}/modern"
LEGACY_APP_URI = "urn:otwatch:legacy:line2-controller"
LEGACY_PRODUCT_URI = "urn:otwatch:legacy:controller-fw"
LEGACY_NAME = "Legacy Line 2 Controller"
MODERN_APP_URI = "urn:otwatch:modern:cell-server"
MODERN_PRODUCT_URI = "urn:otwatch:modern:cell-server-fw"
MODERN_NAME = "Modern Cell Server"
HMI_APP_URI = "urn:otwatch:sec:hmi"
ENG_APP_URI = "urn:otwatch:sec:engineering"
NS_URI = "urn:otwatch:sec:plant"
# Credentials that cross the wire on purpose: legacy's in clear (a finding),
# modern's RSA-OAEP encrypted or inside an encrypted channel.
LEGACY_USER, LEGACY_PASSWORD = "operator", "legacy-Op-2016"
MODERN_USER, MODERN_PASSWORD = "engineer", "cell-Eng-2025!"

# Certificates (generated per run; fixed names and validity so findings are stable)
UTC = datetime.timezone.utc
LEGACY_CERT = dict(cn="legacy.plant.local", org="otwatch legacy plant", bits=1024,
                   not_before=datetime.datetime(2016, 1, 1, tzinfo=UTC),
                   not_after=datetime.datetime(2021, 1, 1, tzinfo=UTC))
CA_CERT = dict(cn="otwatch throwaway CA", org="otwatch test PKI", bits=2048,
               not_before=datetime.datetime(2024, 1, 1, tzinfo=UTC),
               not_after=datetime.datetime(2044, 1, 1, tzinfo=UTC))
MODERN_CERT = dict(cn="modern.plant.local", org="otwatch modern plant", bits=2048,
                   not_before=datetime.datetime(2025, 1, 1, tzinfo=UTC),
                   not_after=datetime.datetime(2035, 1, 1, tzinfo=UTC))
ENG_CERT = dict(cn="eng.plant.local", org="otwatch modern plant", bits=2048,
                not_before=datetime.datetime(2025, 1, 1, tzinfo=UTC),
                not_after=datetime.datetime(2035, 1, 1, tzinfo=UTC))

# When each client acts, as a fraction of the scenario (start..end).
TIMELINE = {
    "eng_discovery": 0.00,
    "hmi_session": 0.12,
    "eng_deprecated": 0.25,
    "hmi_username": 0.45,
    "eng_modern": 0.60,
    "hmi_close": 0.85,
}
PUBLISH_MS = 500
VALUE_PERIOD = 0.5     # legacy updates its variables this often
EVENT_PERIOD = 2.0     # and fires an event this often
CLIENT_STOP_MARGIN = 1.0
SERVER_START_TIMEOUT = 30.0
READY = "server ready"
# A String value with control characters and quotes (the decoder must escape it).
MESSAGE_FMT = ('batch B-{n:04d} \x1b[31m"ALARM"\x1b[0m\ttemp>80\n'
               "operator note: check the cooling water valve V-12 before restart")

log = logging.getLogger("opcua-security")


# ==========================================================================
# Certificates (cryptography; run in the builder, before any role starts)
# ==========================================================================
def _name(spec: dict):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["cn"]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec["org"])])


def make_certificates(work: Path) -> dict[str, tuple[Path, Path]]:
    """{name: (DER certificate, PEM key)} for legacy, modern, eng (and the CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    def key(bits):
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def leaf(spec, k, issuer_name, issuer_key, uri, dns, eku):
        b = (x509.CertificateBuilder().subject_name(_name(spec)).issuer_name(issuer_name)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(spec["not_before"]).not_valid_after(spec["not_after"])
             .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri), x509.DNSName(dns)]),
                            critical=False)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                          data_encipherment=True, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage(eku), critical=False))
        return b.sign(issuer_key, hashes.SHA256())

    def save(name, cert, k):
        c, p = work / f"{name}-cert.der", work / f"{name}-key.pem"
        c.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        p.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
        os.chmod(p, 0o600)
        return c, p

    out = {}
    # legacy: self-signed, RSA 1024, expired.  (cryptography refuses SHA-1 signatures, so it is SHA-256.)
    lk = key(LEGACY_CERT["bits"])
    out["legacy"] = save("legacy", leaf(LEGACY_CERT, lk, _name(LEGACY_CERT), lk, LEGACY_APP_URI, LEGACY_CERT["cn"],
                                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), lk)
    # a throwaway CA for modern and eng
    ck = key(CA_CERT["bits"])
    ca = (x509.CertificateBuilder().subject_name(_name(CA_CERT)).issuer_name(_name(CA_CERT))
          .public_key(ck.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(CA_CERT["not_before"]).not_valid_after(CA_CERT["not_after"])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ck, hashes.SHA256()))
    out["ca"] = save("ca", ca, ck)
    mk = key(MODERN_CERT["bits"])
    out["modern"] = save("modern", leaf(MODERN_CERT, mk, ca.subject, ck, MODERN_APP_URI, MODERN_CERT["cn"],
                                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), mk)
    ek = key(ENG_CERT["bits"])
    out["eng"] = save("eng", leaf(ENG_CERT, ek, ca.subject, ck, ENG_APP_URI, ENG_CERT["cn"],
                                  [ExtendedKeyUsageOID.CLIENT_AUTH]), ek)
    return out


# ==========================================================================
# Builder (root namespace; only ever touches its own namespaces)
# ==========================================================================
def build(args: argparse.Namespace) -> Path:
    if os.geteuid() != 0:
        raise SystemExit("make_opcua_security.py needs root (network namespaces, tcpdump)")
    for tool in ("ip", "tcpdump"):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing tool: {tool}")
    out = Path(args.out)
    out_file = out if out.suffix == ".pcap" else out / PCAP_NAME
    out_file.parent.mkdir(parents=True, exist_ok=True)

    prefix = args.prefix
    plant.cleanup_namespaces(prefix)
    work = Path(tempfile.mkdtemp(prefix="otwatch-opcua-sec-"))
    os.chmod(work, 0o755)
    p = plant.Plant(prefix, work)
    failures: list[str] = []
    me = str(Path(__file__).resolve())
    try:
        make_certificates(work)
        log.info("building %d namespaces (prefix %s)", len(HOSTS) + 1, prefix)
        plant.build_topology(prefix, HOSTS, BRIDGE_MAC, SUBNET_PREFIX_LEN)
        raw = work / "capture.pcap"
        p.spawn("tcpdump", "sw", ["tcpdump", "-i", "br0", "-s", "0", "-n", "-U", "-Z", "root",
                                  "--immediate-mode", "-w", str(raw)])
        plant.wait_for_tcpdump(p, raw)

        def role(name, start, stop):
            p.spawn(name, name, [sys.executable, me, "--role", name, "--start", repr(start), "--end", repr(stop),
                                 "--work", str(work)])

        for name in SERVERS:
            role(name, time.time(), time.time() + args.duration + SERVER_START_TIMEOUT)
        wait_for_servers(p)
        t0 = time.time()     # the scenario's time-line starts once both servers listen
        end = t0 + args.duration
        log.info("servers listening; scenario %.0f s", args.duration)
        for name in CLIENTS:
            role(name, t0, end - CLIENT_STOP_MARGIN)
        while time.time() < end:
            time.sleep(0.2)
        for name in CLIENTS:
            try:
                rc = p.procs[name].wait(timeout=max(5.0, args.duration / 4))
            except subprocess.TimeoutExpired:
                rc = "timeout"
            if rc != 0:
                failures.append(f"{name} exited {rc}:\n{p.tail(name, 30)}")
        for name in SERVERS:
            if p.procs[name].poll() is not None:
                failures.append(f"server {name} died early:\n{p.tail(name, 30)}")
            else:
                os.kill(p.procs[name].pid, signal.SIGTERM)     # both stop at once
        for name in SERVERS:
            p.stop(name)
        time.sleep(0.3)
        p.stop("tcpdump")
        shutil.copyfile(raw, out_file)
        os.chmod(out_file, 0o644)
    finally:
        p.stop_all()
        plant.cleanup_namespaces(prefix)
        if args.keep_work:
            log.info("role logs kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise SystemExit("some roles failed:\n" + "\n\n".join(failures))
    log.info("wrote %s (%d bytes)", out_file, out_file.stat().st_size)
    return out_file


def wait_for_servers(p: "plant.Plant", timeout: float = SERVER_START_TIMEOUT) -> None:
    """Until every server role printed READY (asyncua takes 1-3 s to build its address space)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(READY in p.tail(name, 50) for name in SERVERS):
            return
        for name in SERVERS:
            if p.procs[name].poll() is not None:
                raise RuntimeError(f"server {name} exited:\n{p.tail(name, 30)}")
        time.sleep(0.05)
    raise RuntimeError("servers did not start:\n" + "\n".join(p.tail(n, 10) for n in SERVERS))


# ==========================================================================
# Roles (inside the namespaces)
# ==========================================================================
def at(args, key: str) -> float:
    return args.start + (args.end - args.start) * TIMELINE[key]


class _Users:
    """asyncua user manager: anonymous (when allowed) and one user name/password."""

    def __init__(self, user: str, password: str, anonymous: bool):
        self.user, self.password, self.anonymous = user, password, anonymous

    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import User, UserRole

        if username is None:   # anonymous token (the channel's client certificate may be passed along)
            return User(role=UserRole.User) if self.anonymous else None
        if (username, password) == (self.user, self.password):
            return User(role=UserRole.User, name=username)
        return None


async def _serve(server, stop: asyncio.Event, tick) -> None:
    n = 0
    last_event = 0.0
    async with server:
        await tick(n, True)
        print(READY, flush=True)
        while not stop.is_set():
            n += 1
            fire = time.time() - last_event >= EVENT_PERIOD
            if fire:
                last_event = time.time()
            await tick(n, fire)
            try:
                await asyncio.wait_for(stop.wait(), VALUE_PERIOD)
            except asyncio.TimeoutError:
                pass


async def legacy_main(args) -> None:
    from asyncua import Server, ua

    work = Path(args.work)
    server = Server(user_manager=_Users(LEGACY_USER, LEGACY_PASSWORD, anonymous=True))
    await server.init()
    server.set_endpoint(LEGACY_URL)
    server.set_server_name(LEGACY_NAME)
    server.product_uri = LEGACY_PRODUCT_URI
    server.application_type = ua.ApplicationType.Server
    await server.set_application_uri(LEGACY_APP_URI)
    await server.set_build_info(LEGACY_PRODUCT_URI, "otwatch legacy", "Line 2 controller", "2.3.1", "231",
                                datetime.datetime(2016, 3, 1))
    server.set_security_policy([
        ua.SecurityPolicyType.NoSecurity,
        ua.SecurityPolicyType.Basic128Rsa15_Sign, ua.SecurityPolicyType.Basic128Rsa15_SignAndEncrypt,
        ua.SecurityPolicyType.Basic256_Sign, ua.SecurityPolicyType.Basic256_SignAndEncrypt,
    ])
    server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
    await server.load_certificate(str(work / "legacy-cert.der"))
    await server.load_private_key(str(work / "legacy-key.pem"))
    idx = await server.register_namespace(NS_URI)
    line = await server.nodes.objects.add_object(idx, "Line2")
    temp = await line.add_variable(idx, "Temperature", 60.0)
    counter = await line.add_variable(idx, "BatchCounter", ua.Variant(0, ua.VariantType.UInt32))
    running = await line.add_variable(idx, "Running", True)
    message = await line.add_variable(idx, "Message", MESSAGE_FMT.format(n=0))
    setpoint = await line.add_variable(idx, "Setpoint", 75.0)
    await setpoint.set_writable()
    gen = await server.get_event_generator()
    gen.event.Severity = 500
    stop = plant.install_sigterm(asyncio.get_running_loop())

    async def tick(n, fire):
        if n == 0:
            # Deliberate legacy misconfiguration (a finding for otwatch): the user-name
            # token of the None endpoint asks for no token encryption, so clients send
            # the password in clear.  asyncua would otherwise pick a SignAndEncrypt policy.
            for edp in server.iserver.endpoints:
                if edp.SecurityMode == ua.MessageSecurityMode.None_:
                    for tok in edp.UserIdentityTokens:
                        if tok.TokenType == ua.UserTokenType.UserName:
                            tok.SecurityPolicyUri = "http://opcfoundation.org/UA/SecurityPolicy#None"
            return
        await temp.write_value(60.0 + (n % 40) * 0.25)
        await counter.write_value(ua.Variant(n, ua.VariantType.UInt32))
        await running.write_value(n % 8 != 0)
        await message.write_value(MESSAGE_FMT.format(n=n))
        if fire:
            gen.event.Message = ua.LocalizedText(f"Line2 temperature high ({60.0 + (n % 40) * 0.25:.2f})")
            await gen.trigger()

    await _serve(server, stop, tick)


async def modern_main(args) -> None:
    from asyncua import Server, ua

    work = Path(args.work)
    server = Server(user_manager=_Users(MODERN_USER, MODERN_PASSWORD, anonymous=False))
    await server.init()
    server.set_endpoint(MODERN_URL)
    server.set_server_name(MODERN_NAME)
    server.product_uri = MODERN_PRODUCT_URI
    server.application_type = ua.ApplicationType.Server
    await server.set_application_uri(MODERN_APP_URI)
    server.set_security_policy([
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign, ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    await server.load_certificate(str(work / "modern-cert.der"))
    await server.load_private_key(str(work / "modern-key.pem"))
    idx = await server.register_namespace(NS_URI)
    cell = await server.nodes.objects.add_object(idx, "Cell1")
    speed = await cell.add_variable(idx, "Speed", 1200.0)
    stop = plant.install_sigterm(asyncio.get_running_loop())

    async def tick(n, fire):
        if n:
            await speed.write_value(1200.0 + (n % 10))

    await _serve(server, stop, tick)


async def _retry(factory, deadline: float):
    while True:
        try:
            return await factory()
        except (OSError, asyncio.TimeoutError):
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def hmi_main(args) -> None:
    from asyncua import Client, ua

    await plant.async_wait_until(at(args, "hmi_session"))
    client = Client(LEGACY_URL, timeout=4)
    client.application_uri = HMI_APP_URI
    client.name = "otwatch sec HMI"
    client.product_uri = "urn:otwatch:sec:hmi-product"
    await _retry(client.connect, args.end)
    idx = await client.get_namespace_index(NS_URI)
    objects = client.nodes.objects

    # TranslateBrowsePathsToNodeIds: one path that resolves, one that does not (BadNoMatch)
    def path(*names):
        bp = ua.BrowsePath()
        bp.StartingNode = objects.nodeid
        for name in names:
            el = ua.RelativePathElement()
            el.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
            el.IsInverse = False
            el.IncludeSubtypes = True
            el.TargetName = ua.QualifiedName(name, idx)
            bp.RelativePath.Elements.append(el)
        return bp

    res = await client.uaclient.translate_browsepaths_to_nodeids(
        [path("Line2", "Temperature"), path("Line2", "NoSuchTag")])
    print("translate:", [(r.StatusCode.name, [t.TargetId.to_string() for t in r.Targets]) for r in res])
    temp_id = res[0].Targets[0].TargetId
    line = await objects.get_child([f"{idx}:Line2"])
    names = {(await n.read_browse_name()).Name: n for n in await line.get_children()}

    # Read with one unknown node id: BadNodeIdUnknown for that operation only
    params = ua.ReadParameters()
    for nid in (ua.NodeId(temp_id.Identifier, temp_id.NamespaceIndex), ua.NodeId("NoSuchTag", idx)):
        rv = ua.ReadValueId()
        rv.NodeId = nid
        rv.AttributeId = ua.AttributeIds.Value
        params.NodesToRead.append(rv)
    values = await client.uaclient.read(params)
    print("read:", [v.StatusCode.name for v in values])
    await names["Setpoint"].write_value(78.5)

    class Handler:
        n = 0
        events = 0

        def datachange_notification(self, node, val, data):
            Handler.n += 1

        def event_notification(self, event):
            Handler.events += 1

    sub = await client.create_subscription(PUBLISH_MS, Handler())
    await sub.subscribe_data_change([names[k] for k in ("Temperature", "BatchCounter", "Running", "Message")])
    await sub.subscribe_events()

    await plant.async_wait_until(at(args, "hmi_username"))
    user = Client(LEGACY_URL, timeout=4)
    user.application_uri = HMI_APP_URI
    user.name = client.name
    user.product_uri = client.product_uri
    user.set_user(LEGACY_USER)
    user.set_password(LEGACY_PASSWORD)
    async with user:
        print("operator reads setpoint:", await user.get_node(names["Setpoint"].nodeid).read_value())

    await plant.async_wait_until(at(args, "hmi_close"))
    await sub.delete()
    print(f"hmi: {Handler.n} data changes, {Handler.events} events")
    # A Read after CloseSession: the server answers with a ServiceFault (the service fails as a whole).
    await client.close_session()
    try:
        await client.uaclient.read(params)
        print("read after close: answered?")
    except Exception as e:  # the expected ServiceFault
        print("read after close:", type(e).__name__)
    await client.disconnect_sessionless()   # CLO, then the socket


async def eng_main(args) -> None:
    from asyncua import Client, ua
    from asyncua.crypto import security_policies as sp

    work = Path(args.work)
    cert, key = str(work / "eng-cert.der"), str(work / "eng-key.pem")
    await plant.async_wait_until(at(args, "eng_discovery"))
    for url in (LEGACY_URL, MODERN_URL):
        c = Client(url, timeout=4)
        c.application_uri = ENG_APP_URI
        await _retry(c.connect_sessionless, args.end)
        eps = await c.get_endpoints()
        servers = await c.find_servers()
        await c.disconnect_sessionless()
        print("endpoints", url, [(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in eps])
        print("servers", url, [s.ApplicationUri for s in servers])

    async def session(url, policy, mode, server_cert, user=None, password=None, what=""):
        c = Client(url, timeout=4)
        c.application_uri = ENG_APP_URI
        c.name = "otwatch sec engineering"
        c.product_uri = "urn:otwatch:sec:engineering-product"
        await c.set_security(policy, cert, key, server_certificate=server_cert, mode=mode)
        if user:
            c.set_user(user)
            c.set_password(password)
        async with c:
            idx = await c.get_namespace_index(NS_URI)
            obj = await c.nodes.objects.get_child([f"{idx}:{what}"])
            kids = await obj.get_children()
            print(url, policy.__name__, mode.name, [await k.read_value() for k in kids][:2])

    await plant.async_wait_until(at(args, "eng_deprecated"))
    legacy_cert = str(work / "legacy-cert.der")
    await session(LEGACY_URL, sp.SecurityPolicyBasic128Rsa15, ua.MessageSecurityMode.SignAndEncrypt, legacy_cert,
                  what="Line2")
    await session(LEGACY_URL, sp.SecurityPolicyBasic256, ua.MessageSecurityMode.Sign, legacy_cert, what="Line2")

    await plant.async_wait_until(at(args, "eng_modern"))
    modern_cert = str(work / "modern-cert.der")
    await session(MODERN_URL, sp.SecurityPolicyAes128Sha256RsaOaep, ua.MessageSecurityMode.Sign, modern_cert,
                  MODERN_USER, MODERN_PASSWORD, what="Cell1")
    await session(MODERN_URL, sp.SecurityPolicyBasic256Sha256, ua.MessageSecurityMode.SignAndEncrypt, modern_cert,
                  MODERN_USER, MODERN_PASSWORD, what="Cell1")


# ==========================================================================
# README tables (generated, so the docs cannot drift from the capture)
# ==========================================================================
TIMELINE_FIELDS = (
    "frame.number", "frame.time_relative", "eth.src", "eth.dst", "ip.src", "ip.dst",
    "opcua.transport.type", "opcua.servicenodeid.numeric", "opcua.security.spu",
)
SVC = {"GetEndpoints": "428", "FindServers": "422", "CreateSession": "461", "ActivateSession": "467",
       "Read": "631", "ReadResponse": "634", "Write": "673", "TranslateBrowsePaths": "554",
       "TranslateBrowsePathsResponse": "557", "CreateSubscription": "787", "CreateMonitoredItems": "751",
       "PublishResponse": "829", "CloseSession": "473", "ServiceFault": "397", "GetEndpointsResponse": "431"}
POLICY = "http://opcfoundation.org/UA/SecurityPolicy#"
NOTABLE_EVENTS: tuple[tuple[str, dict[str, str], int], ...] = (
    ("eng discovery on legacy: HEL", {"ip.src": "eng", "ip.dst": "legacy", "opcua.transport.type": "HEL"}, 1),
    ("eng GetEndpoints on legacy", {"ip.src": "eng", "ip.dst": "legacy",
                                    "opcua.servicenodeid.numeric": SVC["GetEndpoints"]}, 1),
    ("legacy endpoints: None, Basic128Rsa15, Basic256 (expired RSA 1024 certificate)",
     {"ip.src": "legacy", "opcua.servicenodeid.numeric": SVC["GetEndpointsResponse"]}, 1),
    ("eng FindServers on legacy", {"ip.src": "eng", "ip.dst": "legacy",
                                   "opcua.servicenodeid.numeric": SVC["FindServers"]}, 1),
    ("eng GetEndpoints on modern", {"ip.src": "eng", "ip.dst": "modern",
                                    "opcua.servicenodeid.numeric": SVC["GetEndpoints"]}, 1),
    ("modern endpoints: Basic256Sha256, Aes128_Sha256_RsaOaep (user name only)",
     {"ip.src": "modern", "opcua.servicenodeid.numeric": SVC["GetEndpointsResponse"]}, 1),
    ("eng FindServers on modern", {"ip.src": "eng", "ip.dst": "modern",
                                   "opcua.servicenodeid.numeric": SVC["FindServers"]}, 1),
    ("hmi CreateSession on legacy (SecurityPolicy None)", {"ip.src": "hmi",
                                                            "opcua.servicenodeid.numeric": SVC["CreateSession"]}, 1),
    ("hmi ActivateSession, anonymous", {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["ActivateSession"]}, 1),
    ("hmi TranslateBrowsePathsToNodeIds (Line2/Temperature, Line2/NoSuchTag)",
     {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["TranslateBrowsePaths"]}, 1),
    ("legacy: one target, one BadNoMatch", {"ip.src": "legacy",
                                            "opcua.servicenodeid.numeric": SVC["TranslateBrowsePathsResponse"]}, 1),
    ("hmi Write Setpoint = 78.5", {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["Write"]}, 1),
    ("hmi CreateSubscription (Publish every 500 ms)",
     {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["CreateSubscription"]}, 1),
    ("hmi CreateMonitoredItems (4 variables)",
     {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["CreateMonitoredItems"]}, 1),
    ("first PublishResponse with DataChange notifications",
     {"ip.src": "legacy", "ip.dst": "hmi", "opcua.servicenodeid.numeric": SVC["PublishResponse"]}, 1),
    ("eng OPN Basic128Rsa15 (SignAndEncrypt; certificates visible)",
     {"ip.src": "eng", "opcua.transport.type": "OPN", "opcua.security.spu": POLICY + "Basic128Rsa15"}, 1),
    ("eng OPN Basic256 (Sign: the messages after it stay readable)",
     {"ip.src": "eng", "opcua.transport.type": "OPN", "opcua.security.spu": POLICY + "Basic256"}, 1),
    ("eng CreateSession over Basic256 Sign (readable)",
     {"ip.src": "eng", "ip.dst": "legacy", "opcua.servicenodeid.numeric": SVC["CreateSession"]}, 1),
    ("hmi ActivateSession user 'operator', password in clear",
     {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["ActivateSession"]}, 2),
    ("eng OPN Aes128_Sha256_RsaOaep to modern (Sign)",
     {"ip.src": "eng", "opcua.transport.type": "OPN", "opcua.security.spu": POLICY + "Aes128_Sha256_RsaOaep"}, 1),
    ("eng ActivateSession user 'engineer' on modern (Sign: name readable, password RSA-OAEP encrypted)",
     {"ip.src": "eng", "ip.dst": "modern", "opcua.servicenodeid.numeric": SVC["ActivateSession"]}, 1),
    ("eng OPN Basic256Sha256 to modern (SignAndEncrypt: rest encrypted)",
     {"ip.src": "eng", "opcua.transport.type": "OPN", "opcua.security.spu": POLICY + "Basic256Sha256"}, 1),
    ("hmi CloseSession", {"ip.src": "hmi", "opcua.servicenodeid.numeric": SVC["CloseSession"]}, -1),
    ("ServiceFault: Read after CloseSession", {"ip.src": "legacy", "opcua.servicenodeid.numeric": SVC["ServiceFault"]}, 1),
)


def capture_rows(pcap: Path) -> list[dict[str, list[str]]]:
    cmd = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", "aggregator=\x1f"]
    for f in TIMELINE_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        rows.append({f: [plant._norm(v) for v in c.split("\x1f")] if c else []
                     for f, c in zip(TIMELINE_FIELDS, cols)})
    return rows


def _who(row: dict, ip_field: str, eth_field: str) -> str:
    by_ip = {h.ip: h.name for h in HOSTS}
    by_mac = {h.mac: h.name for h in HOSTS}
    if row[ip_field]:
        return by_ip.get(row[ip_field][0], row[ip_field][0])
    mac = row[eth_field][0] if row[eth_field] else "?"
    return {"ff:ff:ff:ff:ff:ff": "broadcast"}.get(mac, by_mac.get(mac, mac))


def timeline_table(pcap: Path) -> str:
    rows = capture_rows(pcap)
    by_name = {h.name: h for h in HOSTS}
    found, missing = [], []
    for label, cond, nth in NOTABLE_EVENTS:
        want = {f: (by_name[v].ip if f in ("ip.src", "ip.dst") and v in by_name else v) for f, v in cond.items()}
        hits = [r for r in rows if all(v in r[f] for f, v in want.items())]
        if len(hits) < abs(nth):
            missing.append(f"| – | – | – | {label} (not in this capture) |")
            continue
        r = hits[nth - 1] if nth > 0 else hits[nth]
        t = float(r["frame.time_relative"][0])
        who = f"{_who(r, 'ip.src', 'eth.src')} → {_who(r, 'ip.dst', 'eth.dst')}"
        found.append((int(r["frame.number"][0]), f"| {r['frame.number'][0]} | {t:.3f} | {who} | {label} |"))
    lines = ["| frame | t (s) | from → to | event |", "|---:|---:|---|---|"]
    return "\n".join(lines + [row for _, row in sorted(found)] + missing)


def host_table() -> str:
    return plant.host_table(HOSTS)


# ==========================================================================
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=DEFAULT_DURATION,
                    help=f"scenario length in seconds (default {DEFAULT_DURATION:.0f})")
    ap.add_argument("--out", default=str(HERE), help=f"output directory (writes {PCAP_NAME}) or a .pcap path")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"namespace name prefix (default {DEFAULT_PREFIX})")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dir with role logs")
    ap.add_argument("--readme-tables", metavar="PCAP",
                    help="print the README host and time-line tables for PCAP (needs tshark) and exit")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--end", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.readme_tables:
        print(host_table() + "\n\n" + timeline_table(Path(args.readme_tables)))
        return 0
    if args.role is None:
        if args.duration < MIN_DURATION:
            ap.error(f"--duration must be at least {MIN_DURATION:.0f} s")
        build(args)
        return 0
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    role = args.role
    if role in SERVERS:
        asyncio.run({"legacy": legacy_main, "modern": modern_main}[role](args))
    elif role in CLIENTS:
        plant.install_sigterm()
        asyncio.run({"hmi": hmi_main, "eng": eng_main}[role](args))
    else:
        raise SystemExit(f"unknown role {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
