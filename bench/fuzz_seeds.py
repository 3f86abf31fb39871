"""Seed corpora for bench/fuzz.py, built from the shipped captures and from
byte-exact builders (tests/support/capbuild.py and the protocol test builders).

The seeds are deterministic (the same checkout gives the same seeds, so a
reproducer that names a decoder template by index stays valid), except the
certificates and TLS hellos: they carry fresh keys and randoms on each run,
with the same structure.

    engine     small pcap/pcapng files: windows of pcaps/demo-plant.*, and
               capbuild files covering every link type, VLAN/QinQ, IPv6,
               pcapng sections of both byte orders
    modbus     stream scripts (see fuzz_targets.encode_script) harvested from
    mqtt       the flows of the demo plant, plus builder-made conversations
    opcua
    decoders   (template selector, raw) for every record the kernels emit on
               the stream seeds
    hostnames  DHCP/DNS/mDNS/LLMNR/NBNS/LLDP payloads from the demo plant
    tls        real ClientHello/ServerHello bytes from Python's ssl module
    certs      DER certificates made with ``cryptography`` and taken from the
               demo plant's OpenSecureChannel messages
"""
from __future__ import annotations

import functools
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "parsers"),
           os.path.join(ROOT, "tests", "parsers", "mqtt"), os.path.join(ROOT, "tests", "parsers", "opcua")):
    if _p not in sys.path:
        sys.path.append(_p)

PCAPS = os.path.join(ROOT, "pcaps")
APPS = {"modbus": 1, "mqtt": 2, "opcua": 3}
CORES = {"modbus": "ModbusCore", "mqtt": "MQTTCore", "opcua": "OPCUACore"}

MAX_STREAM_SEED = 6000      # bytes of one harvested stream script


# ---------------------------------------------------------------------------
# captures
# ---------------------------------------------------------------------------
def _read(name: str) -> bytes:
    path = os.path.join(PCAPS, name)
    if not os.path.exists(path):
        return b""
    if name.endswith(".gz"):
        import gzip
        with gzip.open(path, "rb") as fh:
            return fh.read()
    with open(path, "rb") as fh:
        return fh.read()


def pcap_files() -> list[str]:
    """The classic-pcap captures shipped in pcaps/ (demo plant first)."""
    names = sorted(n for n in os.listdir(PCAPS) if n.endswith((".pcap", ".pcap.gz"))) if os.path.isdir(PCAPS) else []
    return sorted(names, key=lambda n: n != "demo-plant.pcap")


def pcap_records(blob: bytes):
    """(header, [(record bytes)]) of a little/big-endian pcap; stops at damage."""
    if len(blob) < 24:
        return blob, []
    e = "<" if blob[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    recs, p = [], 24
    while p + 16 <= len(blob):
        caplen = struct.unpack_from(e + "I", blob, p + 8)[0]
        if p + 16 + caplen > len(blob):
            break
        recs.append(blob[p:p + 16 + caplen])
        p += 16 + caplen
    return blob[:24], recs


def pcapng_blocks(blob: bytes):
    """[(type, bytes)] of a pcapng file (byte order of each section); stops at damage."""
    out, p, e = [], 0, "<"
    while p + 12 <= len(blob):
        if blob[p:p + 4] == b"\x0a\x0d\x0d\x0a":
            e = ">" if blob[p + 8:p + 12] == b"\x1a\x2b\x3c\x4d" else "<"
        btype, blen = struct.unpack_from(e + "II", blob, p)
        if blen < 12 or p + blen > len(blob):
            break
        out.append((btype, blob[p:p + blen]))
        p += blen
    return out


def demo_windows(n_windows: int = 24, size: int = 40) -> list[bytes]:
    """Small valid pcaps: windows of *size* records spread over each capture in pcaps/
    (the demo plant, and whatever other .pcap/.pcap.gz captures are shipped)."""
    out = []
    for name in pcap_files():
        hdr, recs = pcap_records(_read(name))
        if not recs:
            continue
        n = n_windows if name == "demo-plant.pcap" else max(4, n_windows // 2)
        step = max(1, (len(recs) - size) // max(1, n - 1))
        for i in range(n):
            start = min(i * step, max(0, len(recs) - size))
            w = hdr + b"".join(recs[start:start + size])
            if len(w) <= 1 << 16:
                out.append(w)
        head = hdr + b"".join(recs[:200])       # the start: handshakes, CONNECT, HEL/OPN
        out.append(head[:1 << 16])
    return out


def demo_ng_windows(n_windows: int = 8, size: int = 30) -> list[bytes]:
    blobs = pcapng_blocks(_read("demo-plant.pcapng"))
    if not blobs:
        return []
    head = [b for t, b in blobs if t in (0x0A0D0D0A, 1)]
    pkts = [b for t, b in blobs if t not in (0x0A0D0D0A, 1)]
    out = []
    step = max(1, (len(pkts) - size) // max(1, n_windows - 1))
    for i in range(n_windows):
        start = min(i * step, max(0, len(pkts) - size))
        out.append(b"".join(head) + b"".join(pkts[start:start + size]))
    return out


def _tcp_conv(cb, sport, dport, client_msgs, server_msgs, c="10.0.0.1", s="10.0.0.2"):
    """A TCP conversation (handshake, alternating data, FIN) as Ethernet frames."""
    frames = []
    cm, sm = "02:00:00:00:00:01", "02:00:00:00:00:02"

    def e(src, dst, smac, dmac, l4):
        return cb.eth(smac, dmac, 0x0800, cb.ipv4(src, dst, 6, l4))
    cseq, sseq = 1000, 5000
    frames.append(e(c, s, cm, sm, cb.tcp(sport, dport, cseq, 0, "S")))
    frames.append(e(s, c, sm, cm, cb.tcp(dport, sport, sseq, cseq + 1, "SA")))
    cseq += 1
    sseq += 1
    for i in range(max(len(client_msgs), len(server_msgs))):
        if i < len(client_msgs):
            frames.append(e(c, s, cm, sm, cb.tcp(sport, dport, cseq, sseq, "PA", client_msgs[i])))
            cseq += len(client_msgs[i])
        if i < len(server_msgs):
            frames.append(e(s, c, sm, cm, cb.tcp(dport, sport, sseq, cseq, "PA", server_msgs[i])))
            sseq += len(server_msgs[i])
    frames.append(e(c, s, cm, sm, cb.tcp(sport, dport, cseq, sseq, "FA")))
    frames.append(e(s, c, sm, cm, cb.tcp(dport, sport, sseq, cseq + 1, "FA")))
    return frames


def built_captures() -> list[bytes]:
    """capbuild files: every link type and container variant the engine reads."""
    from support import capbuild as cb

    mb_req = bytes.fromhex("000100000006010300000004")
    mb_resp = bytes.fromhex("00010000000b01030800010002000300 04".replace(" ", ""))
    conv = _tcp_conv(cb, 40000, 502, [mb_req, mb_req], [mb_resp, mb_resp])
    try:
        import mqtt_build as B
        mq = _tcp_conv(cb, 40001, 1883, [B.connect(level=5), B.publish("a/b", b"1", qos=1, pid=1)],
                       [B.connack(), B.ack(4, 1)])
    except Exception:  # pragma: no cover - builders missing
        mq = []
    try:
        import opcua_wire as w
        ua = _tcp_conv(cb, 40002, 4840, [w.hello(), w.read_request()], [w.acknowledge(), w.read_response()])
    except Exception:  # pragma: no cover
        ua = []
    dns = bytes.fromhex("12348180000100010000000003777777076578616d706c6503636f6d0000010001"
                        "c00c000100010000003c00040a000001")
    udp_dns = cb.eth("02:00:00:00:00:03", "02:00:00:00:00:01", 0x0800,
                     cb.ipv4("10.0.0.3", "10.0.0.1", 17, cb.udp(53, 33333, dns)))
    v6 = cb.eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x86DD,
                cb.ipv6("fd00::1", "fd00::2", 6, cb.tcp(40010, 502, 1, 0, "PA", mb_req),
                        ext=cb.hop_by_hop(6), ext_nh=0))
    vlan = cb.eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800,
                  cb.ipv4("10.0.0.1", "10.0.0.2", 6, cb.tcp(40011, 502, 1, 0, "PA", mb_req)), vlans=(7,))
    qinq = cb.qinq("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800,
                   cb.ipv4("10.0.0.1", "10.0.0.2", 6, cb.tcp(40012, 502, 1, 0, "PA", mb_req)), 10, 20)
    arp = cb.eth("02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", 0x0806,
                 bytes.fromhex("0001080006040001020000000001") + cb.ip("10.0.0.1") + bytes(6) + cb.ip("10.0.0.2"))
    frag = cb.eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800,
                  cb.ipv4("10.0.0.1", "10.0.0.2", 17, cb.udp(1, 2, b"x" * 16), frag=0x2000))
    # an IPv6 TCP segment in two fragments (the second first: out of order), reassembled by the engine
    seg6 = cb.tcp(40013, 502, 1, 0, "PA", mb_req)
    frag6 = [cb.eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x86DD,
                    cb.ipv6("fd00::1", "fd00::2", 6, chunk, ext=struct.pack("!BBHI", 6, 0, fo, 0x5EED), ext_nh=44))
             for chunk, fo in ((seg6[16:], 16), (seg6[:16], 1))]
    eth_frames = conv + mq + ua + [udp_dns, v6, vlan, qinq, arp, frag] + frag6
    t0 = 1_700_000_000.0
    pk = [(t0 + i * 0.01, f) for i, f in enumerate(eth_frames)]
    ip_only = [(t, f[14:]) for t, f in pk if f[12:14] == b"\x08\x00"]
    out = [
        cb.pcap(pk),
        cb.pcap(pk, big=True, nanos=True),
        cb.pcap(pk, snaplen=60, cut=60),
        cb.pcap(ip_only, linktype=101),
        cb.pcap(ip_only, linktype=228),
        cb.pcap([(t, cb.null(f, 2)) for t, f in ip_only], linktype=0),
        cb.pcap([(t, cb.null(f, 2, big=True)) for t, f in ip_only], linktype=108),
        cb.pcap([(t, cb.sll(f, 0x0800)) for t, f in ip_only], linktype=113),
        cb.pcap([(t, cb.sll2(f, 0x0800)) for t, f in ip_only], linktype=276),
        cb.pcapng([{"ifaces": [(1, None), (101, 9)], "packets": [(0, t, f) for t, f in pk[:12]]
                    + [(1, t, f) for t, f in ip_only[:4]], "simple": [pk[0][1]]},
                   {"big": True, "ifaces": [(1, 0x86)], "packets": [(0, t, f) for t, f in pk[12:]]}]),
    ]
    return out


def engine_seeds() -> list[bytes]:
    return built_captures() + demo_windows() + demo_ng_windows()


# ---------------------------------------------------------------------------
# protocol streams, harvested through the engine
# ---------------------------------------------------------------------------
def _recording_kernels(impl: str, log: list):
    from otwatch.ext import load

    kernels = {}
    for name, app in APPS.items():
        mod = load(name, impl)
        core_cls = getattr(mod, CORES[name])

        class Rec:
            def __init__(self, seen, detail_all, limits, seen_server=None, _cls=core_cls, _name=name):
                self.inner = _cls(seen, detail_all, limits, seen_server)
                self.ops: list = []
                log.append((_name, self.ops))

            def feed(self, side, data, s, e, ts, frame, out):
                self.ops.append(("feed", side, bytes(data[s:e])))
                return self.inner.feed(side, data, s, e, ts, frame, out)

            def gap(self, side, n, ts, frame, out):
                self.ops.append(("gap", side, n))
                return self.inner.gap(side, n, ts, frame, out)

            def eof(self, side, ts, frame, out):
                self.ops.append(("eof", side))
                return self.inner.eof(side, ts, frame, out)

            confirmed = property(lambda self: self.inner.confirmed)
            messages = property(lambda self: self.inner.messages)
            bytes_decoded = property(lambda self: self.inner.bytes_decoded)
            bytes_skipped = property(lambda self: self.inner.bytes_skipped)
            bytes_encrypted = property(lambda self: self.inner.bytes_encrypted)

        kernels[app] = (Rec, mod.probe)
    return kernels


def harvest(blob: bytes, impl: str | None = None):
    """Feed a capture through the engine; return ([(proto, ops)], [aux records])."""
    from otwatch import ext
    from otwatch.parsers.limits import DEFAULT_LIMITS

    impl = impl or ext.IMPLEMENTATION
    log: list = []
    E = ext.load("engine", impl)
    eng = E.Engine(_recording_kernels(impl, log), DEFAULT_LIMITS, {502: 1, 1883: 2, 4840: 3},
                   {802: 1, 8883: 2, 4843: 3}, True, 60.0)
    eng.feed(blob, True)
    eng.finish()
    aux = [r for r in eng.take() if r[0] == 18]
    return log, aux


def _split_ops(ops: list, limit: int) -> list[list]:
    """Cut one flow's operations into scripts of at most *limit* data bytes."""
    scripts, cur, size = [], [], 0
    for op in ops:
        cur.append(op)
        if op[0] == "feed":
            size += len(op[2])
        if size >= limit:
            scripts.append(cur)
            cur, size = [], 0
    if cur:
        scripts.append(cur)
    return scripts


def builder_streams() -> dict[str, list[list]]:
    """Hand-built conversations: every message type the builders know."""
    out: dict[str, list[list]] = {"modbus": [], "mqtt": [], "opcua": []}
    try:
        import opcua_wire as w
        out["opcua"].append([("feed", 0, w.hello()), ("feed", 1, w.acknowledge()),
                             ("feed", 0, w.read_request()), ("feed", 1, w.read_response()),
                             ("feed", 0, w.activate_session_plain_password("u", "p")),
                             ("feed", 1, w.error(0x80000000, "x")), ("feed", 0, w.abort(0x80AB0000, "a"))])
        out["opcua"].append([("feed", 0, c) for c in w.rechunk(w.read_request(reqid=3), 3)]
                            + [("feed", 1, w.reverse_hello("urn:x", "opc.tcp://x"))])
    except Exception:  # pragma: no cover
        pass
    try:
        import mqtt_build as B
        for level in (3, 4, 5):
            props = None
            c = [B.connect(level=level, username="u", password=b"p", will=None),
                 B.subscribe(1, [("a/#", 1)]), B.publish("a/b", b"hello", qos=1, pid=2),
                 B.publish("a/c", b"x" * 40, qos=2, pid=3), B.unsubscribe(4, ["a/#"])]
            s = [B.connack(), B.suback(1, [1]), B.ack(4, 2), B.ack(5, 3), B.unsuback(4)]
            ops = []
            for i in range(len(c)):
                ops.append(("feed", 0, c[i]))
                ops.append(("feed", 1, s[i]))
            out["mqtt"].append(ops)
            del props
    except Exception:  # pragma: no cover
        pass
    fcs = [bytes.fromhex(h) for h in (
        "0103000a0002", "0201000000ff", "0406000100ff", "050500ffff00", "0f0010000a0201ff",
        "1000010002040001000a", "0808000000ff", "2b0e0100", "17000000010002000200010203", "18000a",
        "14070600010000000a", "0b", "0c", "11", "16000100ff0000")]
    resp = [bytes.fromhex(h) for h in (
        "01030400010002", "0201ff", "0406000100ff", "050500ffff00", "0f0010000a", "1000010002",
        "0808000000ff", "2b0e01010000020004666f6f3101036261", "8302", "0b00000001", "0c0500000000ff",
        "1103010203ff", "14070600010000000a")]
    ops = []
    for i, pdu in enumerate(fcs):
        ops.append(("feed", 0, struct.pack(">HHHB", i, 0, len(pdu) + 1, 1) + pdu))
        if i < len(resp):
            ops.append(("feed", 1, struct.pack(">HHHB", i, 0, len(resp[i]) + 1, 1) + resp[i]))
    out["modbus"].append(ops)
    return out


@functools.lru_cache(maxsize=1)
def stream_seeds() -> dict[str, list[list]]:
    """{proto: [ops]} from the demo plant (both captures) and the builders."""
    out = builder_streams()
    for name in pcap_files():
        blob = _read(name)
        if not blob:
            continue
        log, _aux = harvest(blob)
        per: dict[str, int] = {}
        for proto, ops in log:
            if per.get(proto, 0) >= 12:
                continue
            for script in _split_ops(ops, MAX_STREAM_SEED)[:3]:
                out[proto].append(script)
                per[proto] = per.get(proto, 0) + 1
    return out


@functools.lru_cache(maxsize=1)
def aux_seeds() -> list[tuple[str, int, bytes]]:
    """(kind, side, payload) of the auxiliary records (names, TLS) in the demo plant."""
    blob = _read("demo-plant.pcap")
    out = []
    if blob:
        _log, aux = harvest(blob)
        seen = set()
        for r in aux:
            key = (r[1], bytes(r[9][:64]))
            if key in seen:
                continue
            seen.add(key)
            out.append((r[1], r[3], bytes(r[9])))
    return out[:200]


# ---------------------------------------------------------------------------
# TLS hellos and certificates
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def certificates() -> list[bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import NameOID

    out = []
    keys = [rsa.generate_private_key(65537, 1024), ec.generate_private_key(ec.SECP256R1()),
            ed25519.Ed25519PrivateKey.generate()]
    for i, key in enumerate(keys):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plc-%d" % i),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Plant\u00e9")])
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(1000 + i)
             .not_valid_before(datetime.datetime(2024, 1, 1))
             .not_valid_after(datetime.datetime(2034, 1, 1))
             .add_extension(x509.SubjectAlternativeName([
                 x509.UniformResourceIdentifier("urn:plant:plc%d" % i), x509.DNSName("plc%d.local" % i)]),
                 critical=False))
        cert = b.sign(key, None if i == 2 else hashes.SHA256())
        out.append(cert.public_bytes(serialization.Encoding.DER))
    out.append(out[0] + out[1])       # a chain, as OPC UA sends them
    return out


@functools.lru_cache(maxsize=1)
def tls_hellos() -> list[tuple[int, bytes]]:
    """[(side, bytes)]: a real ClientHello and ServerHello flight from Python's ssl."""
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = []
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = x509.load_der_x509_certificate(certificates()[1])
        # a certificate signed by its own key is needed for the server: rebuild with this key
        import datetime

        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(7).not_valid_before(datetime.datetime(2024, 1, 1))
                .not_valid_after(datetime.datetime(2034, 1, 1)).sign(key, hashes.SHA256()))
        with tempfile.TemporaryDirectory() as d:
            cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            with open(cp, "wb") as fh:
                fh.write(cert.public_bytes(serialization.Encoding.PEM))
            with open(kp, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
            for maxv in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                cctx.check_hostname = False
                cctx.verify_mode = ssl.CERT_NONE
                cctx.maximum_version = maxv
                cctx.set_alpn_protocols(["mqtt", "x-amzn-mqtt-ca"])
                sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                sctx.load_cert_chain(cp, kp)
                sctx.set_alpn_protocols(["mqtt"])
                ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
                c = cctx.wrap_bio(ci, co, server_hostname="broker.plant.example")
                s = sctx.wrap_bio(si, so, server_side=True)
                try:
                    c.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                ch = co.read()
                si.write(ch)
                try:
                    s.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                sh = so.read()
                out.append((0, ch))
                out.append((1, sh))
    except Exception:  # pragma: no cover - no ssl/cryptography: hand-made minimal hello
        pass
    if not out:
        body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + b"\x00\x00"
        hs = b"\x01" + len(body).to_bytes(3, "big") + body
        out.append((0, b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs))
    return out


def opn_certificates() -> list[bytes]:
    """Certificates carried by the demo plant's OPN messages (if it used security)."""
    out = []
    for ops in stream_seeds().get("opcua", []):
        for op in ops:
            if op[0] == "feed" and op[2][:3] == b"OPN":
                data = op[2]
                i = data.find(b"\x30\x82")
                if i > 0:
                    n = int.from_bytes(data[i + 2:i + 4], "big") + 4
                    if i + n <= len(data):
                        out.append(data[i:i + n])
    return out[:8]
