"""Count the multiply-accumulate work of one model step: the physical floor of its cost.

Only the ops that do the arithmetic are counted (MatMul, Gemm, Conv and their int8 forms); each
multiply-add is 2 FLOPs. Shape inference cannot see through the exported graphs' computed reshapes,
so the shapes come from one real step at the given hop: every counted node's operands are exposed as
extra graph outputs and read back. Needs the ``onnx`` package (the train/test extra), not torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# op type -> (index of input A, index of weight W) ; FLOPs = 2 * size(output) * reduced length
_MATMUL_OPS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "DynamicQuantizeMatMul": (0, 1),
               "QLinearMatMul": (0, 3), "Gemm": (0, 1), "FusedMatMul": (0, 1)}
_CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}


def flops_per_step(path: str | Path, hop_samples: int) -> int:
    """FLOPs of one step at hop_samples (a fresh, all-zero state; the work does not depend on it)."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    nodes = [n for n in proto.graph.node if n.op_type in _MATMUL_OPS or n.op_type in _CONV_OPS]
    shapes = _initializer_shapes(proto)
    wanted = set()
    for node in nodes:
        a, w = (_MATMUL_OPS.get(node.op_type) or _CONV_OPS[node.op_type])
        wanted.update(name for name in (node.input[a], node.input[w], node.output[0]) if name not in shapes)
    listed = {o.name for o in proto.graph.output}
    for name in sorted(wanted - listed):
        proto.graph.output.append(onnx.ValueInfoProto(name=name))  # type left to onnxruntime

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the nodes we named
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: _zeros(i, hop_samples) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    for name, value in zip(names, session.run(names, feeds)):
        shapes.setdefault(name, tuple(np.shape(value)))
    for i in session.get_inputs():
        shapes.setdefault(i.name, feeds[i.name].shape)
    return sum(_node_flops(node, shapes) for node in nodes)


def _node_flops(node, shapes: dict) -> int:
    out = shapes[node.output[0]]
    if node.op_type in _CONV_OPS:
        weight = shapes[node.input[_CONV_OPS[node.op_type][1]]]  # (C_out, C_in / groups, k...)
        return 2 * int(np.prod(out)) * int(np.prod(weight[1:]))
    a = shapes[node.input[0]]
    trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
    reduced = a[0] if trans_a else a[-1]
    return 2 * int(np.prod(out)) * int(reduced)


def _initializer_shapes(proto) -> dict:
    shapes = {init.name: tuple(init.dims) for init in proto.graph.initializer}
    for node in proto.graph.node:  # constants folded into Constant nodes by some exporters
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = tuple(attr.t.dims)
    return shapes


def _zeros(node, hop_samples: int) -> np.ndarray:
    # contract: audio is [1, hop_samples]; state shapes are static
    shape = [d if isinstance(d, int) else (1 if axis == 0 else hop_samples) for axis, d in enumerate(node.shape)]
    dtype = np.int64 if node.type == "tensor(int64)" else np.float32
    return np.zeros(shape, dtype)
