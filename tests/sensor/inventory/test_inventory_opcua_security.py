"""OPC UA posture findings proven on a real capture: pcaps/opcua-security.pcap through the pipeline and
the inventory (made by pcaps/make_opcua_security.py from asyncua peers).

Server A ("legacy", 10.30.0.10) offers None, Basic128Rsa15 and Basic256, anonymous and clear-text user
name tokens, with a self-signed, expired RSA 1024 certificate; server B ("modern", 10.30.0.20) offers
Basic256Sha256 / Aes128_Sha256_RsaOaep with user names only and a CA-issued RSA 2048 certificate.  Every
finding must carry the frame and packet time of the message that proves it, and B must raise none.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

from otwatch.parsers.opcua import events as ev
from otwatch.parsers.opcua.decode import to_dict
from otwatch.sensor import observations as O
from otwatch.sensor.inventory.posture import FINDINGS
from otwatch.sensor.inventory.store import load_rows, open_inventory
from otwatch.sensor.inventory.summary import by_asset
from otwatch.sensor.pipeline import Pipeline

ROOT = pathlib.Path(__file__).resolve().parents[3]
PCAP = ROOT / "pcaps" / "opcua-security.pcap"
pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="pcaps/opcua-security.pcap missing")

LEGACY, MODERN, HMI, ENG = "10.30.0.10", "10.30.0.20", "10.30.0.31", "10.30.0.41"
MACS = {LEGACY: "02:00:0a:1e:00:0a", MODERN: "02:00:0a:1e:00:14", HMI: "02:00:0a:1e:00:1f",
        ENG: "02:00:0a:1e:00:29"}
LEGACY_URL = "opc.tcp://10.30.0.10:4840/legacy"
LEGACY_SUBJECT = "O=otwatch legacy plant,CN=legacy.plant.local"
PASSWORDS = ("legacy-Op-2016", "cell-Eng-2025!")     # pcaps/make_opcua_security.py: on the wire, never stored
P = "http://opcfoundation.org/UA/SecurityPolicy#"


class _Messages:
    """Every Message the pipeline gives the inventory, by frame (the evidence must point at one)."""

    def __init__(self):
        self.by_frame: dict[int, list[O.Message]] = {}

    def observe(self, obs):
        if type(obs) is O.Message:
            self.by_frame.setdefault(obs.frame, []).append(obs)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("inv") / "sec.db")
    inv = open_inventory(path)
    msgs = _Messages()
    pipe = Pipeline([msgs, inv])
    pipe.run_file(str(PCAP))
    pipe.finish()
    inv.close()
    inv2 = open_inventory(path)
    snap = load_rows(inv2.db)
    dump = "\n".join(line for line in inv2.db.iterdump())
    inv2.db.close()
    kids = by_asset(snap)
    assets = {a["ip"]: dict(a, **kids[a["asset_id"]]) for a in snap["assets"]}
    return assets, snap, msgs.by_frame, dump


def findings(asset) -> dict[tuple[str, str], dict]:
    return {(r["finding"], r["subject"]): r for r in asset["findings"]}


def ident(asset) -> dict[str, str]:
    return {r["attribute"]: r["value"] for r in asset["identity"] if r["protocol"] == "opcua"}


def evidence_message(run, row) -> O.Message:
    """The message a finding's evidence names: same frame, same packet time, same kind and endpoints."""
    _, _, by_frame, _ = run
    evd = json.loads(row["evidence"]) if isinstance(row["evidence"], str) else row["evidence"]
    assert row["frame"] == evd["frame"] > 0 and row["first_seen"] == evd["ts"]
    hits = [m for m in by_frame.get(evd["frame"], ()) if m.kind == evd["message"]]
    assert hits, (row["finding"], evd)
    m = hits[0]
    assert (m.ts, m.client, m.server, m.server_port) == (evd["ts"], evd["client"], evd["server"], evd["port"])
    return m


def test_four_hosts_no_other_address(run):
    assets, snap, _, _ = run
    assert set(assets) == {LEGACY, MODERN, HMI, ENG}
    for ip, a in assets.items():
        assert a["asset_id"] == "mac:" + MACS[ip]
    assert {ip: {r["role"] for r in a["roles"]} for ip, a in assets.items()} == {
        LEGACY: {"opcua.server"}, MODERN: {"opcua.server"}, HMI: {"opcua.client"}, ENG: {"opcua.client"}}
    assert {s["port"] for s in assets[LEGACY]["services"]} == {4840} == {s["port"] for s in assets[MODERN]["services"]}


def test_legacy_server_identity(run):
    assets, _, _, _ = run
    i = ident(assets[LEGACY])
    assert i["ApplicationUri"] == "urn:otwatch:legacy:line2-controller"
    assert i["ProductUri"] == "urn:otwatch:legacy:controller-fw"
    assert i["ApplicationName"] == "Legacy Line 2 Controller"
    assert i["ApplicationType"] == "Server"
    assert i["CertificateSubject"] == LEGACY_SUBJECT == i["CertificateIssuer"]
    assert (i["CertificateNotBefore"], i["CertificateNotAfter"]) == ("2016-01-01T00:00:00Z", "2021-01-01T00:00:00Z")
    assert i["CertificateKey"] == "RSA 1024" and i["CertificateSelfSigned"] == "yes"
    assert i["CertificateSignature"] == "sha256WithRSAEncryption"
    assert i["SecurityPolicies"] == "Basic128Rsa15,Basic256,None"
    assert i["SecurityModes"] == "None,Sign,SignAndEncrypt"
    assert i["UserTokenTypes"] == "Anonymous,UserName"
    assert i["EndpointUrl(asked)"] == LEGACY_URL
    endpoints = sorted(v for k, v in i.items() if k.startswith("Endpoint["))
    assert endpoints == sorted(f"{LEGACY_URL} {p} tokens=Anonymous,UserName" for p in (
        "None/None", "Basic128Rsa15/Sign", "Basic128Rsa15/SignAndEncrypt", "Basic256/Sign", "Basic256/SignAndEncrypt"))


def test_modern_server_identity(run):
    assets, _, _, _ = run
    i = ident(assets[MODERN])
    assert i["ApplicationUri"] == "urn:otwatch:modern:cell-server"
    assert i["ProductUri"] == "urn:otwatch:modern:cell-server-fw"
    assert i["ApplicationName"] == "Modern Cell Server" and i["ApplicationType"] == "Server"
    assert i["CertificateSubject"] == "O=otwatch modern plant,CN=modern.plant.local"
    assert i["CertificateIssuer"] == "O=otwatch test PKI,CN=otwatch throwaway CA"
    assert i["CertificateKey"] == "RSA 2048" and i["CertificateSelfSigned"] == "no"
    assert i["CertificateNotAfter"] == "2035-01-01T00:00:00Z"
    assert i["SecurityPolicies"] == "Aes128_Sha256_RsaOaep,Basic256Sha256"
    assert i["SecurityModes"] == "Sign,SignAndEncrypt" and i["UserTokenTypes"] == "UserName"
    assert sum(k.startswith("Endpoint[") for k in i) == 3


def test_client_identities(run):
    assets, _, _, _ = run
    e = ident(assets[ENG])
    assert e["client[urn:otwatch:sec:engineering].ApplicationName"] == "otwatch sec engineering"
    assert e["client[urn:otwatch:sec:engineering].ApplicationType"] == "Client"
    cert = {k.split(".", 1)[1]: v for k, v in e.items() if k.startswith("client-cert[")}
    assert cert["CertificateSubject"] == "O=otwatch modern plant,CN=eng.plant.local"
    assert cert["CertificateSelfSigned"] == "no" and cert["CertificateKey"] == "RSA 2048"
    h = ident(assets[HMI])
    assert h["client[urn:otwatch:sec:hmi].ApplicationUri"] == "urn:otwatch:sec:hmi"


# -------------------------------------------------------------------------------------------- findings
LEGACY_EXPECTED = {
    # (finding, subject): (message kind of the evidence, who sent it)
    ("opcua.security_policy_none", LEGACY_URL): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.deprecated_policy", f"{LEGACY_URL} Basic128Rsa15"): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.deprecated_policy", f"{LEGACY_URL} Basic256"): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.deprecated_policy", "Basic128Rsa15"): ("opcua.open_secure_channel", ENG),
    ("opcua.deprecated_policy", "Basic256"): ("opcua.open_secure_channel", ENG),
    ("opcua.anonymous_token", LEGACY_URL): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.anonymous_token", "session"): ("opcua.activate_session_request", HMI),
    ("opcua.cleartext_username_offered", LEGACY_URL): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.cleartext_username", "operator"): ("opcua.activate_session_request", HMI),
    ("opcua.certificate_expired", LEGACY_SUBJECT): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.certificate_self_signed", LEGACY_SUBJECT): ("opcua.get_endpoints_response", LEGACY),
    ("opcua.certificate_weak_key", LEGACY_SUBJECT): ("opcua.get_endpoints_response", LEGACY),
}


def test_legacy_findings_exactly_with_evidence(run):
    assets, _, by_frame, _ = run
    f = findings(assets[LEGACY])
    assert set(f) == set(LEGACY_EXPECTED)
    for key, (kind, sender) in LEGACY_EXPECTED.items():
        row = f[key]
        assert (row["severity"], row["title"]) == FINDINGS[key[0]], key
        m = evidence_message(run, row)
        assert m.kind == kind, key
        assert (m.client if m.direction == "request" else m.server) == sender, key
        assert m.server == LEGACY, key
        assert row["ip"] == LEGACY and row["count"] >= 1
    # the offered-policy findings come from the first GetEndpoints answer, before anyone used them
    ge = f[("opcua.security_policy_none", LEGACY_URL)]["frame"]
    assert f[("opcua.deprecated_policy", "Basic128Rsa15")]["frame"] > ge
    assert f[("opcua.deprecated_policy", "Basic256")]["frame"] > f[("opcua.deprecated_policy", "Basic128Rsa15")]["frame"]


def test_evidence_details(run):
    assets, _, by_frame, _ = run
    f = findings(assets[LEGACY])
    exp = f[("opcua.certificate_expired", LEGACY_SUBJECT)]
    assert exp["detail"].startswith("expired 2021-01-01T00:00:00Z, packet time 20")
    assert f[("opcua.certificate_weak_key", LEGACY_SUBJECT)]["detail"] == "RSA 1024 bits"
    assert "issuer = subject" in f[("opcua.certificate_self_signed", LEGACY_SUBJECT)]["detail"]
    assert f[("opcua.security_policy_none", LEGACY_URL)]["detail"] == "offers None/None"
    assert "without token encryption" in f[("opcua.cleartext_username_offered", LEGACY_URL)]["detail"]
    clear = f[("opcua.cleartext_username", "operator")]
    assert clear["detail"] == "user 'operator': password sent unencrypted on a None/None channel"
    # the evidence message really is that ActivateSession: a user name token with a clear password
    (act,) = [m for m in by_frame[clear["frame"]] if m.kind == "opcua.activate_session_request"]
    assert act.event.user_name == "operator" and act.event.password_present and not act.event.password_encrypted
    opn = evidence_message(run, f[("opcua.deprecated_policy", "Basic256")])
    assert isinstance(opn.event, ev.OPCUAOpenSecureChannel) and opn.event.security_policy_uri == P + "Basic256"
    assert opn.event.security_policy_deprecated and opn.event.encrypted          # OPN body is RSA-encrypted
    assert opn.event.sender_certificate.subject == "O=otwatch modern plant,CN=eng.plant.local"
    assert opn.event.receiver_thumbprint == ident(assets[LEGACY])["CertificateThumbprint"]
    anon = evidence_message(run, f[("opcua.anonymous_token", "session")])
    assert anon.event.user_token_type_name == "Anonymous"


def test_modern_server_raises_no_finding(run):
    assets, _, _, _ = run
    assert assets[MODERN]["findings"] == []


def test_client_findings(run):
    assets, _, _, _ = run
    h = findings(assets[HMI])
    assert set(h) == {("opcua.cleartext_username", "operator")}
    assert h[("opcua.cleartext_username", "operator")]["frame"] == \
        findings(assets[LEGACY])[("opcua.cleartext_username", "operator")]["frame"]
    assert assets[ENG]["findings"] == []      # CA-issued RSA 2048 certificate; passwords encrypted


def test_finding_events_point_at_the_same_frames(run):
    assets, snap, _, _ = run
    news = [e for e in snap["asset_events"] if e["type"] == "finding.new"]
    legacy = assets[LEGACY]
    got = {(e["detail"]["finding"], e["detail"]["subject"]): e["frame"] for e in news
           if e["asset_id"] == legacy["asset_id"]}
    assert got == {k: r["frame"] for k, r in findings(legacy).items()}


def test_passwords_never_stored(run):
    _, _, _, dump = run
    for pw in PASSWORDS:
        assert pw not in dump


def test_sign_only_channels_stay_readable(run):
    """Basic256 Sign (legacy) and Aes128_Sha256_RsaOaep Sign (modern): after the encrypted OPN, every
    message is plaintext plus a signature: sessions, reads, the user name (not the RSA-OAEP password)."""
    _, _, by_frame, _ = run
    msgs = [m for ms in by_frame.values() for m in ms]
    eng_legacy = [m for m in msgs if m.client == ENG and m.server == LEGACY]
    eng_modern = [m for m in msgs if m.client == ENG and m.server == MODERN]
    for group in (eng_legacy, eng_modern):
        kinds = {m.kind for m in group}
        assert {"opcua.create_session_request", "opcua.activate_session_request", "opcua.read_response",
                "opcua.encrypted_message"} <= kinds
    act = [m.event for m in eng_modern if m.kind == "opcua.activate_session_request"]
    assert len(act) == 1           # the Sign channel; the SignAndEncrypt session's is encrypted
    assert act[0].user_name == "engineer" and act[0].password_present and act[0].password_encrypted
    assert act[0].encryption_algorithm == "http://www.w3.org/2001/04/xmlenc#rsa-oaep"   # what asyncua uses
    for m in msgs:
        text = json.dumps(to_dict(m.event), default=str)
        for pw in PASSWORDS:
            assert pw not in text


def test_decoded_publish_and_translate_in_the_capture(run):
    _, _, by_frame, _ = run
    msgs = [m for ms in by_frame.values() for m in ms]
    tr = next(m.event for m in msgs if isinstance(m.event, ev.OPCUATranslateBrowsePathsToNodeIdsResponse)
              and m.client == HMI)
    assert [r.status_name for r in tr.results] == ["Good", "BadNoMatch"]
    req = next(m.event for m in msgs if isinstance(m.event, ev.OPCUATranslateBrowsePathsToNodeIdsRequest))
    assert [p.path for p in req.browse_paths] == ["/2:Line2/2:Temperature", "/2:Line2/2:NoSuchTag"]
    pub = next(m.event for m in msgs if isinstance(m.event, ev.OPCUAPublishResponse) and m.event.data_changes)
    text = next(d for d in pub.data_changes if d.value_type == "String")
    assert text.value.startswith('"batch B-') and "\\x1b[31m" in text.value and "\x1b" not in text.value
    assert "…[+" in text.value                             # bounded


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_evidence_frames_agree_with_tshark(run):
    """Wireshark, independently: the frame of each finding's evidence holds that service from that host."""
    assets, _, _, _ = run
    out = subprocess.run(["tshark", "-r", str(PCAP), "-Y", "opcua", "-T", "fields", "-E", "occurrence=f",
                          "-e", "frame.number", "-e", "ip.src", "-e", "opcua.transport.type",
                          "-e", "opcua.servicenodeid.numeric", "-e", "opcua.security.spu"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    frames = {int(c[0]): c[1:] for c in (line.split("\t") for line in out.splitlines())}
    f = findings(assets[LEGACY])
    service = {"opcua.get_endpoints_response": "431", "opcua.activate_session_request": "467"}
    for key, (kind, sender) in LEGACY_EXPECTED.items():
        src, mtype, node, spu = frames[f[key]["frame"]]
        assert src == sender, key
        if kind == "opcua.open_secure_channel":
            assert mtype == "OPN" and spu == P + key[1], key
        else:
            assert mtype == "MSG" and node == service[kind], key
