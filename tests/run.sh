#!/usr/bin/env bash
# Install everything the test suite needs into .venv and run it.
#
#   bash tests/run.sh            # what the README says and what .ci/run calls
#   bash tests/run.sh -k modbus  # extra arguments go to pytest
#
# System packages (Debian/Ubuntu, installed when running as root and missing):
#   tshark     the Wireshark oracle our decodes are checked against
#   tcpdump    captures the demo plant built in network namespaces
#   mosquitto  the real MQTT broker of the demo plant
#   graphviz   `otwatch inventory graph --format svg`
#   iproute2   network namespaces and veth pairs for the plant
#   util-linux `unshare`: the read-only-media test mounts a folder read-only in its own mount namespace
#   libpcap-dev the live capture module (ext/capture.pyx) links libpcap
#   tcpreplay  replays captures into a veth for the live sensor tests
#   rsyslog, rsyslog-openssl  the real syslog collector the delivery tests send to (UDP, TCP, TLS)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tshark >/dev/null || need+=(tshark)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v dot >/dev/null || need+=(graphviz)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
[ -f /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
command -v tcpreplay >/dev/null || need+=(tcpreplay)
command -v rsyslogd >/dev/null || [ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1 || need+=(rsyslog-openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "tests/run.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "tests/run.sh: missing ${need[*]}; the tests that need them will be skipped" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The compiled kernels must build: a silent fall-back to the pure path would
# make half of the equivalence tests meaningless.
OTWATCH_REQUIRE_EXTENSIONS=1 .venv/bin/python -m pip install -q '.[test]'
OTWATCH_REQUIRE_EXTENSIONS=1 .venv/bin/python -m pytest -q "$@"
