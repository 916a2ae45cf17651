"""The streaming-model contract: the one definition that writers and readers of model files share.

A model is one function over explicit state:

    step(audio[1, hop_samples] float32, state_in.*...) -> (scores[1, n_labels], state_out.*...)

- ``audio`` is mono, in [-1, 1], at ``sample_rate_hz``; ``hop_samples`` is one of the sizes the
  graph accepts (listed in the metadata, smallest first).
- ``scores`` are probabilities (sigmoid applied in the graph), one per label.
- Every ``state_in.<suffix>`` has a ``state_out.<suffix>`` of the same static shape and dtype.
  An all-zero state means "start of stream".
- The file's ``metadata_props`` carry the keys below as strings.

This module is pure Python (no numpy, onnx or torch) so that the exporter, the loader and the
service all import the same names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CONTRACT_VERSION = "1"

AUDIO_INPUT = "audio"
SCORES_OUTPUT = "scores"
STATE_IN_PREFIX = "state_in."
STATE_OUT_PREFIX = "state_out."

KEY_CONTRACT = "streamd.contract"
KEY_SAMPLE_RATE = "sample_rate_hz"
KEY_HOPS = "hop_samples"
KEY_LABELS = "labels"
KEY_FAMILY = "family"
KEY_RECEPTIVE_FIELD = "receptive_field_s"
KEY_PROVENANCE = "provenance"
KEY_LICENCE = "licence"
REQUIRED_KEYS = (
    KEY_CONTRACT,
    KEY_SAMPLE_RATE,
    KEY_HOPS,
    KEY_LABELS,
    KEY_FAMILY,
    KEY_RECEPTIVE_FIELD,
    KEY_PROVENANCE,
    KEY_LICENCE,
)

KIND_KEYWORD = "keyword"
KIND_TAG = "tag"
LABEL_KINDS = (KIND_KEYWORD, KIND_TAG)


class ContractError(ValueError):
    """A model file does not follow the contract; the message says what is wrong."""


@dataclass(frozen=True)
class Label:
    name: str
    kind: str  # "keyword" or "tag"


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself in its metadata."""

    sample_rate_hz: int
    hop_samples: tuple[int, ...]  # accepted hop sizes, smallest first
    labels: tuple[Label, ...]
    family: str
    receptive_field_s: float
    provenance: dict = field(default_factory=dict)  # training data, date, code revision, recipe
    licence: str = ""
    extra: dict = field(default_factory=dict)  # further string metadata, kept as written

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def names_of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels if label.kind == kind)

    def hop_ms(self, hop_samples: int) -> float:
        return 1000.0 * hop_samples / self.sample_rate_hz

    def to_metadata(self) -> dict[str, str]:
        props = dict(self.extra)
        props.update(
            {
                KEY_CONTRACT: CONTRACT_VERSION,
                KEY_SAMPLE_RATE: str(self.sample_rate_hz),
                KEY_HOPS: json.dumps(list(self.hop_samples)),
                KEY_LABELS: json.dumps([{"name": l.name, "kind": l.kind} for l in self.labels]),
                KEY_FAMILY: self.family,
                KEY_RECEPTIVE_FIELD: repr(float(self.receptive_field_s)),
                KEY_PROVENANCE: json.dumps(self.provenance, sort_keys=True),
                KEY_LICENCE: self.licence,
            }
        )
        return props

    @classmethod
    def from_metadata(cls, props: dict[str, str]) -> "ModelInfo":
        missing = [key for key in REQUIRED_KEYS if key not in props]
        if missing:
            raise ContractError(f"metadata is missing key(s) {', '.join(missing)}")
        if props[KEY_CONTRACT] != CONTRACT_VERSION:
            raise ContractError(
                f"metadata {KEY_CONTRACT}={props[KEY_CONTRACT]!r}, this streamd reads version {CONTRACT_VERSION!r}"
            )
        info = cls(
            sample_rate_hz=_parse_positive_int(props, KEY_SAMPLE_RATE),
            hop_samples=_parse_hops(props),
            labels=_parse_labels(props),
            family=_parse_nonempty(props, KEY_FAMILY),
            receptive_field_s=_parse_positive_float(props, KEY_RECEPTIVE_FIELD),
            provenance=_parse_json_object(props, KEY_PROVENANCE),
            licence=_parse_nonempty(props, KEY_LICENCE),
            extra={k: v for k, v in props.items() if k not in REQUIRED_KEYS},
        )
        return info


def state_suffix(input_name: str) -> str:
    """'state_in.cache0' -> 'cache0'."""
    return input_name[len(STATE_IN_PREFIX) :]


def _load_json(props: dict[str, str], key: str):
    try:
        return json.loads(props[key])
    except json.JSONDecodeError as err:
        raise ContractError(f"metadata {key} is not valid JSON ({err.msg}): {props[key][:80]!r}") from None


def _parse_positive_int(props: dict[str, str], key: str) -> int:
    try:
        value = int(props[key])
    except ValueError:
        raise ContractError(f"metadata {key}={props[key]!r} is not an integer") from None
    if value <= 0:
        raise ContractError(f"metadata {key}={value} must be positive")
    return value


def _parse_positive_float(props: dict[str, str], key: str) -> float:
    try:
        value = float(props[key])
    except ValueError:
        raise ContractError(f"metadata {key}={props[key]!r} is not a number") from None
    if not value > 0:
        raise ContractError(f"metadata {key}={value} must be positive")
    return value


def _parse_nonempty(props: dict[str, str], key: str) -> str:
    if not props[key].strip():
        raise ContractError(f"metadata {key} is empty")
    return props[key]


def _parse_hops(props: dict[str, str]) -> tuple[int, ...]:
    hops = _load_json(props, KEY_HOPS)
    if not (isinstance(hops, list) and hops and all(isinstance(h, int) and h > 0 for h in hops)):
        raise ContractError(f"metadata {KEY_HOPS} must be a non-empty JSON list of positive integers, got {props[KEY_HOPS]!r}")
    if hops != sorted(set(hops)):
        raise ContractError(f"metadata {KEY_HOPS} must be sorted, smallest first, without repeats: {hops}")
    return tuple(hops)


def _parse_labels(props: dict[str, str]) -> tuple[Label, ...]:
    raw = _load_json(props, KEY_LABELS)
    if not (isinstance(raw, list) and raw):
        raise ContractError(f"metadata {KEY_LABELS} must be a non-empty JSON list")
    labels = []
    for i, item in enumerate(raw):
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]):
            raise ContractError(f"metadata {KEY_LABELS}[{i}] must be an object with a non-empty 'name'")
        if item.get("kind") not in LABEL_KINDS:
            raise ContractError(f"metadata {KEY_LABELS}[{i}] ({item['name']}) has kind {item.get('kind')!r}, expected one of {LABEL_KINDS}")
        labels.append(Label(item["name"], item["kind"]))
    names = [l.name for l in labels]
    if len(set(names)) != len(names):
        raise ContractError(f"metadata {KEY_LABELS} repeats a name")
    return tuple(labels)


def _parse_json_object(props: dict[str, str], key: str) -> dict:
    value = _load_json(props, key)
    if not isinstance(value, dict):
        raise ContractError(f"metadata {key} must be a JSON object")
    return value
