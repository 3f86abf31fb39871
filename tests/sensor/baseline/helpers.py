"""Observations built by hand for the baseline's unit tests (the capture tests use real traffic)."""
from types import SimpleNamespace

from otwatch.sensor import observations as O
from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.baseline.detect import DetectSettings, Detector
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline

C, S = "10.0.0.5", "10.0.0.9"


def flow(ts, frame, client=C, server=S, port=502, protocol="modbus", fid=1):
    return O.FlowStart(ts, frame, fid, "tcp", 0, client, 40000 + fid, server, port, "02:00:00:00:00:05",
                       "02:00:00:00:00:09", False, protocol, 1)


def modbus_req(ts, frame, fc=3, unit=1, address=0, quantity=10, client=C, server=S, fid=1):
    ev = SimpleNamespace(function=fc, unit=unit, address=address, quantity=quantity, read_address=None,
                         read_quantity=None, malformed=None, function_name=f"fc{fc}", umas_function_name=None)
    return O.Message(ts, frame, "modbus", f"modbus.fc{fc}", "read", f"unit={unit}/x", "request", 1, fid,
                     client, server, 502, ev, (1, unit, fc, address, quantity))


def modbus_exception(ts, frame, client=C, server=S):
    ev = SimpleNamespace(exception_code=2)
    return O.Message(ts, frame, "modbus", "modbus.exception", "read", "unit=1/fc=3/exception=2", "response", 1, 1,
                     client, server, 502, ev, (3, 1, 3, 2))


def device_id(ts, frame, revision, client=C, server=S):
    objs = (SimpleNamespace(name="VendorName", value="ACME"), SimpleNamespace(name="MajorMinorRevision",
                                                                              value=revision))
    return O.Message(ts, frame, "modbus", "modbus.read_device_identification", "diagnostic", "unit=1/device_id",
                     "response", 1, 1, client, server, 502, SimpleNamespace(objects=objs), (2, 1, 43, 14, 1, 0))


def aggregate(client, server, kind, target, icount, direction="request", protocol="modbus", port=502):
    return O.Aggregate(protocol, kind, "read", target, direction, 1, client, server, port, icount, icount * 12,
                       0.0, 0.0, icount, icount * 12, 0, 0, ())


def learn(observations, interval=60.0) -> Baseline:
    b = Baseline()
    L = Learner(b, interval)
    for o in observations:
        L.observe(o)
    return b


def detect(b, observations, **settings):
    sink = ListSink()
    d = Detector(b, sink, source="test.pcap", settings=DetectSettings(**settings))
    for o in observations:
        d.observe(o)
    return sink.findings
