"""BC-ResNet keyword spotter (Kim et al., "Broadcasted Residual Learning for Efficient Keyword Spotting", 2021), windowed.

Input: log-mel 40 (30 ms frames every 10 ms) as a (1, frequency, time) image. A block runs a
frequency-wise depthwise conv with sub-spectral normalisation (2-D features), averages over
frequency, runs a dilated temporal depthwise conv on the 1-D result and broadcasts it back over
frequency as a residual. ``tau`` scales all channel counts (BC-ResNet-tau).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from export.families.common import windowed_card
from export.frontend import FrontEnd, FrontEndConfig
from export.streaming import WindowedModel
from streamd.contract import Label

LOGMEL40 = FrontEndConfig(win_samples=480, hop_samples=160, n_mels=40)
STAGES = (  # (channels / tau, blocks, frequency stride of the first block, temporal dilation)
    (8, 2, 1, 1),
    (12, 2, 2, 2),
    (16, 4, 2, 4),
    (20, 4, 1, 8),
)


@dataclass(frozen=True)
class BCResNetConfig:
    tau: float = 3.0  # BC-ResNet-3
    sub_bands: int = 5  # sub-spectral normalisation groups; divides the frequency size at every stage
    dropout: float = 0.1
    window_samples: int = 16000
    frontend: FrontEndConfig = LOGMEL40


class SubSpectralNorm(nn.Module):
    """Batch norm with separate statistics for each of ``sub_bands`` frequency bands."""

    def __init__(self, channels: int, sub_bands: int):
        super().__init__()
        self.sub_bands = sub_bands
        self.bn = nn.BatchNorm2d(channels * sub_bands)

    def forward(self, x):
        B, C, Fq, T = x.shape
        x = self.bn(x.reshape(B, C * self.sub_bands, Fq // self.sub_bands, T))
        return x.reshape(B, C, Fq, T)


class BCResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, freq_stride: int, dilation: int, cfg: BCResNetConfig):
        super().__init__()
        self.transition = in_ch != out_ch
        self.expand = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU()) if self.transition else nn.Identity()
        self.freq_dw = nn.Sequential(
            nn.Conv2d(out_ch, out_ch, (3, 1), stride=(freq_stride, 1), padding=(1, 0), groups=out_ch, bias=False),
            SubSpectralNorm(out_ch, cfg.sub_bands),
        )
        self.temporal = nn.Sequential(
            nn.Conv2d(out_ch, out_ch, (1, 3), padding=(0, dilation), dilation=(1, dilation), groups=out_ch, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.SiLU(),
            nn.Conv2d(out_ch, out_ch, 1, bias=False),
            nn.Dropout2d(cfg.dropout),
        )

    def forward(self, x):  # (B, C, F, T)
        identity = x
        aux = self.freq_dw(self.expand(x))  # (B, C', F', T): 2-D features
        y = aux + self.temporal(aux.mean(dim=2, keepdim=True))  # (B, C', 1, T) broadcast over frequency
        if not self.transition and identity.shape == y.shape:
            y = y + identity
        return torch.relu(y)


class BCResNet(nn.Module):
    """features (B, frames, n_mels) -> logits (B, n_labels)."""

    def __init__(self, cfg: BCResNetConfig, n_labels: int):
        super().__init__()
        width = lambda c: max(4, int(round(c * cfg.tau)))  # noqa: E731
        stem = width(16)
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 5, stride=(2, 1), padding=2, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        blocks, in_ch = [], stem
        for channels, n_blocks, freq_stride, dilation in STAGES:
            for i in range(n_blocks):
                blocks.append(BCResBlock(in_ch, width(channels), freq_stride if i == 0 else 1, dilation, cfg))
                in_ch = width(channels)
        self.blocks = nn.Sequential(*blocks)
        head = width(32)
        self.head = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 5, padding=(0, 2), groups=in_ch, bias=False),  # collapses the 5 remaining bands
            nn.Conv2d(in_ch, head, 1, bias=False),
            nn.BatchNorm2d(head),
            nn.ReLU(),
        )
        self.classifier = nn.Conv2d(head, n_labels, 1)

    def forward(self, features):
        x = features.transpose(1, 2).unsqueeze(1)  # (B, 1, n_mels, frames)
        x = self.head(self.blocks(self.stem(x)))  # (B, head, F'', T)
        x = x.mean(dim=(2, 3), keepdim=True)  # (B, head, 1, 1)
        return self.classifier(x).flatten(1)  # (B, n_labels)


def build(labels: tuple[Label, ...], cfg: BCResNetConfig = BCResNetConfig()) -> WindowedModel:
    card = windowed_card("bcresnet", labels, cfg.frontend, cfg.window_samples)
    return WindowedModel(FrontEnd(cfg.frontend), BCResNet(cfg, len(labels)), card, cfg.window_samples)
