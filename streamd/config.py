"""The service configuration: frozen dataclass sections, loaded strictly from YAML.

Unknown keys, wrong types and out-of-range values raise ConfigError with one line that names the
dotted path, the value and what was expected. Model and file paths are relative to the config
file's folder. ``check_against_models`` cross-checks keywords, tags and latencies against the
labels and hops the loaded model files declare.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from streamd.contract import KIND_KEYWORD, KIND_TAG, ModelInfo
from streamd.gate import window_hops
from streamd.smoothing import METHODS, TagSmootherConfig

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_WINDOW_HOPS = 3  # a tag's smoothing window when neither window_hops nor window_s is set
WINDOW_KEYS = ("window_hops", "window_s")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class ConfigError(ValueError):
    """A user error in the configuration; the message is one line meant for a person."""


def _f(default, doc: str = "", **limits):
    """A field with validation limits: min, max (inclusive), gt (exclusive), choices."""
    kwargs = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata=limits, **kwargs)


@dataclass(frozen=True)
class InputConfig:
    name: str = _f("mic")
    """Stream name, as it appears in events."""
    source: str = _f("mic")
    """"mic", "file:PATH" (relative to the config folder) or "stdin" (raw float32/s16 PCM, see sources)."""
    device: str | int | None = _f(None)
    """Input device: a sounddevice index or a substring of its name; null = the system default."""
    channels: tuple[int, ...] | None = _f(None)
    """0-based device channels to mix down to mono; null = all channels."""
    device_sample_rate_hz: int | None = _f(None, min=8000, max=384000)
    """Rate to open the device at (Hz); null = the device's default. Resampled to the model's rate."""
    block_ms: float = _f(10.0, min=2.0, max=100.0)
    """Audio per capture callback (ms), microphone only: longer blocks cost less CPU and delay events more."""


@dataclass(frozen=True)
class ModelConfig:
    path: str = _f("models/streamd-sat.onnx")
    """ONNX model file, relative to the config file's folder."""
    latency_ms: float = _f(160.0, gt=0)
    """Hop between decisions (ms); must be one of the hops the model file accepts."""
    threads: int = _f(1, min=1, max=64)
    """onnxruntime intra-op threads for this model."""
    name: str | None = _f(None)
    """Name in events; null = the file name without .onnx."""


@dataclass(frozen=True)
class KeywordDefaults:
    threshold: float = _f(0.5, min=0.0, max=1.0)
    """Score (probability) a hop must reach to count."""
    n_of_m: tuple[int, int] = _f((1, 1))
    """Fire when N of the last M hops reach the threshold (hops)."""
    refractory_s: float = _f(1.0, min=0.0, max=3600.0)
    """No second event for the same keyword within this time (s)."""
    speech_gate: float = _f(0.5, min=0.0, max=1.0)
    """A hop counts only if the model's speech score reached this within speech_gate_s (probability; 0 = off)."""
    speech_gate_s: float = _f(1.28, min=0.0, max=10.0)
    """How far back the speech score is looked for (s)."""
    pause_before: float = _f(0.5, min=0.0, max=1.0)
    """A hop counts only if the model's speech score fell below this (a pause) in the hops that end
    pause_before_s before it, or the audio was quiet (pause_drop_db) (probability; 0 = off): a keyword said
    inside running speech does not fire."""
    pause_before_s: tuple[float, float] = _f((0.32, 1.28))
    """From how long to how long before the keyword hop's end the pause is looked for ([s, s])."""
    pause_drop_db: float = _f(10.0, min=0.0, max=100.0)
    """Audio this much quieter than the word for 0.32 s is a pause too, whatever the speech score: talk
    from a television under the speaker (dB; 0 = the speech score alone)."""
    after: str | None = _f(None)
    """A wake word: this keyword counts only within after_s after its event, once per event ("computer ...
    stop"); null = always. A keyword never waits for itself, so keyword_defaults may name the wake word."""
    after_s: float = _f(5.0, gt=0.0, max=600.0)
    """How long after the wake word's event the keyword may come (s)."""
    group: str | None = _f(None)
    """Keywords of one group are alternatives (the commands): one word publishes one of them, the likeliest
    of those that fire within group_wait_s, and the group stays quiet for the winner's refractory_s
    (streamd/choice.py); null or "" = none, published as it fires."""
    group_wait_s: float = _f(0.48, min=0.0, max=5.0)
    """How long a grouped keyword's detection waits for a likelier one of its group before it is published
    (s; 0 = the first to fire wins, those of the same hop compared)."""

    def wake_word(self, name: str) -> str | None:
        """The wake word the keyword called name waits for (after, unless that is name itself)."""
        return self.after if self.after and self.after != name else None

    def group_name(self) -> str | None:
        """The keyword's group, None for none ("" overrides a default group)."""
        return self.group or None


@dataclass(frozen=True)
class KeywordConfig:
    name: str = _f("")
    """A keyword label of a loaded model."""
    threshold: float | None = _f(None, min=0.0, max=1.0)
    """Overrides keyword_defaults.threshold (probability)."""
    n_of_m: tuple[int, int] | None = _f(None)
    """Overrides keyword_defaults.n_of_m (hops)."""
    refractory_s: float | None = _f(None, min=0.0, max=3600.0)
    """Overrides keyword_defaults.refractory_s (s)."""
    speech_gate: float | None = _f(None, min=0.0, max=1.0)
    """Overrides keyword_defaults.speech_gate (probability)."""
    speech_gate_s: float | None = _f(None, min=0.0, max=10.0)
    """Overrides keyword_defaults.speech_gate_s (s)."""
    pause_before: float | None = _f(None, min=0.0, max=1.0)
    """Overrides keyword_defaults.pause_before (probability)."""
    pause_before_s: tuple[float, float] | None = _f(None)
    """Overrides keyword_defaults.pause_before_s ([s, s])."""
    pause_drop_db: float | None = _f(None, min=0.0, max=100.0)
    """Overrides keyword_defaults.pause_drop_db (dB)."""
    after: str | None = _f(None)
    """Overrides keyword_defaults.after (a keyword name; "" = waits for none)."""
    after_s: float | None = _f(None, gt=0.0, max=600.0)
    """Overrides keyword_defaults.after_s (s)."""
    group: str | None = _f(None)
    """Overrides keyword_defaults.group (a group name; "" = none)."""
    group_wait_s: float | None = _f(None, min=0.0, max=5.0)
    """Overrides keyword_defaults.group_wait_s (s)."""
    enabled: bool = _f(True)
    """Publish events for this keyword."""
    clip: bool | None = _f(None)
    """Keep a clip of each of its events (with clips.enabled); null = true."""


@dataclass(frozen=True)
class TagDefaults:
    on_threshold: float = _f(0.5, min=0.0, max=1.0)
    """Smoothed score (probability) at which a tag turns on."""
    off_threshold: float = _f(0.3, min=0.0, max=1.0)
    """Smoothed score below which it turns off (hysteresis); <= on_threshold."""
    window_hops: int | None = _f(None, min=1, max=1000)
    """Smoothing window (hops); null with window_s null = DEFAULT_WINDOW_HOPS."""
    method: str = _f("mean", choices=METHODS)
    """Smoothing: "mean" or "median"."""
    min_duration_s: float = _f(0.0, min=0.0, max=3600.0)
    """A tag must stay on this long before its start is published (s)."""
    max_event_s: float = _f(30.0, gt=0.0, max=86400.0)
    """Longer events are ended and restarted (s)."""
    hold_s: float = _f(0.0, min=0.0, max=3600.0)
    """An announced event ends only once it has been off this long (s): a sound back on within it (an
    alarm's next beep group, a dog's next bark) continues the same event; its end is published this late."""
    window_s: float | None = _f(None, gt=0.0, max=600.0)
    """Smoothing window (s), in place of window_hops: each model smooths over the hops that span it
    (rounded up), so the window means the same time at every latency_ms."""

    def smoother(self, hop_samples: int, sample_rate_hz: int) -> TagSmootherConfig:
        """These settings as the service's tag smoother takes them for a model stepping hop_samples."""
        if self.window_s is not None:
            hops = window_hops(self.window_s, hop_samples, sample_rate_hz)
        else:
            hops = DEFAULT_WINDOW_HOPS if self.window_hops is None else self.window_hops
        return TagSmootherConfig(self.on_threshold, self.off_threshold, hops, self.method,
                                 self.min_duration_s, self.max_event_s, self.hold_s)


@dataclass(frozen=True)
class TagConfig:
    name: str = _f("")
    """A tag label of a loaded model."""
    on_threshold: float | None = _f(None, min=0.0, max=1.0)
    off_threshold: float | None = _f(None, min=0.0, max=1.0)
    window_hops: int | None = _f(None, min=1, max=1000)
    method: str | None = _f(None, choices=METHODS)
    min_duration_s: float | None = _f(None, min=0.0, max=3600.0)
    max_event_s: float | None = _f(None, gt=0.0, max=86400.0)
    hold_s: float | None = _f(None, min=0.0, max=3600.0)
    window_s: float | None = _f(None, gt=0.0, max=600.0)
    """Each null field takes its value from tag_defaults; a tag that sets window_hops or window_s
    takes neither from there."""
    enabled: bool = _f(True)
    """Publish start/end events for this tag."""
    clip: bool | None = _f(None)
    """Keep each of its events whole as a clip (with clips.enabled); null = clips.tags."""


@dataclass(frozen=True)
class BusConfig:
    endpoint: str | None = _f(None)
    """ZeroMQ endpoint to bind; null = ipc:///run/streamd/events, else $XDG_RUNTIME_DIR/streamd/events,
    else /tmp/streamd-<uid>/events. tcp://127.0.0.1:PORT also works."""
    high_water_mark: int = _f(10000, min=1, max=10_000_000)
    """Messages queued per subscriber before the bus drops (messages)."""
    drop_for_all: bool = _f(False)
    """false: a full subscriber loses its own messages, silently (others unaffected; it sees seq gaps).
    true: a full subscriber makes the publisher drop the message for everyone and count it."""
    linger_ms: int = _f(200, min=0, max=10000)
    """How long close() may wait to flush queued messages (ms)."""
    scores: bool = _f(False)
    """Publish raw scores on topic "scores"."""
    scores_interval_s: float = _f(0.5, gt=0.0, max=3600.0)
    """At most one scores event per model and stream per this much stream time (s)."""
    allow_network: bool = _f(False)
    """Must be true to bind anything but ipc:// or a loopback address."""


@dataclass(frozen=True)
class ControlConfig:
    endpoint: str | None = _f(None)
    """ZeroMQ REP endpoint for commands; null = like bus.endpoint with "control" for "events"."""
    allow_network: bool = _f(False)
    """Must be true to bind anything but ipc:// or a loopback address."""


@dataclass(frozen=True)
class SchedulerConfig:
    max_lag_s: float = _f(2.0, gt=0.0, max=60.0)
    """When a model is this far behind its stream (s), skip to fresh audio and reset its state."""
    ring_s: float = _f(10.0, gt=0.0, max=600.0)
    """Audio kept per stream (s): bounds max_lag_s and the clip pre-roll."""


@dataclass(frozen=True)
class HeartbeatConfig:
    interval_s: float = _f(30.0, gt=0.0, max=86400.0)
    """A status event this often (s, wall clock), besides those at start and stop."""


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _f("INFO", choices=LOG_LEVELS)
    """Log level (to stderr; journald under systemd)."""


@dataclass(frozen=True)
class ClipsConfig:
    enabled: bool = _f(False)
    """Save audio around each keyword event as WAV with a JSON sidecar."""
    tags: bool = _f(False)
    """Also save each tag event whole: from pre_roll_s before its start to post_roll_s after its end (a tag's
    own clip: overrides this for that tag, a keyword's for that keyword)."""
    dir: str | None = _f(None)
    """Folder (relative to the config folder); null = $STATE_DIRECTORY/clips or ~/.local/state/streamd/clips."""
    pre_roll_s: float = _f(1.5, min=0.0, max=60.0)
    """Audio kept before the event position, or a tag's start (s)."""
    post_roll_s: float = _f(0.5, min=0.0, max=60.0)
    """Audio kept after it (s)."""
    max_count: int = _f(100, min=1, max=1_000_000)
    """Most clips kept; the oldest are removed first (clips)."""
    max_bytes: int = _f(50_000_000, min=1000, max=100_000_000_000)
    """Most bytes kept, WAV plus sidecar (bytes)."""


@dataclass(frozen=True)
class Config:
    inputs: tuple[InputConfig, ...] = _f(lambda: (InputConfig(),))
    models: tuple[ModelConfig, ...] = _f(lambda: (ModelConfig(),))
    keyword_defaults: KeywordDefaults = _f(KeywordDefaults)
    keywords: tuple[KeywordConfig, ...] = _f(tuple)
    tag_defaults: TagDefaults = _f(TagDefaults)
    tags: tuple[TagConfig, ...] = _f(tuple)
    bus: BusConfig = _f(BusConfig)
    control: ControlConfig = _f(ControlConfig)
    scheduler: SchedulerConfig = _f(SchedulerConfig)
    heartbeat: HeartbeatConfig = _f(HeartbeatConfig)
    logging: LoggingConfig = _f(LoggingConfig)
    clips: ClipsConfig = _f(ClipsConfig)
    base_dir: str = field(default=".", metadata={"internal": True})
    """The config file's folder (not a YAML key): relative paths start here."""

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def keyword_settings(self) -> dict[str, tuple[KeywordDefaults, bool]]:
        """name -> (effective threshold/n_of_m/refractory/speech and pause gates, enabled)."""
        out = {}
        for kw in self.keywords:
            merged = {f.name: getattr(kw, f.name) for f in dataclasses.fields(KeywordDefaults)}
            values = {k: v if v is not None else getattr(self.keyword_defaults, k) for k, v in merged.items()}
            out[kw.name] = (KeywordDefaults(**values), kw.enabled)
        return out

    def keeps_clip(self, kind: str, name: str) -> bool:
        """Does an event of this keyword or tag keep a clip while clips.enabled? Its entry's clip: where set, else
        every keyword's does and a tag's as clips.tags says (a label enabled at run time has no entry)."""
        entries, default = (self.keywords, True) if kind == KIND_KEYWORD else (self.tags, self.clips.tags)
        own = next((entry.clip for entry in entries if entry.name == name), None)
        return default if own is None else own

    def tag_settings(self) -> dict[str, tuple[TagDefaults, bool]]:
        out = {}
        for tag in self.tags:
            merged = {f.name: getattr(tag, f.name) for f in dataclasses.fields(TagDefaults)}
            own_window = tag.window_hops is not None or tag.window_s is not None  # hops or seconds, not a mix
            values = {k: v if v is not None or (own_window and k in WINDOW_KEYS) else getattr(self.tag_defaults, k)
                      for k, v in merged.items()}
            out[tag.name] = (TagDefaults(**values), tag.enabled)
        return out


# ---------------------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    return config_from_dict({} if raw is None else raw, base_dir=path.resolve().parent, source=str(path))


def config_from_dict(raw, base_dir: str | Path = ".", source: str = "config") -> Config:
    try:
        config = _load_dataclass(Config, raw, "")
        config = dataclasses.replace(config, base_dir=str(base_dir))
        _check_config(config)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return config


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        plural = {int: "integers", float: "numbers", str: "strings"}.get(args[0], "values")
        return f"a list of {len(args)} {plural}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true/false", int: "an integer", float: "a finite number", str: "a string"}.get(tp, str(tp))


def _bad(path: str, value, expected: str) -> ConfigError:
    hint = ""
    if isinstance(value, bool) and "string" in expected:
        hint = " (YAML reads unquoted yes/no/on/off as true/false: quote it, e.g. \"yes\")"
    return ConfigError(f"{path or '<top>'}: got {value!r}, expected {expected}{hint}")


def _convert(value, tp, path: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _convert(value, arg, path)
                except ConfigError:
                    continue
        raise _bad(path, value, _describe(tp))
    if dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, path)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise _bad(path, value, _describe(tp))
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _bad(path, value, _describe(tp))
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise _bad(path, value, _describe(tp))


def _check_limits(value, limits: dict, path: str) -> None:
    if value is None:
        return
    if "choices" in limits and value not in limits["choices"]:
        raise _bad(path, value, "one of " + ", ".join(map(str, limits["choices"])))
    if "min" in limits and value < limits["min"] or "max" in limits and value > limits["max"]:
        raise _bad(path, value, f"a value in [{limits.get('min', '-inf')}, {limits.get('max', 'inf')}]")
    if "gt" in limits and not value > limits["gt"]:
        raise _bad(path, value, f"a value > {limits['gt']}")


def _load_dataclass(cls, raw, path: str):
    if not isinstance(raw, dict):
        raise _bad(path, raw, "a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, value in raw.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in known:
            if not (isinstance(key, str) and key.isprintable()):  # keep the message on one line
                sub = f"{path}.{key!r}" if path else repr(key)
            raise ConfigError(f"{sub}: unknown key (expected one of: {', '.join(known)})")
        kwargs[key] = _convert(value, hints[key], sub)
        _check_limits(kwargs[key], known[key].metadata, sub)
    return cls(**kwargs)


# ------------------------------------------------------------------------------ cross-field checks


def _check_config(config: Config) -> None:
    if not config.inputs:
        raise ConfigError("inputs: got [], expected at least one input")
    if not config.models:
        raise ConfigError("models: got [], expected at least one model")
    for i, inp in enumerate(config.inputs):
        _check_name(inp.name, f"inputs[{i}].name")
    _unique([i.name for i in config.inputs], "inputs", "name")
    _unique([m.name or Path(m.path).stem for m in config.models], "models", "name")
    for i, inp in enumerate(config.inputs):
        if not (inp.source in ("mic", "stdin") or inp.source.startswith("file:") and len(inp.source) > 5):
            raise _bad(f"inputs[{i}].source", inp.source, '"mic", "stdin" or "file:PATH"')
        if inp.channels is not None and (not inp.channels or min(inp.channels) < 0):
            raise _bad(f"inputs[{i}].channels", list(inp.channels), "a non-empty list of channel indices >= 0, or null")
    _check_n_of_m(config.keyword_defaults.n_of_m, "keyword_defaults.n_of_m")
    _check_pause_window(config.keyword_defaults.pause_before_s, "keyword_defaults.pause_before_s")
    if config.keyword_defaults.group:
        _check_name(config.keyword_defaults.group, "keyword_defaults.group")
    for i, kw in enumerate(config.keywords):
        _check_name(kw.name, f"keywords[{i}].name")
        if kw.group:
            _check_name(kw.group, f"keywords[{i}].group")
        if kw.n_of_m is not None:
            _check_n_of_m(kw.n_of_m, f"keywords[{i}].n_of_m")
        if kw.pause_before_s is not None:
            _check_pause_window(kw.pause_before_s, f"keywords[{i}].pause_before_s")
    _unique([k.name for k in config.keywords], "keywords", "name")
    _check_wake_words(config)
    for i, tag in enumerate(config.tags):
        _check_name(tag.name, f"tags[{i}].name")
    _unique([t.name for t in config.tags], "tags", "name")
    sections = [(config.tag_defaults, "tag_defaults"), *((t, f"tags[{i}]") for i, t in enumerate(config.tags))]
    for section, path in sections:
        if section.window_hops is not None and section.window_s is not None:
            raise ConfigError(f"{path}: got window_hops {section.window_hops} and window_s {section.window_s}, "
                              f"expected one of them (hops or seconds)")
    for name, (tag, _) in config.tag_settings().items():
        if tag.off_threshold > tag.on_threshold:
            i = [t.name for t in config.tags].index(name)
            raise ConfigError(f"tags[{i}] ({name}): off_threshold {tag.off_threshold} exceeds on_threshold "
                              f"{tag.on_threshold}, expected off_threshold <= on_threshold")
    _check_endpoint(config.bus.endpoint, config.bus.allow_network, "bus")
    _check_endpoint(config.control.endpoint, config.control.allow_network, "control")
    if config.scheduler.max_lag_s >= config.scheduler.ring_s:
        raise ConfigError(f"scheduler.max_lag_s: got {config.scheduler.max_lag_s}, expected less than scheduler.ring_s "
                          f"({config.scheduler.ring_s})")
    if config.clips.enabled and config.clips.pre_roll_s + config.clips.post_roll_s >= config.scheduler.ring_s:
        raise ConfigError(f"clips.pre_roll_s: got {config.clips.pre_roll_s}, expected pre_roll_s + post_roll_s "
                          f"below scheduler.ring_s ({config.scheduler.ring_s})")


def idle_clip_warning(config: Config) -> str | None:
    """Which entries ask for clips while clips.enabled is false, or None (not an error: clips may be off for now)."""
    if config.clips.enabled:
        return None
    asked = [*(f"keywords[{i}].clip" for i, k in enumerate(config.keywords) if k.clip),
             *(f"tags[{i}].clip" for i, t in enumerate(config.tags) if t.clip),
             *(["clips.tags"] if config.clips.tags else [])]
    if not asked:
        return None
    return f"clips.enabled is false, so {', '.join(asked)} keep{'s' * (len(asked) == 1)} no clips"


def _unique(names: list, section: str, key: str) -> None:
    seen = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{section}[{i}].{key}: got {name!r} again, expected each {key} once")
        seen.add(name)


def _check_wake_words(config: Config) -> None:
    """Every keyword's wake word is a listed keyword that waits for none itself."""
    settings = config.keyword_settings()
    for i, kw in enumerate(config.keywords):
        wake = settings[kw.name][0].wake_word(kw.name)
        if wake is None:
            continue
        path = f"keywords[{i}].after" if kw.after is not None else f"keyword_defaults.after (for keywords[{i}])"
        if wake not in settings:
            raise _bad(path, wake, "the name of a keyword listed under keywords (the wake word), or null")
        if settings[wake][0].wake_word(wake) is not None:
            raise ConfigError(f"{path}: got {wake!r}, which itself waits for {settings[wake][0].after!r}; "
                              f"expected a wake word that waits for none (set after: \"\" on {wake!r})")


def _check_name(name: str, path: str) -> None:
    if not name or not name.isprintable() or name != name.strip():
        raise _bad(path, name, "a non-empty name without control characters or surrounding spaces")


def _check_n_of_m(n_of_m: tuple[int, int], path: str) -> None:
    n, m = n_of_m
    if not 1 <= n <= m <= 100:
        raise _bad(path, list(n_of_m), "[N, M] with 1 <= N <= M <= 100")


def _check_pause_window(pause_s: tuple[float, float], path: str) -> None:
    start, end = pause_s
    if not 0 <= start <= end <= 10:
        raise _bad(path, list(pause_s), "[FROM, TO] seconds with 0 <= FROM <= TO <= 10")


def _check_endpoint(endpoint: str | None, allow_network: bool, section: str) -> None:
    if endpoint is None:
        return
    path = f"{section}.endpoint"
    if endpoint.startswith("ipc://") and len(endpoint) > 6:
        return
    if not endpoint.startswith("tcp://"):
        raise _bad(path, endpoint, "ipc://PATH or tcp://HOST:PORT")
    host, sep, port = endpoint[6:].rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise _bad(path, endpoint, "tcp://HOST:PORT with a port in 1..65535")
    if not (allow_network or _is_loopback(host)):
        raise _bad(path, endpoint, f"a local endpoint (ipc:// or tcp://127.0.0.1:PORT), or {section}.allow_network: true")


def _is_loopback(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_against_models(config: Config, infos: dict[str, ModelInfo]) -> None:
    """infos: model name -> ModelInfo, in config.models order. Raises ConfigError naming the path."""
    for i, (mc, info) in enumerate(zip(config.models, infos.values())):
        hop_samples_for_latency(info, mc.latency_ms, f"models[{i}].latency_ms")
    for kind, entries, section in ((KIND_KEYWORD, config.keywords, "keywords"), (KIND_TAG, config.tags, "tags")):
        available = sorted({n for info in infos.values() for n in info.names_of_kind(kind)})
        for i, entry in enumerate(entries):
            if entry.name not in available:
                listed = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
                raise ConfigError(f"{section}[{i}].name: got {entry.name!r}, expected a {kind} label of the loaded "
                                  f"model(s): {listed or 'none'}")
    settings = config.keyword_settings()
    for mc, (model, info) in zip(config.models, infos.items()):
        own = set(info.names_of_kind(KIND_KEYWORD))
        for i, kw in enumerate(config.keywords):
            wake = settings[kw.name][0].wake_word(kw.name)
            if kw.name in own and wake is not None and wake not in own:
                raise ConfigError(f"keywords[{i}] ({kw.name}): waits for {wake!r}, expected a keyword of the same "
                                  f"model ({model}, {mc.path}), whose events it follows")
    rates = {info.sample_rate_hz for info in infos.values()}
    if len(rates) > 1:
        raise ConfigError(f"models: got sample rates {sorted(rates)} Hz, expected all models at one rate")


def hop_samples_for_latency(info: ModelInfo, latency_ms: float, path: str = "latency_ms") -> int:
    for hop in info.hop_samples:
        if abs(info.hop_ms(hop) - latency_ms) < 0.5:
            return hop
    accepted = ", ".join(f"{info.hop_ms(h):g}" for h in info.hop_samples)
    raise ConfigError(f"{path}: got {latency_ms:g}, expected one of the model's hops: {accepted} (ms)")


# ------------------------------------------------------------------------------------- endpoints


def runtime_dir() -> Path:
    """/run/streamd when usable (systemd's RuntimeDirectory), else $XDG_RUNTIME_DIR/streamd, else /tmp/streamd-<uid>."""
    run = Path("/run/streamd")
    if run.is_dir() and os.access(run, os.W_OK | os.X_OK):
        return run
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "streamd"
    return Path(f"/tmp/streamd-{os.getuid()}")


def bus_endpoint(config: Config) -> str:
    return config.bus.endpoint or f"ipc://{runtime_dir() / 'events'}"


def control_endpoint(config: Config) -> str:
    return config.control.endpoint or f"ipc://{runtime_dir() / 'control'}"
