"""Load a contract model file and step it: one shared session, one explicit state per stream."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamd.contract import (
    AUDIO_INPUT,
    SCORES_OUTPUT,
    STATE_IN_PREFIX,
    STATE_OUT_PREFIX,
    ContractError,
    ModelInfo,
    state_suffix,
)

log = logging.getLogger(__name__)

State = dict[str, np.ndarray]  # state_in name -> array


@dataclass(frozen=True)
class StateSpec:
    input_name: str  # state_in.<suffix>
    output_name: str  # state_out.<suffix>
    shape: tuple[int, ...]
    dtype: np.dtype


_ORT_DTYPES = {"tensor(float)": np.dtype(np.float32), "tensor(int64)": np.dtype(np.int64)}


class Model:
    """A loaded model: its metadata, its session and the shapes of its state. Holds no stream state."""

    def __init__(self, path: Path, info: ModelInfo, session, state_specs: tuple[StateSpec, ...],
                 hop_samples: int | None = None):
        self.path = path
        self.info = info
        self.session = session
        self.state_specs = state_specs
        self.hop_samples = hop_samples  # the one hop the session was built for; None: any of info.hop_samples
        self._output_names = [SCORES_OUTPUT] + [s.output_name for s in state_specs]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def state_bytes(self) -> int:
        return sum(int(np.prod(s.shape)) * s.dtype.itemsize for s in self.state_specs)

    def new_state(self) -> State:
        """The all-zero state: start of stream."""
        return {s.input_name: np.zeros(s.shape, s.dtype) for s in self.state_specs}

    def step(self, audio: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """audio: float32 [hop_samples] -> (scores float32 [n_labels], next state)."""
        feeds = dict(state)
        feeds[AUDIO_INPUT] = audio.reshape(1, -1).astype(np.float32, copy=False)
        scores, *next_values = self.session.run(self._output_names, feeds)
        next_state = {s.input_name: value for s, value in zip(self.state_specs, next_values)}
        return scores[0], next_state

    def with_hop(self, hop_samples: int) -> Model:
        """This model stepped with one hop only (one of info.hop_samples), in a session built for it: a named
        free `audio` length is fixed, so onnxruntime folds the graph's shape arithmetic into constants (half
        the nodes of an exported SAT, ~25 % less time per step). Stepping it with another hop fails."""
        if hop_samples not in self.info.hop_samples:
            raise ContractError(f"{self.path}: hop of {hop_samples} samples is not one it accepts: {list(self.info.hop_samples)}")
        audio_length = next(i for i in self.session.get_inputs() if i.name == AUDIO_INPUT).shape[1]
        fixed_dim = (audio_length, hop_samples) if isinstance(audio_length, str) else None  # an unnamed one stays free
        try:
            session = _session(self.path, self.session.get_session_options().intra_op_num_threads, fixed_dim)
            model = Model(self.path, self.info, session, self.state_specs, hop_samples)
            _check_finite(model)
        except ContractError as err:
            raise ContractError(f"{self.path}: {err}") from None
        log.info("%s: hop fixed at %d samples", self.path.name, hop_samples)
        return model


def load_model(path: str | Path, threads: int = 1, hop_samples: int | None = None) -> Model:
    """Load and check a model file; raise ContractError naming the problem if it does not conform.
    hop_samples: the one hop it will be stepped with (Model.with_hop), or None for any of the file's."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{path}: no such model file")
    try:
        session = _session(path, threads, None)
        info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map)
        specs = _check_io(session, info)
        model = Model(path, info, session, specs)
        _check_finite(model)
    except ContractError as err:
        raise ContractError(f"{path}: {err}") from None
    log.info("loaded %s: family %s, %d labels, hops %s, state %d bytes",
             path.name, info.family, len(info.labels), list(info.hop_samples), model.state_bytes)
    return model if hop_samples is None else model.with_hop(hop_samples)


def _session(path: Path, threads: int, fixed_dim: tuple[str, int] | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if fixed_dim:
        options.add_free_dimension_override_by_name(*fixed_dim)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises several unrelated types for a bad file
        raise ContractError(f"not a loadable ONNX model ({_first_line(err)})") from None


def _check_io(session, info: ModelInfo) -> tuple[StateSpec, ...]:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if AUDIO_INPUT not in inputs:
        raise ContractError(f"no input named {AUDIO_INPUT!r} (inputs: {sorted(inputs)})")
    if SCORES_OUTPUT not in outputs:
        raise ContractError(f"no output named {SCORES_OUTPUT!r} (outputs: {sorted(outputs)})")
    _expect(inputs[AUDIO_INPUT], "tensor(float)", 2)
    _expect(outputs[SCORES_OUTPUT], "tensor(float)", 2)
    n_labels = outputs[SCORES_OUTPUT].shape[1]
    if isinstance(n_labels, int) and n_labels != len(info.labels):
        raise ContractError(f"output {SCORES_OUTPUT!r} has {n_labels} scores but the metadata lists {len(info.labels)} labels")
    audio_len = inputs[AUDIO_INPUT].shape[1]
    if isinstance(audio_len, int) and set(info.hop_samples) != {audio_len}:
        raise ContractError(f"input {AUDIO_INPUT!r} has fixed length {audio_len} but metadata hop_samples is {list(info.hop_samples)}")

    unknown = [n for n in inputs if n != AUDIO_INPUT and not n.startswith(STATE_IN_PREFIX)]
    if unknown:
        raise ContractError(f"inputs {unknown} are neither {AUDIO_INPUT!r} nor {STATE_IN_PREFIX}*")
    specs = []
    for name, node in sorted(inputs.items()):
        if name == AUDIO_INPUT:
            continue
        out_name = STATE_OUT_PREFIX + state_suffix(name)
        if out_name not in outputs:
            raise ContractError(f"state input {name!r} has no output {out_name!r}")
        if not all(isinstance(d, int) and d > 0 for d in node.shape):
            raise ContractError(f"state input {name!r} must have a static shape, got {node.shape}")
        out = outputs[out_name]
        if node.type != out.type or (all(isinstance(d, int) for d in out.shape) and list(out.shape) != list(node.shape)):
            raise ContractError(f"{out_name!r} is {out.type} {out.shape} but {name!r} is {node.type} {node.shape}")
        if node.type not in _ORT_DTYPES:
            raise ContractError(f"state input {name!r} has unsupported type {node.type}")
        specs.append(StateSpec(name, out_name, tuple(node.shape), _ORT_DTYPES[node.type]))
    extra_out = [n for n in outputs if n != SCORES_OUTPUT and n not in {s.output_name for s in specs}]
    if extra_out:
        raise ContractError(f"outputs {extra_out} match no {STATE_IN_PREFIX}* input")
    return tuple(specs)


def _expect(node, onnx_type: str, rank: int) -> None:
    if node.type != onnx_type or len(node.shape) != rank:
        raise ContractError(f"{node.name!r} must be {onnx_type} of rank {rank}, got {node.type} {node.shape}")


def _check_finite(model: Model) -> None:
    """A zero hop from a fresh stream must give finite probabilities."""
    hop = model.hop_samples or model.info.hop_samples[0]
    try:
        scores, state = model.step(np.zeros(hop, np.float32), model.new_state())
    except Exception as err:
        raise ContractError(f"stepping a zero hop of {hop} samples failed ({_first_line(err)})") from None
    if scores.shape != (len(model.info.labels),):
        raise ContractError(f"scores have shape {scores.shape}, expected ({len(model.info.labels)},)")
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise ContractError("scores on a zero input are not finite probabilities in [0, 1]")
    for name, value in state.items():
        if not np.all(np.isfinite(value)):
            raise ContractError(f"state {name!r} is not finite after a zero input")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
