"""Bad input never ends in a traceback: fuzzed configs, malformed control requests, broken model and
audio files. Each must give a clear one-line error (or a valid state), and a running service must
survive whatever a client sends it.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamd import config as cfg
from streamd.contract import ContractError
from streamd.control import ControlServer, handle
from streamd.model import load_model
from streamd.sources import open_source
from streamd.ringsource import SourceError

REPO = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------- config loader

_keys = st.text(max_size=8)
_scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
            | st.text(max_size=12) | st.sampled_from(["mic", "file:x.wav", "stdin", "tcp://0.0.0.0:1", "ipc:///tmp/x",
                                                       "tcp://127.0.0.1:5555", "mean", "INFO", "yes", ""]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_keys, inner, max_size=4), max_leaves=12)


def _default_raw() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def _paths(node, prefix=()):
    """Every (path, value) inside a YAML tree: where a mutation can land."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


_DEFAULT_PATHS = list(_paths(_default_raw()))[1:]


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _load_or_error(raw) -> cfg.Config | None:
    try:
        return cfg.config_from_dict(raw, base_dir=REPO, source="fuzz.yaml")
    except cfg.ConfigError as err:
        text = str(err)
        assert text.startswith("fuzz.yaml: ") and "\n" not in text and len(text) < 600, text
        return None


def _assert_valid(config: cfg.Config) -> None:
    """What loading promises about a config it accepts."""
    for section in (config.keyword_defaults, config.tag_defaults, config.scheduler, config.bus, config.heartbeat):
        for name, value in vars(section).items():
            if isinstance(value, float):
                assert math.isfinite(value), f"{type(section).__name__}.{name} = {value}"
    for name, (kw, _) in config.keyword_settings().items():
        assert 0.0 <= kw.threshold <= 1.0 and math.isfinite(kw.refractory_s), (name, kw)
    for name, (tag, _) in config.tag_settings().items():
        assert 0.0 <= tag.off_threshold <= tag.on_threshold <= 1.0 and math.isfinite(tag.min_duration_s), (name, tag)
    assert all(inp.name and inp.name.isprintable() for inp in config.inputs), "an input with an empty or odd stream name"


@FUZZ
@given(st.sampled_from(_DEFAULT_PATHS), _values)
def test_config_mutation_gives_config_or_one_line_error(path, value):
    raw = _default_raw()
    _set(raw, path, value)
    config = _load_or_error(raw)
    if config is not None:
        _assert_valid(config)


@FUZZ
@given(_values)
def test_config_arbitrary_tree_gives_config_or_one_line_error(raw):
    config = _load_or_error(raw)
    if config is not None:
        _assert_valid(config)


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_config_file_text_gives_config_or_one_line_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            config = cfg.load_config(path)
        except cfg.ConfigError as err:
            assert str(err).startswith(str(path)) and "\n" not in str(err), str(err)
        else:
            _assert_valid(config)


def test_config_error_for_a_key_with_a_newline_is_one_line():
    with pytest.raises(cfg.ConfigError) as info:
        cfg.config_from_dict({"inputs": [{"na\nme": "x"}]})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("section,key", [("keyword_defaults", "threshold"), ("tag_defaults", "min_duration_s"),
                                         ("tag_defaults", "on_threshold"), ("keyword_defaults", "refractory_s")])
def test_config_rejects_nan(section, key):
    """NaN passes `value < min` and `value > max` (both False): a NaN threshold would silence a keyword."""
    with pytest.raises(cfg.ConfigError, match=rf"{section}\.{key}"):
        cfg.config_from_dict({section: {key: float("nan")}})


def test_config_rejects_empty_stream_name():
    with pytest.raises(cfg.ConfigError, match=r"inputs\[0\]\.name"):
        cfg.config_from_dict({"inputs": [{"name": "", "source": "mic"}]})


# ------------------------------------------------------------------------------ control endpoint


class RecordingTarget:
    """Stands in for the service: records what the control endpoint asked it to do."""

    def __init__(self):
        self.thresholds: dict[str, float] = {"yes": 0.5}
        self.enabled: dict[str, bool] = {"yes": True}

    def status(self) -> dict:
        return {"thresholds": dict(self.thresholds)}

    def set_threshold(self, name, threshold, off_threshold):
        if name not in self.thresholds:
            from streamd.control import CommandError
            raise CommandError(f"no keyword or tag {name!r}")
        self.thresholds[name] = threshold
        return {"name": name, "threshold": threshold}

    def set_enabled(self, name, enabled):
        self.enabled[name] = enabled
        return {"name": name, "enabled": enabled}

    def reload(self):
        return {"reloaded": True}


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                            max_leaves=8)
_requests = st.fixed_dictionaries(
    {"cmd": st.sampled_from(["status", "set_threshold", "enable", "disable", "reload", "", "STATUS", "shutdown"])},
    optional={"name": _json_values | st.just("yes"), "threshold": _json_values | st.floats(-1, 2),
              "off_threshold": _json_values})


def _check_reply(reply: dict, target: RecordingTarget) -> None:
    json.dumps(reply, allow_nan=False)  # the reply goes on the wire as strict JSON
    assert isinstance(reply.get("ok"), bool), reply
    if not reply["ok"]:
        assert isinstance(reply.get("error"), str) and reply["error"] and "Traceback" not in reply["error"], reply
        assert not reply["error"].startswith("internal error"), reply  # a handler bug, not a client error
    assert all(0.0 <= t <= 1.0 for t in target.thresholds.values()), target.thresholds


@FUZZ
@given(st.binary(max_size=300))
def test_control_raw_bytes_get_an_error_reply(message):
    target = RecordingTarget()
    _check_reply(handle(message, target), target)


@FUZZ
@given(_requests)
def test_control_structured_requests_give_valid_state(request):
    target = RecordingTarget()
    reply = handle(json.dumps(request).encode(), target)
    _check_reply(reply, target)
    if request["cmd"] == "set_threshold" and reply["ok"]:
        assert target.thresholds[request["name"]] == request["threshold"]


@pytest.mark.parametrize("message", [b"NaN", b'{"cmd": "set_threshold", "name": "yes", "threshold": NaN}',
                                     b'{"cmd": "set_threshold", "name": "yes", "threshold": Infinity}',
                                     b'{"cmd": "set_threshold", "name": "yes", "threshold": 1e999}',
                                     b"[" * 3000 + b"]" * 3000])
def test_control_nonstandard_json_is_refused(message):
    """Python's json accepts NaN/Infinity and recurses on nesting (RecursionError, not a JSONDecodeError, at
    ~1000 levels: 6 KB, well under the socket's 64 KB limit): none of it may reach a target or crash."""
    target = RecordingTarget()
    reply = handle(message, target)
    _check_reply(reply, target)
    assert reply["ok"] is False and target.thresholds == {"yes": 0.5}


def test_control_server_survives_multipart_and_oversized_requests(tmp_path):
    endpoint = f"ipc://{tmp_path}/control"
    target = RecordingTarget()
    server = ControlServer(endpoint, target)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            server.poll()
            stop.wait(0.005)

    thread = threading.Thread(target=serve)
    thread.start()
    context = zmq.Context()
    try:
        def ask(frames, timeout_ms=2000):
            sock = context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
            sock.connect(endpoint)
            try:
                sock.send_multipart(frames)
                return json.loads(sock.recv())
            except zmq.Again:
                return None
            finally:
                sock.close()

        assert ask([b'{"cmd":"status"}', b"extra"]) == {"ok": False, "error": "request must be one frame, got 2"}
        assert ask([b"x" * 200_000], timeout_ms=300) is None  # over MAXMSGSIZE: the peer is dropped, no reply
        for _ in range(50):
            reply = ask([b"\xff\xfe garbage"])
            assert reply["ok"] is False
        assert ask([b'{"cmd":"set_threshold","name":"yes","threshold":0.7}'])["ok"] is True
        assert ask([b'{"cmd":"status"}']) == {"ok": True, "status": {"thresholds": {"yes": 0.7}}}
    finally:
        stop.set()
        thread.join()
        server.close()
        context.term()
    assert not (tmp_path / "control").exists()


# --------------------------------------------------------------------------------- model files


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory) -> Path:
    from tests.tiny_model import build

    return build(tmp_path_factory.mktemp("model") / "tiny.onnx")


def _broken_models(good: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    flipped = bytearray(good)
    for i in rng.integers(len(good) // 4, len(good), 64):
        flipped[i] ^= 0xFF
    return {"empty": b"", "truncated_half": good[: len(good) // 2], "truncated_tail": good[:-7],
            "header_only": good[:64], "text": b"this is not a model\n", "bitflips": bytes(flipped),
            "zeros": bytes(len(good))}


def test_broken_model_files_raise_one_line_contract_error(tiny_model_path, tmp_path):
    good = tiny_model_path.read_bytes()
    for name, data in _broken_models(good).items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        try:
            load_model(path)
        except ContractError as err:
            assert str(err).startswith(str(path)) and "\n" not in str(err), (name, str(err))
        else:
            # a few flipped bytes may land in weights: then the model must still satisfy the contract
            assert name == "bitflips", f"{name}: a broken file loaded"


def test_missing_model_file_is_a_contract_error(tmp_path):
    with pytest.raises(ContractError, match="no such model file"):
        load_model(tmp_path / "absent.onnx")


# --------------------------------------------------------------------------------- audio files


def _pump_all(source, limit_samples: int = 10**7) -> np.ndarray:
    source.start()
    try:
        total = 0
        while not source.finished and total < limit_samples:
            n = source.pump(16000)
            total += n
            if n == 0:
                break
        return source.ring.read(source.ring.oldest_index, source.ring.end_index - source.ring.oldest_index)
    finally:
        source.stop()


def test_bad_audio_files_fail_with_one_line_source_error(tmp_path):
    wav = tmp_path / "good.wav"
    soundfile.write(wav, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    cases = {"empty.wav": b"", "text.wav": b"not audio at all\n" * 10, "header.wav": wav.read_bytes()[:20]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SourceError) as info:
            open_source(f"file:{tmp_path / name}", "s", 16000, fast=True)
        assert "\n" not in str(info.value) and name in str(info.value)


def test_truncated_and_zero_length_audio_end_cleanly(tmp_path):
    wav = tmp_path / "t.wav"
    soundfile.write(wav, 0.1 * np.ones(16000, np.float32), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[:-5001])  # header says 1 s, data stops early (and mid-sample)
    got = _pump_all(open_source(f"file:{cut}", "s", 16000, fast=True))
    assert 13400 <= len(got) <= 13500 and np.allclose(got, 0.1, atol=1e-3)
    silent = tmp_path / "none.wav"
    soundfile.write(silent, np.zeros(0, np.float32), 16000)
    assert len(_pump_all(open_source(f"file:{silent}", "s", 16000, fast=True))) == 0


def test_nan_and_clipped_audio_reach_the_ring_finite_and_bounded(tmp_path):
    """The model's state must never take a NaN: one NaN sample would silence the stream for ever."""
    audio = np.concatenate([np.full(8000, np.nan), np.full(8000, 5.0), np.full(8000, -np.inf),
                            0.5 * np.ones(8000)]).astype(np.float32)
    path = tmp_path / "bad.wav"
    soundfile.write(path, audio, 16000, subtype="FLOAT")
    got = _pump_all(open_source(f"file:{path}", "s", 16000, fast=True))
    assert len(got) == len(audio)
    assert np.all(np.isfinite(got)), f"{int(np.sum(~np.isfinite(got)))} non-finite samples reached the ring"
    assert np.max(np.abs(got)) <= 1.0 + 1e-6


# ---------------------------------------------------------------------- the same, at the service


def _run_cli(tmp_path, config: dict, *args: str, timeout_s: float = 60.0):
    import subprocess
    import sys

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"bus": {"endpoint": f"ipc://{tmp_path}/events"},
                                    "control": {"endpoint": f"ipc://{tmp_path}/control"}, **config}))
    return subprocess.run([sys.executable, "-c", "import sys; from streamd.cli import main; sys.exit(main())", "run",
                           "--config", str(path), "--fast", *args], capture_output=True, text=True, timeout=timeout_s)


def _assert_exit_2_one_line(done, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_service_refuses_broken_model_files_with_exit_2(tiny_model_path, tmp_path):
    pytest.importorskip("streamd.cli")
    wav = tmp_path / "a.wav"
    soundfile.write(wav, np.zeros(16000, np.float32), 16000)
    good = tiny_model_path.read_bytes()
    for name in ("empty", "truncated_half", "text", "zeros"):
        bad = tmp_path / f"{name}.onnx"
        bad.write_bytes(_broken_models(good)[name])
        done = _run_cli(tmp_path, {"inputs": [{"name": "f", "source": f"file:{wav}"}],
                                   "models": [{"path": str(bad), "latency_ms": 100}]})
        _assert_exit_2_one_line(done, f"{name}.onnx")
        assert not (tmp_path / "events").exists() and not (tmp_path / "control").exists()


def test_service_refuses_bad_audio_files_with_exit_2(tiny_model_path, tmp_path):
    pytest.importorskip("streamd.cli")
    cases = {"empty.wav": b"", "text.wav": b"not audio\n" * 10}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        done = _run_cli(tmp_path, {"inputs": [{"name": "f", "source": f"file:{tmp_path / name}"}],
                                   "models": [{"path": str(tiny_model_path), "latency_ms": 100}]})
        _assert_exit_2_one_line(done, name)


def test_live_service_survives_malformed_control_traffic(tiny_model_path, tmp_path):
    pytest.importorskip("streamd.cli")
    from faultkit import Service

    wav = tmp_path / "long.wav"
    soundfile.write(wav, np.zeros(30 * 16000, np.float32), 16000, subtype="PCM_16")
    config = {"inputs": [{"name": "f", "source": f"file:{wav}"}],
              "models": [{"path": str(tiny_model_path), "latency_ms": 100}],
              "keywords": [{"name": "yes"}], "tags": [{"name": "siren"}], "logging": {"level": "WARNING"}}
    rng = np.random.default_rng(0)
    messages = [b"", b"{}", b"null", b"[]", b'{"cmd": 1}', b'{"cmd": "set_threshold", "name": "yes", "threshold": NaN}',
                b'{"cmd": "set_threshold", "name": "nope", "threshold": 0.5}', b"[" * 3000 + b"]" * 3000,
                b'{"cmd": "set_threshold", "name": "siren", "threshold": 0.2, "off_threshold": 0.9}',
                b'{"cmd": "enable", "name": ["yes"]}'] + \
               [rng.bytes(int(n)) for n in rng.integers(1, 500, 40)]
    with Service(config, tmp_path, wait_for_subscriber_s=0) as svc:
        svc.wait_ready()
        context = zmq.Context()
        try:
            for message in messages:
                sock = context.socket(zmq.REQ)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RCVTIMEO, 3000)
                sock.connect(svc.control)
                sock.send(message)
                reply = json.loads(sock.recv())
                sock.close()
                assert reply["ok"] is False and reply["error"] and not reply["error"].startswith("internal error"), \
                    (message[:60], reply)
            def ask(message: bytes) -> dict:
                sock = context.socket(zmq.REQ)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RCVTIMEO, 3000)
                sock.connect(svc.control)
                sock.send(message)
                try:
                    return json.loads(sock.recv())
                finally:
                    sock.close()

            # a client cannot point reload at another file: the service re-reads its own config only
            reply = ask(b'{"cmd": "reload", "path": "/etc/passwd"}')
            assert "/etc/passwd" not in json.dumps(reply), reply
            assert ask(b'{"cmd": "status"}')["ok"] is True
        finally:
            context.term()
        assert svc.proc.poll() is None, svc.stderr[-2000:]
        assert svc.stop() == 0 and "Traceback" not in svc.stderr, svc.stderr[-2000:]
