"""The front end's DFT as one convolution (what the export writes) against a two-stage Cooley-Tukey DFT
built from ONNX ops (512 = 16 x 32 with real-input symmetry: 4.7x fewer multiply-adds), each followed
by the mel product, for one 160 ms hop (16 frames of 400 samples, remove_dc on), in onnxruntime on one
thread. A random non-negative 257 x 64 matrix stands in for the mel filterbank (the same cost).

    .venv/bin/python scripts/bench_frontend_dft.py

Session 25 (AMD EPYC, AVX2 only, idle): 107-109 us per hop against 111-122 us, an identity graph 9-13 us.
The ~20 small nodes of the two-stage form cost what its products save, so the export keeps the convolution.
Session 26 (same kind of machine): frames gathered by index and one MatMul with the kernels 156-172 us, the
ONNX DFT op on the framed, windowed signal ~300 us, the convolution 103-123 us.
"""

import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

WIN, HOP, N_FFT, FRAMES, N_MELS = 400, 160, 512, 16, 64
N_BINS = N_FFT // 2 + 1
AUDIO = WIN - HOP + FRAMES * HOP  # samples one hop's front end reads: its 16 hops and the carried 240
N1, N2 = 16, 32  # n = 32 n1 + n2, k = k1 + 16 k2
K1 = N1 // 2 + 1  # k1 in 0..8; the other bins are conjugates of these (real input)
ROWS = -(-WIN // N2)  # n1 rows that hold samples (13); the rest of the 512 are zeros


def const(name: str, value) -> object:
    return numpy_helper.from_array(np.asarray(value), name)


def ints(name: str, *values: int) -> object:
    return const(name, np.array(values, np.int64))


def session(nodes: list, initializers: list, output: str) -> ort.InferenceSession:
    graph = helper.make_graph(nodes, "frontend", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, AUDIO])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, [])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def dft_kernels(window: np.ndarray) -> np.ndarray:
    """Zero-mean (remove_dc) windowed cosine and sine rows: [2 * bins, win]."""
    phase = 2 * np.pi * np.arange(N_BINS)[:, None] * np.arange(WIN)[None, :] / N_FFT
    kernels = np.concatenate([np.cos(phase), -np.sin(phase)]) * window
    return kernels - kernels.mean(axis=1, keepdims=True)


def frame_index() -> np.ndarray:
    return (np.arange(FRAMES)[:, None] * HOP + np.arange(WIN)[None, :]).astype(np.int64)


def convolution(window: np.ndarray, mel: np.ndarray) -> ort.InferenceSession:
    """The exported form: zero-mean windowed DFT kernels as one strided Conv, |X|^2, then the mel product."""
    kernels = dft_kernels(window)
    nodes = [helper.make_node("Unsqueeze", ["x", "axis1"], ["x3"]),
             helper.make_node("Conv", ["x3", "kernels"], ["spectrum"], strides=[HOP]),
             helper.make_node("Split", ["spectrum", "halves"], ["re", "im"], axis=1),
             helper.make_node("Mul", ["re", "re"], ["re2"]), helper.make_node("Mul", ["im", "im"], ["im2"]),
             helper.make_node("Add", ["re2", "im2"], ["power"]),
             helper.make_node("Transpose", ["power"], ["power_t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["power_t", "mel"], ["y"])]
    init = [const("kernels", kernels.astype(np.float32)[:, None, :]), ints("axis1", 1), ints("halves", N_BINS, N_BINS),
            const("mel", mel)]
    return session(nodes, init, "y")


def gathered(window: np.ndarray, mel: np.ndarray) -> ort.InferenceSession:
    """Frames gathered by a constant index, one MatMul with the kernels (a constant B, prepacked), |X|^2 as
    the square times the mel matrix stacked twice (re^2 and im^2 take the same weights)."""
    nodes = [helper.make_node("Gather", ["x", "index"], ["frames"], axis=1),  # (1, F, 400)
             helper.make_node("MatMul", ["frames", "kernels_t"], ["spectrum"]),
             helper.make_node("Mul", ["spectrum", "spectrum"], ["squares"]),
             helper.make_node("MatMul", ["squares", "mel2"], ["y"])]
    init = [const("index", frame_index()), const("kernels_t", dft_kernels(window).T.astype(np.float32).copy()),
            const("mel2", np.concatenate([mel, mel]))]
    return session(nodes, init, "y")


def dft_op(window: np.ndarray, mel: np.ndarray) -> ort.InferenceSession:
    """The ONNX DFT operator (an FFT inside onnxruntime) on gathered, mean-removed, windowed frames."""
    nodes = [helper.make_node("Gather", ["x", "index"], ["frames"], axis=1),
             helper.make_node("ReduceMean", ["frames"], ["mean"], axes=[2], keepdims=1),
             helper.make_node("Sub", ["frames", "mean"], ["centred"]),
             helper.make_node("Mul", ["centred", "window"], ["windowed"]),
             helper.make_node("Reshape", ["windowed", "signal_shape"], ["signal"]),  # (F, 400, 1)
             helper.make_node("DFT", ["signal", "n_fft"], ["spectrum"], onesided=1, axis=1),  # (F, bins, 2)
             helper.make_node("Mul", ["spectrum", "spectrum"], ["squares"]),
             helper.make_node("ReduceSum", ["squares", "axis2"], ["power"], keepdims=0),
             helper.make_node("MatMul", ["power", "mel"], ["y"])]
    init = [const("index", frame_index()), const("window", window.astype(np.float32)), ints("signal_shape", FRAMES, WIN, 1),
            const("n_fft", np.array(N_FFT, np.int64)), ints("axis2", 2), const("mel", mel)]
    return session(nodes, init, "y")


def two_stage(window: np.ndarray, mel: np.ndarray) -> ort.InferenceSession:
    """Frames from 80-sample blocks (5 strided slices), mean removed, windowed, padded to 13 x 32; a 16-point
    DFT over n1 (k1 0..8) as one MatMul; per k1 a 32 x 32 complex product carrying the twiddles; |X|^2;
    the mel product per k1 with the filterbank's rows placed at (k1, k2), summed over k1."""
    nodes = [helper.make_node("Reshape", ["x", "blocks_shape"], ["blocks"])]
    init = [ints("blocks_shape", 1, AUDIO // 80, 80), ints("axis1", 1), ints("every_other", 2)]
    for j in range(WIN // 80):
        nodes.append(helper.make_node("Slice", ["blocks", f"start{j}", f"end{j}", "axis1", "every_other"], [f"part{j}"]))
        init += [ints(f"start{j}", j), ints(f"end{j}", j + 2 * FRAMES - 1)]
    nodes += [helper.make_node("Concat", [f"part{j}" for j in range(WIN // 80)], ["frames"], axis=2),  # (1, F, 400)
              helper.make_node("ReduceMean", ["frames"], ["mean"], axes=[2], keepdims=1),
              helper.make_node("Sub", ["frames", "mean"], ["centred"]),
              helper.make_node("Pad", ["centred", "pads"], ["padded"]),  # (1, F, 416)
              helper.make_node("Mul", ["padded", "window"], ["windowed"]),
              helper.make_node("Reshape", ["windowed", "rows_shape"], ["rows"]),  # (F, 13, 32): [n1, n2]
              helper.make_node("MatMul", ["stage1", "rows"], ["y1"]),  # (F, 2*K1, 32): re/im of k1, by n2
              helper.make_node("Reshape", ["y1", "y1_shape"], ["y1_4"]),  # (F, 2, K1, 32)
              helper.make_node("Transpose", ["y1_4"], ["y1_t"], perm=[2, 0, 1, 3]),  # (K1, F, 2, 32)
              helper.make_node("Reshape", ["y1_t", "y2_shape"], ["y2_in"]),  # (K1, F, 64)
              helper.make_node("MatMul", ["y2_in", "stage2"], ["spectrum"]),  # (K1, F, 64): re/im of k2
              helper.make_node("Mul", ["spectrum", "spectrum"], ["squares"]),
              helper.make_node("Reshape", ["squares", "y1_parts"], ["square_parts"]),  # (K1, F, 2, 32)
              helper.make_node("ReduceSum", ["square_parts", "axis2"], ["power"], keepdims=0),  # (K1, F, 32)
              helper.make_node("MatMul", ["power", "mel_by_k1"], ["mel_parts"]),  # (K1, F, 64)
              helper.make_node("ReduceSum", ["mel_parts", "axis0"], ["y"], keepdims=0)]  # (F, 64)
    n1_k1 = 2 * np.pi * np.arange(K1)[:, None] * np.arange(ROWS)[None, :] / N1
    stage1 = np.concatenate([np.cos(n1_k1), -np.sin(n1_k1)])
    stage2 = np.zeros((K1, 2 * N2, 2 * N2))
    for k1 in range(K1):  # X[k1 + 16 k2] = sum_n2 Y[k1, n2] exp(-2 pi i n2 (k1 + 16 k2) / 512)
        angle = 2 * np.pi * np.arange(N2)[:, None] * (k1 + N1 * np.arange(N2))[None, :] / N_FFT
        re, im = np.cos(angle), -np.sin(angle)
        stage2[k1] = np.block([[re, im], [-im, re]])
    mel_by_k1 = np.zeros((K1, N2, N_MELS))
    for b in range(N_BINS):  # bin b, or its conjugate 512 - b, is at (k1, k2) with k1 <= 8
        at = b if b % N1 < K1 else N_FFT - b
        mel_by_k1[at % N1, at // N1] += mel[b]
    init += [ints("pads", 0, 0, 0, 0, 0, ROWS * N2 - WIN), const("window", np.pad(window, (0, ROWS * N2 - WIN)).astype(np.float32)),
             ints("rows_shape", FRAMES, ROWS, N2), const("stage1", stage1.astype(np.float32)),
             ints("y1_shape", FRAMES, 2, K1, N2), ints("y2_shape", K1, FRAMES, 2 * N2), const("stage2", stage2.astype(np.float32)),
             ints("y1_parts", K1, FRAMES, 2, N2), ints("axis2", 2), const("mel_by_k1", mel_by_k1.astype(np.float32)),
             ints("axis0", 0)]
    return session(nodes, init, "y")


def best_us(sess: ort.InferenceSession, x: np.ndarray, runs: int = 400, repeats: int = 9) -> float:
    """Fastest mean over repeats of runs calls: the machine's other tenants only ever add time."""
    means = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {"x": x})
        means.append((time.perf_counter() - start) / runs * 1e6)
    return min(means)


def main() -> None:
    rng = np.random.default_rng(0)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann, as the front end's
    mel = np.abs(rng.standard_normal((N_BINS, N_MELS))).astype(np.float32)
    mel[0] = 0.0  # the DC bin gets no weight
    x = (0.1 * rng.standard_normal((1, AUDIO)) + 0.05).astype(np.float32)
    conv = convolution(window, mel)
    others = {"two-stage": two_stage(window, mel), "gather + matmul": gathered(window, mel), "DFT op": dft_op(window, mel)}
    ref = conv.run(None, {"x": x})[0][0]
    for name, other in others.items():
        got = other.run(None, {"x": x})[0].reshape(ref.shape)
        print(f"{name} vs convolution: max error {np.abs(ref - got).max() / np.abs(ref).max():.1e} of the largest mel energy")
    identity = session([helper.make_node("Identity", ["x"], ["y"])], [], "y")
    times = {"identity": identity, "convolution + mel": conv, **others}
    print("us per hop: " + ", ".join(f"{name} {best_us(sess, x):.1f}" for name, sess in times.items()))


if __name__ == "__main__":
    main()
