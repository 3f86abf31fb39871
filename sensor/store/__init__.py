"""The shared SQLite database (inventory, runs, and the tables other packages register).

See ``database`` for the contract; ``runs`` records every run.
"""
from .database import (ENV_DB, NoDatabase, StoreError, default_path, migrate, open_read, open_write,
                       read_snapshot, register, registered, retry, write_transaction)

__all__ = ["ENV_DB", "NoDatabase", "StoreError", "default_path", "migrate", "open_read", "open_write",
           "read_snapshot", "register", "registered", "retry", "write_transaction"]
