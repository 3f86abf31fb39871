#!/usr/bin/env python3
"""A varied benchmark capture made by real stacks in network namespaces, grown by replay.

    sudo python bench/make_varied.py base --duration 120 --out bench/out/varied-base.pcap
    python bench/make_varied.py grow --base bench/out/varied-base.pcap --packets 1600000 \
        --out bench/out/varied-1600000.pcap

Contract
--------
``base`` (root, ``ip netns``, ``tcpdump``, ``mosquitto``) builds two sites on
one bridge, each site its own subnet (site 0: 10.61.0.0/24, site 1:
10.62.0.0/24) and every host its own namespace (make_demo_plant.py's
``build_topology``; nothing touches the host's interfaces or addresses), and
captures the bridge with tcpdump for ``--duration`` seconds.  Per site:

* two pymodbus servers (``plc1``, ``plc2``), each serving unit ids 1 and 2 with
  2,000 coils, discrete inputs, holding and input registers apiece;
* ``mbc``: one pymodbus client with a connection to each PLC, issuing
  ``MODBUS_RATE`` requests a second over both unit ids: random reads (FC 1/2/3/4,
  random start and quantity) and writes (FC 5/6/15/16, random address and
  values), so nearly every request names a register range never seen before;
* ``opcua``: an asyncua server with ``UA_VARIABLES`` variables (every tenth a
  writable set-point);
* ``uac``: an asyncua client reading batches of 5–60 random node ids
  (``UA_READ_RATE`` Read requests a second) and writing 1–4 set-points every
  ``UA_WRITE_EVERY``-th batch;
* ``broker``: mosquitto; ``pub1``/``pub2``: paho MQTT 5 publishers, each
  ``MQTT_RATE`` PUBLISHes a second over ``MQTT_TOPICS`` topics of its own at QoS
  0/1/2 with MQTT 5 properties (content type, message expiry, user properties,
  sometimes response topic and correlation data); ``hist``: a paho MQTT 5
  subscriber to ``site/#`` (QoS 1), so the broker forwards every publication.

Real stacks are slow and not reproducible to the byte (timing, ports, sequence
numbers come from the kernels and event loops); the random choices each role
makes are seeded.  The rates are modest so that the capture does not starve the
machine: ~2,000 packets/s for the two sites, i.e. ~100 k packets in a minute.

``grow`` (no root) turns that base into a capture of exactly ``--packets``
packets, deterministically: copy *c* of the base becomes sites ``2c`` and
``2c+1`` (addresses ``10.<100 + s // 256>.<s % 256>.<host>``, MACs keep their
vendor OUI and take the site number in bytes 4–5; IPv4 header and TCP/UDP
checksums adjusted per RFC 1624; ARP bodies rewritten too).  ``--groups``
copies run at the same time, offset by ``GROUP_OFFSET`` s from each other and
merged by timestamp (one "epoch"); the next ``--groups`` copies follow one
``EPOCH_GAP`` after the base's duration.  So every site is new (distinct
subnets), the number of sites alive at once stays ``2 × groups`` whatever the
size, and the 0.4 M- and 1.6 M-packet captures differ in how long they run, not
in how many sites talk at a time.  The output is cut after ``--packets``.
With ``--reuse-sites`` every epoch replays the same ``2 × groups`` sites instead,
client TCP ports shifted by ``PORT_STEP`` per epoch (new connections, checksums
adjusted): a plant that keeps running, whose registers, node ids and topics
were all seen in the first epoch.
Payloads are not touched (an OPC UA endpoint URL in a payload keeps its site-0
address).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import heapq
import json
import logging
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "pcaps"))

import make_demo_plant as plant  # noqa: E402  (namespaces, bridge, tcpdump, ifprep)
from make_demo_plant import Host  # noqa: E402

log = logging.getLogger("make-varied")

DEFAULT_PREFIX = "otwvar"
BRIDGE_MAC = "02:00:0a:3c:00:fe"
SITES = 2
SITE_NET = (61, 62)                      # base site b lives in 10.SITE_NET[b].0.0/24
# (name, last octet, OUI, description)
SITE_HOSTS = (
    ("plc1", 11, "00:80:f4", "pymodbus server, unit ids 1 and 2 (Schneider OUI)"),
    ("plc2", 12, "00:1b:1b", "pymodbus server, unit ids 1 and 2 (Siemens OUI)"),
    ("mbc", 21, "00:00:bc", "pymodbus client: random reads and writes on both PLCs, both units (Rockwell OUI)"),
    ("uac", 22, "02:00:0a", "asyncua client: Read batches of random node ids, Write set-points"),
    ("hist", 41, "02:00:0a", "paho MQTT 5 subscriber site/#"),
    ("broker", 50, "02:00:0a", "mosquitto 1883"),
    ("opcua", 60, "02:00:0a", "asyncua server 4840"),
    ("pub1", 71, "02:00:0a", "paho MQTT 5 publisher, QoS 0/1/2, properties"),
    ("pub2", 72, "02:00:0a", "paho MQTT 5 publisher, QoS 0/1/2, properties"),
)
SERVERS = ("plc1", "plc2", "opcua")
CLIENTS = ("mbc", "uac", "hist", "pub1", "pub2")

MODBUS_PORT, MQTT_PORT, OPCUA_PORT = 502, 1883, 4840
UNITS = (1, 2)
TABLE_SIZE = 2000                        # coils, discrete inputs, holding and input registers per unit
MODBUS_RATE = 300.0                      # requests/s per site (both PLCs, both units)
UA_VARIABLES = 400
UA_READ_RATE = 40.0                      # Read requests/s per site
UA_WRITE_EVERY = 8                       # one Write per this many Reads
MQTT_RATE = 120.0                        # PUBLISHes/s per publisher
MQTT_TOPICS = 2500                       # topics per publisher
MQTT_QOS_WEIGHTS = (0.5, 0.3, 0.2)       # QoS 0, 1, 2
CLIENT_STOP_MARGIN = 1.5                 # clients disconnect this long before the end
OPCUA_NS_URI = "urn:otwatch:bench:varied"

GROUP_OFFSET = 0.0137                    # s between concurrent copies (interleaves their packets)
EPOCH_GAP = 2.0                          # s between one epoch's end and the next one's start
DEFAULT_GROUPS = 4


def site_hosts(b: int) -> tuple[Host, ...]:
    net = SITE_NET[b]
    return tuple(Host(f"s{b}{name}", f"10.{net}.0.{last}", f"{oui}:0a:{net:02x}:{last:02x}", role)
                 for name, last, oui, role in SITE_HOSTS)


def site_ip(b: int, name: str) -> str:
    return next(h.ip for h in site_hosts(b) if h.name == f"s{b}{name}")


ALL_HOSTS = tuple(h for b in range(SITES) for h in site_hosts(b))


# ==========================================================================
# base: the real capture
# ==========================================================================
def _mosquitto_conf(work: Path, b: int) -> Path:
    conf = work / f"mosquitto-s{b}.conf"
    conf.write_text("user root\n"
                    f"listener {MQTT_PORT} {site_ip(b, 'broker')}\n"
                    "allow_anonymous true\n"
                    "persistence false\n"
                    "max_inflight_messages 100\n"
                    "max_queued_messages 100000\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n")
    return conf


def build_base(out: Path, duration: float, prefix: str = DEFAULT_PREFIX, seed: int = 1,
               scale: float = 1.0, keep_work: bool = False) -> dict:
    """Run both sites for *duration* seconds and write the bridge capture to *out*."""
    if os.geteuid() != 0:
        raise SystemExit("make_varied.py base needs root (network namespaces, tcpdump)")
    for tool in ("ip", "tcpdump", "mosquitto"):
        if shutil.which(tool) is None:
            raise SystemExit(f"missing tool: {tool}")
    out.parent.mkdir(parents=True, exist_ok=True)
    plant.cleanup_namespaces(prefix)
    work = Path(tempfile.mkdtemp(prefix="otwatch-varied-"))
    os.chmod(work, 0o755)
    p = plant.Plant(prefix, work)
    failures: list[str] = []
    me = str(Path(__file__).resolve())
    t_build = time.time()
    try:
        plant.build_topology(prefix, ALL_HOSTS, BRIDGE_MAC, 24)
        raw = work / "capture.pcap"
        p.spawn("tcpdump", "sw", ["tcpdump", "-i", "br0", "-s", "0", "-n", "-U", "-Z", "root",
                                  "-B", "16384", "-w", str(raw)])
        plant.wait_for_tcpdump(p, raw)
        sockets = []
        for b in range(SITES):
            p.spawn(f"s{b}broker", f"s{b}broker", ["mosquitto", "-c", str(_mosquitto_conf(work, b))])
            sockets.append((f"s{b}broker", f"s{b}broker", "tcp", MQTT_PORT))
            for role in SERVERS:
                name = f"s{b}{role}"
                p.spawn(name, name, [sys.executable, me, "role", role, "--site", str(b), "--seed", str(seed)])
                sockets.append((name, name, "tcp", OPCUA_PORT if role == "opcua" else MODBUS_PORT))
        plant.wait_listening(p, prefix, sockets)
        t0 = time.time()
        end = t0 + duration
        for b in range(SITES):
            for role in CLIENTS:
                name = f"s{b}{role}"
                p.spawn(name, name, [sys.executable, me, "role", role, "--site", str(b), "--seed", str(seed),
                                     "--end", repr(end - CLIENT_STOP_MARGIN), "--scale", repr(scale)])
        while time.time() < end:
            time.sleep(0.2)
            for b in range(SITES):
                for role in CLIENTS:
                    pr = p.procs[f"s{b}{role}"]
                    if pr.poll() not in (None, 0):
                        raise RuntimeError(f"s{b}{role} exited {pr.returncode}:\n{p.tail(f's{b}{role}')}")
        for b in range(SITES):
            for role in CLIENTS:
                name = f"s{b}{role}"
                try:
                    rc = p.procs[name].wait(timeout=max(10.0, duration / 4))
                except subprocess.TimeoutExpired:
                    rc = "still running"
                if rc != 0:
                    failures.append(f"{name} exited {rc}:\n{p.tail(name)}")
                else:
                    log.info("%s: %s", name, p.tail(name, 1))
            for role in SERVERS + ("broker",):
                name = f"s{b}{role}"
                if p.procs[name].poll() is not None:
                    failures.append(f"server {name} died early:\n{p.tail(name)}")
                p.stop(name)
        time.sleep(0.5)
        p.stop("tcpdump")
        if failures:
            raise RuntimeError("some roles failed:\n" + "\n\n".join(failures))
        shutil.copyfile(raw, out)
        os.chmod(out, 0o644)
    finally:
        p.stop_all()
        plant.cleanup_namespaces(prefix)
        if keep_work:
            log.info("role logs kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    meta = {"base": str(out), "duration": duration, "scale": scale, "seed": seed,
            "seconds": time.time() - t_build, **summarize(out)}
    with open(str(out)[:-5] + ".json", "w") as f:
        json.dump(meta, f)
    log.info("wrote %s: %d packets", out, meta["packets"])
    return meta


# ==========================================================================
# roles (run inside the namespaces)
# ==========================================================================
def _stop_flag() -> dict:
    flag = {"stop": False}
    signal.signal(signal.SIGTERM, lambda *_: flag.__setitem__("stop", True))
    return flag


class Pacer:
    """Sleeps so that successive ticks come *rate* times a second (catching up after a stall, not bursting)."""

    def __init__(self, rate: float):
        self.period = 1.0 / rate
        self.next = time.time()

    def delay(self) -> float:
        self.next += self.period
        now = time.time()
        if self.next < now - 1.0:
            self.next = now
        return max(0.0, self.next - now)


async def plc_server(site: int, name: str) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    rnd = random.Random(f"{name}{site}")
    devices = []
    for unit in UNITS:
        devices.append(SimDevice(unit, simdata=(
            [SimData(0, values=[rnd.random() < 0.5 for _ in range(TABLE_SIZE)], datatype=DataType.BITS)],
            [SimData(0, values=[rnd.random() < 0.5 for _ in range(TABLE_SIZE)], datatype=DataType.BITS)],
            [SimData(0, values=[rnd.randrange(65536) for _ in range(TABLE_SIZE)], datatype=DataType.REGISTERS)],
            [SimData(0, values=[rnd.randrange(65536) for _ in range(TABLE_SIZE)], datatype=DataType.REGISTERS)],
        )))
    server = ModbusTcpServer(devices, address=(site_ip(site, name), MODBUS_PORT))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(server.serve_forever())
    await stop.wait()
    await server.shutdown()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def modbus_client(a) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    rnd = random.Random(f"mbc{a.site}{a.seed}")
    clients = []
    for plc in ("plc1", "plc2"):
        c = AsyncModbusTcpClient(site_ip(a.site, plc), port=MODBUS_PORT, timeout=3, retries=1, reconnect_delay=0)
        while not await c.connect():
            if time.time() > a.end:
                raise RuntimeError(f"cannot connect to {plc}")
            await asyncio.sleep(0.2)
        clients.append(c)
    pace = Pacer(MODBUS_RATE * a.scale)
    n = errors = 0
    while time.time() < a.end:
        c = rnd.choice(clients)
        unit = rnd.choice(UNITS)
        op = rnd.random()
        try:
            if op < 0.25:
                q = rnd.randint(1, 125)
                await c.read_holding_registers(rnd.randrange(TABLE_SIZE - q), count=q, device_id=unit)
            elif op < 0.45:
                q = rnd.randint(1, 125)
                await c.read_input_registers(rnd.randrange(TABLE_SIZE - q), count=q, device_id=unit)
            elif op < 0.58:
                q = rnd.randint(1, 400)
                await c.read_coils(rnd.randrange(TABLE_SIZE - q), count=q, device_id=unit)
            elif op < 0.70:
                q = rnd.randint(1, 400)
                await c.read_discrete_inputs(rnd.randrange(TABLE_SIZE - q), count=q, device_id=unit)
            elif op < 0.82:
                await c.write_register(rnd.randrange(TABLE_SIZE), rnd.randrange(65536), device_id=unit)
            elif op < 0.92:
                q = rnd.randint(1, 30)
                await c.write_registers(rnd.randrange(TABLE_SIZE - q), [rnd.randrange(65536) for _ in range(q)],
                                        device_id=unit)
            elif op < 0.96:
                await c.write_coil(rnd.randrange(TABLE_SIZE), rnd.random() < 0.5, device_id=unit)
            else:
                q = rnd.randint(1, 64)
                await c.write_coils(rnd.randrange(TABLE_SIZE - q), [rnd.random() < 0.5 for _ in range(q)],
                                    device_id=unit)
        except Exception as e:  # a timeout on a loaded machine: count it, go on
            errors += 1
            if errors > 50:
                raise RuntimeError(f"too many Modbus errors, last: {e!r}")
        n += 1
        await asyncio.sleep(pace.delay())
    for c in clients:
        c.close()
    print(f"mbc: {n} requests, {errors} errors")


async def opcua_server(site: int) -> None:
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://{site_ip(site, 'opcua')}:{OPCUA_PORT}/otwatch/varied")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(OPCUA_NS_URI)
    cell = await server.nodes.objects.add_object(idx, "Cell")
    rnd = random.Random(f"opcua{site}")
    for i in range(UA_VARIABLES):
        kind = i % 3
        value = (rnd.random() * 100 if kind == 0 else
                 ua.Variant(rnd.randrange(1 << 20), ua.VariantType.Int32) if kind == 1 else rnd.random() < 0.5)
        var = await cell.add_variable(ua.NodeId(f"Tag{i:04d}", idx), f"Tag{i:04d}", value)
        if i % 10 == 0:
            await var.set_writable()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


async def opcua_client(a) -> None:
    from asyncua import Client, ua

    rnd = random.Random(f"uac{a.site}{a.seed}")
    url = f"opc.tcp://{site_ip(a.site, 'opcua')}:{OPCUA_PORT}/otwatch/varied"
    client = Client(url, timeout=6)
    while True:
        try:
            await client.connect()
            break
        except (OSError, asyncio.TimeoutError):
            if time.time() > a.end:
                raise
            await asyncio.sleep(0.3)
    try:
        idx = await client.get_namespace_index(OPCUA_NS_URI)
        nodes = [client.get_node(ua.NodeId(f"Tag{i:04d}", idx)) for i in range(UA_VARIABLES)]
        setpoints = [(nodes[i], i) for i in range(0, UA_VARIABLES, 10)]
        pace = Pacer(UA_READ_RATE * a.scale)
        n = writes = 0
        while time.time() < a.end:
            batch = rnd.sample(nodes, rnd.randint(5, 60))
            await client.read_values(batch)
            n += 1
            if n % UA_WRITE_EVERY == 0:
                chosen = rnd.sample(setpoints, rnd.randint(1, 4))
                values = [ua.DataValue(ua.Variant(rnd.random() * 100, ua.VariantType.Double)) if i % 3 == 0 else
                          ua.DataValue(ua.Variant(rnd.randrange(1 << 20), ua.VariantType.Int32)) if i % 3 == 1 else
                          ua.DataValue(ua.Variant(rnd.random() < 0.5, ua.VariantType.Boolean))
                          for _, i in chosen]
                await client.write_values([nd for nd, _ in chosen], values)
                writes += 1
            await asyncio.sleep(pace.delay())
        print(f"uac: {n} reads, {writes} writes")
    finally:
        await client.disconnect()


def _mqtt5(client_id: str):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(100)
    return c


def mqtt_publisher(a, which: str) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    flag = _stop_flag()
    rnd = random.Random(f"{which}{a.site}{a.seed}")
    topics = [f"site/{which}/area{i % 7}/line{i % 13}/cell{i // 13 % 20}/tag{i}" for i in range(MQTT_TOPICS)]
    c = _mqtt5(f"s{a.site}-{which}")
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 60
    cp.ReceiveMaximum = 100
    plant._mqtt_connect(c, a.end, keepalive=30, broker=site_ip(a.site, "broker"), properties=cp)
    pace = Pacer(MQTT_RATE * a.scale)
    n = 0
    while time.time() < a.end and not flag["stop"]:
        n += 1
        pp = Properties(PacketTypes.PUBLISH)
        pp.ContentType = rnd.choice(("application/json", "text/plain"))
        pp.MessageExpiryInterval = rnd.choice((30, 60, 300))
        pp.UserProperty = [("seq", str(n)), ("unit", rnd.choice(("degC", "bar", "rpm", "l/h")))]
        if rnd.random() < 0.1:
            pp.ResponseTopic = f"site/{which}/reply/{rnd.randrange(100)}"
            pp.CorrelationData = rnd.randbytes(8)
        if rnd.random() < 0.5:
            pp.PayloadFormatIndicator = 1
        qos = rnd.choices((0, 1, 2), MQTT_QOS_WEIGHTS)[0]
        payload = json.dumps({"v": round(rnd.random() * 1000, 3), "seq": n})
        c.publish(rnd.choice(topics), payload, qos=qos, retain=rnd.random() < 0.02, properties=pp)
        time.sleep(pace.delay())
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    print(f"{which}: {n} publishes")


def mqtt_subscriber(a) -> None:
    flag = _stop_flag()
    got = {"n": 0}
    c = _mqtt5(f"s{a.site}-hist")
    c.on_message = lambda *_x: got.__setitem__("n", got["n"] + 1)
    plant._mqtt_connect(c, a.end, keepalive=30, broker=site_ip(a.site, "broker"))
    c.subscribe("site/#", qos=1)
    while time.time() < a.end + 0.5 and not flag["stop"]:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    print(f"hist: {got['n']} messages")


def run_role(a) -> int:
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    r = a.name
    if r == "ifprep":
        plant.role_ifprep()
    elif r in ("plc1", "plc2"):
        asyncio.run(plc_server(a.site, r))
    elif r == "opcua":
        asyncio.run(opcua_server(a.site))
    elif r == "mbc":
        asyncio.run(modbus_client(a))
    elif r == "uac":
        asyncio.run(opcua_client(a))
    elif r in ("pub1", "pub2"):
        mqtt_publisher(a, r)
    elif r == "hist":
        mqtt_subscriber(a)
    else:
        raise SystemExit(f"unknown role {r}")
    return 0


# ==========================================================================
# reading and summarising pcaps
# ==========================================================================
REC = struct.Struct("<IIII")


def read_pcap(path: Path) -> tuple[bytes, list[tuple[float, bytes]]]:
    """(global header, [(timestamp, frame)]) of a classic little-endian µs pcap (what tcpdump writes)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        raise SystemExit(f"{path}: not a little-endian microsecond classic pcap")
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, usec, incl, _orig = REC.unpack_from(data, pos)
        out.append((sec + usec / 1e6, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return data[:24], out


def _port_class(frame: bytes) -> str:
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return "other"
    ihl = (frame[14] & 15) * 4
    if frame[23] != 6 or len(frame) < 14 + ihl + 4:
        return "other"
    sp, dp = struct.unpack_from("!HH", frame, 14 + ihl)
    for port, name in ((MODBUS_PORT, "modbus"), (MQTT_PORT, "mqtt"), (OPCUA_PORT, "opcua")):
        if port in (sp, dp):
            return name
    return "other"


def summarize(path: Path) -> dict:
    _, recs = read_pcap(path)
    mix: dict[str, int] = {}
    for _, fr in recs:
        k = _port_class(fr)
        mix[k] = mix.get(k, 0) + 1
    n = len(recs)
    return {"packets": n, "bytes": os.path.getsize(path),
            "packet_seconds": (recs[-1][0] - recs[0][0]) if recs else 0.0,
            "mix": {k: round(v / n, 3) for k, v in sorted(mix.items())} if n else {}}


# ==========================================================================
# grow: replay with per-site rewriting and time shifting
# ==========================================================================
def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def csum_adjust(c: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: the checksum *c* after the 16-bit-aligned bytes *old* became *new*."""
    s = ~c & 0xFFFF
    for i in range(0, len(old), 2):
        s += (~((old[i] << 8) | old[i + 1]) & 0xFFFF) + ((new[i] << 8) | new[i + 1])
    return ~_fold(s) & 0xFFFF


def site_net(s: int) -> bytes:
    """First three bytes of output site *s*'s /24."""
    if s >= 256 * 100:
        raise ValueError("too many sites")
    return bytes((10, 100 + s // 256, s % 256))


SERVER_PORTS = (MODBUS_PORT, MQTT_PORT, OPCUA_PORT)
EPHEMERAL_LO, EPHEMERAL_N = 32768, 28232          # Linux's default ip_local_port_range 32768-60999
PORT_STEP = 7919                                  # per epoch (prime: successive epochs never collide)


class SiteMap:
    """How one copy rewrites addresses and MACs: base site b -> output site 2*copy + b; with
    *port_shift*, every client (ephemeral) TCP port moves by that much within the ephemeral range
    (``--reuse-sites``: the same sites again in a later epoch, on new connections)."""

    def __init__(self, copy: int, port_shift: int = 0):
        self.port_shift = port_shift % EPHEMERAL_N
        self.ip: dict[bytes, bytes] = {}
        self.mac: dict[bytes, bytes] = {}
        for b in range(SITES):
            s = SITES * copy + b
            net = site_net(s)
            self.ip[bytes((10, SITE_NET[b], 0))] = net
            for h in site_hosts(b):
                m = bytes.fromhex(h.mac.replace(":", ""))
                self.mac[m] = m[:3] + bytes((s >> 8, s & 255)) + m[5:]

    def addr(self, a: bytes) -> bytes:
        net = self.ip.get(a[:3])
        return a if net is None else net + a[3:]

    def rewrite(self, frame: bytes) -> bytes:
        f = bytearray(frame)
        mac = self.mac
        f[0:6] = mac.get(frame[0:6], frame[0:6])
        f[6:12] = mac.get(frame[6:12], frame[6:12])
        et = frame[12:14]
        if et == b"\x08\x00" and len(frame) >= 34:
            ihl = (frame[14] & 15) * 4
            old = frame[26:34]
            new = self.addr(old[:4]) + self.addr(old[4:])
            if new != old:
                f[26:34] = new
                c = struct.unpack_from("!H", frame, 24)[0]
                struct.pack_into("!H", f, 24, csum_adjust(c, old, new))
                frag = struct.unpack_from("!H", frame, 20)[0] & 0x1FFF
                proto = frame[23]
                l4 = 14 + ihl
                if frag == 0 and proto == 6 and len(frame) >= l4 + 18:
                    c = csum_adjust(struct.unpack_from("!H", frame, l4 + 16)[0], old, new)
                    if self.port_shift:
                        ports = frame[l4:l4 + 4]
                        sp, dp = struct.unpack("!HH", ports)
                        if sp not in SERVER_PORTS and sp >= EPHEMERAL_LO:
                            sp = EPHEMERAL_LO + (sp - EPHEMERAL_LO + self.port_shift) % EPHEMERAL_N
                        if dp not in SERVER_PORTS and dp >= EPHEMERAL_LO:
                            dp = EPHEMERAL_LO + (dp - EPHEMERAL_LO + self.port_shift) % EPHEMERAL_N
                        moved = struct.pack("!HH", sp, dp)
                        f[l4:l4 + 4] = moved
                        c = csum_adjust(c, ports, moved)
                    struct.pack_into("!H", f, l4 + 16, c)
                elif frag == 0 and proto == 17 and len(frame) >= l4 + 8:
                    c = struct.unpack_from("!H", frame, l4 + 6)[0]
                    if c:
                        struct.pack_into("!H", f, l4 + 6, csum_adjust(c, old, new) or 0xFFFF)
        elif et == b"\x08\x06" and len(frame) >= 42:
            f[22:28] = mac.get(frame[22:28], frame[22:28])
            f[28:32] = self.addr(frame[28:32])
            f[32:38] = mac.get(frame[32:38], frame[32:38])
            f[38:42] = self.addr(frame[38:42])
        return bytes(f)


def _shifted(rel: list[tuple[float, bytes]], offset: float, g: int):
    for i, (t, _) in enumerate(rel):
        yield offset + t, g, i


def grow(base: Path, out: Path, packets: int, groups: int = DEFAULT_GROUPS, reuse_sites: bool = False) -> dict:
    """Write the first *packets* packets of the endless replay of *base* (see the module docstring).
    *reuse_sites*: every epoch replays the same ``2 × groups`` sites (client ports shifted, so new
    connections) instead of new ones: a plant that goes on, after its first epoch."""
    t_start = time.time()
    header, recs = read_pcap(base)
    if not recs:
        raise SystemExit(f"{base}: no packets")
    t_first = recs[0][0]
    span = recs[-1][0] - t_first
    epoch_len = span + EPOCH_GAP
    rel = [(t - t_first, fr) for t, fr in recs]
    written = copies = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        f.write(header)
        epoch = 0
        while written < packets:
            maps = [SiteMap(g, epoch * PORT_STEP) if reuse_sites else SiteMap(epoch * groups + g)
                    for g in range(groups)]
            copies += groups
            t_epoch = t_first + epoch * epoch_len
            streams = [_shifted(rel, t_epoch + g * GROUP_OFFSET, g) for g in range(groups)]
            for ts, g, i in heapq.merge(*streams):
                fr = maps[g].rewrite(rel[i][1])
                sec = int(ts)
                usec = int(round((ts - sec) * 1e6))
                if usec >= 1_000_000:
                    sec, usec = sec + 1, usec - 1_000_000
                f.write(REC.pack(sec, usec, len(fr), len(fr)))
                f.write(fr)
                written += 1
                if written >= packets:
                    break
            epoch += 1
    meta = {"packets": written, "bytes": os.path.getsize(out), "base": str(base), "base_packets": len(recs),
            "base_seconds": span, "groups": groups, "epochs": epoch, "reuse_sites": reuse_sites,
            "sites": SITES * (groups if reuse_sites else copies),
            "seconds": time.time() - t_start, **{"mix": summarize(out)["mix"]}}
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("base", help="capture the two real sites (root)")
    b.add_argument("--duration", type=float, default=90.0)
    b.add_argument("--out", default=str(HERE / "out" / "varied-base.pcap"))
    b.add_argument("--prefix", default=DEFAULT_PREFIX)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--scale", type=float, default=1.0, help="multiply every client's rate")
    b.add_argument("--keep-work", action="store_true")
    g = sub.add_parser("grow", help="replay the base into a capture of N packets")
    g.add_argument("--base", default=str(HERE / "out" / "varied-base.pcap"))
    g.add_argument("--packets", type=int, required=True)
    g.add_argument("--groups", type=int, default=DEFAULT_GROUPS)
    g.add_argument("--out", required=True)
    g.add_argument("--reuse-sites", action="store_true",
                   help="later epochs replay the same sites on new connections (default: new sites)")
    r = sub.add_parser("role", help=argparse.SUPPRESS)
    r.add_argument("name")
    r.add_argument("--site", type=int, default=0)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--end", type=float, default=0.0)
    r.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if a.cmd == "role":
        return run_role(a)
    if a.cmd == "base":
        meta = build_base(Path(a.out), a.duration, a.prefix, a.seed, a.scale, a.keep_work)
    else:
        meta = grow(Path(a.base), Path(a.out), a.packets, a.groups, a.reuse_sites)
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
