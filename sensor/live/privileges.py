"""Least privilege: once the capture is open, the sensor needs no privilege at all.

* Started as root (``--user NAME`` given, or a systemd unit with ``User=``):
  switch to that user and group (supplementary groups cleared) right after the
  capture is open.
* Started as a normal user with CAP_NET_RAW (``setcap cap_net_raw,cap_net_admin=eip``
  on the interpreter, or systemd ``AmbientCapabilities=CAP_NET_RAW``): drop every
  capability from the effective, permitted and inheritable sets.
* Either way set ``PR_SET_NO_NEW_PRIVS`` so nothing it runs can gain privilege back.

The capture socket stays open across the switch (a descriptor keeps the access
it was opened with).  Uses libc's ``capset`` through ctypes: no dependency.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_LAST_CAP = 40


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def capabilities() -> int:
    """The effective capability set of this process (bit mask), from /proc."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def drop_capabilities() -> None:
    libc = _libc()
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    if libc.capset(ctypes.byref(hdr), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def no_new_privs() -> None:
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(NO_NEW_PRIVS): {os.strerror(err)}")


def target(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) the process will become, when it runs as root; None otherwise."""
    if os.geteuid() != 0:
        return None
    if not user:
        raise PermissionError("running as root: give --user NAME (e.g. otwatch) to run as once the "
                              "capture is open, or run as that user with CAP_NET_RAW (docs/deployment.md)")
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise PermissionError(f"--user {user}: no such user") from None
    return pw.pw_uid, pw.pw_gid


def hand_over(paths, who: tuple[int, int] | None) -> None:
    """Give the files the sensor created while still root (database, WAL, JSON output) to *who*."""
    if who is None:
        return
    for p in paths:
        for q in (p, p + "-wal", p + "-shm"):
            if os.path.exists(q):
                os.chown(q, *who)


def drop(user: str | None) -> str:
    """Give up privilege after the capture is open; returns what was done, for the log."""
    done = []
    if os.geteuid() == 0:
        if not user:
            raise PermissionError("running as root: give --user NAME (e.g. otwatch) to run as once the "
                                  "capture is open, or run as that user with CAP_NET_RAW (docs/deployment.md)")
        import grp
        import pwd

        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise PermissionError(f"--user {user}: no such user") from None
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        if os.geteuid() == 0 or os.getuid() == 0:
            raise PermissionError("could not leave root")
        done.append(f"now user {user} (uid {pw.pw_uid}, gid {pw.pw_gid} {grp.getgrgid(pw.pw_gid).gr_name})")
    if capabilities():
        drop_capabilities()
        done.append("capabilities dropped")
    no_new_privs()
    done.append("no_new_privs set")
    return ", ".join(done)
