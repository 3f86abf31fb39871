"""OPC UA binary (UA TCP, opc.tcp) parser.

* ``spec``       — the wire format as data: headers, message/chunk types, service
                   type ids, status codes, security policies, enums.
* ``binary``     — bounded readers for the UA binary encoding (``Reader``, ``DecodeError``).
* ``certs``      — X.509 application certificate summaries (``summarize``).
* ``events``     — frozen event dataclasses (``OPCUAHello`` … ``OPCUAServiceFault``, ``Anomaly``).
* ``decode``     — ``decode(key, raw, ctx, side)``, ``describe(key)``, ``to_dict(event)``.
* ``connection`` — ``OPCUAConnection(limits, implementation).feed/gap/eof``.

The per-packet kernel is ``otwatch.ext.opcua`` (``OPCUACore``, ``probe``).
See docs/protocols/opcua.md.
"""
