"""The control endpoint: JSON requests on a ZeroMQ REP socket, polled from the main loop.

Request: one frame, a JSON object with "cmd" and its arguments. Reply: one frame, a JSON object with
"ok": true and the command's result, or "ok": false and "error". Commands:

    {"cmd": "status"}
    {"cmd": "set_threshold", "name": "yes", "threshold": 0.7}          keyword threshold, or a tag's
    {"cmd": "set_threshold", "name": "dog", "threshold": 0.6, "off_threshold": 0.4}   on/off thresholds
    {"cmd": "enable", "name": "dog"}   {"cmd": "disable", "name": "dog"}
    {"cmd": "reload"}                                                    re-read the config file

Every malformed request gets an error reply; nothing a client sends can stop the service.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

import zmq

from streamd.publisher import _ipc_path

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_POLL = 16


class CommandError(ValueError):
    """A request that cannot be carried out; the message goes back to the client."""


class Target(Protocol):
    def status(self) -> dict: ...
    def set_threshold(self, name: str, threshold: float, off_threshold: float | None) -> dict: ...
    def set_enabled(self, name: str, enabled: bool) -> dict: ...
    def reload(self) -> dict: ...


def _number(request: dict, key: str, required: bool = True) -> float | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:  # NaN fails too
        raise CommandError(f"{key!r} must be a number in [0, 1], got {value!r}")
    return float(value)


def _name(request: dict) -> str:
    name = request.get("name")
    if not isinstance(name, str) or not name:
        raise CommandError(f"'name' must be a non-empty string, got {name!r}")
    return name


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not standard JSON")


COMMANDS = {
    "status": lambda t, r: {"status": t.status()},
    "set_threshold": lambda t, r: t.set_threshold(_name(r), _number(r, "threshold"), _number(r, "off_threshold", False)),
    "enable": lambda t, r: t.set_enabled(_name(r), True),
    "disable": lambda t, r: t.set_enabled(_name(r), False),
    "reload": lambda t, r: t.reload(),
}


def handle(message: bytes, target: Target) -> dict:
    """One request -> one reply object. Never raises for anything a client can send."""
    try:
        request = json.loads(message.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        return {"ok": False, "error": f"request is not UTF-8 JSON ({err})"}
    except RecursionError:
        return {"ok": False, "error": "request is nested too deeply"}
    if not isinstance(request, dict):
        return {"ok": False, "error": "request must be a JSON object with a 'cmd'"}
    cmd = request.get("cmd")
    if cmd not in COMMANDS:
        return {"ok": False, "error": f"unknown cmd {cmd!r}; expected one of {', '.join(COMMANDS)}"}
    try:
        return {"ok": True, **COMMANDS[cmd](target, request)}
    except CommandError as err:
        return {"ok": False, "error": str(err)}
    except Exception as err:  # a bug in a handler must not take the service down
        log.exception("control command %s failed", cmd)
        return {"ok": False, "error": f"internal error: {type(err).__name__}: {err}"}


class ControlServer:
    def __init__(self, endpoint: str, target: Target):
        self.endpoint = endpoint
        self.target = target
        self._ipc_path = _ipc_path(endpoint)
        if self._ipc_path:
            self._ipc_path.parent.mkdir(parents=True, exist_ok=True)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 100)
        self._socket.setsockopt(zmq.MAXMSGSIZE, 65536)  # a control request is small
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as err:
            self._socket.close(0)
            self._context.term()
            raise OSError(f"cannot bind the control endpoint to {endpoint}: {err}") from None
        log.info("control on %s", endpoint)

    @property
    def socket(self) -> zmq.Socket:
        """The REP socket, for a caller's poller (readable = a request waits)."""
        return self._socket

    def poll(self) -> int:
        """Answer the requests waiting now (never blocks); return how many."""
        handled = 0
        while handled < MAX_REQUESTS_PER_POLL:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) == 1:
                reply = handle(frames[0], self.target)
            else:
                reply = {"ok": False, "error": f"request must be one frame, got {len(frames)}"}
            self._socket.send(json.dumps(reply, separators=(",", ":")).encode())
            handled += 1
        return handled

    def close(self) -> None:
        self._socket.close()
        self._context.term()
        if self._ipc_path:
            self._ipc_path.unlink(missing_ok=True)


def request(endpoint: str, command: dict, timeout_s: float = 2.0) -> dict:
    """Client side: send one command and wait for its reply (raises TimeoutError)."""
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    try:
        socket.connect(endpoint)
        socket.send(json.dumps(command).encode())
        return json.loads(socket.recv())
    except zmq.Again:
        raise TimeoutError(f"no reply from {endpoint} within {timeout_s} s") from None
    finally:
        socket.close()
        context.term()
