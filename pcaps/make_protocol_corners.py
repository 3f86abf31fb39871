#!/usr/bin/env python3
"""Capture the Modbus/TCP and MQTT corners the demo plant does not show.

Contract
--------
``sudo python pcaps/make_protocol_corners.py [--out pcaps/]`` writes
``protocol-corners.pcap.gz`` (classic pcap, Ethernet, snaplen 262144,
gzip-compressed; otwatch and tshark read it as it is) into ``--out`` (a
directory, or a file path ending in ``.pcap.gz`` or ``.pcap``).  It needs root,
``ip`` (iproute2 with ``ip netns``), ``tcpdump``, ``mosquitto`` (with its
dynamic-security plugin) and the Python packages pymodbus, paho-mqtt, scapy and
cryptography.  A run takes about 6 s.

Why gzip: one item is an MQTT PUBLISH larger than otwatch's MQTT message limit
(``limits.mqtt_max_message``, 1 MiB), so the capture holds more than 1 MiB of
frames; compressed, the file stays far below 300 kB.

The machinery is the demo plant's (``make_demo_plant.py``): one network
namespace per host (``<prefix>-<host>``), one veth each into a Linux bridge in
``<prefix>-sw``, tcpdump on the bridge, offloads off, IPv6 off, teardown in
``finally``.  Nothing touches the host's interfaces; the only addresses are
10.20.0.0/24 inside the namespaces.

Real peers where they can do it, crafted bytes where they cannot:

* ``gw`` is a pymodbus server (three unit ids behind one address, a custom
  user-defined function 65, exceptions 4 and 6 from the device action);
  ``eng`` talks to it with the pymodbus client and, for pipelining, an ADU
  split over two segments and an invalid read device id code, with ADUs built
  by scapy and sent over a plain TCP socket.
* ``plc`` is a crafted Modbus server: its answers are built with scapy because
  pymodbus cannot give them (FC 20 records of the requested lengths -- pymodbus
  answers a fixed dummy record --, silence after FC 8/4 Force Listen Only Mode
  -- pymodbus answers it --, UMAS (FC 90) and exception 1 for a user-defined
  function -- pymodbus answers unknown functions with function byte 0x80).
* ``broker`` is mosquitto (1883 and TLS on 8883, dynamic-security plugin for
  users and ACLs); ``edge`` is a crafted broker that refuses every CONNECT with
  "bad user name or password" (3.1.1 return code 4, 5.0 reason code 0x86),
  which mosquitto 2.0 never sends for a wrong password (it answers "not
  authorized", 5 / 0x87).  The MQTT clients are paho-mqtt.

The same file is the program that runs inside each namespace (``--role gw``
etc.).  Clients run one after another, so the order of events is fixed.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import gzip
import hashlib
import json
import logging
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import make_demo_plant as demo  # noqa: E402  (the shared namespace/bridge/tcpdump machinery)

DEFAULT_PREFIX = "otwcorn"
PCAP_NAME = "protocol-corners.pcap.gz"
SUBNET_PREFIX_LEN = 24  # 10.20.0.0/24
BRIDGE_MAC = "02:00:0a:14:00:fe"
Host = demo.Host

HOSTS: tuple[Host, ...] = (
    Host("gw", "10.20.0.10", "00:90:e8:14:00:0a",
         "Modbus/TCP gateway 502 (pymodbus; units 1, 2, 7 behind one address; Moxa OUI)"),
    Host("plc", "10.20.0.11", "00:80:f4:14:00:0b",
         "Modbus/TCP server 502 with crafted answers: FC 20, FC 8/4 silence, UMAS (Schneider OUI)"),
    Host("eng", "10.20.0.31", "00:14:22:14:00:1f",
         "engineering workstation: every Modbus corner, UMAS session (Dell OUI)"),
    Host("legacy", "10.20.0.41", "02:00:0a:14:00:29",
         "MQTT 3.1 (MQIsdp) client, anonymous, escape sequences in a payload"),
    Host("field", "10.20.0.42", "02:00:0a:14:00:2a",
         "MQTT 3.1.1/5.0 clients: refused CONNECTs, denied SUBSCRIBEs, 1 MiB PUBLISH, escape sequences"),
    Host("secure", "10.20.0.43", "02:00:0a:14:00:2b",
         "MQTT over TLS 1.3 and 1.2 on 8883, SNI broker.plant.local"),
    Host("broker", "10.20.0.50", "02:00:0a:14:00:32",
         "mosquitto 1883 + TLS 8883 (dynamic-security plugin: users, ACLs)"),
    Host("edge", "10.20.0.51", "02:00:0a:14:00:33",
         "crafted MQTT broker 1883: refuses every CONNECT as bad user name or password"),
)
IP = {h.name: h.ip for h in HOSTS}
SERVER_ROLES = ("gw", "plc", "edge")
CLIENT_ROLES = ("eng", "legacy", "field", "secure")   # run in this order, one at a time

MODBUS_PORT = 502
MQTT_PORT = 1883
MQTT_TLS_PORT = 8883
TLS_SNI = "broker.plant.local"

# --- Modbus -------------------------------------------------------------------
GW_UNITS = (1, 2, 7)            # flow meter, drive, energy meter on the gateway's RS-485 line
GW_BUSY_ADDRESS = 50            # FC 3 here: exception 6 (server device busy) from the device action
GW_FAIL_ADDRESS = 51            # FC 3 here: exception 4 (server device failure)
GW_IDENTITY = {
    "VendorName": "Moxa",
    "ProductCode": "MGate MB3180",
    "MajorMinorRevision": "v2.2",
    "VendorUrl": "http://www.moxa.com",
    "ProductName": "MGate MB3180",
    "ModelName": "MB3180-T",
    "UserApplicationName": "LINE3 RS-485 GATEWAY",
}
GW_PRIVATE_OBJECTS = {   # extended device identification: enough for three transactions (more follows)
    0x80 + i: f"{name}={value}".ljust(44, ".")
    for i, (name, value) in enumerate((
        ("serial", "MGA-0042-7731"), ("firmware", "Build 21041315"), ("port1", "RS-485 19200 8E1"),
        ("port2", "RS-232 9600 8N1"), ("slave-timeout", "1000 ms"), ("inter-frame", "0 ms"),
        ("tcp-idle", "60 s"), ("max-connections", "16"), ("priority-control", "off"),
        ("route", "unit 1-8 -> port1"), ("route", "unit 9-247 -> port2"), ("location", "cabinet L3-K2"),
    ))
}
USER_FC = 65                    # user-defined function served by the gateway (custom pymodbus PDU)
USER_FC_REFUSED = 100           # user-defined function the PLC refuses (exception 1)
FILE_READS = ((4, 1, 2), (3, 9, 3), (12, 0, 1))          # FC 20 sub-requests: (file, record, length)
FILE_WRITES = ((4, 7, (0x06AF, 0x04BE, 0x100D)), (5, 2, (0x1234,)))   # FC 21 sub-requests
FIFO_ADDRESS = 0x04D2

PLC_HOLDING = [1200, 35, 0, 7, 0x0102, 0x0304, 0, 0, 0, 0, 450, 451, 452, 453]
PLC_COILS = [1, 0, 1, 1, 0, 0, 0, 1]
UMAS_KEY = 0x5B                 # pairing key the crafted PLC hands out with its reservation
# (UMAS function, request data, response status 0xFE ok / 0xFD error, response data)
UMAS_SESSION: tuple[tuple[int, bytes, int, bytes], ...] = (
    (0x01, b"\x00", 0xFE, struct.pack("<HH", 1022, 0x0324) + b"\x00" * 4 + struct.pack("<I", 0x1C0A0E32)
     + b"\x08BMXP5820"),                                          # INIT_COMM: max frame size, firmware ...
    (0x02, b"", 0xFE, b"\x01\x00\x20\x08\x0b\x00M580 P58 2020"),  # READ_ID
    (0x03, b"\x00", 0xFE, b"\x00" * 8 + b"LINE3_PACKING\x00"),   # READ_PROJECT_INFO
    (0x04, b"", 0xFE, b"\x00\x00\x01\x00\x0c\x00\x00\x00"),       # READ_PLC_INFO
    (0x06, b"", 0xFD, b"\x12\x00"),                               # READ_CARD_INFO: no memory card (error)
    (0x10, b"\x00\x00\x09ENG-WS-31", 0xFE, bytes([UMAS_KEY])),    # TAKE_PLC_RESERVATION
    (0x22, b"\x4c\x1d\x7e\x21\x01" + b"\x02\x01\x00\x00\x10\x00\x00", 0xFE, b"\x00\x2a\x00"),  # READ_VARIABLES
    (0x23, b"\x4c\x1d\x7e\x21\x01" + b"\x02\x01\x00\x10\x00\x00\x00" + b"\x2b\x00", 0xFE, b""),  # WRITE_VARIABLES
    (0x41, b"\xff\x00", 0xFE, b""),                               # STOP_PLC
    (0x30, b"\x00\x01", 0xFE, b"\x00\x01"),                       # INITIALIZE_UPLOAD (PC -> PLC)
    (0x31, b"\x00\x01" + struct.pack("<HH", 1, 96) + bytes(range(96)), 0xFE, b""),  # UPLOAD_BLOCK
    (0x32, b"\x00\x01", 0xFE, b""),                               # END_STRATEGY_UPLOAD
    (0x40, b"\xff\x00", 0xFE, b""),                               # START_PLC
    (0x50, b"\x15\x00\x01\x00", 0xFE, b"\x00\x00\x00\x00"),       # MONITOR_PLC
    (0x11, b"", 0xFE, b""),                                       # RELEASE_PLC_RESERVATION
)

# --- MQTT -----------------------------------------------------------------------
MQTT_USER = "line3"
MQTT_PASSWORD = "corner-Pass!"            # deliberately sent in clear on 1883 (a finding)
MQTT_WRONG_PASSWORD = "guess-1234"        # sent in clear, refused
ESC_CLIENT_ID = "\x1b[31mline3\x1b[0m"    # ANSI red: mosquitto closes the connection (control characters)
ESC_TOPIC = "plant/line3/\x1b[31mALARM\x1b[0m"
ESC_PAYLOAD = "\x1b]0;owned\x07\x1b[2J\x1b[31mLEVEL LOW\x1b[0m"   # OSC title, clear screen, red: accepted
BIG_TOPIC = "plant/line3/firmware.bin"
BIG_PAYLOAD_LEN = 1024 * 1024 + 4096      # > otwatch's limits.mqtt_max_message (1 MiB)
DENIED_FILTER = "secret/recipes/#"        # no ACL grants it: SUBACK failure

log = logging.getLogger("protocol-corners")


# ==========================================================================
# Builder (root namespace; only ever touches its own namespaces)
# ==========================================================================
class Corners(demo.Plant):
    def spawn_role(self, role: str, start: float = 0.0, end: float = 0.0) -> None:
        self.spawn(role, role, [sys.executable, str(Path(__file__).resolve()), "--role", role,
                                "--work", str(self.work)])


def make_certificates(work: Path) -> None:
    """A throwaway CA and a server certificate for broker.plant.local (EC P-256, 1 day)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=1)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "otwatch protocol corners"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("otwatch corners CA")).issuer_name(name("otwatch corners CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(TLS_SNI)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(later)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_SNI),
                                                        x509.IPAddress(ipaddress.ip_address(IP["broker"]))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (work / "ca.pem").write_bytes(ca.public_bytes(pem))
    (work / "server.pem").write_bytes(cert.public_bytes(pem))
    (work / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    os.chmod(work / "server.key", 0o600)


def dynsec_config() -> dict:
    """mosquitto dynamic-security state: line3 may use plant/#, anonymous clients plant/legacy/#."""
    def client(user: str, password: str, roles: list[str]) -> dict:
        salt = hashlib.sha256(user.encode()).digest()[:12]
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
        return {"username": user, "password": base64.b64encode(digest).decode(),
                "salt": base64.b64encode(salt).decode(), "iterations": 101,
                "roles": [{"rolename": r} for r in roles]}

    def acl(acltype: str, topic: str) -> dict:
        return {"acltype": acltype, "topic": topic, "allow": True}

    return {
        "clients": [client(MQTT_USER, MQTT_PASSWORD, ["line3"])],
        "groups": [{"groupname": "anonymous", "roles": [{"rolename": "legacy"}]}],
        "anonymousGroup": "anonymous",
        "roles": [
            {"rolename": "line3", "acls": [acl("publishClientSend", "plant/#"), acl("subscribePattern", "plant/#")]},
            {"rolename": "legacy", "acls": [acl("publishClientSend", "plant/legacy/#"),
                                            acl("subscribePattern", "plant/legacy/#")]},
        ],
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                             "subscribe": False, "unsubscribe": True},
    }


def dynsec_plugin() -> str:
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"):
        p = Path(d) / "mosquitto_dynamic_security.so"
        if p.exists():
            return str(p)
    raise SystemExit("mosquitto_dynamic_security.so not found (mosquitto >= 2.0 ships it)")


def write_mosquitto_config(work: Path) -> Path:
    dyn = work / "dynsec.json"
    dyn.write_text(json.dumps(dynsec_config(), indent=1))
    os.chmod(dyn, 0o600)
    conf = work / "mosquitto.conf"
    conf.write_text(
        "# otwatch protocol corners broker\n"
        "user root\n"
        "per_listener_settings false\n"
        "allow_anonymous true\n"
        f"plugin {dynsec_plugin()}\n"
        f"plugin_opt_config_file {dyn}\n"
        "persistence false\n"
        "sys_interval 0\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "connection_messages true\n"
        f"listener {MQTT_PORT} {IP['broker']}\n"
        f"listener {MQTT_TLS_PORT} {IP['broker']}\n"
        f"cafile {work / 'ca.pem'}\n"
        f"certfile {work / 'server.pem'}\n"
        f"keyfile {work / 'server.key'}\n"
    )
    return conf


def wait_listening(prefix: str, host: str, ports: tuple[int, ...], proc: subprocess.Popen,
                   timeout: float = 10.0) -> None:
    """Until *host*'s namespace has TCP listeners on *ports* (clients then never meet a RST)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = demo.run(["ip", "netns", "exec", demo.ns_name(prefix, host), "ss", "-Hltn"], check=False).stdout
        if all(f":{p} " in out for p in ports):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{host} exited before listening")
        time.sleep(0.05)
    raise RuntimeError(f"{host} is not listening on {ports}")


def gzip_file(src: Path, dst: Path) -> None:
    """Deterministic gzip (no file name, mtime 0): same frames, same bytes."""
    with src.open("rb") as f, dst.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        shutil.copyfileobj(f, gz)


def build(args: argparse.Namespace) -> Path:
    if os.geteuid() != 0:
        raise SystemExit("make_protocol_corners.py needs root (network namespaces, tcpdump)")
    for tool in ("ip", "tcpdump", "mosquitto"):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing tool: {tool}")
    out = Path(args.out)
    if out.name.endswith((".pcap.gz", ".pcap")):
        out_file = out
    else:
        out_file = out / PCAP_NAME
    out_file.parent.mkdir(parents=True, exist_ok=True)

    prefix = args.prefix
    demo.cleanup_namespaces(prefix)
    work = Path(tempfile.mkdtemp(prefix="otwatch-corners-"))
    os.chmod(work, 0o755)
    plant = Corners(prefix, work)
    failures: list[str] = []
    try:
        log.info("building %d namespaces (prefix %s)", len(HOSTS) + 1, prefix)
        demo.build_topology(prefix, HOSTS, BRIDGE_MAC, SUBNET_PREFIX_LEN)
        make_certificates(work)
        conf = write_mosquitto_config(work)
        raw = work / "capture.pcap"
        # -B: a 64 MiB kernel buffer, or the 1 MiB PUBLISH's burst of frames overruns it (drops).
        plant.spawn("tcpdump", "sw", ["tcpdump", "-i", "br0", "-s", "0", "-n", "-U", "-Z", "root", "-B", "65536",
                                      "--immediate-mode", "-w", str(raw)])
        demo.wait_for_tcpdump(plant, raw)
        plant.spawn("broker", "broker", ["mosquitto", "-c", str(conf)])
        for role in SERVER_ROLES:
            plant.spawn_role(role)
        for host, ports in (("broker", (MQTT_PORT, MQTT_TLS_PORT)), ("gw", (MODBUS_PORT,)),
                            ("plc", (MODBUS_PORT,)), ("edge", (MQTT_PORT,))):
            wait_listening(prefix, host, ports, plant.procs[host])
        for role in CLIENT_ROLES:
            plant.spawn_role(role)
            try:
                rc = plant.procs[role].wait(timeout=args.client_timeout)
            except subprocess.TimeoutExpired:
                plant.stop(role)
                rc = "timeout"
            if rc != 0:
                failures.append(f"{role} exited {rc}:\n{plant.tail(role)}")
            time.sleep(0.1)
        for name in (*SERVER_ROLES, "broker"):
            if plant.procs[name].poll() is not None:
                failures.append(f"server {name} died early:\n{plant.tail(name)}")
            plant.stop(name)
        time.sleep(0.3)
        plant.stop("tcpdump")
        if out_file.name.endswith(".gz"):
            gzip_file(raw, out_file)
        else:
            shutil.copyfile(raw, out_file)
        os.chmod(out_file, 0o644)
    finally:
        plant.stop_all()
        demo.cleanup_namespaces(prefix)
        if args.keep_work:
            log.info("role logs kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise SystemExit("some roles failed:\n" + "\n\n".join(failures))
    log.info("wrote %s (%d bytes)", out_file, out_file.stat().st_size)
    return out_file


# ==========================================================================
# Roles: Modbus
# ==========================================================================
def _user_pdu_classes():
    """FC 65, a user-defined function [APP §5]: the gateway answers it with the value inverted."""
    from pymodbus.pdu import ModbusPDU

    class UserFunctionRequest(ModbusPDU):
        function_code = USER_FC
        rtu_frame_size = 6

        def __init__(self, value: int = 0, dev_id: int = 1, transaction_id: int = 0) -> None:
            super().__init__(dev_id=dev_id, transaction_id=transaction_id)
            self.value = value

        def encode(self) -> bytes:
            return struct.pack(">H", self.value)

        def decode(self, data: bytes) -> None:
            (self.value,) = struct.unpack(">H", data[:2])

        async def datastore_update(self, context, device_id):
            return UserFunctionResponse(self.value ^ 0xFFFF, dev_id=device_id, transaction_id=self.transaction_id)

    class UserFunctionResponse(UserFunctionRequest):
        pass

    return UserFunctionRequest, UserFunctionResponse


async def gw_main(args) -> None:
    from pymodbus.constants import ExcCodes
    from pymodbus.pdu.device import ModbusDeviceIdentification
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    identity = ModbusDeviceIdentification(info_name=GW_IDENTITY)
    for oid, value in GW_PRIVATE_OBJECTS.items():
        identity[oid] = value

    async def action(fc, start_address, address, count, current, set_values):
        if fc == 3 and address == GW_BUSY_ADDRESS:
            return ExcCodes.DEVICE_BUSY
        if fc == 3 and address == GW_FAIL_ADDRESS:
            return ExcCodes.DEVICE_FAILURE
        return None

    def device(unit: int) -> SimDevice:
        holding = [(unit * 1000 + i) & 0xFFFF for i in range(60)]
        return SimDevice(unit, simdata=(
            [SimData(0, values=[bool((unit >> (i % 3)) & 1) for i in range(32)], datatype=DataType.BITS)],
            [SimData(0, values=[i % 2 == 0 for i in range(16)], datatype=DataType.BITS)],
            [SimData(0, values=holding, datatype=DataType.REGISTERS)],
            [SimData(0, values=[unit * 100 + i for i in range(16)], datatype=DataType.REGISTERS)],
        ), identity=identity, action=action)

    request_cls, _ = _user_pdu_classes()
    server = ModbusTcpServer([device(u) for u in GW_UNITS], identity=identity,
                             address=(IP["gw"], MODBUS_PORT), custom_pdu=[request_cls])
    stop = demo.install_sigterm(asyncio.get_running_loop())
    task = asyncio.create_task(server.serve_forever())
    await stop.wait()
    await server.shutdown()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# --- the crafted PLC ------------------------------------------------------------
def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def recv_adu(sock: socket.socket) -> bytes:
    hdr = _recv_exact(sock, 7)
    (length,) = struct.unpack("!H", hdr[4:6])
    return hdr + _recv_exact(sock, length - 1)


def file_record_values(file_no: int, record_no: int, length: int) -> list[int]:
    return [(file_no << 12 | (record_no + i)) & 0xFFFF for i in range(length)]


def plc_answer(adu: bytes, state: dict) -> list[bytes]:
    """The crafted PLC's answer to one request ADU: [] (silence) or segments to send."""
    from scapy.contrib.modbus import (ModbusADUResponse, ModbusPDU01ReadCoilsResponse,
                                      ModbusPDU03ReadHoldingRegistersResponse, ModbusPDU08DiagnosticsResponse,
                                      ModbusPDU14ReadFileRecordResponse, ModbusReadFileSubResponse)
    from scapy.packet import Raw

    tid, _pid, _len, unit = struct.unpack("!HHHB", adu[:7])
    fc, body = adu[7], adu[8:]
    head = ModbusADUResponse(transId=tid, unitId=unit)
    if fc == 8 and len(body) >= 2:
        sub = struct.unpack("!H", body[:2])[0]
        if sub == 4:                      # Force Listen Only Mode: never answered [APP §6.8.1]
            state["listen_only"] = True
            return []
        if sub == 1:                      # Restart Communications Option: the only way out
            state["listen_only"] = False
            data = [struct.unpack("!H", body[2:4])[0]] if len(body) >= 4 else [0]
            return [bytes(head / ModbusPDU08DiagnosticsResponse(subFunc=1, data=data))]
    if state.get("listen_only"):
        return []                         # listen only: requests are counted, not answered
    if fc == 3 and len(body) == 4:
        start, qty = struct.unpack("!HH", body)
        return [bytes(head / ModbusPDU03ReadHoldingRegistersResponse(
            registerVal=[PLC_HOLDING[(start + i) % len(PLC_HOLDING)] for i in range(qty)]))]
    if fc == 1 and len(body) == 4:
        start, qty = struct.unpack("!HH", body)
        bits = [PLC_COILS[(start + i) % len(PLC_COILS)] for i in range(qty)]
        return [bytes(head / ModbusPDU01ReadCoilsResponse(
            coilStatus=[sum(b << j for j, b in enumerate(bits[k:k + 8])) for k in range(0, qty, 8)]))]
    if fc == 20:
        subs = [struct.unpack("!BHHH", body[1 + 7 * i:8 + 7 * i]) for i in range(body[0] // 7)]
        pdu = ModbusPDU14ReadFileRecordResponse()
        for _ref, file_no, record_no, length in subs:
            pdu = pdu / ModbusReadFileSubResponse(recData=file_record_values(file_no, record_no, length))
        wire = bytes(head / pdu)
        return [wire[:11], wire[11:]]     # one ADU over two segments
    if fc == 0x5A and len(body) >= 2:
        for code, _req, status, data in UMAS_SESSION:
            if code == body[1]:
                key = UMAS_KEY if code not in (0x01, 0x02, 0x03, 0x04, 0x06, 0x10) else 0x00
                return [bytes(head / Raw(bytes([0x5A, key, status]) + data))]
    return [bytes(head / Raw(bytes([fc | 0x80, 0x01])))]   # exception 1, Illegal Function


def plc_serve(sock: socket.socket) -> None:
    """Answer every complete ADU of a received segment; single-segment answers to one
    segment's requests leave together (pipelined responses)."""
    state: dict = {}
    buf = b""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with sock:
        while True:
            try:
                data = sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            batch = b""
            while len(buf) >= 7 and len(buf) >= 6 + struct.unpack("!H", buf[4:6])[0]:
                n = 6 + struct.unpack("!H", buf[4:6])[0]
                adu, buf = buf[:n], buf[n:]
                segs = plc_answer(adu, state)
                if len(segs) == 1:
                    batch += segs[0]
                    continue
                for seg in segs:
                    if batch:
                        sock.sendall(batch)
                        batch = b""
                        time.sleep(0.02)
                    sock.sendall(seg)
                    time.sleep(0.02)
            if batch:
                sock.sendall(batch)


def role_plc(args) -> None:
    import threading

    demo.install_sigterm()
    with socket.create_server((IP["plc"], MODBUS_PORT), reuse_port=False) as srv:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=plc_serve, args=(conn,), daemon=True).start()


# --- the engineering workstation ---------------------------------------------------
def _connect(host: str, port: int, deadline: float) -> socket.socket:
    s = demo.retry_connect_tcp(host, port, deadline)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(1.0)
    return s


def _expect(sock: socket.socket, n: int, timeout: float = 1.0) -> list[bytes]:
    sock.settimeout(timeout)
    return [recv_adu(sock) for _ in range(n)]


def _silence(sock: socket.socket, timeout: float = 0.3) -> bool:
    sock.settimeout(timeout)
    try:
        return not sock.recv(1)
    except socket.timeout:
        return True


async def eng_pymodbus(deadline: float) -> None:
    """Real client, real server: everything pymodbus supports on both ends."""
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.pdu.file_message import FileRecord

    request_cls, response_cls = _user_pdu_classes()
    c = AsyncModbusTcpClient(IP["gw"], port=MODBUS_PORT, timeout=2, retries=0, reconnect_delay=0)
    c.register(response_cls)
    while not await c.connect():
        if time.time() > deadline:
            raise RuntimeError("gateway not reachable")
        await asyncio.sleep(0.2)
    u = GW_UNITS[0]
    steps = [
        ("FC7", c.read_exception_status(device_id=u)),
        ("FC8/0", c.diag_query_data(b"OT", device_id=u)),
        ("FC8/1", c.diag_restart_communication(True, device_id=u)),
        ("FC8/10", c.diag_clear_counters(device_id=u)),
        ("FC8/11", c.diag_read_bus_message_count(device_id=u)),
        ("FC8/12", c.diag_read_bus_comm_error_count(device_id=u)),
        ("FC8/13", c.diag_read_bus_exception_error_count(device_id=u)),
        ("FC8/14", c.diag_read_device_message_count(device_id=u)),
        ("FC11", c.diag_get_comm_event_counter(device_id=u)),
        ("FC12", c.diag_get_comm_event_log(device_id=u)),
        ("FC17 unit 2", c.report_device_id(device_id=2)),
        ("FC17 unit 7", c.report_device_id(device_id=7)),
        ("FC21", c.write_file_record([FileRecord(file_number=f, record_number=r,
                                                 record_data=b"".join(struct.pack(">H", v) for v in vals))
                                      for f, r, vals in FILE_WRITES], device_id=u)),
        ("FC22", c.mask_write_register(address=4, and_mask=0x00F2, or_mask=0x0025, device_id=u)),
        ("FC23 unit 7", c.readwrite_registers(read_address=3, read_count=6, write_address=14,
                                              values=[0x00FF, 0x00FF, 0x00FF], device_id=7)),
        ("FC24", c.read_fifo_queue(address=FIFO_ADDRESS, device_id=u)),
        ("FC3 unit 2", c.read_holding_registers(0, count=4, device_id=2)),
        ("FC3 -> exception 2", c.read_holding_registers(500, count=2, device_id=u)),
        ("FC3 -> exception 6", c.read_holding_registers(GW_BUSY_ADDRESS, count=1, device_id=u)),
        ("FC3 -> exception 4", c.read_holding_registers(GW_FAIL_ADDRESS, count=1, device_id=7)),
        (f"FC{USER_FC}", c.execute(False, request_cls(0x1234, dev_id=2))),
    ]
    for label, coro in steps:
        r = await coro
        print(label, type(r).__name__, getattr(r, "exception_code", ""))
    # FC 43/14 extended (private objects), following "more follows" to the end.
    obj, n = 0, 0
    while True:
        r = await c.read_device_information(read_code=3, object_id=obj, device_id=u)
        n += 1
        print("FC43/14 extended", obj, "->", r.more_follows, r.next_object_id, sorted(r.information))
        if not r.more_follows or n >= 5:
            break
        obj = r.next_object_id
    c.close()


def eng_crafted_gw(deadline: float) -> None:
    """Crafted client bytes (scapy), real pymodbus server."""
    from scapy.contrib.modbus import ModbusADURequest, ModbusPDU10WriteMultipleRegistersRequest
    from scapy.packet import Raw

    s = _connect(IP["gw"], MODBUS_PORT, deadline)
    # One ADU over two segments.
    adu = bytes(ModbusADURequest(transId=0x0304, unitId=1) / ModbusPDU10WriteMultipleRegistersRequest(
        startAddr=20, outputsValue=[0x0102, 0x0304, 0x0506]))
    s.sendall(adu[:5])
    time.sleep(0.05)
    s.sendall(adu[5:])
    print("split write:", [a.hex() for a in _expect(s, 1)])
    # Read device id code 5 does not exist: exception 3 (Illegal Data Value).
    s.sendall(bytes(ModbusADURequest(transId=0x0305, unitId=1) / Raw(b"\x2b\x0e\x05\x00")))
    print("FC43 code 5:", [a.hex() for a in _expect(s, 1)])
    s.close()


def eng_crafted_plc(deadline: float) -> None:
    """Crafted bytes both ways: what neither pymodbus end does."""
    from scapy.contrib.modbus import (ModbusADURequest, ModbusPDU01ReadCoilsRequest,
                                      ModbusPDU03ReadHoldingRegistersRequest, ModbusPDU08DiagnosticsRequest,
                                      ModbusPDU14ReadFileRecordRequest, ModbusReadFileSubRequest)
    from scapy.packet import Raw

    s = _connect(IP["plc"], MODBUS_PORT, deadline)
    # Three ADUs in one segment (pipelined); the PLC answers all three in one segment too.
    # (pymodbus's server takes one ADU per received segment and leaves the rest waiting.)
    s.sendall(bytes(ModbusADURequest(transId=0x0301, unitId=1) / ModbusPDU03ReadHoldingRegistersRequest(
                  startAddr=0, quantity=2))
              + bytes(ModbusADURequest(transId=0x0302, unitId=1) / ModbusPDU01ReadCoilsRequest(
                  startAddr=0, quantity=8))
              + bytes(ModbusADURequest(transId=0x0303, unitId=1) / ModbusPDU03ReadHoldingRegistersRequest(
                  startAddr=10, quantity=3)))
    print("pipelined:", [a.hex() for a in _expect(s, 3)])
    tid = 0x0400
    pdu = ModbusPDU14ReadFileRecordRequest()
    for file_no, record_no, length in FILE_READS:
        pdu = pdu / ModbusReadFileSubRequest(fileNumber=file_no, recordNumber=record_no, recordLength=length)
    s.sendall(bytes(ModbusADURequest(transId=tid, unitId=1) / pdu))
    print("FC20:", [a.hex() for a in _expect(s, 1)])
    # Force Listen Only Mode: no answer; a read while listening only: no answer either;
    # Restart Communications Option brings the device back.
    s.sendall(bytes(ModbusADURequest(transId=tid + 1, unitId=1) / ModbusPDU08DiagnosticsRequest(subFunc=4, data=[0])))
    print("FC8/4 silent:", _silence(s))
    s.sendall(bytes(ModbusADURequest(transId=tid + 2, unitId=1) / ModbusPDU03ReadHoldingRegistersRequest(
        startAddr=0, quantity=1)))
    print("FC3 while listen-only silent:", _silence(s))
    s.sendall(bytes(ModbusADURequest(transId=tid + 3, unitId=1) / ModbusPDU08DiagnosticsRequest(
        subFunc=1, data=[0xFF00])))
    print("FC8/1:", [a.hex() for a in _expect(s, 1)])
    # UMAS (FC 90) engineering session: identify, reserve, stop, program transfer, start.
    key = 0x00
    for i, (code, data, _status, _rdata) in enumerate(UMAS_SESSION):
        s.sendall(bytes(ModbusADURequest(transId=tid + 0x10 + i, unitId=1) / Raw(bytes([0x5A, key, code]) + data)))
        (resp,) = _expect(s, 1)
        if code == 0x10:
            key = resp[10]
        print(f"UMAS 0x{code:02x}:", resp[8:].hex()[:40])
    # A user-defined function this PLC does not implement: exception 1.
    s.sendall(bytes(ModbusADURequest(transId=tid + 0x40, unitId=1) / Raw(bytes([USER_FC_REFUSED, 0x00, 0x01]))))
    print(f"FC{USER_FC_REFUSED}:", [a.hex() for a in _expect(s, 1)])
    s.close()


def role_eng(args) -> None:
    deadline = time.time() + 8.0
    asyncio.run(eng_pymodbus(deadline))
    eng_crafted_gw(deadline)
    eng_crafted_plc(deadline)


# ==========================================================================
# Roles: MQTT
# ==========================================================================
def role_edge(args) -> None:
    """A broker that refuses every CONNECT as "bad user name or password" (crafted CONNACK)."""
    from scapy.contrib.mqtt import MQTT, MQTTConnack
    from scapy.packet import Raw

    demo.install_sigterm()
    with socket.create_server((IP["edge"], MQTT_PORT)) as srv:
        while True:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(2.0)
                try:
                    data = conn.recv(1024)
                except OSError:
                    continue
                # fixed header, remaining length (< 128 here), name length, name, level
                if len(data) < 4 or data[0] >> 4 != 1:
                    continue
                name_len = struct.unpack("!H", data[2:4])[0]
                level = data[4 + name_len] if len(data) > 4 + name_len else 4
                if level == 5:
                    ack = MQTT(type=2) / MQTTConnack(retcode=0x86) / Raw(b"\x00")   # + empty properties
                else:
                    ack = MQTT(type=2) / MQTTConnack(retcode=4)
                conn.sendall(bytes(ack))
                time.sleep(0.05)


def _install_hosts_entry() -> None:
    """broker.plant.local -> the broker, for this process (a static hosts entry, no DNS)."""
    orig = socket.getaddrinfo

    def getaddrinfo(host, *a, **kw):
        return orig(IP["broker"] if host == TLS_SNI else host, *a, **kw)

    socket.getaddrinfo = getaddrinfo


class Session:
    """One paho client connection, driven step by step from this thread (paho-mqtt 2.x, callback
    API v2, no network thread: every wait pumps ``loop()``, so nothing runs behind our back)."""

    def __init__(self, client_id: str, version: str, user: str | None = None, password: str | None = None,
                 tls: ssl.SSLContext | None = None):
        import paho.mqtt.client as mqtt

        proto = {"3.1": mqtt.MQTTv31, "3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}[version]
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
        if user is not None:
            self.c.username_pw_set(user, password)
        if tls is not None:
            self.c.tls_set_context(tls)
        self.connack = None
        self.suback = None
        self.closed = False
        self.c.on_connect = lambda c, u, flags, rc, props=None: setattr(self, "connack", rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, props=None: setattr(self, "suback", rcs)
        self.c.on_disconnect = lambda c, u, flags, rc, props=None: setattr(self, "closed", True)

    def pump(self, cond, timeout: float = 3.0) -> bool:
        end = time.time() + timeout
        while not cond() and not self.closed and time.time() < end:
            if self.c.loop(timeout=0.01) != 0:      # MQTT_ERR_CONN_LOST / NO_CONN: the socket is gone
                self.closed = True
        return cond()

    def connect(self, host: str, port: int = MQTT_PORT, keepalive: int = 30) -> "Session":
        deadline = time.time() + 5
        while True:
            try:
                self.c.connect(host, port, keepalive=keepalive)
                break
            except (ConnectionRefusedError, socket.timeout):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.pump(lambda: self.connack is not None)
        if self.connack is not None and self.connack.is_failure:
            self.pump(lambda: False, 0.5)            # the server closes; we send nothing more
        return self

    def subscribe(self, topics, qos: int = 0):
        self.suback = None
        self.c.subscribe(topics, qos)
        self.pump(lambda: self.suback is not None)
        return self.suback

    def publish(self, topic: str, payload, qos: int = 0) -> bool:
        info = self.c.publish(topic, payload, qos=qos)
        return self.pump(info.is_published, 5.0)

    def idle(self, seconds: float) -> None:
        self.pump(lambda: False, seconds)

    def end(self) -> None:
        if not self.closed:
            self.c.disconnect()
            self.pump(lambda: False, 0.3)


def role_legacy(args) -> None:
    s = Session("legacy-rtu-07", "3.1").connect(IP["broker"])
    print("3.1 CONNACK:", s.connack)
    print("3.1 SUBACK:", s.subscribe("plant/legacy/#", 1))
    s.publish("plant/legacy/level", "42.0", qos=1)
    s.publish("plant/legacy/banner", ESC_PAYLOAD, qos=0)
    s.idle(0.2)                                  # the broker's copies to our own subscription
    s.end()


def role_field(args) -> None:
    # Refused CONNECTs: mosquitto (wrong password: 3.1.1 rc 5, 5.0 0x87) and the edge broker (rc 4, 0x86).
    for host, version in ((IP["broker"], "3.1.1"), (IP["broker"], "5"), (IP["edge"], "3.1.1"), (IP["edge"], "5")):
        s = Session(f"line3-v{version.replace('.', '')}", version, MQTT_USER, MQTT_WRONG_PASSWORD).connect(host)
        print(f"refused {version} at {host}:", s.connack)
        s.end()
    # 3.1.1: one filter granted, one denied (0x80); a PUBLISH over otwatch's limit; the stream goes on.
    s = Session("line3-uploader", "3.1.1", MQTT_USER, MQTT_PASSWORD).connect(IP["broker"])
    print("3.1.1 SUBACK:", s.subscribe([("plant/line3/cmd/#", 1), (DENIED_FILTER, 1)]))
    big = (b"OTWATCH-FIRMWARE-BLOCK-" * (BIG_PAYLOAD_LEN // 23 + 1))[:BIG_PAYLOAD_LEN]
    print("big PUBLISH acked:", s.publish(BIG_TOPIC, big, qos=1))
    s.publish("plant/line3/status", "image sent", qos=1)
    s.publish("plant/line3/cmd/reboot", "now", qos=1)
    s.idle(0.2)                                  # the broker's copy to our own subscription
    s.end()
    # 5.0: denied subscription (0x87).
    s = Session("line3-hmi", "5", MQTT_USER, MQTT_PASSWORD).connect(IP["broker"])
    print("5.0 SUBACK:", s.subscribe(DENIED_FILTER, 0))
    s.end()
    # Escape sequences: in a payload (accepted), a client id and a topic (mosquitto closes the connection).
    s = Session("line3-display", "3.1.1", MQTT_USER, MQTT_PASSWORD).connect(IP["broker"])
    s.publish("plant/line3/display", ESC_PAYLOAD, qos=1)
    s.end()
    s = Session(ESC_CLIENT_ID, "3.1.1").connect(IP["broker"])
    print("escape client id CONNACK:", s.connack, "closed:", s.closed)
    s.end()
    s = Session("line3-alarm", "3.1.1", MQTT_USER, MQTT_PASSWORD).connect(IP["broker"])
    s.publish(ESC_TOPIC, "ALARM", qos=1)
    print("escape topic closed:", s.closed)
    s.end()


def role_secure(args) -> None:
    _install_hosts_entry()
    for version, maximum in (("3.1.1", ssl.TLSVersion.TLSv1_3), ("5", ssl.TLSVersion.TLSv1_2)):
        ctx = ssl.create_default_context(cafile=str(Path(args.work) / "ca.pem"))
        ctx.maximum_version = maximum
        ctx.set_alpn_protocols(["mqtt"])
        s = Session(f"line3-secure-v{version.replace('.', '')}", version, MQTT_USER, MQTT_PASSWORD, tls=ctx)
        s.connect(TLS_SNI, MQTT_TLS_PORT)
        print(f"TLS {maximum.name} CONNACK:", s.connack)
        s.publish("plant/line3/secure", "sealed", qos=1)
        s.end()


# ==========================================================================
# README tables (generated from the capture, so the docs cannot drift)
# ==========================================================================
TIMELINE_FIELDS = (
    "frame.number", "frame.time_relative", "eth.src", "eth.dst", "ip.src", "ip.dst", "tcp.dstport", "tcp.len",
    "modbus.func_code", "mbtcp.unit_id", "mbtcp.trans_id", "modbus.diagnostic_code", "modbus.exception_code",
    "modbus.read_device_id", "modbus.more_follows", "modbus.reference_type",
    "mqtt.msgtype", "mqtt.ver", "mqtt.conack.val", "mqtt.connack.reason_code", "mqtt.suback.qos",
    "mqtt.suback.reason_code", "mqtt.topic", "mqtt.clientid", "mqtt.len",
    "tls.handshake.type", "tls.handshake.extensions_server_name",
)
# (label, {field: value}, occurrence); host names in ip.* stand for their address.
NOTABLE_EVENTS: tuple[tuple[str, dict[str, str], int], ...] = (
    ("FC 7 read exception status (gw unit 1)", {"ip.src": "eng", "modbus.func_code": "7"}, 1),
    ("FC 8/0 return query data", {"ip.src": "eng", "modbus.diagnostic_code": "0"}, 1),
    ("FC 8/1 restart communications option (gw)", {"ip.src": "eng", "ip.dst": "gw", "modbus.diagnostic_code": "1"}, 1),
    ("FC 8/10 clear counters", {"ip.src": "eng", "modbus.diagnostic_code": "10"}, 1),
    ("FC 8/11..14 counters start (bus message count)", {"ip.src": "eng", "modbus.diagnostic_code": "11"}, 1),
    ("FC 11 get comm event counter", {"ip.src": "eng", "modbus.func_code": "11"}, 1),
    ("FC 12 get comm event log", {"ip.src": "eng", "modbus.func_code": "12"}, 1),
    ("FC 17 report server id, unit 2", {"ip.src": "eng", "modbus.func_code": "17", "mbtcp.unit_id": "2"}, 1),
    ("FC 21 write file record (2 sub-requests)", {"ip.src": "eng", "modbus.func_code": "21"}, 1),
    ("FC 22 mask write register", {"ip.src": "eng", "modbus.func_code": "22"}, 1),
    ("FC 23 read/write multiple registers, unit 7", {"ip.src": "eng", "modbus.func_code": "23"}, 1),
    ("FC 24 read FIFO queue", {"ip.src": "eng", "modbus.func_code": "24"}, 1),
    ("exception 2 illegal data address", {"ip.src": "gw", "modbus.exception_code": "2"}, 1),
    ("exception 6 server device busy", {"ip.src": "gw", "modbus.exception_code": "6"}, 1),
    ("exception 4 server device failure (unit 7)", {"ip.src": "gw", "modbus.exception_code": "4"}, 1),
    (f"FC {USER_FC} user-defined (gw unit 2 answers)", {"ip.src": "gw", "modbus.func_code": str(USER_FC)}, 1),
    ("FC 43/14 extended: first of three transactions (more follows)",
     {"ip.src": "gw", "modbus.func_code": "43", "modbus.more_follows": "0xff"}, 1),
    ("FC 43/14 extended: last transaction", {"ip.src": "gw", "modbus.func_code": "43", "modbus.more_follows": "0x00"}, 1),
    ("FC 16 request split after 5 bytes (tshark 4.0 never reassembles it: see the oracle)",
     {"ip.src": "eng", "ip.dst": "gw", "tcp.len": "5"}, 1),
    ("exception 3 illegal data value (read device id code 5)", {"ip.src": "gw", "modbus.exception_code": "3"}, 1),
    ("three requests pipelined in one segment (plc)", {"ip.src": "eng", "mbtcp.trans_id": "769"}, 1),
    ("three responses in one segment", {"ip.src": "plc", "mbtcp.trans_id": "769"}, 1),
    ("FC 20 read file record, 3 sub-requests (plc)", {"ip.src": "eng", "modbus.func_code": "20"}, 1),
    ("FC 20 response, split over two segments", {"ip.src": "plc", "modbus.func_code": "20"}, 1),
    ("FC 8/4 force listen only mode (no answer)", {"ip.src": "eng", "modbus.diagnostic_code": "4"}, 1),
    ("FC 8/1 restart communications option (plc answers again)",
     {"ip.src": "plc", "modbus.diagnostic_code": "1"}, 1),
    ("UMAS (FC 90) session starts: INIT_COMM", {"ip.src": "eng", "modbus.func_code": "90"}, 1),
    ("UMAS STOP_PLC", {"ip.src": "eng", "modbus.func_code": "90"}, 9),
    ("UMAS START_PLC", {"ip.src": "eng", "modbus.func_code": "90"}, 13),
    (f"FC {USER_FC_REFUSED} user-defined, exception 1 illegal function", {"ip.src": "plc", "modbus.exception_code": "1"}, 1),
    ("MQTT 3.1 CONNECT (MQIsdp, level 3)", {"ip.src": "legacy", "mqtt.msgtype": "1", "mqtt.ver": "3"}, 1),
    ("PUBLISH with escape sequences in the payload (3.1)", {"ip.src": "legacy", "mqtt.topic": "plant/legacy/banner"}, 1),
    ("CONNACK 5 not authorized (mosquitto, 3.1.1)", {"ip.src": "broker", "mqtt.conack.val": "5"}, 1),
    ("CONNACK 0x87 not authorized (mosquitto, 5.0)", {"ip.src": "broker", "mqtt.connack.reason_code": "135"}, 1),
    ("CONNACK 4 bad user name or password (edge, 3.1.1)", {"ip.src": "edge", "mqtt.conack.val": "4"}, 1),
    ("CONNACK 0x86 bad user name or password (edge, 5.0)", {"ip.src": "edge", "mqtt.connack.reason_code": "134"}, 1),
    ("SUBACK granted 1 + failure 0x80 (3.1.1)", {"ip.src": "broker", "mqtt.suback.qos": "128"}, 1),
    ("1 MiB PUBLISH plant/line3/firmware.bin ends (tshark reassembles it here)", {"mqtt.topic": BIG_TOPIC}, 1),
    ("PUBLISH after it on the same connection", {"ip.src": "field", "mqtt.topic": "plant/line3/status"}, 1),
    ("SUBACK 0x87 not authorized (5.0)", {"ip.src": "broker", "mqtt.suback.reason_code": "135"}, 1),
    ("CONNECT with escape sequences in the client id (mosquitto closes)",
     {"ip.src": "field", "mqtt.clientid": ESC_CLIENT_ID}, 1),
    ("PUBLISH with escape sequences in the topic (mosquitto closes)", {"ip.src": "field", "mqtt.topic": ESC_TOPIC}, 1),
    ("TLS ClientHello to 8883, SNI broker.plant.local (TLS 1.3)",
     {"ip.src": "secure", "tls.handshake.extensions_server_name": TLS_SNI}, 1),
    ("TLS ClientHello to 8883, SNI broker.plant.local (TLS 1.2 at most)",
     {"ip.src": "secure", "tls.handshake.extensions_server_name": TLS_SNI}, 2),
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
        rows.append({f: [demo._norm(v) for v in c.split("\x1f")] if c else [] for f, c in zip(TIMELINE_FIELDS, cols)})
    return rows


def timeline_table(pcap: Path) -> str:
    rows = capture_rows(pcap)
    by_ip = {h.ip: h.name for h in HOSTS}
    found, missing = [], []
    for label, cond, nth in NOTABLE_EVENTS:
        want = {f: (IP.get(v, v) if f in ("ip.src", "ip.dst") else v) for f, v in cond.items()}
        hits = [r for r in rows if all(v in r[f] for f, v in want.items())]
        if len(hits) < nth:
            missing.append(f"| – | – | – | {label} (not in this capture) |")
            continue
        r = hits[nth - 1]
        src = by_ip.get(r["ip.src"][0], r["ip.src"][0]) if r["ip.src"] else "?"
        dst = by_ip.get(r["ip.dst"][0], r["ip.dst"][0]) if r["ip.dst"] else "?"
        found.append((int(r["frame.number"][0]),
                      f"| {r['frame.number'][0]} | {float(r['frame.time_relative'][0]):.3f} | {src} → {dst} | {label} |"))
    lines = ["| frame | t (s) | from → to | event |", "|---:|---:|---|---|"]
    return "\n".join(lines + [row for _, row in sorted(found)] + missing)


def host_table() -> str:
    return demo.host_table(HOSTS)


# ==========================================================================
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE), help=f"output directory (writes {PCAP_NAME}) or a .pcap[.gz] path")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace name prefix (default otwcorn)")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dir with role logs")
    ap.add_argument("--client-timeout", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--readme-tables", metavar="PCAP",
                    help="print the README host and time-line tables for PCAP (needs tshark) and exit")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.readme_tables:
        print(host_table() + "\n\n" + timeline_table(Path(args.readme_tables)))
        return 0
    if args.role is None:
        build(args)
        return 0
    for noisy in ("pymodbus", "scapy"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    role = args.role
    if role == "gw":
        asyncio.run(gw_main(args))
    else:
        demo.install_sigterm()
        {"plc": role_plc, "edge": role_edge, "eng": role_eng, "legacy": role_legacy,
         "field": role_field, "secure": role_secure}[role](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
