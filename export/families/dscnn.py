"""DS-CNN keyword spotter as in the MLPerf Tiny reference, windowed over 1 s.

Front end: 10 MFCCs of a 40-band magnitude mel (20-4000 Hz) over 30 ms frames every 20 ms: 49 frames
for a 1 s window. Network: conv 10x4 stride 2 (TensorFlow "same" padding) with 64 channels, four
depthwise-separable blocks, average over the whole map, one linear layer. Module names follow the
reference checkpoint's keys (conv1, bn1, depthwise2, bn21, ..., fc6), so its weights load with
``classifier.load_state_dict`` when the label count matches (12); we train our own weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from export.families.common import windowed_card
from export.frontend import FrontEnd, FrontEndConfig
from export.streaming import WindowedModel
from streamd.contract import Label

MFCC_FRONTEND = FrontEndConfig(win_samples=480, hop_samples=320, n_mels=40, f_min_hz=20, f_max_hz=4000, power=1.0, n_mfcc=10)


@dataclass(frozen=True)
class DSCNNConfig:
    channels: int = 64
    n_blocks: int = 4
    dropout: float = 0.2
    window_samples: int = 16000
    frontend: FrontEndConfig = MFCC_FRONTEND


class DSCNN(nn.Module):
    """features (B, frames, n_mfcc) -> logits (B, n_labels)."""

    def __init__(self, cfg: DSCNNConfig, n_labels: int):
        super().__init__()
        c = cfg.channels
        self.n_blocks = cfg.n_blocks
        self.conv1 = nn.Conv2d(1, c, kernel_size=(10, 4), stride=2)
        self.bn1 = nn.BatchNorm2d(c)
        for i in range(2, 2 + cfg.n_blocks):
            setattr(self, f"depthwise{i}", nn.Conv2d(c, c, 3, padding=1, groups=c))
            setattr(self, f"bn{i}1", nn.BatchNorm2d(c))
            setattr(self, f"pointwise{i}", nn.Conv2d(c, c, 1))
            setattr(self, f"bn{i}2", nn.BatchNorm2d(c))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc6 = nn.Linear(c, n_labels)

    def forward(self, features):
        x = F.pad(features.unsqueeze(1), (1, 1, 4, 5))  # (B, 1, frames, mfcc): TF "same" for 10x4 stride 2
        x = F.relu(self.bn1(self.conv1(x)))  # (B, c, 25, 5) for 49 x 10
        for i in range(2, 2 + self.n_blocks):
            x = F.relu(getattr(self, f"bn{i}1")(getattr(self, f"depthwise{i}")(x)))
            x = F.relu(getattr(self, f"bn{i}2")(getattr(self, f"pointwise{i}")(x)))
        x = self.dropout(x.mean(dim=(2, 3)))  # (B, c)
        return self.fc6(x)


def build(labels: tuple[Label, ...], cfg: DSCNNConfig = DSCNNConfig()) -> WindowedModel:
    card = windowed_card("dscnn", labels, cfg.frontend, cfg.window_samples)
    return WindowedModel(FrontEnd(cfg.frontend), DSCNN(cfg, len(labels)), card, cfg.window_samples)
