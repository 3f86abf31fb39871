#!/usr/bin/env python3
"""The non-otwatch contenders, each a plain loop over one capture (run by bench/run.py).

    python bench/baselines.py dpkt  FILE      # pcap.Reader + Ethernet + IP + TCP, count ports
    python bench/baselines.py scapy FILE      # PcapReader with scapy.contrib.modbus and .mqtt loaded

Each prints one JSON line: packets seen and what it extracted, so run.py can check
that the loop really did the work.  Neither reassembles TCP (that is the point:
these are the "decode one packet at a time" baselines).
"""
from __future__ import annotations

import json
import sys


def run_dpkt(path: str) -> dict:
    import dpkt

    n = tcp = udp = 0
    ports: dict[int, int] = {}
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            n += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP):
                tcp += 1
                p = l4.dport if l4.dport < l4.sport else l4.sport
                ports[p] = ports.get(p, 0) + 1
            elif isinstance(l4, dpkt.udp.UDP):
                udp += 1
    top = sorted(ports.items(), key=lambda kv: -kv[1])[:6]
    return {"packets": n, "tcp": tcp, "udp": udp, "top_server_ports": top}


def run_scapy(path: str) -> dict:
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader
    from scapy.contrib import modbus, mqtt   # binds 502 and 1883

    n = mb = mq = ua = 0
    funcs: dict[int, int] = {}
    topics: set = set()
    for pkt in PcapReader(path):
        n += 1
        if IP not in pkt or TCP not in pkt:
            continue
        ip = pkt[IP]
        t = pkt[TCP]
        _ = (ip.src, ip.dst, t.sport, t.dport)
        if modbus.ModbusADURequest in pkt:
            a = pkt[modbus.ModbusADURequest]
            mb += 1
            fc = a.payload.funcCode if hasattr(a.payload, "funcCode") else -1
            funcs[fc] = funcs.get(fc, 0) + 1
            _ = (a.transId, getattr(a.payload, "startAddr", None))
        elif modbus.ModbusADUResponse in pkt:
            a = pkt[modbus.ModbusADUResponse]
            mb += 1
            _ = (a.transId, getattr(a.payload, "funcCode", None))
        elif mqtt.MQTT in pkt:
            m = pkt[mqtt.MQTT]
            mq += 1
            if mqtt.MQTTPublish in m:
                topics.add(m[mqtt.MQTTPublish].topic)
        elif t.dport == 4840 or t.sport == 4840:
            ua += 1     # scapy has no OPC UA layer; the segment stays Raw
    return {"packets": n, "modbus": mb, "mqtt": mq, "opcua_raw": ua, "modbus_fc": funcs, "topics": len(topics)}


if __name__ == "__main__":
    tool, path = sys.argv[1], sys.argv[2]
    out = {"dpkt": run_dpkt, "scapy": run_scapy}[tool](path)
    print(json.dumps(out, default=str))
