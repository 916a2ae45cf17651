"""Recover a trainable torch model from a contract ONNX file that one of our families wrote.

    model, meta = load_weights("models/streamd-sat.onnx")   # or a checkpoint .pt: the same call
    model, meta = load_weights("runs/sat-burst/last.pt")

The shipped models' checkpoints are not committed (the ONNX file holds the same weights), so a
recipe's ``init:`` may name the shipped file to continue training it, or to fine-tune it on your own
data. The file's metadata says how to rebuild the model (family, size, overrides, labels). The
exporter renames tensors (a linear weight becomes a transposed ``onnx::MatMul_910``) and stores equal
tensors once, so names cannot be trusted. Instead a copy of the rebuilt model, every tensor filled
with its own random values, is exported the same way: the graphs have the same nodes, and the marked
value found at a node's input says which tensor (and whether transposed) the file holds there. The
rebuilt model is then stepped beside the file through the service's loader, at every hop the file
accepts, and anything short of parity is an error. CNN families cannot be imported: the exporter
folds their batch norms into the convolutions.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from export.families import build_model, load_checkpoint
from export.onnx_export import check_parity, export_onnx, model_info, test_signal
from export.streaming import StreamingModel
from streamd.contract import ContractError, ModelInfo
from streamd.model import load_model

PARITY_TOLERANCE = 1e-4


def load_weights(path: str | Path) -> tuple[StreamingModel, dict]:
    """(model in eval mode, meta) from a checkpoint (.pt) or a contract ONNX file (.onnx)."""
    path = Path(path)
    return from_onnx(path) if path.suffix == ".onnx" else load_checkpoint(path)


def from_onnx(path: str | Path, seconds: float = 4.0) -> tuple[StreamingModel, dict]:
    path = Path(path)
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    info = ModelInfo.from_metadata(props)
    if "size" not in props:
        raise ContractError(f"{path}: no 'size' in its metadata; only files written by export.export_model can be imported")
    overrides = json.loads(props.get("overrides", "{}"))
    model = build_model(info.family, info.labels, props["size"], **overrides).eval()
    model.load_state_dict(_recovered_state(proto, model, path))
    _check(model, path, seconds)
    meta = {"family": info.family, "size": props["size"], "overrides": overrides,
            "labels": [[l.name, l.kind] for l in info.labels],
            "extra": {"onnx": str(path), "provenance": info.provenance, "licence": info.licence}}
    return model, meta


def _recovered_state(proto: onnx.ModelProto, model: StreamingModel, path: Path) -> dict[str, torch.Tensor]:
    """model's state dict with every tensor the file holds. Buffers the exporter folded into
    constants (mel filters, windows) keep the values the config builds; parameters must be found."""
    marked, fingerprints = _marked_copy(model)
    with tempfile.TemporaryDirectory() as tmp:
        reference = onnx.load(str(export_onnx(marked, Path(tmp) / "marked.onnx", model_info(marked))))
    file_tensors, nodes = _tensors_and_nodes(proto)
    marked_tensors, ref_nodes = _tensors_and_nodes(reference)
    ops, want_ops = [n.op_type for n in nodes], [n.op_type for n in ref_nodes]
    if ops != want_ops:
        raise ContractError(f"{path}: its graph ({len(ops)} nodes) is not what this code exports for its metadata "
                            f"({len(want_ops)} nodes); export it again with this revision, or import its checkpoint")
    out = model.state_dict()
    found = set()
    for node, ref_node in zip(nodes, ref_nodes):
        for name, ref_name in zip(node.input, ref_node.input):
            if ref_name not in marked_tensors:
                continue
            hit = fingerprints.get(marked_tensors[ref_name].tobytes())
            if hit is None or name not in file_tensors:
                continue
            key, transposed = hit
            value = file_tensors[name]
            out[key] = torch.from_numpy(np.array(value.T if transposed else value)).to(out[key].dtype)
            found.add(key)
    lost = [k for k, _ in model.named_parameters() if k not in found]
    if lost:
        raise ContractError(f"{path}: parameters {lost[:4]}{'...' if len(lost) > 4 else ''} are not stored as such in the file "
                            "(the exporter folds batch norm into convolutions, so CNN families cannot be imported: use their checkpoint)")
    return out


def _tensors_and_nodes(proto: onnx.ModelProto) -> tuple[dict[str, np.ndarray], list]:
    """Initializers by name, also under the names of the Identity nodes that the exporter's
    de-duplication puts in front of the graph (one stored tensor, several users), and the other nodes."""
    tensors = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    nodes = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
        else:
            nodes.append(node)
    return tensors, nodes


def _marked_copy(model: StreamingModel) -> tuple[StreamingModel, dict[bytes, tuple[str, bool]]]:
    """A copy whose floating tensors are fresh random values, and value bytes -> (state key, transposed)."""
    marked = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    fingerprints = {}
    with torch.no_grad():
        for key, tensor in marked.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)  # positive: std-like buffers stay valid
            fingerprints[tensor.numpy().tobytes()] = (key, False)
            if tensor.ndim == 2:
                fingerprints[np.ascontiguousarray(tensor.numpy().T).tobytes()] = (key, True)
    return marked, fingerprints


def _check(model: StreamingModel, path: Path, seconds: float) -> None:
    loaded = load_model(path)
    audio = test_signal(seconds, model.card.sample_rate_hz)
    for hop in model.card.hop_samples:
        report = check_parity(model, loaded, audio, hop)
        if report.max_abs_score_diff > PARITY_TOLERANCE:
            raise ContractError(f"{path}: the rebuilt model's scores differ from the file's by {report.max_abs_score_diff:.1e} "
                                f"at hop {hop}; its weights could not be recovered (was it quantised or exported by other code?)")
