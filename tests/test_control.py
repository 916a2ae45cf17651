"""Control endpoint: each command dispatches, every malformed request gets a JSON error reply."""

import json

import pytest
import zmq

from streamd.control import CommandError, ControlServer, handle, request


class FakeTarget:
    def __init__(self):
        self.calls = []

    def status(self):
        return {"uptime_s": 1.5}

    def set_threshold(self, name, threshold, off_threshold):
        if name == "nope":
            raise CommandError("no keyword or tag named 'nope'")
        self.calls.append(("set_threshold", name, threshold, off_threshold))
        return {"name": name}

    def set_enabled(self, name, enabled):
        self.calls.append(("set_enabled", name, enabled))
        return {"name": name, "enabled": enabled}

    def reload(self):
        raise RuntimeError("boom")


def ask(target, obj) -> dict:
    message = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return handle(message, target)


def test_commands_dispatch():
    t = FakeTarget()
    assert ask(t, {"cmd": "status"}) == {"ok": True, "status": {"uptime_s": 1.5}}
    assert ask(t, {"cmd": "set_threshold", "name": "yes", "threshold": 0.7})["ok"]
    assert ask(t, {"cmd": "set_threshold", "name": "dog", "threshold": 0.6, "off_threshold": 0.4})["ok"]
    assert ask(t, {"cmd": "disable", "name": "dog"}) == {"ok": True, "name": "dog", "enabled": False}
    assert ask(t, {"cmd": "enable", "name": "dog"})["enabled"] is True
    assert t.calls == [("set_threshold", "yes", 0.7, None), ("set_threshold", "dog", 0.6, 0.4),
                       ("set_enabled", "dog", False), ("set_enabled", "dog", True)]


MALFORMED = [
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"{not json", "not UTF-8 JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"status"', "must be a JSON object"),
    ({"cmd": "explode"}, "unknown cmd 'explode'"),
    ({}, "unknown cmd None"),
    ({"cmd": "set_threshold", "name": "yes"}, "'threshold' must be a number in [0, 1], got None"),
    ({"cmd": "set_threshold", "name": "yes", "threshold": 2}, "'threshold' must be a number in [0, 1], got 2"),
    ({"cmd": "set_threshold", "name": "yes", "threshold": True}, "got True"),
    ({"cmd": "set_threshold", "name": "nope", "threshold": 0.5}, "no keyword or tag named 'nope'"),
    ({"cmd": "enable"}, "'name' must be a non-empty string, got None"),
    ({"cmd": "disable", "name": 3}, "'name' must be a non-empty string, got 3"),
    ({"cmd": "reload"}, "internal error: RuntimeError: boom"),
    (b'{"cmd": "set_threshold", "name": "yes", "threshold": NaN}', "NaN is not standard JSON"),
    (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
]


@pytest.mark.parametrize("message,error", MALFORMED, ids=[e for _, e in MALFORMED])
def test_malformed_requests_get_error_replies(message, error):
    reply = ask(FakeTarget(), message)
    assert reply["ok"] is False and error in reply["error"]


def test_socket_round_trip_and_multipart_request(tmp_path):
    endpoint = f"ipc://{tmp_path}/control"
    server = ControlServer(endpoint, FakeTarget())
    context = zmq.Context()
    client = context.socket(zmq.REQ)
    client.setsockopt(zmq.LINGER, 0)
    client.setsockopt(zmq.RCVTIMEO, 2000)
    client.connect(endpoint)
    client.send_multipart([b"{}", b"{}"])
    while server.poll() == 0:
        pass
    assert json.loads(client.recv()) == {"ok": False, "error": "request must be one frame, got 2"}
    client.send(b"garbage")
    while server.poll() == 0:
        pass
    assert json.loads(client.recv())["ok"] is False
    client.close()
    context.term()
    assert server.poll() == 0  # nothing waiting: returns at once
    server.close()
    assert not (tmp_path / "control").exists()


def test_request_helper_times_out_without_a_server(tmp_path):
    with pytest.raises(TimeoutError):
        request(f"ipc://{tmp_path}/nobody", {"cmd": "status"}, timeout_s=0.2)
