"""Frequency warping: a tone at f moves to alpha * f in the log-mel features; 1 is the identity."""

import numpy as np
import pytest
import torch

from export.data.freqwarp import freq_warp, warp_matrix
from export.frontend import FrontEnd, FrontEndConfig, hz_to_mel

SR = 16000


def tone(f_hz: float, seconds: float = 0.5) -> torch.Tensor:
    t = np.arange(int(seconds * SR)) / SR
    return torch.from_numpy((0.3 * np.sin(2 * np.pi * f_hz * t)).astype(np.float32))[None]


def peak_mel(features: torch.Tensor, cfg: FrontEndConfig) -> float:
    """The mel (HTK) of the loudest bin, averaged over frames, interpolated between bins."""
    profile = features[0].mean(0).double()
    k = int(profile.argmax())
    edges = torch.linspace(float(hz_to_mel(torch.tensor(cfg.f_min_hz))), float(hz_to_mel(torch.tensor(cfg.f_max_hz))),
                           cfg.n_mels + 2, dtype=torch.float64)
    a, b, c = profile[k - 1], profile[k], profile[k + 1]
    offset = 0.5 * float(a - c) / float(a - 2 * b + c)  # parabola through the peak and its neighbours
    return float(edges[k + 1] + offset * (edges[2] - edges[1]))


def test_identity_at_one():
    cfg = FrontEndConfig()
    assert torch.allclose(warp_matrix(cfg, 1.0), torch.eye(cfg.n_mels), atol=1e-6)


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_a_tone_moves_by_alpha(alpha):
    frontend = FrontEnd(FrontEndConfig()).eval()
    with torch.no_grad():
        features = frontend(tone(1000.0))
        warped = freq_warp(features, frontend, np.random.default_rng(0), p=1.0, max_alpha=0.0)  # alpha = 1 exactly
        assert torch.allclose(warped, features, atol=1e-4)
        moved = features @ warp_matrix(frontend.cfg, alpha).T
    want = float(hz_to_mel(torch.tensor(1000.0 * alpha)))
    assert abs(peak_mel(moved, frontend.cfg) - want) < 12  # within a third of a bin (38 mel apart)
    assert abs(peak_mel(features, frontend.cfg) - float(hz_to_mel(torch.tensor(1000.0)))) < 12


def test_each_example_draws_its_own_factor_from_the_rng():
    frontend = FrontEnd(FrontEndConfig()).eval()
    with torch.no_grad():
        features = frontend(torch.cat([tone(1000.0)] * 6))
        a = freq_warp(features, frontend, np.random.default_rng(3), p=0.5, max_alpha=0.12)
        b = freq_warp(features, frontend, np.random.default_rng(3), p=0.5, max_alpha=0.12)
    assert torch.equal(a, b)  # reproducible
    changed = [not torch.allclose(a[i], features[i], atol=1e-4) for i in range(6)]
    assert 0 < sum(changed) < 6  # some warped, some not
