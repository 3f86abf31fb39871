#!/usr/bin/env python3
"""Build the otwatch demo plant out of network namespaces and capture it.

Contract
--------
``sudo python pcaps/make_demo_plant.py [--duration 45] [--out pcaps/]``
writes ``demo-plant.pcap`` (classic pcap, Ethernet, snaplen 262144) into
``--out`` (a directory, or a file path ending in ``.pcap``).  It needs root,
``ip`` (iproute2 with ``ip netns``), ``tcpdump`` and ``mosquitto``; the Python
peers come from pymodbus, paho-mqtt and asyncua.

Nothing touches the host's interfaces or addresses.  Every device is created
directly inside a namespace of our own (``<prefix>-<host>``), and the switch is
a Linux bridge inside ``<prefix>-sw``::

      <prefix>-plc1   <prefix>-plc2   <prefix>-hmi   ...   <prefix>-rogue
        eth0            eth0            eth0                 eth0
         │ veth          │               │                    │
    ─────┴───────────────┴───────────────┴────────────────────┴──── br0
                            <prefix>-sw   (tcpdump -i br0)

``br0`` is put in promiscuous mode by tcpdump, so the bridge hands every frame
it forwards to the local stack as well: the capture sees all unicast between
the hosts, once, like a SPAN port would.  LLDP is let through the bridge
(``group_fwd_mask``) so the PLCs' LLDP adverts are seen too.  Each host turns
off checksum/segmentation offload on its veth so the capture holds real,
MTU-sized frames with correct checksums.

The same file is also the program that runs *inside* each namespace:
``--role plc1`` etc. (started by the builder through ``ip netns exec``).  Each
role gets the scenario's absolute start and end time and runs its own part of
the time-line; the fractions are in ``TIMELINE`` so a short ``--duration``
(the test uses 8 s) still shows every event.

Teardown always happens (``try/finally``): role processes are stopped by pid,
the namespaces deleted.  Leftovers of an earlier, interrupted run with the
same prefix are removed first.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import datetime
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PREFIX = "otwdemo"
DEFAULT_DURATION = 45.0
PCAP_NAME = "demo-plant.pcap"

# --------------------------------------------------------------------------
# The plant, declared once.  README.md's host table is this table.
# --------------------------------------------------------------------------
SUBNET_PREFIX_LEN = 24  # 10.10.0.0/24, one flat L2 segment (typical cell/area zone)
BRIDGE_MAC = "02:00:0a:0a:00:fe"


@dataclasses.dataclass(frozen=True)
class Host:
    name: str
    ip: str
    mac: str
    role: str


HOSTS: tuple[Host, ...] = (
    Host("plc1", "10.10.0.11", "00:80:f4:0a:00:0b", "Modbus/TCP server 502 (Schneider OUI), LLDP"),
    Host("plc2", "10.10.0.12", "00:1b:1b:0a:00:0c", "Modbus/TCP server 502 (Siemens OUI), LLDP"),
    Host("hmi", "10.10.0.21", "00:00:bc:0a:00:15", "Modbus/TCP client polling both PLCs at 5 Hz (Rockwell OUI)"),
    Host("scada", "10.10.0.22", "02:00:0a:0a:00:16", "OPC UA client: endpoints, sessions, browse, read/write, call, subscription"),
    Host("ews", "10.10.0.31", "00:14:22:0a:00:1f", "engineering workstation: Modbus writes + device identification, DNS, ping (Dell OUI)"),
    Host("historian", "10.10.0.41", "02:00:0a:0a:00:29", "MQTT 3.1.1 subscriber plant/# and $SYS/#"),
    Host("broker", "10.10.0.50", "02:00:0a:0a:00:32", "mosquitto MQTT broker 1883"),
    Host("dns", "10.10.0.53", "02:00:0a:0a:00:35", "tiny DNS server for plant.local (UDP 53)"),
    Host("opcua", "10.10.0.60", "02:00:0a:0a:00:3c", "asyncua OPC UA server 4840 (None + Basic256Sha256 SignAndEncrypt)"),
    Host("rogue", "10.10.0.66", "02:00:0a:0a:00:42", "attacker: ping sweep, port scan, Modbus write + FC sweep, MQTT #"),
    Host("sensor1", "10.10.0.71", "02:00:0a:0a:00:47", "MQTT 3.1.1 publisher, anonymous, QoS 0/1, retained, will"),
    Host("sensor2", "10.10.0.72", "02:00:0a:0a:00:48", "MQTT 5.0 publisher, username/password, properties, topic alias"),
)
IP = {h.name: h.ip for h in HOSTS}
SERVERS = ("plc1", "plc2", "broker", "dns", "opcua")
CLIENTS = ("hmi", "ews", "historian", "sensor1", "sensor2", "scada", "rogue")

MODBUS_PORT = 502
MQTT_PORT = 1883
OPCUA_PORT = 4840
DNS_PORT = 53
OPCUA_URL = f"opc.tcp://{IP['opcua']}:{OPCUA_PORT}/otwatch/demo"
OPCUA_NS_URI = "urn:otwatch:demo:plant"
# Credentials that cross the wire in clear on purpose (findings for otwatch).
MQTT_USER, MQTT_PASSWORD = "line2", "line2-Pass!"
OPCUA_USER, OPCUA_PASSWORD = "operator", "opc-op-2024"

DNS_ZONE = {f"{h.name}.plant.local": h.ip for h in HOSTS if h.name != "rogue"}

# When each client acts, as a fraction of the scenario (start..end).
TIMELINE = {
    "ews_identify_and_write": 0.20,
    "ews_second_write": 0.45,
    "scada_username_session": 0.35,
    "scada_secure_session": 0.50,
    "rogue_start": 0.60,
}
POLL_HZ = 5.0  # HMI poll rate per PLC
CLIENT_STOP_MARGIN = 1.5  # clients disconnect this long before the end (clean FIN/DISCONNECT)

PLC_IDENTITY = {
    "plc1": {
        "VendorName": "Schneider Electric",
        "ProductCode": "BMXP342020",
        "MajorMinorRevision": "v3.20",
        "VendorUrl": "http://www.se.com",
        "ProductName": "Modicon M340",
        "ModelName": "BMX P34 2020",
        "UserApplicationName": "LINE1_FILLING",
    },
    "plc2": {
        "VendorName": "Siemens AG",
        "ProductCode": "6ES7 214-1AG40-0XB0",
        "MajorMinorRevision": "V4.5",
        "VendorUrl": "http://www.siemens.com",
        "ProductName": "SIMATIC S7-1200",
        "ModelName": "CPU 1214C DC/DC/DC",
        "UserApplicationName": "LINE2_MIXING",
    },
}
# Fixed register images (deterministic).  Holding 0 is the setpoint the EWS and
# the rogue write; 100..103 the recipe block the EWS writes with FC16.
PLC_HOLDING = {
    "plc1": [700, 1, 0, 1200, 35, 0, 0, 0, 0, 0] + [0] * 90 + [0, 0, 0, 0] + [0] * 16,
    "plc2": [450, 2, 0, 800, 12, 0, 0, 0, 0, 0] + [0] * 90 + [0, 0, 0, 0] + [0] * 16,
}
PLC_COILS = {
    "plc1": [True, False, True, False, False, False, False, False] + [False] * 24,
    "plc2": [False, True, True, False, False, False, False, False] + [False] * 24,
}
PLC_DISCRETE = [True, False, False, True] + [False] * 12
PLC_INPUT_COUNT = 16
MODBUS_UNIT = 1

log = logging.getLogger("demo-plant")


# ==========================================================================
# Builder (runs in the root namespace, only ever touches its own namespaces)
# ==========================================================================
def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def ns_name(prefix: str, host: str) -> str:
    return f"{prefix}-{host}"


def our_namespaces(prefix: str) -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix + "-")]


def cleanup_namespaces(prefix: str) -> None:
    """Delete our namespaces, first killing (by pid) what still runs in them."""
    for ns in our_namespaces(prefix):
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", ns], check=False)


def disable_ipv6(ns: str) -> None:
    # Keep the segment IPv4-only: no router solicitations / MLD noise.
    run(["ip", "netns", "exec", ns, "sh", "-c",
         "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > $f; done"], check=False)


def build_topology(prefix: str, hosts: tuple[Host, ...] = HOSTS, bridge_mac: str = BRIDGE_MAC,
                   prefix_len: int = SUBNET_PREFIX_LEN) -> None:
    """One bridge namespace ``<prefix>-sw`` and a namespace per host (also used by make_opcua_security.py)."""
    sw = ns_name(prefix, "sw")
    run(["ip", "netns", "add", sw])
    disable_ipv6(sw)
    run(["ip", "-n", sw, "link", "set", "lo", "up"])
    run(["ip", "-n", sw, "link", "add", "br0", "address", bridge_mac, "type", "bridge",
         "stp_state", "0", "group_fwd_mask", "0x4000"])  # bit 14 = 01:80:c2:00:00:0e (LLDP)
    for h in hosts:
        ns = ns_name(prefix, h.name)
        run(["ip", "netns", "add", ns])
        disable_ipv6(ns)
        # Both ends are created directly inside their namespaces.
        run(["ip", "link", "add", "eth0", "netns", ns, "address", h.mac, "type", "veth",
             "peer", "name", h.name, "netns", sw])
        run(["ip", "-n", ns, "addr", "add", f"{h.ip}/{prefix_len}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", sw, "link", "set", h.name, "master", "br0"])
        run(["ip", "-n", sw, "link", "set", h.name, "up"])
    run(["ip", "-n", sw, "link", "set", "br0", "up"])
    for h in hosts:
        # Offloads off before the link carries anything (real frames, real checksums).
        run(["ip", "netns", "exec", ns_name(prefix, h.name), sys.executable, str(Path(__file__).resolve()),
             "--role", "ifprep"])
        run(["ip", "-n", ns_name(prefix, h.name), "link", "set", "eth0", "up"])


def write_mosquitto_config(work: Path) -> Path:
    passwd = work / "mosquitto.passwd"
    run(["mosquitto_passwd", "-c", "-b", str(passwd), MQTT_USER, MQTT_PASSWORD])
    os.chmod(passwd, 0o600)
    conf = work / "mosquitto.conf"
    conf.write_text(
        "# otwatch demo plant broker\n"
        "user root\n"
        f"listener {MQTT_PORT} {IP['broker']}\n"
        "allow_anonymous true\n"
        f"password_file {passwd}\n"
        "persistence false\n"
        "sys_interval 10\n"
        "max_keepalive 60\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "connection_messages true\n"
    )
    return conf


class Plant:
    """Owns every process it starts; stop() ends them by pid."""

    def __init__(self, prefix: str, work: Path):
        self.prefix = prefix
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, host: str, argv: list[str]) -> subprocess.Popen:
        logf = open(self.work / f"{name}.log", "wb")
        p = subprocess.Popen(["ip", "netns", "exec", ns_name(self.prefix, host), *argv],
                             stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.procs[name] = p
        return p

    def spawn_role(self, role: str, start: float, end: float) -> None:
        self.spawn(role, role, [sys.executable, str(Path(__file__).resolve()), "--role", role,
                                "--start", repr(start), "--end", repr(end), "--work", str(self.work)])

    def stop(self, name: str, timeout: float = 4.0) -> int | None:
        p = self.procs.get(name)
        if p is None:
            return None
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        return p.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name, timeout=2.0)

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.work / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for_tcpdump(plant: Plant, pcap: Path, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "listening on" in plant.tail("tcpdump", 5):
            return
        if plant.procs["tcpdump"].poll() is not None:
            raise RuntimeError("tcpdump exited:\n" + plant.tail("tcpdump"))
        time.sleep(0.05)
    raise RuntimeError("tcpdump did not start:\n" + plant.tail("tcpdump"))


# (process, namespace host, transport, port) of each server the clients need.
SERVER_SOCKETS = (("broker", "broker", "tcp", MQTT_PORT), ("plc1", "plc1", "tcp", MODBUS_PORT),
                  ("plc2", "plc2", "tcp", MODBUS_PORT), ("dns", "dns", "udp", DNS_PORT),
                  ("opcua", "opcua", "tcp", OPCUA_PORT))
SERVER_READY_TIMEOUT = 60.0


def wait_listening(plant: Plant, prefix: str, sockets, timeout: float = SERVER_READY_TIMEOUT) -> None:
    """Wait until every server socket is bound, asking the kernel (``ss``) inside each
    server's namespace, so that waiting puts no packet on the captured bridge."""
    deadline = time.time() + timeout
    pending = list(sockets)
    while pending:
        proc, host, transport, port = pending[0]
        if plant.procs[proc].poll() is not None:
            raise RuntimeError(f"server {proc} exited before listening:\n{plant.tail(proc)}")
        flag = "-Hltn" if transport == "tcp" else "-Hlun"
        r = subprocess.run(["ip", "netns", "exec", ns_name(prefix, host), "ss", flag, f"sport = :{port}"],
                           capture_output=True, text=True, check=False)
        if r.stdout.strip():
            pending.pop(0)
            continue
        if time.time() > deadline:
            raise RuntimeError(f"server {proc} not listening on {transport}/{port} after {timeout:.0f} s")
        time.sleep(0.1)


def build(args: argparse.Namespace) -> Path:
    if os.geteuid() != 0:
        raise SystemExit("make_demo_plant.py needs root (network namespaces, tcpdump)")
    for tool in ("ip", "tcpdump", "mosquitto", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing tool: {tool}")
    out = Path(args.out)
    out_file = out if out.suffix == ".pcap" else out / PCAP_NAME
    out_file.parent.mkdir(parents=True, exist_ok=True)

    prefix = args.prefix
    cleanup_namespaces(prefix)
    work = Path(tempfile.mkdtemp(prefix="otwatch-plant-"))
    os.chmod(work, 0o755)
    plant = Plant(prefix, work)
    failures: list[str] = []
    try:
        log.info("building %d namespaces (prefix %s)", len(HOSTS) + 1, prefix)
        build_topology(prefix)
        conf = write_mosquitto_config(work)
        raw = work / "capture.pcap"
        plant.spawn("tcpdump", "sw", ["tcpdump", "-i", "br0", "-s", "0", "-n", "-U", "-Z", "root",
                                      "--immediate-mode", "-w", str(raw)])
        wait_for_tcpdump(plant, raw)
        t0 = time.time()
        end = t0 + args.duration
        plant.spawn("broker", "broker", ["mosquitto", "-c", str(conf)])
        for role in ("plc1", "plc2", "dns", "opcua"):
            plant.spawn_role(role, t0, end)
        # The scenario clock starts once every server listens: on a loaded machine
        # asyncua alone can take several seconds to start, longer than a short scenario.
        wait_listening(plant, prefix, SERVER_SOCKETS)
        t0 = time.time()
        end = t0 + args.duration
        log.info("capture running; scenario %.0f s", args.duration)
        client_end = end - CLIENT_STOP_MARGIN
        for role in CLIENTS:
            plant.spawn_role(role, t0, client_end)
        while time.time() < end:
            time.sleep(0.2)
        for role in CLIENTS:
            rc = plant.procs[role].wait(timeout=max(5.0, args.duration / 4))
            if rc != 0:
                failures.append(f"{role} exited {rc}:\n{plant.tail(role)}")
        for name in ("plc1", "plc2", "dns", "opcua", "broker"):
            if plant.procs[name].poll() is not None:
                failures.append(f"server {name} died early:\n{plant.tail(name)}")
            plant.stop(name)
        time.sleep(0.5)
        plant.stop("tcpdump")
        shutil.copyfile(raw, out_file)
        os.chmod(out_file, 0o644)
        if args.pcapng:
            ng = out_file.with_suffix(".pcapng")
            run(["editcap", "-F", "pcapng", str(out_file), str(ng)])
            os.chmod(ng, 0o644)
    finally:
        plant.stop_all()
        cleanup_namespaces(prefix)
        if args.keep_work:
            log.info("role logs kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise SystemExit("some roles failed:\n" + "\n\n".join(failures))
    log.info("wrote %s (%d bytes)", out_file, out_file.stat().st_size)
    return out_file


# ==========================================================================
# Helpers used inside the namespaces
# ==========================================================================
SIOCETHTOOL = 0x8946
# linux/ethtool.h: ETHTOOL_STXCSUM, ETHTOOL_SSG, ETHTOOL_STSO, ETHTOOL_SGSO
ETHTOOL_SET_CMDS = (0x17, 0x19, 0x1F, 0x24)


def role_ifprep(ifname: str = "eth0") -> None:
    """Turn off tx checksum, scatter-gather, TSO and GSO (what `ethtool -K` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for cmd in ETHTOOL_SET_CMDS:
            val = ctypes.create_string_buffer(struct.pack("II", cmd, 0))
            ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(val)).ljust(40, b"\0")
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
            except OSError as e:
                print(f"ethtool cmd {cmd:#x} on {ifname}: {e}", file=sys.stderr)


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def icmp_ping(dst: str, ident: int, seq: int, timeout: float = 0.3) -> bool:
    payload = b"otwatch demo plant ping".ljust(32, b".")
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = _inet_checksum(hdr + payload)
    pkt = struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.sendto(pkt, (dst, 0))
        deadline = time.time() + timeout
        while (left := deadline - time.time()) > 0:
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            data, addr = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            if addr[0] == dst and data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                return True
    return False


def dns_query(server: str, name: str, qid: int, timeout: float = 1.0) -> str | None:
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)  # A, IN
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, DNS_PORT))
        try:
            data, _ = s.recvfrom(512)
        except socket.timeout:
            return None
    if len(data) < 12 or data[3] & 0x0F:
        return None
    return socket.inet_ntoa(data[-4:]) if struct.unpack("!H", data[6:8])[0] else None


def wait_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


async def async_wait_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def at(args, key: str) -> float:
    return args.start + (args.end - args.start) * TIMELINE[key]


def retry_connect_tcp(host: str, port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection((host, port), timeout=1.0)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def install_sigterm(loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Event | None:
    if loop is None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        return None
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    return stop


# ==========================================================================
# Roles: servers
# ==========================================================================
def lldp_frame(host: Host, descr: str) -> bytes:
    def tlv(t: int, value: bytes) -> bytes:
        return struct.pack("!H", (t << 9) | len(value)) + value

    mac = bytes.fromhex(host.mac.replace(":", ""))
    body = (tlv(1, b"\x04" + mac)                 # chassis id: MAC address
            + tlv(2, b"\x07" + b"port-001")      # port id: locally assigned
            + tlv(3, struct.pack("!H", 120))     # TTL
            + tlv(5, host.name.encode())          # system name
            + tlv(6, descr.encode())              # system description
            + tlv(0, b""))
    return bytes.fromhex("0180c200000e") + mac + b"\x88\xcc" + body


async def lldp_sender(host: Host, descr: str, stop: asyncio.Event) -> None:
    frame = lldp_frame(host, descr)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind(("eth0", 0))
        while not stop.is_set():
            s.send(frame)
            try:
                await asyncio.wait_for(stop.wait(), 10.0)
            except asyncio.TimeoutError:
                pass


async def plc_main(args, name: str) -> None:
    from pymodbus.pdu.device import ModbusDeviceIdentification
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    ident = PLC_IDENTITY[name]
    identity = ModbusDeviceIdentification(info_name=ident)
    tick = {"n": 0}

    async def action(fc, start_address, address, count, current, set_values):
        # Input registers move like a process: deterministic ramp per request.
        if fc == 4:
            tick["n"] += 1
            for i in range(len(current)):
                current[i] = (200 + 10 * i + tick["n"]) & 0xFFFF
        return None

    device = SimDevice(
        MODBUS_UNIT,
        simdata=(
            [SimData(0, values=list(PLC_COILS[name]), datatype=DataType.BITS)],
            [SimData(0, values=list(PLC_DISCRETE), datatype=DataType.BITS)],
            [SimData(0, values=list(PLC_HOLDING[name]), datatype=DataType.REGISTERS)],
            [SimData(0, values=[0] * PLC_INPUT_COUNT, datatype=DataType.REGISTERS)],
        ),
        identity=identity,
        action=action,
    )
    host = next(h for h in HOSTS if h.name == name)
    server = ModbusTcpServer(device, identity=identity, address=(host.ip, MODBUS_PORT))
    stop = install_sigterm(asyncio.get_running_loop())
    descr = f"{ident['VendorName']} {ident['ProductName']} {ident['MajorMinorRevision']}"
    tasks = [asyncio.create_task(server.serve_forever()), asyncio.create_task(lldp_sender(host, descr, stop))]
    await stop.wait()
    await server.shutdown()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def role_dns(args) -> None:
    install_sigterm()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((IP["dns"], DNS_PORT))
        while True:
            data, peer = s.recvfrom(512)
            if len(data) < 17:
                continue
            qid, flags = struct.unpack("!HH", data[:4])
            i, labels = 12, []
            while i < len(data) and data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode(errors="replace"))
                i += 1 + data[i]
            question = data[12:i + 5]
            qtype = struct.unpack("!H", data[i + 1:i + 3])[0] if i + 3 <= len(data) else 0
            addr = DNS_ZONE.get(".".join(labels).lower())
            if addr and qtype == 1:
                hdr = struct.pack("!HHHHHH", qid, 0x8580, 1, 1, 0, 0)
                ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(addr)
                s.sendto(hdr + question + ans, peer)
            else:
                s.sendto(struct.pack("!HHHHHH", qid, 0x8583, 1, 0, 0, 0) + question, peer)


async def opcua_server_main(args) -> None:
    from asyncua import Server, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from asyncua.crypto.permission_rules import User, UserRole
    from cryptography.x509.oid import ExtendedKeyUsageOID

    class DemoUsers:
        def get_user(self, iserver, username=None, password=None, certificate=None):
            if username is None:
                return User(role=UserRole.User)
            if (username, password) == (OPCUA_USER, OPCUA_PASSWORD):
                return User(role=UserRole.User, name=username)
            return None

    work = Path(args.work)
    key, cert = work / "opcua-server-key.pem", work / "opcua-server-cert.der"
    await setup_self_signed_certificate(
        key, cert, "urn:otwatch:demo:opcua-server", "opcua.plant.local",
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"countryName": "DE", "organizationName": "otwatch demo plant", "commonName": "opcua.plant.local"},
    )
    server = Server(user_manager=DemoUsers())
    await server.init()
    server.set_endpoint(OPCUA_URL)
    server.set_server_name("otwatch demo OPC UA server")
    await server.set_application_uri("urn:otwatch:demo:opcua-server")
    await server.set_build_info("urn:otwatch:demo", "otwatch demo", "Line controller gateway", "1.0.0", "100",
                                datetime.datetime(2024, 1, 1))
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity,
                                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    idx = await server.register_namespace(OPCUA_NS_URI)
    line = await server.nodes.objects.add_object(idx, "Line1")
    temp = await line.add_variable(idx, "Temperature", 21.5)
    pressure = await line.add_variable(idx, "Pressure", 1.013)
    setpoint = await line.add_variable(idx, "Setpoint", 70.0)
    running = await line.add_variable(idx, "Running", True)
    counter = await line.add_variable(idx, "BatchCounter", ua.Variant(0, ua.VariantType.UInt32))
    await setpoint.set_writable()
    await running.set_writable()

    async def reset_counter(parent, reason):
        await counter.write_value(ua.Variant(0, ua.VariantType.UInt32))
        return [ua.Variant(True, ua.VariantType.Boolean)]

    await line.add_method(idx, "ResetCounter", reset_counter, [ua.VariantType.String], [ua.VariantType.Boolean])
    stop = install_sigterm(asyncio.get_running_loop())
    async with server:
        # Deliberate misconfiguration (a finding for otwatch): asyncua would have
        # clients RSA-encrypt the password even on the None endpoint; this
        # server, like many legacy ones, takes it in clear there.
        for edp in server.iserver.endpoints:
            if edp.SecurityMode == ua.MessageSecurityMode.None_:
                for tok in edp.UserIdentityTokens:
                    if tok.TokenType == ua.UserTokenType.UserName:
                        tok.SecurityPolicyUri = "http://opcfoundation.org/UA/SecurityPolicy#None"
        n = 0
        while not stop.is_set():
            n += 1
            await temp.write_value(21.5 + (n % 20) * 0.1)
            await pressure.write_value(1.013 + (n % 7) * 0.001)
            await counter.write_value(ua.Variant(n, ua.VariantType.UInt32))
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass


# ==========================================================================
# Roles: clients
# ==========================================================================
async def modbus_client(host: str, deadline: float):
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient(host, port=MODBUS_PORT, timeout=2, retries=1, reconnect_delay=0)
    while not await client.connect():
        if time.time() > deadline:
            raise RuntimeError(f"cannot connect to {host}:{MODBUS_PORT}")
        await asyncio.sleep(0.2)
    return client


async def hmi_main(args) -> None:
    clients = [await modbus_client(IP[p], args.end) for p in ("plc1", "plc2")]
    period = 1.0 / POLL_HZ
    polls = 0
    next_t = time.time()
    while time.time() + period < args.end:
        for c in clients:
            await c.read_holding_registers(0, count=10, device_id=MODBUS_UNIT)
            await c.read_coils(0, count=16, device_id=MODBUS_UNIT)
            await c.read_input_registers(0, count=8, device_id=MODBUS_UNIT)
        polls += 1
        next_t += period
        await asyncio.sleep(max(0.0, next_t - time.time()))
    for c in clients:
        c.close()
    print(f"hmi: {polls} poll cycles")


async def ews_main(args) -> None:
    for i, name in enumerate(("plc1", "plc2", "broker", "opcua", "historian-old")):
        print(f"dns {name}.plant.local -> {dns_query(IP['dns'], f'{name}.plant.local', 0x4500 + i)}")
    for seq, p in enumerate(("plc1", "plc2"), 1):
        print(f"ping {p}: {icmp_ping(IP[p], 0x0E05, seq)}")
    await async_wait_until(at(args, "ews_identify_and_write"))
    for p in ("plc1", "plc2"):
        c = await modbus_client(IP[p], args.end)
        r = await c.report_device_id(device_id=MODBUS_UNIT)                         # FC17
        print(p, "report server id:", getattr(r, "identifier", r))
        for read_code, obj in ((1, 0), (2, 0), (4, 5)):                              # FC43/14 basic, regular, one object
            r = await c.read_device_information(read_code=read_code, object_id=obj, device_id=MODBUS_UNIT)
            print(p, "device id", read_code, getattr(r, "information", r))
        await c.write_register(0, 750 if p == "plc1" else 480, device_id=MODBUS_UNIT)        # FC6
        await c.write_registers(100, [10, 20, 30, 40], device_id=MODBUS_UNIT)               # FC16
        await c.write_coil(3, True, device_id=MODBUS_UNIT)                                   # FC5
        await c.write_coils(8, [True, False, True, True, False, False, True, False], device_id=MODBUS_UNIT)  # FC15
        await c.read_holding_registers(100, count=4, device_id=MODBUS_UNIT)
        c.close()
        await asyncio.sleep(0.3)
    await async_wait_until(at(args, "ews_second_write"))
    c = await modbus_client(IP["plc2"], args.end)
    await c.write_register(1, 3, device_id=MODBUS_UNIT)                                    # mode change
    await c.readwrite_registers(read_address=0, read_count=4, write_address=104,
                                values=[1, 2], device_id=MODBUS_UNIT)                      # FC23
    await c.read_holding_registers(500, count=10, device_id=MODBUS_UNIT)                   # -> exception 2
    c.close()


def _mqtt_client(client_id: str, v5: bool):
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)


def _mqtt_connect(c, deadline: float, keepalive: int, broker: str | None = None, **kw) -> None:
    """Connect *c* (retrying until *deadline* while the broker starts), start its loop, wait for CONNACK.
    *broker* defaults to this plant's broker (make_attack_scenarios.py passes its own)."""
    while True:
        try:
            c.connect(broker or IP["broker"], MQTT_PORT, keepalive=keepalive, **kw)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    c.loop_start()
    t = time.time() + 5
    while not c.is_connected() and time.time() < t:
        time.sleep(0.02)
    if not c.is_connected():
        raise RuntimeError("MQTT CONNECT not accepted")


def role_sensor1(args) -> None:
    c = _mqtt_client("line1-sensor", v5=False)
    c.will_set("plant/line1/status", "offline", qos=1, retain=True)
    _mqtt_connect(c, args.end, keepalive=15)
    c.publish("plant/line1/status", "online", qos=1, retain=True).wait_for_publish(3)
    c.publish("plant/line1/batch", "B-0001 started", qos=2).wait_for_publish(3)
    n = 0
    while time.time() + 1.0 < args.end:
        n += 1
        c.publish("plant/line1/temperature", f"{21.5 + (n % 10) * 0.1:.1f}", qos=0)
        if n % 2 == 0:
            c.publish("plant/line1/pressure", json.dumps({"bar": 1.0 + (n % 5) * 0.01, "seq": n}), qos=1)
        time.sleep(1.0)
    c.disconnect()
    c.loop_stop()


def role_sensor2(args) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    c = _mqtt_client("line2-sensor", v5=True)
    c.username_pw_set(MQTT_USER, MQTT_PASSWORD)
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 300
    cp.ReceiveMaximum = 20
    cp.TopicAliasMaximum = 5
    _mqtt_connect(c, args.end, keepalive=20, properties=cp)
    rp = Properties(PacketTypes.PUBLISH)
    rp.ContentType = "text/plain"
    c.publish("plant/line2/recipe", "MIX-42", qos=1, retain=True, properties=rp).wait_for_publish(3)
    n = 0
    while time.time() + 1.0 < args.end:
        n += 1
        pp = Properties(PacketTypes.PUBLISH)
        pp.TopicAlias = 1
        # First message binds alias 1 to the topic; later ones send an empty topic.
        c.publish("plant/line2/flow" if n == 1 else "", f"{12.0 + (n % 4) * 0.5:.1f}", qos=0, properties=pp)
        lp = Properties(PacketTypes.PUBLISH)
        lp.ContentType = "application/json"
        lp.MessageExpiryInterval = 120
        lp.UserProperty = [("unit", "cm"), ("site", "demo")]
        c.publish("plant/line2/level", json.dumps({"cm": 80 + n % 3, "seq": n}), qos=1, properties=lp)
        time.sleep(1.0)
    dp = Properties(PacketTypes.DISCONNECT)
    dp.SessionExpiryInterval = 0
    c.disconnect(reasoncode=None, properties=dp)
    c.loop_stop()


def role_historian(args) -> None:
    c = _mqtt_client("historian", v5=False)
    got = {"n": 0}
    c.on_message = lambda *_a: got.__setitem__("n", got["n"] + 1)
    _mqtt_connect(c, args.end, keepalive=5)
    c.subscribe([("plant/#", 1), ("$SYS/broker/#", 0)])
    wait_until(args.end - 0.5)
    c.unsubscribe("$SYS/broker/#")
    time.sleep(0.2)
    c.disconnect()
    c.loop_stop()
    print(f"historian: {got['n']} messages")


async def scada_main(args) -> None:
    from asyncua import Client, ua

    print("dns", dns_query(IP["dns"], "opcua.plant.local", 0x5C01))
    while True:  # discovery connection: Hello, OPN, GetEndpoints, CLO
        try:
            eps = await Client(OPCUA_URL, timeout=2).connect_and_get_server_endpoints()
            break
        except (OSError, asyncio.TimeoutError):
            if time.time() > args.end:
                raise
            await asyncio.sleep(0.3)
    print("endpoints:", [(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in eps])

    client = Client(OPCUA_URL, timeout=4)
    client.application_uri = "urn:otwatch:demo:scada"
    client.name = "otwatch demo SCADA"
    async with client:
        idx = await client.get_namespace_index(OPCUA_NS_URI)
        objects = client.nodes.objects
        children = await objects.get_children()
        line = await objects.get_child([f"{idx}:Line1"])
        names = {(await n.read_browse_name()).Name: n for n in await line.get_children()}
        print("browse:", len(children), sorted(names))
        for v in ("Temperature", "Pressure", "Setpoint", "Running"):
            print(v, await names[v].read_value())
        await names["Setpoint"].write_value(72.5)
        print("call:", await line.call_method(f"{idx}:ResetCounter", "shift change"))

        class Handler:
            def __init__(self):
                self.n = 0

            def datachange_notification(self, node, val, data):
                self.n += 1

        handler = Handler()
        sub = await client.create_subscription(500, handler)
        await sub.subscribe_data_change([names["Temperature"], names["Pressure"], names["BatchCounter"]])

        await async_wait_until(at(args, "scada_username_session"))
        user_client = Client(OPCUA_URL, timeout=4)
        user_client.set_user(OPCUA_USER)
        user_client.set_password(OPCUA_PASSWORD)
        async with user_client:
            node = user_client.get_node(names["Setpoint"].nodeid)
            print("operator reads setpoint:", await node.read_value())

        await async_wait_until(at(args, "scada_secure_session"))
        try:
            work = Path(args.work)
            from asyncua.crypto.cert_gen import setup_self_signed_certificate
            from cryptography.x509.oid import ExtendedKeyUsageOID

            ckey, ccert = work / "scada-key.pem", work / "scada-cert.der"
            await setup_self_signed_certificate(
                ckey, ccert, "urn:otwatch:demo:scada", "scada.plant.local",
                [ExtendedKeyUsageOID.CLIENT_AUTH],
                {"countryName": "DE", "organizationName": "otwatch demo plant", "commonName": "scada"},
            )
            sec = Client(OPCUA_URL, timeout=4)
            sec.application_uri = "urn:otwatch:demo:scada"
            await sec.set_security_string(f"Basic256Sha256,SignAndEncrypt,{ccert},{ckey}")
            async with sec:
                print("secure read:", await sec.get_node(names["Temperature"].nodeid).read_value())
        except Exception as e:  # optional part of the scenario
            print("secure session failed:", repr(e))

        await async_wait_until(args.end - 0.5)
        await sub.delete()
        print(f"scada: {handler.n} data changes")


def modbus_raw(sock: socket.socket, tid: int, unit: int, pdu: bytes, timeout: float = 0.3) -> bytes | None:
    sock.sendall(struct.pack("!HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
    sock.settimeout(timeout)
    try:
        hdr = sock.recv(7)
        if len(hdr) < 7:
            return b""  # closed by the server
        (length,) = struct.unpack("!H", hdr[4:6])
        body = b""
        while len(body) < length - 1:
            chunk = sock.recv(length - 1 - len(body))
            if not chunk:
                return b""
            body += chunk
        return body
    except socket.timeout:
        return None


def role_rogue(args) -> None:
    wait_until(at(args, "rogue_start"))
    # 1. ping sweep of the low addresses (ARP for hosts that do not exist)
    alive = [f"10.10.0.{i}" for i in range(1, 16) if icmp_ping(f"10.10.0.{i}", 0x0666, i, timeout=0.05)]
    print("sweep alive:", alive)
    # 2. TCP connect scan of plc1
    open_ports = []
    for port in (21, 22, 23, 80, 102, 443, 502, 2222, 4840, 20000, 44818):
        try:
            socket.create_connection((IP["plc1"], port), timeout=0.3).close()
            open_ports.append(port)
        except OSError:
            pass
    print("plc1 open ports:", open_ports)
    # 3. Modbus: identify, write the setpoint, sweep function codes 1..127
    s = retry_connect_tcp(IP["plc1"], MODBUS_PORT, args.end)
    tid = 0x6600
    print("device id:", modbus_raw(s, tid, MODBUS_UNIT, b"\x2b\x0e\x01\x00"))
    print("report server id:", modbus_raw(s, tid + 1, MODBUS_UNIT, b"\x11"))
    print("write setpoint:", modbus_raw(s, tid + 2, MODBUS_UNIT, struct.pack("!BHH", 6, 0, 9999)))
    answered = 0
    for fc in range(1, 128):
        r = modbus_raw(s, tid + 16 + fc, MODBUS_UNIT, bytes([fc]) + b"\x00\x00\x00\x01", timeout=0.1)
        if r == b"":
            s.close()
            s = retry_connect_tcp(IP["plc1"], MODBUS_PORT, args.end)
        elif r is not None:
            answered += 1
    s.close()
    print(f"fc sweep: {answered} answers")
    # 4. MQTT: anonymous wildcard subscription, then a forged command
    c = _mqtt_client("mqtt-explorer-6f1c", v5=False)
    _mqtt_connect(c, args.end, keepalive=30)
    c.subscribe("#", 0)
    time.sleep(min(2.0, max(0.2, args.end - time.time() - 1.0)))
    c.publish("plant/line1/cmd", "STOP", qos=0)
    time.sleep(0.2)
    c.disconnect()
    c.loop_stop()


# ==========================================================================
# README tables (generated, so the docs cannot drift from the capture)
# ==========================================================================
# Notable events: (label, {tshark field: required value}, occurrence).  Host
# names in ip.src/ip.dst/eth.src stand for their address.  One tshark pass
# exports the fields; matching happens here.
TIMELINE_FIELDS = (
    "frame.number", "frame.time_relative", "eth.src", "eth.dst", "ip.src", "ip.dst",
    "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset", "arp.opcode", "arp.dst.proto_ipv4",
    "icmp.type", "dns.qry.name", "dns.flags.response", "dns.flags.rcode", "lldp.tlv.system.name",
    "modbus.func_code", "mbtcp.trans_id", "modbus.regval_uint16", "modbus.exception_code",
    "mqtt.msgtype", "mqtt.ver", "mqtt.topic", "mqtt.retain", "mqtt.passwd",
    "opcua.transport.type", "opcua.servicenodeid.numeric", "opcua.security.spu",
)
OPCUA_SVC = {"GetEndpoints": "428", "CreateSession": "461", "ActivateSession": "467", "Read": "631",
             "Write": "673", "Call": "712", "CreateSubscription": "787", "Publish": "826",
             "Browse": "527", "CloseSession": "473"}
NOTABLE_EVENTS: tuple[tuple[str, dict[str, str], int], ...] = (
    ("LLDP advert from plc1 (system name, description)", {"eth.src": "plc1", "lldp.tlv.system.name": "plc1"}, 1),
    ("ews asks DNS for plc1.plant.local", {"ip.src": "ews", "dns.qry.name": "plc1.plant.local", "dns.flags.response": "0"}, 1),
    ("DNS NXDOMAIN for historian-old.plant.local", {"ip.src": "dns", "dns.flags.rcode": "3"}, 1),
    ("ews pings plc1 (ICMP echo request)", {"ip.src": "ews", "ip.dst": "plc1", "icmp.type": "8"}, 1),
    ("hmi opens Modbus/TCP to plc1 (SYN)", {"ip.src": "hmi", "ip.dst": "plc1", "tcp.flags.syn": "1", "tcp.flags.ack": "0"}, 1),
    ("hmi first poll: FC3 read holding registers", {"ip.src": "hmi", "ip.dst": "plc1", "modbus.func_code": "3"}, 1),
    ("hmi first poll: FC1 read coils", {"ip.src": "hmi", "ip.dst": "plc1", "modbus.func_code": "1"}, 1),
    ("hmi first poll: FC4 read input registers", {"ip.src": "hmi", "ip.dst": "plc1", "modbus.func_code": "4"}, 1),
    ("MQTT 5.0 CONNECT, username/password in clear", {"ip.src": "sensor2", "mqtt.msgtype": "1", "mqtt.passwd": "line2-Pass!"}, 1),
    ("MQTT 3.1.1 CONNECT with will (plant/line1/status)", {"ip.src": "sensor1", "mqtt.msgtype": "1"}, 1),
    ("historian SUBSCRIBE plant/# and $SYS/broker/#", {"ip.src": "historian", "mqtt.msgtype": "8"}, 1),
    ("retained PUBLISH plant/line1/status (QoS 1)", {"ip.src": "sensor1", "mqtt.topic": "plant/line1/status", "mqtt.retain": "1"}, 1),
    ("QoS 2 PUBLISH plant/line1/batch (PUBREC/PUBREL/PUBCOMP follow)", {"ip.src": "sensor1", "mqtt.topic": "plant/line1/batch"}, 1),
    ("retained PUBLISH plant/line2/recipe (MQTT 5)", {"ip.src": "sensor2", "mqtt.topic": "plant/line2/recipe"}, 1),
    ("MQTT 5 PUBLISH binding topic alias 1 to plant/line2/flow", {"ip.src": "sensor2", "mqtt.topic": "plant/line2/flow"}, 1),
    ("OPC UA discovery: HEL", {"ip.src": "scada", "opcua.transport.type": "HEL"}, 1),
    ("OPC UA OPN, SecurityPolicy#None", {"ip.src": "scada", "opcua.transport.type": "OPN"}, 1),
    ("OPC UA GetEndpoints request", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["GetEndpoints"]}, 1),
    ("OPC UA CreateSession", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["CreateSession"]}, 1),
    ("OPC UA ActivateSession, anonymous", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["ActivateSession"]}, 1),
    ("OPC UA Browse", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["Browse"]}, 1),
    ("OPC UA Write Line1.Setpoint = 72.5", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["Write"]}, 1),
    ("OPC UA Call Line1.ResetCounter", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["Call"]}, 1),
    ("OPC UA CreateSubscription (then Publish every 500 ms)", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["CreateSubscription"]}, 1),
    ("ews FC17 report server id to plc1", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "17"}, 1),
    ("ews FC43/14 read device identification (basic) from plc1", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "43"}, 1),
    ("ews FC43/14 single object (ModelName) from plc1", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "43"}, 3),
    ("ews FC6 write setpoint plc1 HR0 = 750", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "6"}, 1),
    ("ews FC16 write recipe plc1 HR100..103", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "16"}, 1),
    ("ews FC5 write coil plc1 C3 = on", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "5"}, 1),
    ("ews FC15 write coils plc1 C8..15", {"ip.src": "ews", "ip.dst": "plc1", "modbus.func_code": "15"}, 1),
    ("ews FC43/14 read device identification from plc2", {"ip.src": "ews", "ip.dst": "plc2", "modbus.func_code": "43"}, 1),
    ("ews FC6 write setpoint plc2 HR0 = 480", {"ip.src": "ews", "ip.dst": "plc2", "modbus.func_code": "6"}, 1),
    ("OPC UA ActivateSession user 'operator', password in clear", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["ActivateSession"]}, 2),
    ("ews FC6 mode change plc2 HR1 = 3", {"ip.src": "ews", "ip.dst": "plc2", "modbus.func_code": "6"}, 2),
    ("ews FC23 read/write multiple registers plc2", {"ip.src": "ews", "ip.dst": "plc2", "modbus.func_code": "23"}, 1),
    ("ews FC3 beyond the register map (HR500), exception 2 illegal data address",
     {"ip.src": "plc2", "ip.dst": "ews", "modbus.exception_code": "2"}, 1),
    ("OPC UA OPN Basic256Sha256 SignAndEncrypt (rest of that channel encrypted)",
     {"ip.src": "scada", "opcua.transport.type": "OPN", "opcua.security.spu": "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"}, 1),
    ("rogue ping sweep starts: ARP who-has 10.10.0.1 (no answer)", {"eth.src": "rogue", "arp.opcode": "1", "arp.dst.proto_ipv4": "10.10.0.1"}, 1),
    ("rogue TCP port scan of plc1 starts (SYN to 21, RST back)", {"ip.src": "rogue", "ip.dst": "plc1", "tcp.dstport": "21"}, 1),
    ("rogue FC43/14 read device identification from plc1", {"ip.src": "rogue", "modbus.func_code": "43"}, 1),
    ("rogue FC17 report server id", {"ip.src": "rogue", "modbus.func_code": "17"}, 1),
    ("rogue FC6 write plc1 HR0 (setpoint) = 9999", {"ip.src": "rogue", "modbus.func_code": "6", "mbtcp.trans_id": "26114"}, 1),
    ("rogue function-code sweep starts (FC1, trans 26129)", {"ip.src": "rogue", "mbtcp.trans_id": "26129"}, 1),
    ("first exception of the sweep (FC9 answered with function 0x80, code 1: pymodbus quirk)", {"ip.src": "plc1", "ip.dst": "rogue", "modbus.exception_code": "1"}, 1),
    ("rogue function-code sweep ends (FC127, trans 26255)", {"ip.src": "rogue", "mbtcp.trans_id": "26255"}, 1),
    ("rogue MQTT CONNECT as mqtt-explorer-6f1c", {"ip.src": "rogue", "mqtt.msgtype": "1"}, 1),
    ("rogue SUBSCRIBE # (everything)", {"ip.src": "rogue", "mqtt.msgtype": "8"}, 1),
    ("rogue PUBLISH plant/line1/cmd = STOP", {"ip.src": "rogue", "mqtt.topic": "plant/line1/cmd"}, 1),
    ("MQTT 5 DISCONNECT from sensor2", {"ip.src": "sensor2", "mqtt.msgtype": "14"}, 1),
    ("OPC UA CloseSession (anonymous session)", {"ip.src": "scada", "opcua.servicenodeid.numeric": OPCUA_SVC["CloseSession"]}, -1),
)


def _norm(v: str) -> str:
    return {"True": "1", "False": "0"}.get(v, v)


def capture_rows(pcap: Path) -> list[dict[str, list[str]]]:
    cmd = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", "aggregator=\x1f"]
    for f in TIMELINE_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        rows.append({f: [_norm(v) for v in c.split("\x1f")] if c else [] for f, c in zip(TIMELINE_FIELDS, cols)})
    return rows


def _who(row: dict[str, list[str]], ip_field: str, eth_field: str) -> str:
    by_ip = {h.ip: h.name for h in HOSTS}
    by_mac = {h.mac: h.name for h in HOSTS}
    if row[ip_field]:
        return by_ip.get(row[ip_field][0], row[ip_field][0])
    mac = row[eth_field][0] if row[eth_field] else "?"
    return {"ff:ff:ff:ff:ff:ff": "broadcast", "01:80:c2:00:00:0e": "LLDP multicast"}.get(mac, by_mac.get(mac, mac))


def timeline_table(pcap: Path) -> str:
    rows = capture_rows(pcap)
    by_name = {h.name: h for h in HOSTS}
    found, missing = [], []
    for label, cond, nth in NOTABLE_EVENTS:
        want = {}
        for f, v in cond.items():
            if f in ("ip.src", "ip.dst") and v in by_name:
                v = by_name[v].ip
            elif f in ("eth.src", "eth.dst") and v in by_name:
                v = by_name[v].mac
            want[f] = v
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


def host_table(hosts=None) -> str:
    """The README host table (also for the other capture scripts' hosts)."""
    lines = ["| host | IP | MAC | role |", "|---|---|---|---|"]
    lines += [f"| {h.name} | {h.ip} | {h.mac} | {h.role} |" for h in (HOSTS if hosts is None else hosts)]
    return "\n".join(lines)


# ==========================================================================
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="scenario length in seconds (default 45)")
    ap.add_argument("--out", default=str(HERE), help=f"output directory (writes {PCAP_NAME}) or a .pcap path")
    ap.add_argument("--pcapng", action="store_true", help="also write a .pcapng copy (editcap)")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace name prefix (default otwdemo)")
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
        if args.duration < 6:
            ap.error("--duration must be at least 6 s")
        build(args)
        return 0
    # inside a namespace
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    role = args.role
    if role == "ifprep":
        role_ifprep()
    elif role in ("plc1", "plc2"):
        asyncio.run(plc_main(args, role))
    elif role == "opcua":
        asyncio.run(opcua_server_main(args))
    elif role in ("hmi", "ews", "scada"):
        install_sigterm()
        asyncio.run({"hmi": hmi_main, "ews": ews_main, "scada": scada_main}[role](args))
    else:
        install_sigterm()
        {"dns": role_dns, "sensor1": role_sensor1, "sensor2": role_sensor2,
         "historian": role_historian, "rogue": role_rogue}[role](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
