"""Offline guard: refuse every network connection that does not go to this machine.

Put this folder on PYTHONPATH (``make test`` does) and every Python process,
including the Jupyter kernels nbval starts, loads it. A connection to anything but
loopback raises ``OSError`` and is logged, with the calling stack, to the file named
by ``LAB_NETWORK_LOG`` (if set), so a test run shows exactly which library reached out.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("LAB_NETWORK_LOG")
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _refuse(host: object) -> None:
    message = f"network access blocked by the lab's offline guard: {host!r}"
    if _LOG:
        try:
            with open(_LOG, "a", encoding="utf-8") as fh:
                fh.write(f"--- pid {os.getpid()}: {message}\n")
                fh.write("".join(traceback.format_stack(limit=25)))
        except OSError:
            pass
    raise OSError(message)


def _guarded_connect(self, address):  # type: ignore[no-untyped-def]
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(address[0])
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):  # type: ignore[no-untyped-def]
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(address[0])
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_local(host):
        _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
