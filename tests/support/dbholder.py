"""A real second process that holds a database's write lock (``BEGIN IMMEDIATE``) until told to let go.

    h = Holder(db)        # returns once the lock is held
    ... h.pid ...         # what otwatch names as the holder
    h.release()           # commit and exit
"""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
"""


class Holder:
    def __init__(self, db):
        self.proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "holding"
        self.pid = self.proc.pid

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("go\n", timeout=60)
        assert self.proc.returncode == 0

    def __enter__(self) -> "Holder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
