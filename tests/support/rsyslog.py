"""A real rsyslog on loopback for the delivery tests.

``Collector(tmpdir, kind)`` writes a config with one input (imudp, imtcp, or
imtcp over TLS with the ossl driver), starts ``rsyslogd -n`` on a free
127.0.0.1 port and writes every message it receives, exactly as received
(``%rawmsg%``, one per line), to ``out.log``.  ``stop()``/``start()`` let a test
take the collector down and bring it back on the same port.
"""
from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import time

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_ca(dirpath: str) -> dict:
    """A test CA and a server certificate for 127.0.0.1/localhost, and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name("otwatch test CA")).issuer_name(name("otwatch test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out = {}

    def leaf(cn, san, usage):
        k = key()
        c = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.SubjectAlternativeName(san), critical=False)
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
             .sign(ca_key, hashes.SHA256()))
        return k, c

    from cryptography.x509.oid import ExtendedKeyUsageOID

    srv = leaf("localhost", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
               ExtendedKeyUsageOID.SERVER_AUTH)
    cli = leaf("otwatch-sensor", [x509.DNSName("otwatch-sensor")], ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    for label, obj in (("ca", ca),):
        p = os.path.join(dirpath, f"{label}.pem")
        open(p, "wb").write(obj.public_bytes(pem))
        out[label] = p
    for label, (k, c) in (("server", srv), ("client", cli)):
        cp, kp = os.path.join(dirpath, f"{label}.pem"), os.path.join(dirpath, f"{label}.key")
        open(cp, "wb").write(c.public_bytes(pem))
        open(kp, "wb").write(k.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        out[label], out[label + "_key"] = cp, kp
    return out


class Collector:
    def __init__(self, workdir: str, kind: str = "tcp", client_auth: bool = False, netns: str | None = None):
        assert kind in ("udp", "tcp", "tls")
        self.netns = netns          # run inside this network namespace (its loopback must be up)
        self.dir = workdir
        self.kind = kind
        self.port = free_port(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        self.out = os.path.join(workdir, "out.log")
        self.proc: subprocess.Popen | None = None
        self.certs = make_ca(workdir) if kind == "tls" else {}
        lines = [f'global(workDirectory="{workdir}" maxMessageSize="256k"']
        if kind == "tls":
            c = self.certs
            lines[0] += (f' DefaultNetstreamDriverCAFile="{c["ca"]}" DefaultNetstreamDriverCertFile="{c["server"]}"'
                         f' DefaultNetstreamDriverKeyFile="{c["server_key"]}"')
        lines[0] += ")"
        if kind == "udp":
            lines += ['module(load="imudp")', f'input(type="imudp" address="127.0.0.1" port="{self.port}")']
        elif kind == "tcp":
            lines += ['module(load="imtcp")', f'input(type="imtcp" address="127.0.0.1" port="{self.port}")']
        else:
            auth = "x509/certvalid" if client_auth else "anon"
            lines += [f'module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="{auth}")',
                      f'input(type="imtcp" address="127.0.0.1" port="{self.port}")']
        lines += ['template(name="raw" type="string" string="%rawmsg%\\n")',
                  f'*.* action(type="omfile" file="{self.out}" template="raw" flushOnTXEnd="on" asyncWriting="off")']
        self.conf = os.path.join(workdir, "rsyslog.conf")
        open(self.conf, "w").write("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        pre = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen([*pre, RSYSLOGD, "-n", "-f", self.conf, "-i", os.path.join(self.dir, "pid")],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "rsyslogd.err"), "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rsyslogd exited: " + open(os.path.join(self.dir, "rsyslogd.err")).read())
            if self._listening():
                return
            time.sleep(0.05)
        raise RuntimeError("rsyslogd did not start listening")

    def _listening(self) -> bool:
        pre = ["ip", "netns", "exec", self.netns] if self.netns else []
        flag = "-Hlun" if self.kind == "udp" else "-Hltn"
        out = subprocess.run([*pre, "ss", flag, f"sport = :{self.port}"], capture_output=True, text=True).stdout
        return bool(out.strip())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def lines(self) -> list[str]:
        if not os.path.exists(self.out):
            return []
        with open(self.out, encoding="utf-8", errors="strict") as fh:
            return [ln for ln in fh.read().split("\n") if ln]

    def wait_for(self, pred, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.lines()
            if pred(got) or time.monotonic() > deadline:
                return got
            time.sleep(0.1)
