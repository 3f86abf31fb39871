"""Sans-IO protocol parsers: bytes in, typed events out.

No sockets, no clocks, no logging, no globals, and nothing imported from
``otwatch.sensor``.  Each protocol package has ``spec`` (constants and tables,
the one definition of its wire format), ``events`` (frozen dataclasses),
``decode`` (message bytes -> event) and ``connection`` (the public
feed/gap/eof API, built on the protocol's kernel in ``otwatch.ext``).
"""
