"""The protocol-corners capture and its builder.

* The committed capture (pcaps/protocol-corners.pcap.gz) exists and stays small.
* Through the real pipeline, on both kernel implementations, every corner it was
  made for is decoded with its fields: Modbus FC 7, 8 (sub-functions), 11, 12,
  17, 20 (several sub-requests, labelled responses), 21, 22, 23, 24, 43/14
  extended with more follows, exceptions 1/2/3/4/6, three units behind one
  gateway, pipelined and split ADUs, UMAS (FC 90), user-defined functions;
  MQTT 3.1, SUBACK failures, CONNACK refusals, a PUBLISH over the size limit
  with the stream going on, escape sequences, MQTT over TLS on 8883.
* ``otwatch analyze`` JSON and the text of ``otwatch inventory show`` carry the
  escape sequences escaped, and never the password.
* pcaps/README.md's tables for this capture are what the builder generates.
* ``netns``: the builder really builds it (root, ``ip netns``, mosquitto) and a
  fresh capture shows the same key facts.
"""
from __future__ import annotations

import collections
import functools
import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.veth import netns_unavailable

from otwatch.parsers.limits import DEFAULT_LIMITS
from otwatch.sensor import observations as O
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
CAPTURE = PCAPS / "protocol-corners.pcap.gz"
README = PCAPS / "README.md"
BUILDER = PCAPS / "make_protocol_corners.py"
MAX_BYTES = 300 * 1024

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def load_builder():
    sys.path.insert(0, str(PCAPS))
    spec = importlib.util.spec_from_file_location("make_protocol_corners", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


B = load_builder()


class Collect:
    def __init__(self):
        self.obs = []

    def observe(self, obs):
        self.obs.append(obs)


def analyse(path: Path, impl: str) -> list:
    c = Collect()
    p = Pipeline([c], Settings(detail_all=True, implementation=impl))
    p.run_file(str(path))
    p.finish()
    return c.obs


@functools.lru_cache(maxsize=None)
def committed(impl: str) -> tuple:
    return tuple(analyse(CAPTURE, impl))


def messages(obs, protocol: str) -> list:
    return [o for o in obs if type(o) is O.Message and o.protocol == protocol]


def events(obs, cls_name: str, protocol: str | None = None) -> list:
    return [o.event for o in obs if type(o) is O.Message and type(o.event).__name__ == cls_name
            and (protocol is None or o.protocol == protocol)]


def requests(obs, fc: int, server: str | None = None) -> list:
    return [o.event for o in messages(obs, "modbus") if o.direction == "request" and o.event.function == fc
            and (server is None or o.server == server)]


def responses(obs, fc: int) -> list:
    return [o.event for o in messages(obs, "modbus") if o.direction == "response" and o.event.function == fc]


# --------------------------------------------------------------------------
def test_capture_committed_and_small():
    assert CAPTURE.is_file(), "run: sudo python pcaps/make_protocol_corners.py"
    assert CAPTURE.stat().st_size < MAX_BYTES
    raw = CAPTURE.read_bytes()
    assert raw[:2] == b"\x1f\x8b", "gzip expected"
    inner = gzip.decompress(raw)
    assert inner[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"), "classic pcap inside"
    assert len(inner) > DEFAULT_LIMITS.mqtt_max_message     # the oversized PUBLISH is really in it


def test_readme_host_table_matches_builder():
    assert B.host_table() in README.read_text()


@pytest.mark.tshark
@needs_tshark
def test_readme_timeline_matches_capture():
    table = B.timeline_table(CAPTURE)
    assert "not in this capture" not in table
    assert table in README.read_text(), (
        "pcaps/README.md protocol-corners time-line is stale; regenerate with "
        "python pcaps/make_protocol_corners.py --readme-tables pcaps/protocol-corners.pcap.gz")


# --- Modbus ---------------------------------------------------------------------
def modbus_facts(obs) -> None:
    """Every Modbus corner, decoded with its fields (shared by the committed and the fresh capture)."""
    gw, plc = B.IP["gw"], B.IP["plc"]
    # FC 7
    (r7,) = responses(obs, 7)
    assert r7.status == 0 and r7.request_frame is not None
    # FC 8: every sub-function asked, answered except Force Listen Only Mode
    asked = {e.sub_function: e.sub_function_name for e in requests(obs, 8)}
    assert asked == {0: "Return Query Data", 1: "Restart Communications Option", 4: "Force Listen Only Mode",
                     10: "Clear Counters and Diagnostic Register", 11: "Return Bus Message Count",
                     12: "Return Bus Communication Error Count", 13: "Return Bus Exception Error Count",
                     14: "Return Server Message Count"}
    answered = collections.Counter(e.sub_function for e in responses(obs, 8))
    assert set(answered) == set(asked) - {4} and answered[1] == 2      # restart: gateway and PLC
    assert [e.data for e in responses(obs, 8) if e.sub_function == 0] == [b"OT"]
    # FC 11, 12, 17
    (r11,) = responses(obs, 11)
    assert (r11.status, r11.event_count) == (0, 0)
    (r12,) = responses(obs, 12)
    assert (r12.byte_count, r12.status, r12.event_count, r12.message_count, r12.events) == (6, 0, 0, 0, ())
    assert {e.unit for e in responses(obs, 17)} == {2, 7}
    assert all(e.data.startswith(b"Moxa-MGate MB3180-v2.2") for e in responses(obs, 17))
    # FC 20: three sub-requests; the response labelled by position, the first with file/record
    (q20,) = requests(obs, 20, plc)
    assert [(r.file_number, r.record_number, r.record_length, r.index) for r in q20.file_records] == [
        (f, rec, n, i) for i, (f, rec, n) in enumerate(B.FILE_READS)]
    (r20,) = responses(obs, 20)
    f0, rec0, _ = B.FILE_READS[0]
    assert [(r.index, r.file_number, r.record_number) for r in r20.file_records] == [
        (0, f0, rec0), (1, None, None), (2, None, None)]
    assert [r.data for r in r20.file_records] == [tuple(B.file_record_values(*fr)) for fr in B.FILE_READS]
    assert r20.malformed is None
    # FC 21 (echo), 22, 23, 24
    (q21,) = requests(obs, 21)
    assert [(r.file_number, r.record_number, r.data) for r in q21.file_records] == [
        (f, rec, vals) for f, rec, vals in B.FILE_WRITES]
    assert responses(obs, 21)[0].file_records == q21.file_records
    (q22,) = requests(obs, 22)
    assert (q22.address, q22.and_mask, q22.or_mask) == (4, 0x00F2, 0x0025)
    (r23,) = responses(obs, 23)
    assert (r23.unit, r23.address, r23.quantity, r23.values) == (7, 3, 6, tuple(7000 + i for i in range(3, 9)))
    (q24,) = requests(obs, 24)
    (r24,) = responses(obs, 24)
    assert q24.address == B.FIFO_ADDRESS and (r24.fifo_count, r24.values) == (4, (0, 1, 2, 3))
    # FC 43/14 extended: three transactions chained by more follows, private objects named
    ids = [e for e in events(obs, "ModbusDeviceIdentification")]
    assert [e.more_follows for e in ids] == [True, True, False]
    assert all(e.read_device_id_code == 3 and e.conformity_level == 0x83 for e in ids)
    assert [q.object_id for q in requests(obs, 43, gw) if q.read_device_id_code == 3] == [
        0, ids[0].next_object_id, ids[1].next_object_id]
    objects = {o.object_id: o for e in ids for o in e.objects}
    assert set(objects) == set(range(7)) | set(B.GW_PRIVATE_OBJECTS)
    assert all(objects[k].name == "Private_0x%02X" % k and objects[k].value == v
               for k, v in B.GW_PRIVATE_OBJECTS.items())
    assert objects[0].value == "Moxa"
    # exceptions
    exc = {e.exception_code: e for e in events(obs, "ModbusExceptionResponse")}
    assert {c: e.exception_name for c, e in exc.items()} == {
        1: "Illegal Function", 2: "Illegal Data Address", 3: "Illegal Data Value",
        4: "Server Device Failure", 6: "Server Device Busy"}
    assert exc[1].function == 0x80 | B.USER_FC_REFUSED and exc[3].function == 0x80 | 43
    assert (exc[6].address, exc[4].unit) == (B.GW_BUSY_ADDRESS, 7)
    # several units behind one gateway address
    units = {o.event.unit for o in messages(obs, "modbus") if o.server == gw}
    assert set(B.GW_UNITS) <= units
    # user-defined functions: FC 65 answered, FC 100 refused
    (q65,) = requests(obs, B.USER_FC)
    (r65,) = responses(obs, B.USER_FC)
    assert q65.op == "user_defined" and (q65.data, r65.data) == (b"\x12\x34", b"\xed\xcb")
    # pipelined: three requests in one frame, three responses in one frame
    per_frame = collections.Counter((o.frame, o.direction) for o in messages(obs, "modbus"))
    assert sorted(n for (_f, d), n in per_frame.items() if n > 1) == [3, 3]
    # split: the FC 16 request cut after 5 bytes is decoded whole
    (q16,) = requests(obs, 16)
    assert (q16.transaction_id, q16.address, q16.values) == (0x0304, 20, (0x0102, 0x0304, 0x0506))
    # listen only: the read sent meanwhile is never answered
    unanswered = [o for o in obs if type(o) is O.Anomaly and o.id == "modbus.unanswered_request"]
    assert len(unanswered) == 1 and "fc=3" in unanswered[0].detail
    # UMAS (FC 90): the session's functions named and classified
    umas_q = requests(obs, 90)
    assert [e.umas_function_name for e in umas_q] == [B_umas_name(c) for c, *_ in B.UMAS_SESSION]
    cls = {e.umas_function_name: e.umas_class for e in umas_q}
    assert {n for n, c in cls.items() if c == "program"} == {
        "stop_plc", "start_plc", "initialize_upload", "upload_block", "end_strategy_upload"}
    assert cls["write_variables"] == "write" and cls["read_id"] == "read" and cls["take_plc_reservation"] == "session"
    assert all(e.op == "program" and e.kind == "modbus.program_function_90" for e in umas_q)
    assert [e.umas_pairing_key for e in umas_q][:6] == [0] * 6 and set(e.umas_pairing_key for e in umas_q[6:]) == {
        B.UMAS_KEY}
    umas_r = responses(obs, 90)
    assert [e.umas_status for e in umas_r] == ["error" if s == 0xFD else "ok" for *_x, s, _d in B.UMAS_SESSION]
    assert all(e.malformed is None for e in umas_q + umas_r)


def B_umas_name(code: int) -> str:
    from otwatch.parsers.modbus import spec

    return spec.umas_function_name(code)


def test_modbus_corners(impl):
    modbus_facts(committed(impl))


def test_every_modbus_message_decodes_cleanly(impl):
    """Only the deliberate oddities are malformed: the read device id code 5 request."""
    bad = [o.event.malformed for o in messages(committed(impl), "modbus") if o.event.malformed]
    assert bad == ["read device id code 5 not 1..4"]


# --- MQTT ------------------------------------------------------------------------
def flows_by_port(obs) -> dict:
    return {o.flow_id: o.server_port for o in obs if type(o) is O.FlowStart}


def mqtt_facts(obs) -> None:
    msgs = messages(obs, "mqtt")
    connects = events(obs, "MQTTConnect")
    # MQTT 3.1
    (v31,) = [c for c in connects if c.protocol_level == 3]
    assert (v31.protocol_name, v31.version, v31.client_id) == ("MQIsdp", "3.1", "legacy-rtu-07")
    # CONNACK refusals: mosquitto (not authorized) and the crafted edge broker (bad user name or password)
    acks = {(o.server, o.event.return_code): o.event.return_name for o in msgs if type(o.event).__name__ == "MQTTConnAck"}
    assert {k: v for k, v in acks.items() if k[1]} == {
        (B.IP["broker"], 5): "not_authorized", (B.IP["broker"], 0x87): "not_authorized",
        (B.IP["edge"], 4): "bad_user_name_or_password", (B.IP["edge"], 0x86): "bad_user_name_or_password"}
    # SUBACK failures: 3.1.1 0x80 beside a granted filter, 5.0 0x87
    subacks = [e.reason_codes for e in events(obs, "MQTTSubAck")]
    assert (1, 0x80) in subacks and (0x87,) in subacks
    names = [e.reason_names for e in events(obs, "MQTTSubAck")]
    assert ("granted_qos_1", "failure") in names and ("not_authorized",) in names
    # the PUBLISH over the limit: reported truncated, and the stream goes on
    (trunc_obs,) = [o for o in msgs if type(o.event).__name__ == "MQTTTruncated"]
    t = trunc_obs.event
    assert t.original_name == "PUBLISH" and t.size > DEFAULT_LIMITS.mqtt_max_message
    assert t.size == 1 + 3 + 2 + len(B.BIG_TOPIC) + 2 + B.BIG_PAYLOAD_LEN and t.skipped == t.size - 4
    after = [o for o in msgs if o.flow_id == trunc_obs.flow_id and o.frame > trunc_obs.frame]
    assert [type(o.event).__name__ for o in after][:3] == ["MQTTPubAck", "MQTTPublish", "MQTTPubAck"]
    assert after[0].event.packet_id == 2 and after[1].event.topic == "plant/line3/status"
    bad = [o for o in obs if type(o) is O.Anomaly and o.protocol == "mqtt"]
    assert bad == [], bad
    # escape sequences: kept as sent in the events (sinks escape), previews escaped
    assert B.ESC_CLIENT_ID in {c.client_id for c in connects}
    assert B.ESC_TOPIC in {e.topic for e in events(obs, "MQTTPublish")}
    previews = {e.payload_preview for e in events(obs, "MQTTPublish") if e.topic.endswith(("banner", "display"))}
    assert previews == {"\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mLEVEL LOW\\x1b[0m"}
    targets = {o.target for o in msgs if o.kind == "mqtt.publish"}
    assert "topic=plant/line3/\\x1b[31mALARM\\x1b[0m" in targets and not any("\x1b" in x for x in targets)
    # passwords: the fact, never the value
    pw = [c for c in connects if c.password_present]
    assert pw and all(c.password_length for c in pw)
    # MQTT over TLS on 8883: hellos with SNI and version, and no MQTT decoded there
    port = flows_by_port(obs)
    tls = [o for o in obs if type(o) is O.TLSSeen]
    assert {o.server_port for o in tls} == {B.MQTT_TLS_PORT} and {o.carried for o in tls} == {"mqtt"}
    hellos = [o.event for o in tls if o.direction == "request"]
    assert [(h.sni, h.max_version, h.alpn) for h in hellos] == [
        (B.TLS_SNI, "TLS 1.3", ("mqtt",)), (B.TLS_SNI, "TLS 1.2", ("mqtt",))]
    assert [o.event.version for o in tls if o.direction == "response"] == ["TLS 1.3", "TLS 1.2"]
    assert not [o for o in msgs if port.get(o.flow_id) == B.MQTT_TLS_PORT]
    ends = [o for o in obs if type(o) is O.FlowEnd and port.get(o.flow_id) == B.MQTT_TLS_PORT]
    assert len(ends) == 2 and all(e.encrypted_bytes > 0 and e.messages == 0 for e in ends)


def test_mqtt_corners(impl):
    mqtt_facts(committed(impl))


def test_both_implementations_agree():
    def key(obs):
        return [(type(o).__name__, getattr(o, "frame", None), getattr(o, "event", None)) for o in obs
                if type(o) in (O.Message, O.Anomaly, O.TLSSeen)]

    assert key(committed("pure")) == key(committed("compiled"))


# --- what a user sees: JSON lines and text -------------------------------------------
def otwatch(*args, env_extra=None) -> subprocess.CompletedProcess:
    # the kernel switches come only from env_extra (CI sets OTWATCH_REQUIRE_EXTENSIONS for the
    # whole run, which contradicts OTWATCH_NO_EXTENSIONS)
    env = {k: v for k, v in os.environ.items() if k not in ("OTWATCH_NO_EXTENSIONS", "OTWATCH_REQUIRE_EXTENSIONS")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "otwatch.sensor", *args], capture_output=True, env=env,
                          timeout=300, check=True)


def _impl_env(impl: str) -> dict:
    return {"OTWATCH_NO_EXTENSIONS": "1"} if impl == "pure" else {"OTWATCH_REQUIRE_EXTENSIONS": "1"}


def test_json_output_escapes_and_hides_passwords(impl):
    out = otwatch("analyze", "--no-inventory", "-q", "--every-message", "--json", "-", str(CAPTURE),
                  env_extra=_impl_env(impl)).stdout
    assert b"\x1b" not in out and B.MQTT_PASSWORD.encode() not in out and B.MQTT_WRONG_PASSWORD.encode() not in out
    lines = [json.loads(x) for x in out.decode("ascii").splitlines()[1:]]
    connects = [x["event"] for x in lines if x["type"] == "message" and x["kind"] == "mqtt.connect"]
    assert B.ESC_CLIENT_ID in {c["client_id"] for c in connects}            # round-trips exactly
    assert any(c["password_present"] and "password" not in c for c in connects)
    assert "\\u001b[31mALARM" in out.decode("ascii")                         # ensure_ascii escaping
    umas = [x for x in lines if x["type"] == "message" and x["event"].get("umas_function_name") == "stop_plc"]
    assert umas and umas[0]["event"]["umas_class"] == "program"


def test_text_output_escapes(tmp_path, impl):
    db = tmp_path / "inventory.db"
    env = _impl_env(impl)
    summary = otwatch("analyze", "--db", str(db), str(CAPTURE), env_extra=env).stdout
    assert b"\x1b" not in summary and b"mqtt.truncated" in summary
    shown = otwatch("inventory", "--db", str(db), "show", B.IP["field"], env_extra=env).stdout
    assert b"\x1b" not in shown
    assert b"\\x1b[31mline3\\x1b[0m" in shown and b"plant/line3/\\x1b[31mALARM\\x1b[0m" in shown
    assert B.MQTT_PASSWORD.encode() not in shown


# --- the oracle exercised its documented exceptions here --------------------------------
@pytest.mark.tshark
@needs_tshark
def test_oracle_documented_differences_were_exercised():
    import asyncio

    spec = importlib.util.spec_from_file_location("oracle_corners", ROOT / "tests" / "oracle" / "test_oracle_tshark.py")
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    asyncio.set_event_loop(asyncio.new_event_loop())     # pyshark wants one; earlier asyncio tests may leave none
    raw_ours = oracle.ours(str(CAPTURE))
    mine, _ws = oracle.compared(str(CAPTURE))
    dropped = sum(len(v) for v in raw_ours.values()) - sum(len(v) for v in mine.values())
    assert dropped == 2            # the truncated PUBLISH and the split-MBAP FC 16 request
    assert oracle._short_first_segments(str(CAPTURE))
    mq = oracle.check_mqtt_fields(str(CAPTURE))
    assert mq["clientid"] == 10 and mq["topic"] >= 9 and mq["password_present"] == 8   # escaped ids included
    mb = oracle.check_modbus_fields(str(CAPTURE))
    assert mb["func_code"] >= 90 and mb["reference_num"] >= 10 and mb["exception_code"] == 5


# --------------------------------------------------------------------------
def _netns_unavailable() -> str | None:
    why = netns_unavailable(("tcpdump", "mosquitto", "ss"), ("scapy", "paho.mqtt", "pymodbus", "cryptography"))
    if why:
        return why
    try:
        B.dynsec_plugin()
    except SystemExit as e:
        return str(e)
    return None


@pytest.mark.netns
def test_builder_fresh_capture(tmp_path):
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"otwc{os.getpid()}"          # concurrent runs must not tear down each other's plant
    r = subprocess.run([sys.executable, str(BUILDER), "--out", str(tmp_path), "--prefix", prefix],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    pcap = tmp_path / "protocol-corners.pcap.gz"
    assert pcap.is_file() and pcap.stat().st_size < MAX_BYTES
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-" not in leftovers, "namespaces not torn down"
    from otwatch import ext

    obs = analyse(pcap, ext.IMPLEMENTATION)
    modbus_facts(obs)
    mqtt_facts(obs)
