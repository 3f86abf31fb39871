"""SIGHUP: a bad policy keeps the running one and says why (file:line:column); a good one is taken."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from support.veth import VethPair, available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
POLICY = os.path.join(ROOT, "rules", "demo-plant.yaml")
OTWATCH = os.path.join(os.path.dirname(sys.executable), "otwatch")

pytestmark = [pytest.mark.netns, pytest.mark.skipif(available() is not None, reason=available() or "")]


def _wait_log(path: str, text: str, proc, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = open(path).read()
        if text in log:
            return log
        assert proc.poll() is None and time.monotonic() < deadline, log
        time.sleep(0.1)


def test_sighup_keeps_the_old_policy_on_errors_and_takes_a_good_one():
    work = tempfile.mkdtemp(prefix="otwatch-hup-")
    os.chmod(work, 0o777)
    v = VethPair()
    try:
        pol = os.path.join(work, "policy.yaml")
        shutil.copy(POLICY, pol)
        os.chmod(pol, 0o644)
        cfg = os.path.join(work, "sensor.yaml")
        with open(cfg, "w") as fh:
            fh.write(f"interface: {v.sensor_if}\npolicy: {pol}\nheartbeat: 30\n")
        os.chmod(cfg, 0o644)
        err_path = os.path.join(work, "err")
        with open(err_path, "w") as err:
            proc = v.popen(v.sensor_ns, [OTWATCH, "sensor", "--config", cfg, "--db", os.path.join(work, "s.db"),
                                         "--user", "nobody"], stdout=subprocess.DEVNULL, stderr=err)
            _wait_log(err_path, "privileges:", proc)
            with open(pol, "a") as fh:
                fh.write("\nbogus_key: 1\n")
            proc.send_signal(signal.SIGHUP)
            log = _wait_log(err_path, "keeping the running one", proc)
            lines = open(pol).read().count("\n")
            assert f"{pol}:{lines}:1:" in log, log
            shutil.copy(POLICY, pol)
            proc.send_signal(signal.SIGHUP)
            _wait_log(err_path, "reload: done", proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, open(err_path).read()
        assert "Traceback" not in open(err_path).read()
    finally:
        v.close()
        shutil.rmtree(work, ignore_errors=True)
