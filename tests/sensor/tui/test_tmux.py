"""``otwatch tui`` in a real terminal: tmux runs it on the demo capture, send-keys drives it, capture-pane reads it.

Catches what the headless driver cannot: the real TERM, the real output path,
start-up and exit.  The screen is polled for the expected text (bounded), keys
are sent one at a time.  Runs under TERM=xterm-256color and TERM=linux (16 colours).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (tests/run.sh installs it)")

POLL_LIMIT_S = 60.0
"""Give up waiting for a screen after this long (a hang fails the test, it does not block the suite)."""


class Tmux:
    def __init__(self, name: str):
        self.sock = name

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str) -> str:
        end = time.monotonic() + POLL_LIMIT_S
        while time.monotonic() < end:
            s = self.screen()
            if text in s:
                return s
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", "t", k)
            time.sleep(0.15)


@pytest.mark.parametrize("term", ["xterm-256color", "linux"])
def test_tui_in_tmux_on_the_demo_capture(tmp_path, term):
    t = Tmux(f"otwt-{os.getpid()}-{term}")
    env = f"TERM={term} OTWATCH_DB={tmp_path / 'db'}"
    cmd = (f"cd {ROOT} && {env} {sys.executable} -m otwatch.sensor tui pcaps/demo-plant.pcap --speed max "
           f"--policy rules/demo-plant.yaml; echo EXITED=$?; sleep 30")
    t.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", cmd)
    try:
        t.run("set-option", "-g", "status", "off")
        s = t.wait_for("replay: done")
        assert "1 Overview" in s and "packets" in s
        t.keys("2")
        s = t.wait_for("Assets 12/12")
        assert "plc1" in s and "10.10.0.50" in s
        t.keys("/")
        t.wait_for("filter: words")
        t.keys(*"class:plc")
        t.wait_for("class:plc")
        t.keys("Enter")
        t.wait_for("Assets 2/12")
        t.keys("4")
        s = t.wait_for("HIGH")
        assert "Alerts 30/30" in s and "CRIT" in s     # the alerts package's alerts, as otwatch analyze raises them
        t.keys("5")
        t.wait_for("conduits")
        raw = t.run("capture-pane", "-p", "-e", "-t", "t")
        assert "\x1b]" not in raw          # no OSC (title, clipboard) reached the screen
        t.keys("q")
        t.wait_for("EXITED=0")
    finally:
        subprocess.run(["tmux", "-L", t.sock, "kill-server"], capture_output=True)


@pytest.mark.netns
def test_tui_live_on_an_interface_in_tmux(tmp_path):
    """``otwatch tui --interface`` in a network namespace, the demo plant replayed into its veth with tcpreplay."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.veth import VethPair, available

    why = available() or (None if shutil.which("tcpreplay") else "tcpreplay missing (tests/run.sh installs it)")
    if why:
        pytest.skip(why)
    v = VethPair(f"u{os.getpid() % 10000}")
    t = Tmux(f"otwt-live-{os.getpid()}")
    try:
        cmd = (f"cd {ROOT} && ip netns exec {v.sensor_ns} env TERM=xterm-256color OTWATCH_DB={tmp_path / 'db'} "
               f"{sys.executable} -m otwatch.sensor tui --interface {v.sensor_if} --policy rules/demo-plant.yaml; "
               f"echo EXITED=$?; sleep 30")
        t.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", cmd)
        t.run("set-option", "-g", "status", "off")
        t.wait_for("1 Overview")
        t.keys("2")
        t.wait_for("Assets 0/0")
        v.ns(v.replay_ns, "tcpreplay", "-q", "-i", v.replay_if, "--pps", "5000", str(ROOT / "pcaps" / "demo-plant.pcap"))
        s = t.wait_for("Assets 12/12")
        assert "live" in s and "plc1" in s
        t.keys("4")
        t.wait_for("HIGH")
        t.keys("q")
        t.wait_for("EXITED=0")
    finally:
        subprocess.run(["tmux", "-L", t.sock, "kill-server"], capture_output=True)
        v.close()
