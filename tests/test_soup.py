"""export.soup: the weighted mean of fine-tuned weights, from checkpoints and ONNX files alike."""

from __future__ import annotations

import torch

from export.export_model import main as export_main
from export.families import build_model, load_checkpoint, save_checkpoint
from export.soup import main as soup_main
from tiny_families import LABELS, TINY, tiny
from streamd.contract import Label


def checkpoint(tmp_path, seed: int, labels=LABELS):
    model = tiny("sat", seed) if labels == LABELS else build_model("sat", labels, *TINY["sat"][:1], **TINY["sat"][1])
    return model, save_checkpoint(model, tmp_path / f"sat{seed}-{len(labels)}.pt", "sat", *TINY["sat"], {"licence": "CC0-1.0"})


def test_the_soup_is_the_weighted_mean_of_a_checkpoint_and_an_onnx_file(tmp_path):
    a, a_path = checkpoint(tmp_path, 0)
    b, b_path = checkpoint(tmp_path, 1)
    b_onnx = tmp_path / "b.onnx"
    assert export_main([str(b_path), "--out", str(b_onnx), "--seconds", "2"]) == 0
    out = tmp_path / "soup.pt"
    assert soup_main([str(out), str(a_path), str(b_onnx), "--weights", "3", "1"]) == 0
    soup, meta = load_checkpoint(out)
    assert meta["extra"]["licence"] == "CC0-1.0" and [w for _, w in meta["extra"]["soup"]] == [3.0, 1.0]
    want_a, want_b = a.state_dict(), b.state_dict()
    moved = 0
    for key, tensor in soup.state_dict().items():
        mean = (3 * want_a[key].double() + want_b[key].double()) / 4
        assert torch.allclose(tensor.double(), mean, atol=1e-6), key
        moved += not torch.equal(want_a[key], want_b[key])
    assert moved > 10  # two seeds: most tensors differ, so the mean was really taken
    # a model averaged with itself is itself
    assert soup_main([str(tmp_path / "same.pt"), str(a_path), str(a_path)]) == 0
    same, _ = load_checkpoint(tmp_path / "same.pt")
    assert all(torch.equal(t, want_a[k]) for k, t in same.state_dict().items())


def test_models_with_other_labels_or_bad_weights_are_refused(tmp_path, capsys):
    _, a_path = checkpoint(tmp_path, 0)
    _, other = checkpoint(tmp_path, 2, labels=LABELS + (Label("cat", "tag"),))
    assert soup_main([str(tmp_path / "x.pt"), str(a_path), str(other)]) == 2
    assert "not the same labels" in capsys.readouterr().err
    assert soup_main([str(tmp_path / "x.pt"), str(a_path), str(a_path), "--weights", "1"]) == 2
    assert "2 models and 1 weights" in capsys.readouterr().err
    assert soup_main([str(tmp_path / "x.pt"), str(a_path), str(a_path), "--weights", "1", "-1"]) == 2
    assert not (tmp_path / "x.pt").exists()
