"""OPC UA posture findings from parser events built by hand: the corner cases (a certificate not yet
valid, a SHA-1 signature — cryptography no longer signs with SHA-1, so no real peer of ours can show
one — a good certificate that must stay silent).  Every finding a real peer can show is also proven on
a capture: test_inventory_opcua_security.py (pcaps/opcua-security.pcap) and test_inventory_demo.py."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from otwatch.parsers.opcua.certs import summarize
from otwatch.parsers.opcua.events import (ApplicationDescription, EndpointDescription, OPCUAActivateSessionRequest,
                                          OPCUAGetEndpointsResponse, OPCUAOpenSecureChannel, UserTokenPolicy)
from otwatch.sensor import observations as O
from otwatch.sensor.inventory.posture import FINDINGS
from otwatch.sensor.inventory.store import open_inventory

SRV, CLI = "10.0.0.60", "10.0.0.22"
P = "http://opcfoundation.org/UA/SecurityPolicy#"
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


def cert(bits=2048, not_after=NOW + dt.timedelta(days=365), algo=hashes.SHA256(), self_signed=True):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srv")])
    issuer = name if self_signed else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
         .serial_number(7).not_valid_before(NOW - dt.timedelta(days=800)).not_valid_after(not_after)
         .sign(key, algo))
    return summarize(c.public_bytes(serialization.Encoding.DER))


def endpoint(policy, mode, tokens=(0,), certificate=None):
    return EndpointDescription(
        endpoint_url="opc.tcp://srv:4840", server=ApplicationDescription(application_uri="urn:srv", application_type=0,
                                                                        application_type_name="Server"),
        server_certificate=certificate, security_mode=mode,
        security_mode_name={1: "None", 2: "Sign", 3: "SignAndEncrypt"}[mode], security_policy_uri=P + policy,
        user_identity_tokens=tuple(UserTokenPolicy(token_type=t, token_type_name=["Anonymous", "UserName"][t])
                                   for t in tokens))


def run(events):
    inv = open_inventory(":memory:")
    inv.observe(O.HostSeen(1.0, 1, "02:00:00:00:00:3c", SRV, 0, "arp"))
    inv.observe(O.HostSeen(1.0, 1, "02:00:00:00:00:16", CLI, 0, "arp"))
    for i, (direction, ev) in enumerate(events):
        inv.observe(O.Message(NOW.timestamp(), 10 + i, "opcua", "opcua.x", "discovery", "", direction, 1, 1,
                              CLI, SRV, 4840, ev, (1,)))
    inv.flush()
    rows = list(inv.db["findings"].rows)
    inv.db.close()
    run.subjects = {(r["asset_id"][-2:], r["finding"], r["subject"]) for r in rows}
    return {(r["asset_id"][-2:], r["finding"]): r for r in rows}


def getendpoints(*eps):
    return OPCUAGetEndpointsResponse(side=1, endpoint_count=len(eps), endpoints=eps)


def test_deprecated_policies_offered_and_used():
    f = run([("response", getendpoints(endpoint("Basic128Rsa15", 3), endpoint("Basic256Sha256", 3))),
             ("request", OPCUAOpenSecureChannel(side=0, security_policy_uri=P + "Basic256", security_policy="Basic256",
                                                security_policy_deprecated=True))])
    assert ("3c", "opcua.deprecated_policy") in f
    subjects = {s for a, fid, s in run.subjects if fid == "opcua.deprecated_policy"}
    assert any("Basic128Rsa15" in s for s in subjects) and "Basic256" in subjects
    assert ("3c", "opcua.security_policy_none") not in f


def test_expired_short_key_sha1_self_signed_certificate():
    # cryptography no longer signs with SHA-1: the summary says what a SHA-1 certificate's would
    bad = dataclasses.replace(cert(bits=1024, not_after=NOW - dt.timedelta(days=1)),
                              signature_algorithm="sha1WithRSAEncryption")
    f = run([("response", getendpoints(endpoint("Basic256Sha256", 3, certificate=bad)))])
    for fid in ("opcua.certificate_expired", "opcua.certificate_weak_key", "opcua.certificate_weak_signature",
                "opcua.certificate_self_signed"):
        assert ("3c", fid) in f, fid
    assert "1024" in f[("3c", "opcua.certificate_weak_key")]["detail"]
    assert '"frame": 10' in f[("3c", "opcua.certificate_expired")]["evidence"]


def test_good_certificate_gives_no_certificate_findings():
    good = cert(self_signed=False)
    f = run([("response", getendpoints(endpoint("Basic256Sha256", 3, tokens=(1,), certificate=good)))])
    assert not [k for k in f if k[1].startswith("opcua.certificate")]
    assert not f


def test_none_anonymous_and_cleartext_username():
    f = run([("response", getendpoints(endpoint("None", 1, tokens=(0, 1)))),
             ("request", OPCUAOpenSecureChannel(side=0, security_policy_uri=P + "None", security_policy="None",
                                                security_mode=1, security_mode_name="None")),
             ("request", OPCUAActivateSessionRequest(side=0, identity_token="UserNameIdentityToken",
                                                     user_token_type=1, user_token_type_name="UserName",
                                                     user_name="op", password_present=True,
                                                     password_encrypted=False))])
    assert {("3c", "opcua.security_policy_none"), ("3c", "opcua.anonymous_token"),
            ("3c", "opcua.cleartext_username_offered"), ("3c", "opcua.cleartext_username"),
            ("16", "opcua.cleartext_username")} <= set(f)


@pytest.mark.parametrize("fid", sorted(FINDINGS))
def test_every_finding_is_documented(fid):
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "inventory.md").read_text()
    assert f"`{fid}`" in doc


def test_docs_cover_tables_columns_events_commands():
    import pathlib

    from otwatch.sensor.inventory.cli import inventory
    from otwatch.sensor.inventory.model import EVENT_TYPES, DEVICE_CLASSES, ROLES
    from otwatch.sensor.inventory.store import connect

    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "inventory.md").read_text()
    db = connect(":memory:")
    for t in db.table_names():
        if t.startswith("_"):
            continue
        assert f"`{t}`" in doc, t
        for c in db[t].columns_dict:
            assert f"`{c}`" in doc or f"`{c}," in doc or f" {c}`" in doc or f", {c}" in doc, (t, c)
    for name in list(EVENT_TYPES) + list(DEVICE_CLASSES) + list(ROLES):
        assert f"`{name}`" in doc, name
    for cmd in inventory.commands:
        assert f"otwatch inventory {cmd}" in doc, cmd
        assert inventory.commands[cmd].help, cmd
