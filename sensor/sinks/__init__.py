"""Delivery: the durable outbox and the sinks that read it.

Contract::

    alerts / asset changes / heartbeats / loss markers
        │  Outbox.append(kind, rid, severity, ts, body)      (the capture side; never blocks on a sink)
        ▼
    outbox table (SQLite, WAL, in the shared database)       seq = delivery order, rid = stable id
        │  one cursor per destination (outbox_cursors)
        ▼
    Deliverer thread per destination: read after its cursor → format → send → advance
        formats: RFC 5424 (structured data), CEF, LEEF 2.0, JSON lines   (sensor/sinks/formats.py)
        transports: udp, tcp (RFC 6587 octet counting), tls (RFC 5425)   (sensor/sinks/syslog.py)

* At least once, in order: a destination's cursor only moves past a record once
  the record is known delivered (for TCP/TLS: the peer's TCP stack has
  acknowledged every byte sent, see ``syslog.TCPTransport.drained``); after an
  error the destination resends from its cursor, so a receiver may see a record
  twice and drops the duplicate by its ``id``.
* Bounded on disk: past ``max_records`` the oldest records of the lowest
  severity present go first, and the loss itself becomes a ``loss`` record.
* A later transport (a central server, a data diode) is one more cursor.
"""
