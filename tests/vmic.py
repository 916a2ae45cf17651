"""A virtual microphone for tests: a private PulseAudio daemon whose default source is the monitor
of a null sink, so that whatever `play()` sends to the sink is what a capture from "default" hears.

    with VirtualMic() as vmic:          # own XDG_RUNTIME_DIR; nothing shared with a user session
        os.environ.update(vmic.env)     # or pass env=vmic.env to a child process
        vmic.play("speech.wav")         # paplay into the sink: the microphone hears it
        vmic.remove_device()            # unload the null sink: the microphone vanishes
        vmic.restore_device()           # load it again
        vmic.restart_server()           # stop and start the sound server itself

Works as root (this container) and as a normal user. The daemon runs in the foreground as our
child, so teardown kills exactly the processes it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 5.0
SETTLED_LATENCY_US = 50_000


class VirtualMic:
    def __init__(self, rate_hz: int = 16000, channels: int = 1, sink_name: str = "vmic", keep_alive: bool = True):
        self.rate_hz = rate_hz
        self.channels = channels
        self.sink_name = sink_name
        self.keep_alive = keep_alive
        self.dir = Path(tempfile.mkdtemp(prefix="vmic-"))
        self.socket_path = self.dir / "pulse" / "native"
        self.log_path = self.dir / "pulseaudio.log"
        self.env = {"XDG_RUNTIME_DIR": str(self.dir), "PULSE_SERVER": f"unix:{self.socket_path}"}
        self._daemon: subprocess.Popen | None = None
        self._keep_alive: subprocess.Popen | None = None
        self._module_index: int | None = None

    @staticmethod
    def available() -> bool:
        return all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "paplay", "pacat"))

    # -- lifecycle --
    def __enter__(self) -> VirtualMic:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._start_server()
        self.restore_device()

    def close(self) -> None:
        self._stop_keep_alive()
        self._stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart_server(self, down_s: float = 0.0) -> None:
        """Stop the sound server (every client loses its streams), wait down_s, start it with the sink."""
        self._stop_keep_alive()
        self._stop_server()
        time.sleep(down_s)
        self.start()

    # -- the device --
    def remove_device(self) -> None:
        """Unload the null sink (and with it the default source): the microphone disappears."""
        self._stop_keep_alive()
        if self._module_index is not None:
            self.pactl("unload-module", str(self._module_index))
            self._module_index = None

    def restore_device(self) -> None:
        """Load the null sink again as default sink, its monitor as default source."""
        if self._module_index is not None:
            return
        out = self.pactl("load-module", "module-null-sink", f"sink_name={self.sink_name}",
                         f"rate={self.rate_hz}", f"channels={self.channels}")
        self._module_index = int(out.strip())
        self.pactl("set-default-sink", self.sink_name)
        self.pactl("set-default-source", f"{self.sink_name}.monitor")
        if self.keep_alive:  # an idle null sink runs at 2 s latency; a writer keeps callbacks prompt
            self._keep_alive = subprocess.Popen(
                ["pacat", "--raw", "--format=s16le", f"--rate={self.rate_hz}", f"--channels={self.channels}",
                 f"--device={self.sink_name}", "--latency-msec=20", "/dev/zero"],
                env=self._child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._wait_for_low_latency()

    def _wait_for_low_latency(self) -> None:
        """A fresh null sink starts at ~2 s latency and drains to the writer's 20 ms in about 2 s;
        until then a new capture stream waits that long for its first callback."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            latency_us = [int(line.split()[1]) for line in self.pactl("list", "sinks").splitlines()
                          if line.strip().startswith("Latency:")]
            if latency_us and max(latency_us) < SETTLED_LATENCY_US:
                return
            time.sleep(0.05)

    def play(self, wav_path: str | os.PathLike, wait: bool = True) -> subprocess.Popen:
        """paplay a file into the sink; with wait=False returns the running process."""
        proc = subprocess.Popen(["paplay", f"--device={self.sink_name}", str(wav_path)], env=self._child_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"paplay failed ({proc.returncode}): {err.decode().strip()}")
        return proc

    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self._child_env(), capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}{self._daemon_state()}")
        return done.stdout

    # -- internals --
    def _child_env(self) -> dict:
        return dict(os.environ, HOME=str(self.dir), **self.env)

    def _start_server(self) -> None:
        # No CPU limiter, no realtime or high priority: on a loaded 2-core machine the limiter (70 % CPU
        # over 10 s) or RLIMIT_RTTIME can end the daemon mid-test, and a test needs no audio deadlines.
        cmd = ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--disallow-exit",
               "--no-cpu-limit", "--realtime=false", "--high-priority=false",
               "--use-pid-file=false", "--log-target=stderr", "-L", "module-native-protocol-unix"]
        if os.geteuid() == 0:  # as root it warns but runs per-user when told not to be a system daemon
            cmd.insert(1, "--system=false")
        with open(self.log_path, "ab") as log:
            self._daemon = subprocess.Popen(cmd, env=self._child_env(), stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                raise RuntimeError(f"pulseaudio exited ({self._daemon.returncode}): {self._log_tail()}")
            if self.socket_path.exists() and subprocess.run(
                    ["pactl", "info"], env=self._child_env(), capture_output=True, timeout=5).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"pulseaudio did not come up in {START_TIMEOUT_S} s: {self._log_tail()}")

    def _daemon_state(self) -> str:
        """Why a client could not connect: whether our daemon still runs, and the end of its log."""
        if self._daemon is None:
            return "\n(no daemon started)"
        code = self._daemon.poll()
        state = "still running" if code is None else f"exited with {code}"
        return f"\n(pulseaudio {state}; its log ends:)\n{self._log_tail()}"

    def _log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def _stop_server(self) -> None:
        self._module_index = None
        _terminate(self._daemon)
        self._daemon = None

    def _stop_keep_alive(self) -> None:
        _terminate(self._keep_alive)
        self._keep_alive = None


def _terminate(proc: subprocess.Popen | None, timeout_s: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)
