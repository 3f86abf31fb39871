"""MQTT and OPC UA detections not in the attack capture, on events built with the parsers' classes."""
from otwatch.parsers.mqtt.events import MQTTConnect, MQTTSubscribe, MQTTSubscription
from otwatch.parsers.opcua.certs import CertificateSummary
from otwatch.parsers.opcua.events import (CallMethod, OPCUAActivateSessionRequest, OPCUACallRequest,
                                          OPCUAOpenSecureChannel)
from otwatch.sensor import observations as O

from .helpers import detect, learn

C, B, U = "10.0.0.5", "10.0.0.50", "10.0.0.60"


def mqtt(ts, frame, ev, kind):
    return O.Message(ts, frame, "mqtt", kind, "x", "", "request", 1, 1, C, B, 1883, ev, ())


def opcua(ts, frame, ev, kind, direction="request", fid=1):
    return O.Message(ts, frame, "opcua", kind, "call" if "call" in kind else "session", "", direction, 2, fid,
                     C, U, 4840, ev, ())


def connect(user=None, password=False, level=4):
    return MQTTConnect(side=0, protocol_level=level, client_id="c1", username=user, password_present=password)


def subscribe(*filters):
    return MQTTSubscribe(side=0, subscriptions=tuple(MQTTSubscription(filter=f, qos=1) for f in filters))


def test_mqtt_session_change_and_new_filter():
    b = learn([mqtt(1, 1, connect("u", True), "mqtt.connect"), mqtt(2, 2, subscribe("a/+"), "mqtt.subscribe")])
    assert detect(b, [mqtt(5, 5, connect("u", True), "mqtt.connect")]) == []
    f = detect(b, [mqtt(5, 5, connect(), "mqtt.connect"), mqtt(6, 6, subscribe("a/+", "b/#"), "mqtt.subscribe")])
    got = {(x.rule, x.details.get("field"), x.details.get("filter")) for x in f}
    assert ("baseline.mqtt_session_change", "credentials", None) in got
    assert ("baseline.new_topic_subscribed", None, "b/#") in got
    assert not any(x.details.get("filter") == "a/+" for x in f)
    # the password is never in a finding: only whether one was sent
    assert all("password" not in repr(x.details).replace("username+password", "") for x in f)


def test_opcua_method_token_certificate():
    cert_a = CertificateSummary(size=900, thumbprint_sha1="aa" * 20, subject="CN=scada")
    cert_b = CertificateSummary(size=900, thumbprint_sha1="bb" * 20, subject="CN=scada")
    opn = OPCUAOpenSecureChannel(side=0, security_policy="Basic256Sha256", sender_certificate=cert_a)
    act = OPCUAActivateSessionRequest(side=0, service="ActivateSessionRequest", user_token_type_name="Anonymous")
    call = OPCUACallRequest(side=0, service="CallRequest",
                            methods=(CallMethod(object_id="ns=2;i=1", method_id="ns=2;i=7", argument_count=0),))
    b = learn([opcua(1, 1, opn, "opcua.open_secure_channel"), opcua(1.1, 2, act, "opcua.activate_session"),
               opcua(1.2, 3, call, "opcua.call")])
    assert b.assets[C].certificates == {"aa" * 20}
    pair = next(iter(p for k, p in b.pairs.items() if k.protocol == "opcua"))
    assert pair.sets["session_security"] == {"Sign/Basic256Sha256"}
    call2 = OPCUACallRequest(side=0, service="CallRequest",
                             methods=(CallMethod(object_id="ns=2;i=1", method_id="ns=2;i=9", argument_count=0),))
    act2 = OPCUAActivateSessionRequest(side=0, service="ActivateSessionRequest", user_token_type_name="UserName")
    opn2 = OPCUAOpenSecureChannel(side=0, security_policy="Basic256Sha256", sender_certificate=cert_b)
    f = detect(b, [opcua(5, 5, opn2, "opcua.open_secure_channel", fid=3), opcua(5.1, 6, act2, "opcua.activate_session",
                                                                                fid=3),
                   opcua(5.2, 7, call2, "opcua.call", fid=3)])
    assert {x.rule for x in f} == {"baseline.new_certificate", "baseline.new_user_token", "baseline.new_method_called"}
    # a None channel carrying a session where Sign was learned: a downgrade
    none = OPCUAOpenSecureChannel(side=0, security_policy="None", security_mode_name="None")
    f = detect(b, [opcua(9, 9, none, "opcua.open_secure_channel", fid=4), opcua(9.1, 10, act, "opcua.activate_session",
                                                                                fid=4)])
    assert [x.rule for x in f] == ["baseline.security_downgrade"]
