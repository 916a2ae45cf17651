"""Helpers for the fault and load suite: run `streamd run` as a child, listen to its bus, read /proc.

    with Service(config_dict, tmp_path, fast=True, stdin=True) as svc:
        sub = svc.subscribe()
        svc.wait_for_status(sub, "running")
        ...
        svc.stop()                      # SIGTERM, bounded wait; svc.returncode

Every wait is bounded; a test that hangs is a test that failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
import zmq

REPO = Path(__file__).resolve().parents[1]
STREAMD = [sys.executable, "-c", "import sys; from streamd.cli import main; sys.exit(main())"]  # the console script, without PATH
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    wall_s: float
    cpu_s: float  # utime + stime
    rss_kib: int
    hwm_kib: int
    fds: int
    threads: int


def proc_sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    cpu_s = (int(fields[11]) + int(fields[12])) / CLK_TCK
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    kib = lambda key: int(status.get(key, "0 kB").split()[0])  # noqa: E731
    return ProcSample(time.monotonic(), cpu_s, kib("VmRSS"), kib("VmHWM"), len(os.listdir(f"/proc/{pid}/fd")),
                      int(status["Threads"]))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Subscriber:
    """A SUB socket on the service's bus; every receive has a timeout."""

    def __init__(self, context: zmq.Context, endpoint: str, topics=(b"",), hwm: int = 100_000):
        self.socket = context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic)
        self.socket.connect(endpoint)
        self.events: list[dict] = []

    def recv(self, timeout_s: float) -> dict | None:
        if not self.socket.poll(int(timeout_s * 1000)):
            return None
        topic, body = self.socket.recv_multipart()
        event = json.loads(body)
        event["_topic"] = topic.decode()
        event["_received"] = time.monotonic()
        self.events.append(event)
        return event

    def drain(self, quiet_s: float = 0.2, max_events: int | None = None) -> list[dict]:
        """Receive until nothing arrives for quiet_s (or max_events were received)."""
        got = []
        while (max_events is None or len(got) < max_events) and (event := self.recv(quiet_s)) is not None:
            got.append(event)
        return got

    def wait_for(self, predicate, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            event = self.recv(left)
            if event is not None and predicate(event):
                return event
        seen = [(e["type"], e.get("state")) for e in self.events[-10:]]
        raise TimeoutError(f"no matching event within {timeout_s} s; last seen {seen}")

    def close(self) -> None:
        self.socket.close(0)


def status_is(state: str):
    return lambda e: e["type"] == "status" and e.get("state") == state


class Service:
    """`streamd run --config <tmp>/config.yaml [--fast]` as a child process with private endpoints."""

    def __init__(self, config: dict, tmp_path: Path, fast: bool = False, stdin: bool = False,
                 extra_args: tuple[str, ...] = (), env: dict | None = None, wait_for_subscriber_s: float = 10.0):
        self.dir = Path(tmp_path)
        self.bus = f"ipc://{self.dir}/events"
        self.control = f"ipc://{self.dir}/control"
        config = dict(config)
        config.setdefault("bus", {})
        config["bus"] = {"endpoint": self.bus, **config["bus"]}
        config.setdefault("control", {})
        config["control"] = {"endpoint": self.control, **config["control"]}
        self.config_path = self.dir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.args = [*STREAMD, "run", "--config", str(self.config_path), *(["--fast"] if fast else []),
                     # hold the audio until our SUB has subscribed: no event lost to the slow joiner
                     *(["--wait-for-subscriber", str(wait_for_subscriber_s)] if wait_for_subscriber_s else []), *extra_args]
        self.env = {**os.environ, **(env or {})}
        self.stdin = stdin
        self.proc: subprocess.Popen | None = None
        self.context = zmq.Context()
        self._subs: list[Subscriber] = []
        self.stderr_path = self.dir / "stderr.log"
        # sd_notify readiness: the service says READY=1 once models are loaded and sockets bound
        self.notify_path = self.dir / "notify"
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self.notify_path))
        self.env["NOTIFY_SOCKET"] = str(self.notify_path)
        self.notifications: list[str] = []

    def __enter__(self) -> "Service":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr, env=self.env, cwd=self.dir)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until READY=1 arrives on $NOTIFY_SOCKET (bounded); raises if the service exits first."""
        deadline = time.monotonic() + timeout_s
        while "READY=1" not in self.notifications:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamd exited {self.proc.returncode} before READY; stderr:\n{self.stderr[-2000:]}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no READY=1 within {timeout_s} s; stderr:\n{self.stderr[-2000:]}")
            self._notify.settimeout(min(left, 0.2))
            try:
                self.notifications.extend(self._notify.recv(4096).decode().splitlines())
            except socket.timeout:
                pass
        time.sleep(0.1)  # the slow joiner: let subscriptions made before READY reach the XPUB

    def subscribe(self, topics=(b"",), hwm: int = 100_000) -> Subscriber:
        sub = Subscriber(self.context, self.bus, topics, hwm)
        self._subs.append(sub)
        return sub

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def sample(self) -> ProcSample:
        return proc_sample(self.proc.pid)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"streamd still running after {timeout_s} s; stderr:\n{self.stderr[-2000:]}") from None

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def close(self) -> None:
        self._notify.close()
        for sub in self._subs:
            sub.close()
        self.context.term()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc is not None and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        if hasattr(self, "_stderr"):
            self._stderr.close()

    def leftovers(self) -> list[Path]:
        """ipc socket files the service should have removed on exit."""
        return [p for p in (self.dir / "events", self.dir / "control") if p.exists()]
