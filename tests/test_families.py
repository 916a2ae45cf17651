"""Every family: stepped == full sequence, ONNX == torch, several hops from one file, long streams stay
bounded, zero state == fresh stream, and the runner is invariant to delivery block sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.families import FAMILIES, build_model
from export.onnx_export import export_and_check, model_info
from export.streaming import WindowedModel
from streamd.model import load_model
from streamd.runner import StreamRunner
from tiny_families import LABELS, TINY, audio, tiny

STEP_TOLERANCE = 1e-5  # logits, float32, relative to max(1, largest |logit|): stepped vs full-sequence torch
ONNX_TOLERANCE = 1e-5  # probabilities: onnxruntime vs torch


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """family -> (torch model, path of its checked ONNX file, parity reports); each exported once."""
    out = {}
    for family in FAMILIES:
        model = tiny(family)
        path = tmp_path_factory.mktemp("families") / f"{family}.onnx"
        reports = export_and_check(model, path, model_info(model, licence="test"), seconds=3.0, tolerance=ONNX_TOLERANCE)
        out[family] = (model, path, reports)
    return out


def sliding_windows(x: torch.Tensor, window: int, hop: int) -> torch.Tensor:
    """The window a windowed model sees after each hop, with silence before the stream: (B, n_hops, window)."""
    padded = torch.cat([torch.zeros(x.shape[0], window), x], dim=1)
    n_hops = x.shape[1] // hop
    return torch.stack([padded[:, (i + 1) * hop : (i + 1) * hop + window] for i in range(n_hops)], dim=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_stepped_torch_equals_full_sequence(family):
    model = tiny(family)
    x = torch.from_numpy(np.stack([audio(4.8, seed=1), audio(4.8, seed=2)]))  # batch of two streams, 30 columns
    with torch.no_grad():
        for hop in model.card.hop_samples:
            stepped = model.stream(x, hop)  # (B, n_hops, L)
            if isinstance(model, WindowedModel):
                windows = sliding_windows(x, model.window_samples, hop)
                full = model.classify(windows.flatten(0, 1)).unflatten(0, windows.shape[:2])
            else:
                columns = model(x)  # (B, 30, L): one pass over the whole sequence
                per_hop = hop // model.column_samples
                full = columns[:, : stepped.shape[1] * per_hop].unflatten(1, (-1, per_hop)).max(dim=2).values
            assert stepped.shape == full.shape and stepped.shape[1] == x.shape[1] // hop
            scale = max(1.0, full.abs().max().item())  # batched convolutions round differently at large logits
            assert (stepped - full).abs().max().item() < STEP_TOLERANCE * scale, f"hop {hop}"
            assert full.std(dim=1).min().item() > 10 * STEP_TOLERANCE, "scores do not move with the audio: the comparison would be vacuous"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (training uses one where present)")
@pytest.mark.parametrize("family", FAMILIES)
def test_a_model_on_cuda_streams_and_trains_as_on_the_cpu(family):
    model = tiny(family)
    x = torch.from_numpy(np.stack([audio(4.8, seed=1), audio(4.8, seed=2)]))
    hop = model.card.hop_samples[-1]
    with torch.no_grad():
        on_cpu = model.stream(x, hop)
        on_cuda = model.to("cuda").stream(x.to("cuda"), hop).cpu()
    scale = max(1.0, on_cpu.abs().max().item())
    assert (on_cuda - on_cpu).abs().max().item() < 1e-3 * scale  # TF32 and other kernels round differently
    model.train()
    loss = (model(x.to("cuda")) if not isinstance(model, WindowedModel) else model.classify(x[:, : model.window_samples].to("cuda"))).square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and g.device.type == "cuda" and torch.isfinite(g).all() for g in grads)


def test_sat_full_sequence_reaches_past_the_cache():
    """The stream outlives the cache: with 30 columns and a 3-column cache the first columns must stop
    mattering, so changing them leaves the last column unchanged (bounded, relative context)."""
    model = tiny("sat")
    x = torch.from_numpy(audio(4.8, seed=1))[None]
    y = x.clone()
    y[:, : 5 * model.column_samples] = 0.0
    with torch.no_grad():
        a, b = model(x), model(y)
    receptive_columns = model.cfg.n_layers * model.cfg.cache_columns + 1
    assert (a[:, :5] - b[:, :5]).abs().max() > 1e-3
    assert (a[:, 5 + receptive_columns :] - b[:, 5 + receptive_columns :]).abs().max() < STEP_TOLERANCE


def sat_with_frame_branch():
    """The tiny SAT plus a frame branch whose output layer is no longer zero (as after training)."""
    size, overrides = TINY["sat"]
    torch.manual_seed(3)
    model = build_model("sat", LABELS, size, **overrides, frame_features=8)
    missing, unexpected = model.load_state_dict(tiny("sat").state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("frame_") for k in missing)
    return model.eval()


def test_sat_frame_branch_starts_as_the_model_without_it():
    """Zero-initialised output layer: adding the branch to trained weights changes nothing until it trains."""
    x = torch.from_numpy(audio(3.2, seed=4))[None]
    with torch.no_grad():
        assert torch.equal(sat_with_frame_branch()(x), tiny("sat")(x))


def test_sat_frame_branch_streams_exactly_and_exports(tmp_path):
    model = sat_with_frame_branch()
    torch.nn.init.normal_(model.frame_proj.weight, std=0.5)
    x = torch.from_numpy(np.stack([audio(4.8, seed=1), audio(4.8, seed=2)]))
    with torch.no_grad():
        columns = model(x)
        assert (columns - tiny("sat")(x)).abs().max() > 1e-2, "the branch must matter for this test to mean anything"
        for hop in model.card.hop_samples:
            per_hop = hop // model.column_samples
            stepped = model.stream(x, hop)
            full = columns[:, : stepped.shape[1] * per_hop].unflatten(1, (-1, per_hop)).max(dim=2).values
            assert (stepped - full).abs().max().item() < STEP_TOLERANCE * max(1.0, full.abs().max().item()), f"hop {hop}"
    reports = export_and_check(model, tmp_path / "sat-frames.onnx", model_info(model, licence="test"), seconds=3.0, tolerance=ONNX_TOLERANCE)
    assert {r.hop_samples for r in reports} == set(model.card.hop_samples)  # export_and_check raises beyond ONNX_TOLERANCE


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_equals_torch_at_every_hop_of_one_file(family, exported):
    model, path, reports = exported[family]
    loaded = load_model(path)
    assert loaded.info.family == family and loaded.info.hop_samples == model.card.hop_samples
    assert len(loaded.info.hop_samples) == 3  # several latencies from one file
    assert {r.hop_samples for r in reports} == set(model.card.hop_samples)
    assert all(r.n_hops >= 6 for r in reports)
    assert max(r.max_abs_score_diff for r in reports) < ONNX_TOLERANCE


@pytest.mark.parametrize("family", FAMILIES)
def test_long_stream_stays_finite_bounded_and_periodic(family, exported):
    """1200 hops (192 s) of a periodic signal: state finite and not growing, and the scores repeat with
    the signal's period, as they must if nothing depends on the absolute position in the stream."""
    _, path, _ = exported[family]
    model = load_model(path)
    hop = model.info.hop_samples[0]
    period_hops = 5
    pattern = audio(period_hops * hop / 16000, seed=3)[: period_hops * hop]
    state, scores, state_max = model.new_state(), [], []
    for i in range(1200):
        s, state = model.step(pattern[(i % period_hops) * hop : (i % period_hops + 1) * hop], state)
        scores.append(s)
        state_max.append(max(float(np.abs(v).max()) for v in state.values()))
    scores = np.stack(scores)
    assert np.all(np.isfinite(scores)) and scores.min() >= 0 and scores.max() <= 1
    assert all(np.all(np.isfinite(v)) for v in state.values())
    assert max(state_max[100:]) <= 1.0001 * max(state_max[50:100])  # steady state: nothing accumulates
    assert np.abs(scores[1195:1200] - scores[100:105]).max() < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_state_is_a_fresh_stream(family, exported):
    _, path, _ = exported[family]
    model = load_model(path)
    hop = model.info.hop_samples[0]
    first, second = audio(2.0, seed=4), audio(2.0, seed=5)

    def run(x, state):
        out = []
        for i in range(len(x) // hop):
            s, state = model.step(x[i * hop : (i + 1) * hop], state)
            out.append(s)
        return np.stack(out), state

    fresh, _ = run(second, model.new_state())
    _, used = run(first, model.new_state())
    continued, _ = run(second, used)
    zeros = {name: np.zeros_like(value) for name, value in used.items()}
    reset, _ = run(second, zeros)
    assert np.array_equal(reset, fresh)
    assert np.abs(continued[0] - fresh[0]).max() > 1e-4  # the carried state does matter


@pytest.mark.parametrize("family,hop_index", [("sat", 0), ("sat", 2), ("dscnn", 1)])
def test_runner_is_invariant_to_delivery_block_size(family, hop_index, exported):
    _, path, _ = exported[family]
    model = load_model(path)
    hop = model.info.hop_samples[hop_index]
    x = audio(2.5, seed=6)
    results = {}
    for block in (1, 333, 2560, 10000):
        runner = StreamRunner(model, hop)
        hops = [r for start in range(0, len(x), block) for r in runner.push(x[start : start + block])]
        results[block] = ([r.end_sample for r in hops], np.stack([r.scores for r in hops]))
    ends, scores = results[2560]
    assert ends == [hop * (i + 1) for i in range(len(x) // hop)]
    for block, (other_ends, other_scores) in results.items():
        assert other_ends == ends, f"block {block}"
        assert np.array_equal(other_scores, scores), f"block {block}"


def test_labels_reach_the_file(exported):
    _, path, _ = exported["uit"]
    info = load_model(path).info
    assert info.labels == LABELS and info.names_of_kind("tag") == ("dog",)
    assert info.receptive_field_s == 0.5


def test_recompute_baseline_of_the_benchmark_equals_the_cached_sat():
    """The benchmark's cache-less SAT must compute the same scores, or its cost ratio means nothing."""
    from export.bench_families import RecomputeSAT

    model = tiny("sat")
    x = torch.from_numpy(audio(4.8, seed=9))[None]
    receptive_columns = model.cfg.n_layers * model.cfg.cache_columns
    with torch.no_grad():
        for hop in (2560, 7680):
            cached, recomputed = model.stream(x, hop), RecomputeSAT(model, hop).stream(x, hop)
            settled = -(-receptive_columns * model.column_samples // hop)  # hops before the window is all real audio
            assert (cached[:, settled:] - recomputed[:, settled:]).abs().max() < STEP_TOLERANCE
            assert (cached[:, 0] - recomputed[:, 0]).abs().max() > 1e-3  # silence is not "nothing cached"
