"""A minimal sd_notify(3) client: readiness, status, watchdog and stopping messages to systemd.

Speaks the datagram protocol directly over $NOTIFY_SOCKET (a path, or '@name' for the abstract
namespace), so the service needs no libsystemd binding. Without $NOTIFY_SOCKET (not started by
systemd, or Type= is not notify) every call is a silent no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def _address() -> str | None:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return None
    return "\0" + path[1:] if path.startswith("@") else path


def notify(**fields: object) -> bool:
    """Send KEY=value lines (e.g. notify(READY=1, STATUS="listening")); True if a message was sent."""
    address = _address()
    if address is None or not fields:
        return False
    message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
        return True
    except OSError as err:  # systemd gone or socket unreachable: never fatal to the service
        log.warning("sd_notify to %r failed: %s", os.environ.get("NOTIFY_SOCKET"), err)
        return False


def ready(status: str | None = None) -> bool:
    return notify(READY=1, **({"STATUS": status} if status else {}))


def status(text: str) -> bool:
    return notify(STATUS=text)


def watchdog() -> bool:
    return notify(WATCHDOG=1)


def stopping(status: str | None = None) -> bool:
    return notify(STOPPING=1, **({"STATUS": status} if status else {}))


def watchdog_interval_s() -> float | None:
    """The watchdog timeout systemd set (WatchdogSec=), in seconds, or None when there is none.

    Ping at least twice per interval (systemd's advice). $WATCHDOG_PID, when set, must be our pid.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None
