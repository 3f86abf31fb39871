"""The shared SQLite database (inventory, runs, and the tables other packages register).

See ``database`` for the contract; ``runs`` records every run.
"""
from .database import (ENV_DB, ENV_NOTICE, ENV_WAIT, DatabaseBusy, NoDatabase, StoreError, default_path, holder,
                       lock_wait, migrate, notice_after, open_read, open_write, read_snapshot, register, registered,
                       retry, wait_limit, write_transaction)

__all__ = ["ENV_DB", "ENV_NOTICE", "ENV_WAIT", "DatabaseBusy", "NoDatabase", "StoreError", "default_path", "holder",
           "lock_wait", "migrate", "notice_after", "open_read", "open_write", "read_snapshot", "register",
           "registered", "retry", "wait_limit", "write_transaction"]
