import os
import socket

import pytest

from streamd import sdnotify


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path, monkeypatch):
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        sock.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
    else:
        name = f"streamd-test-{os.getpid()}"
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    sock.settimeout(2.0)
    yield sock
    sock.close()


def test_ready_with_status_is_one_datagram(notify_socket):
    assert sdnotify.ready("listening on 1 microphone") is True
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=listening on 1 microphone"


def test_watchdog_status_and_stopping(notify_socket):
    sdnotify.watchdog()
    sdnotify.status("rtf 0.02")
    sdnotify.stopping()
    assert [notify_socket.recv(4096) for _ in range(3)] == [b"WATCHDOG=1", b"STATUS=rtf 0.02", b"STOPPING=1"]


def test_without_notify_socket_is_a_silent_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    assert sdnotify.watchdog() is False


def test_unreachable_socket_is_logged_not_raised(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.watchdog() is False
    assert "sd_notify" in caplog.text


@pytest.mark.parametrize("usec, pid, expected", [
    (None, None, None),
    ("30000000", None, 30.0),
    ("500000", "self", 0.5),
    ("500000", "1", None),  # meant for another process
    ("0", None, None),
    ("junk", None, None),
])
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for key, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, str(os.getpid()) if value == "self" else value)
    assert sdnotify.watchdog_interval_s() == expected
