"""Log-mel (and MFCC) front end in torch, exportable to plain ONNX ops.

The DFT is a strided 1-D convolution with windowed cosine and sine kernels: no STFT op, no complex
numbers, and it was the fastest variant under onnxruntime here. Frames are not centred: frame i
covers samples [i * hop, i * hop + win). A stream keeps the last (win - hop) samples in its state so
that stepping hop by hop gives the same frames as one pass over the whole signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FrontEndConfig:
    sample_rate_hz: int = 16000
    win_samples: int = 400  # 25 ms
    hop_samples: int = 160  # 10 ms: one frame per hop
    n_fft: int = 512
    n_mels: int = 64
    f_min_hz: float = 20.0
    f_max_hz: float = 8000.0
    power: float = 2.0  # 2: power spectrum, 1: magnitude
    log_floor: float = 1e-6
    n_mfcc: int = 0  # > 0: DCT-II of the log-mel, keep this many coefficients
    # Subtract each frame's mean before the window (Kaldi's remove_dc_offset): a microphone's DC offset
    # otherwise leaks through the window into the lowest mel bands. In the export it costs nothing: the
    # DFT kernels are made zero-mean, which is the same sum.
    remove_dc: bool = False


def hz_to_mel(f_hz: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f_hz / 700.0)  # HTK scale


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * torch.expm1(mel / 1127.0)


def mel_filterbank(cfg: FrontEndConfig) -> torch.Tensor:
    """Triangles in mel space over the FFT bin centres: [n_bins, n_mels]; the DC bin gets no weight."""
    n_bins = cfg.n_fft // 2 + 1
    bin_mel = hz_to_mel(torch.linspace(0, cfg.sample_rate_hz / 2, n_bins, dtype=torch.float64))
    edges = torch.linspace(
        hz_to_mel(torch.tensor(cfg.f_min_hz, dtype=torch.float64)).item(),
        hz_to_mel(torch.tensor(cfg.f_max_hz, dtype=torch.float64)).item(),
        cfg.n_mels + 2,
        dtype=torch.float64,
    )
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mel[:, None]) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0] = 0.0
    return weights.float()


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Unnormalised DCT-II scaled by 1/sqrt(2 n_in): [n_in, n_out]."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)
    basis = 2.0 * torch.cos(math.pi / n_in * (n[:, None] + 0.5) * k[None, :])
    return (basis / math.sqrt(2.0 * n_in)).float()


class FrontEnd(nn.Module):
    """audio [B, T] -> features [B, frames, n_features], frames = (T - win) // hop + 1."""

    def __init__(self, cfg: FrontEndConfig = FrontEndConfig()):
        super().__init__()
        self.cfg = cfg
        mel = mel_filterbank(cfg)
        used_bins = int(torch.nonzero(mel.sum(dim=1)).max()) + 1  # bins above f_max cost nothing
        mel = mel[:used_bins]
        window = torch.hann_window(cfg.win_samples, periodic=True, dtype=torch.float64)
        t = torch.arange(cfg.win_samples, dtype=torch.float64)
        freqs = torch.arange(used_bins, dtype=torch.float64)
        phase = 2.0 * math.pi * freqs[:, None] * t[None, :] / cfg.n_fft
        kernels = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window  # [2 * bins, win]
        if cfg.remove_dc:  # sum_n k[n] (x[n] - mean(x)) = sum_n (k[n] - mean(k)) x[n]
            kernels = kernels - kernels.mean(dim=1, keepdim=True)
        self.register_buffer("dft_kernels", kernels.float().unsqueeze(1), persistent=False)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("mel_weights", mel, persistent=False)
        self.register_buffer("dct", dct_matrix(cfg.n_mels, cfg.n_mfcc) if cfg.n_mfcc else torch.zeros(0), persistent=False)
        # Per-feature normalisation, set from training data (see set_normalisation).
        n_features = cfg.n_mfcc or cfg.n_mels
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))

    @property
    def carry_samples(self) -> int:
        return self.cfg.win_samples - self.cfg.hop_samples

    @property
    def n_features(self) -> int:
        return self.cfg.n_mfcc or self.cfg.n_mels

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp(min=1e-3))

    def power_spectrum(self, audio: torch.Tensor) -> torch.Tensor:
        """|DFT|^2 of each frame: [B, frames, used_bins]. ONNX gets the convolution (plain ops, fastest
        under onnxruntime); eager torch gets the same numbers from an FFT, several times cheaper to train."""
        if torch.onnx.is_in_onnx_export():
            spec = torch.conv1d(audio.unsqueeze(1), self.dft_kernels, stride=self.cfg.hop_samples)  # (B, 2*bins, frames)
            re, im = spec.chunk(2, dim=1)
            return (re * re + im * im).transpose(1, 2)
        frames = audio.unfold(1, self.cfg.win_samples, self.cfg.hop_samples)  # (B, frames, win)
        if self.cfg.remove_dc:
            frames = frames - frames.mean(dim=-1, keepdim=True)
        frames = frames * self.window
        spectrum = torch.fft.rfft(frames, n=self.cfg.n_fft)[..., : self.mel_weights.shape[0]]
        return spectrum.real**2 + spectrum.imag**2

    def raw(self, audio: torch.Tensor) -> torch.Tensor:
        """Un-normalised log-mel or MFCC: [B, frames, n_features]."""
        power = self.power_spectrum(audio)
        if self.cfg.power == 1.0:
            power = torch.sqrt(power + 1e-12)
        mel = torch.matmul(power, self.mel_weights)  # (B, frames, n_mels)
        features = torch.log(mel + self.cfg.log_floor)
        if self.cfg.n_mfcc:
            features = torch.matmul(features, self.dct)  # (B, frames, n_mfcc)
        return features

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return (self.raw(audio) - self.feature_mean) / self.feature_std
