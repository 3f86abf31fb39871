"""Capture real asyncua bytes for the decoder-depth tests (Publish notifications, TranslateBrowsePaths).

    /tmp/venv/bin/python tests/parsers/opcua/capture_depth_vectors.py   # rewrites opcua_depth_vectors.json

Same machinery as capture_vectors.py (an asyncua client and server on 127.0.0.1
through the recording proxy), one scenario over SecurityPolicy None:

* TranslateBrowsePathsToNodeIds with three paths: one that resolves through
  HierarchicalReferences, one through an Aggregates hop plus an inverse
  HasComponent hop and a name with RelativePath-reserved characters
  (``Tank/1.Level``), and one that does not resolve (BadNoMatch);
* a Read of a known and an unknown node id (BadNodeIdUnknown per operation);
* a subscription with DataChange notifications for a Double, a UInt32, a
  Boolean, a long String with control characters, an Int32 array, and a value
  whose status is BadSensorFailure; and events (EventNotificationList);
* a Read after CloseSession (ServiceFault).

asyncua never sends a StatusChangeNotification on the wire (its server only
queues one when a subscription expires, with no Publish request to carry it),
so ``status_change_response()`` builds one with asyncua's own encoder.
"""
from __future__ import annotations

import asyncio
import json
import pathlib

from capture_vectors import Recorder

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE / "opcua_depth_vectors.json"
LONG_TEXT = 'line 3 \x1b[2J"reset"\ttemp>80\n' + "operator note: check the cooling water valve V-12 before restart"
TANK_NAME = "Tank/1.Level"


async def _scenario() -> dict[str, list[tuple[int, bytes]]]:
    import logging
    import socket

    from asyncua import Client, Server, ua

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    server = Server()
    await server.init()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/depth/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:otwatch:depth")
    line = await server.nodes.objects.add_object(idx, "Line3")
    temp = await line.add_variable(idx, "Temperature", 20.5)
    counter = await line.add_variable(idx, "Counter", ua.Variant(0, ua.VariantType.UInt32))
    running = await line.add_variable(idx, "Running", False)
    text = await line.add_variable(idx, "Text", "")
    arr = await line.add_variable(idx, "Profile", ua.Variant([1, 2, 3], ua.VariantType.Int32))
    sensor = await line.add_variable(idx, "Sensor", 1.0)
    tank = await line.add_variable(idx, TANK_NAME, 3.5)
    gen = await server.get_event_generator()
    await server.start()
    rec = Recorder(port)
    await rec.start()
    out: dict[str, list[tuple[int, bytes]]] = {}
    try:
        c = Client(f"opc.tcp://127.0.0.1:{rec.port}/depth/")
        c.application_uri = "urn:otwatch:test:depth-client"
        await c.connect()

        def path(start, hops):
            bp = ua.BrowsePath()
            bp.StartingNode = start
            for ref, inverse, name_ns, name in hops:
                el = ua.RelativePathElement()
                el.ReferenceTypeId = ua.NodeId(ref)
                el.IsInverse = inverse
                el.IncludeSubtypes = True
                el.TargetName = ua.QualifiedName(name, name_ns)
                bp.RelativePath.Elements.append(el)
            return bp

        h, agg, comp = ua.ObjectIds.HierarchicalReferences, ua.ObjectIds.Aggregates, ua.ObjectIds.HasComponent
        await c.uaclient.translate_browsepaths_to_nodeids([
            path(ua.NodeId(ua.ObjectIds.ObjectsFolder), [(h, False, idx, "Line3"), (h, False, idx, "Temperature")]),
            path(line.nodeid, [(agg, False, idx, TANK_NAME), (comp, True, idx, "Line3")]),
            path(ua.NodeId(ua.ObjectIds.ObjectsFolder), [(h, False, idx, "Line3"), (h, False, idx, "Missing")]),
        ])
        params = ua.ReadParameters()
        for nid in (temp.nodeid, ua.NodeId("NoSuchTag", idx)):
            rv = ua.ReadValueId()
            rv.NodeId = nid
            rv.AttributeId = ua.AttributeIds.Value
            params.NodesToRead.append(rv)
        await c.uaclient.read(params)

        class Handler:
            def datachange_notification(self, node, val, data):
                pass

            def event_notification(self, event):
                pass

        sub = await c.create_subscription(100, Handler())
        await sub.subscribe_data_change([temp, counter, running, text, arr, sensor, tank])
        await sub.subscribe_events()
        await asyncio.sleep(0.25)
        await temp.write_value(21.75)
        await counter.write_value(ua.Variant(7, ua.VariantType.UInt32))
        await running.write_value(True)
        await text.write_value(LONG_TEXT)
        await arr.write_value(ua.Variant(list(range(10, 22)), ua.VariantType.Int32))
        await sensor.write_value(ua.DataValue(ua.Variant(-1.0, ua.VariantType.Double),
                                              ua.StatusCode(ua.StatusCodes.BadSensorFailure)))
        gen.event.Message = ua.LocalizedText("Line3 high temperature")
        gen.event.Severity = 700
        await gen.trigger()
        await asyncio.sleep(0.35)
        await sub.delete()
        await c.close_session()
        try:
            await c.uaclient.read(params)
        except Exception:
            pass
        await c.disconnect_sessionless()
        await asyncio.sleep(0.05)
        out["subscription"] = rec.connections[-1]
    finally:
        await rec.stop()
        await server.stop()
    return out


def status_change_response(code: int = 0x800A0000, sub_id: int = 5, seq: int = 9, reqid: int = 41) -> bytes:
    """A PublishResponse carrying one StatusChangeNotification, encoded by asyncua."""
    from asyncua import ua
    from opcua_wire import symmetric

    resp = ua.PublishResponse()
    resp.ResponseHeader.RequestHandle = reqid
    resp.Parameters.SubscriptionId = sub_id
    resp.Parameters.NotificationMessage.SequenceNumber = seq
    note = ua.StatusChangeNotification()
    note.Status = ua.StatusCode(code)
    resp.Parameters.NotificationMessage.NotificationData = [note]
    return symmetric(resp, reqid=reqid, seq=seq)


def capture() -> dict[str, list[tuple[int, bytes]]]:
    return asyncio.run(_scenario())


def load() -> dict[str, list[tuple[int, bytes]]]:
    data = json.loads(VECTORS.read_text())
    return {name: [(side, bytes.fromhex(h)) for side, h in segs] for name, segs in data["connections"].items()}


if __name__ == "__main__":
    conns = capture()
    VECTORS.write_text(json.dumps({
        "source": "tests/parsers/opcua/capture_depth_vectors.py: asyncua client and server on 127.0.0.1 through "
                  "a recording proxy; segments are (side, hex) in arrival order, side 0 = client",
        "connections": {name: [[side, data.hex()] for side, data in segs] for name, segs in conns.items()},
    }, indent=1))
    for name, segs in conns.items():
        print(name, len(segs), "segments", sum(len(d) for _, d in segs), "bytes")
