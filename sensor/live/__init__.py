"""The live sensor: capture on an interface, the same engine and consumers as ``analyze``.

    capture (libpcap ring via ext/capture.pyx, or AF_PACKET fallback)
        │ pcap records written into one reused buffer, a ring block at a time
        ▼
    Pipeline.feed_chunk(buf, end)   — the very engine loop that reads files
        ▼
    consumers: inventory, alerts (→ outbox → syslog deliverers), JSON lines

Modules: ``capture`` (choose and open a capture), ``afpacket`` (the fallback),
``privileges`` (drop root / capabilities once the capture is open), ``loop``
(the sensor loop: signals, heartbeats, flushing), ``config`` (the YAML config,
validated with file:line errors), ``cli`` (``otwatch sensor``).
"""
