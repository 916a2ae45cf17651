"""Frequency warping of log-mel features (vocal tract length perturbation, Jaitly & Hinton 2013).

A shorter vocal tract puts every formant higher by about the same factor. Playing a word faster
(``SceneConfig.p_speed``) does that too, but also raises the pitch and shortens the word by the same
factor; a warp of the mel axis changes the spectrum alone, so a voice gets new formants at its own
tempo. Each example draws a factor alpha in [1 - max_alpha, 1 + max_alpha]: the content at f Hz moves
to alpha * f. Done on the un-normalised log-mel (the warp of a log spectrum's envelope) and normalised
again, so the model's per-bin normalisation still applies. Drawn from the training rng: reproducible.
"""

from __future__ import annotations

import numpy as np
import torch

from export.frontend import FrontEndConfig, hz_to_mel, mel_to_hz


def warp_matrix(cfg: FrontEndConfig, alpha: float) -> torch.Tensor:
    """[n_mels, n_mels] W with warped = features @ W.T: output bin k reads the (interpolated) input at
    the mel of f_k / alpha, f_k its centre frequency; outside the band the edge bin."""
    edges = torch.linspace(hz_to_mel(torch.tensor(cfg.f_min_hz, dtype=torch.float64)).item(),
                           hz_to_mel(torch.tensor(cfg.f_max_hz, dtype=torch.float64)).item(),
                           cfg.n_mels + 2, dtype=torch.float64)
    centres = edges[1:-1]
    source = hz_to_mel(mel_to_hz(centres) / alpha)
    position = ((source - centres[0]) / (centres[1] - centres[0])).clamp(0, cfg.n_mels - 1)
    below = position.floor().long().clamp(max=cfg.n_mels - 2)
    upper_weight = position - below
    w = torch.zeros(cfg.n_mels, cfg.n_mels, dtype=torch.float64)
    rows = torch.arange(cfg.n_mels)
    w[rows, below] = 1 - upper_weight
    w[rows, below + 1] += upper_weight
    return w.float()


def freq_warp(features: torch.Tensor, frontend, rng: np.random.Generator, p: float = 0.5,
              max_alpha: float = 0.1) -> torch.Tensor:
    """features (B, frames, n_mels) of frontend (normalised), each example warped with probability p."""
    if frontend.cfg.n_mfcc:
        raise ValueError("freq_warp needs log-mel features (n_mfcc = 0)")
    draws = rng.random(features.shape[0]) < p
    alphas = rng.uniform(1 - max_alpha, 1 + max_alpha, features.shape[0])
    if not draws.any():
        return features
    mean, std = frontend.feature_mean, frontend.feature_std
    out = features.clone()
    for b in np.flatnonzero(draws):
        raw = features[b] * std + mean
        out[b] = (raw @ warp_matrix(frontend.cfg, float(alphas[b])).T.to(raw.device) - mean) / std
    return out
