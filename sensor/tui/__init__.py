"""The terminal UI (Textual): the plant at a glance, from a capture, live, or from a database.

Contract
--------
* ``otwatch tui FILE.pcap [--speed 1x|10x|max] [--policy P]``: a ``ReplayFeed``
  (feed.py) runs the ``Pipeline`` in a worker thread; observations cross to
  the UI over a bounded queue (the pipeline waits when it is full: nothing is
  dropped) and the UI applies them in batches a few times a second to a
  ``LiveModel`` (model.py: inventory in memory, policy checker, alert book,
  tallies).
* ``otwatch tui --db PATH``: a ``DbModel`` reads the database read-only
  (dbread.py); when a sensor writes it, it is re-read when SQLite says it
  changed, a few times a second at most ("attached").
* ``otwatch tui --interface IFACE``: the live capture in the worker, same screens.
* One module per screen (overview, assets, comms, alerts, policy), small
  widgets (widgets.py), the app (app.py) and the command (cli.py).
* Every string that came from the wire is shown through ``safe.safe_text``
  (escaped, a Rich ``Text``, never markup).
"""
