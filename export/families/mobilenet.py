"""MobileNetV3-style CNN tagger in the manner of EfficientAT, windowed.

Log-mel as a (1, frequency, time) image through the 15 inverted-residual blocks of MobileNetV3-Large
(1x1 expand, depthwise kxk, optional squeeze-excitation, 1x1 project; hardswish in the later blocks),
all channel counts scaled by ``width`` (EfficientAT's mn04 is width 0.4), then global average pool and
an MLP head. Narrow widths make students; width 1.0 over a longer window makes a teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from export.families.common import windowed_card
from export.frontend import FrontEnd, FrontEndConfig
from export.streaming import WindowedModel
from streamd.contract import Label

# (kernel, expanded, out, squeeze-excitation, hardswish, stride) per block, at width 1.0 (MobileNetV3-Large).
BLOCKS = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1280
BN_EPS = 1e-3


@dataclass(frozen=True)
class MobileNetConfig:
    width: float = 0.4
    dropout: float = 0.2
    window_samples: int = 16000  # 1 s; a teacher may use a longer window
    frontend: FrontEndConfig = FrontEndConfig()  # log-mel 64


def round8(value: float) -> int:
    """Nearest multiple of 8 (at least 8), one step up if that fell more than 10% below."""
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None):
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out_ch, eps=BN_EPS)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, round8(channels / 4)), nn.ReLU(), nn.Linear(round8(channels / 4), channels), nn.Sigmoid())

    def forward(self, x):  # (B, C, F, T)
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, kernel: int, expanded: int, out_ch: int, se: bool, hardswish: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        self.residual = stride == 1 and in_ch == out_ch
        self.expand = conv_bn(in_ch, expanded, 1, act=act) if expanded != in_ch else nn.Identity()
        self.depthwise = conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act)
        self.se = SqueezeExcite(expanded) if se else nn.Identity()
        self.project = conv_bn(expanded, out_ch, 1)

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3(nn.Module):
    """features (B, frames, n_mels) -> logits (B, n_labels)."""

    def __init__(self, cfg: MobileNetConfig, n_labels: int):
        super().__init__()
        w = lambda c: round8(c * cfg.width)  # noqa: E731
        self.stem = conv_bn(1, w(STEM_CHANNELS), 3, stride=2, act=nn.Hardswish)
        blocks, in_ch = [], w(STEM_CHANNELS)
        for kernel, expanded, out, se, hs, stride in BLOCKS:
            blocks.append(InvertedResidual(in_ch, kernel, w(expanded), w(out), se, hs, stride))
            in_ch = w(out)
        self.blocks = nn.Sequential(*blocks)
        self.last_conv = conv_bn(in_ch, 6 * w(160), 1, act=nn.Hardswish)
        self.head = nn.Sequential(
            nn.Linear(6 * w(160), w(HEAD_CHANNELS)), nn.Hardswish(), nn.Dropout(cfg.dropout), nn.Linear(w(HEAD_CHANNELS), n_labels)
        )

    def embedding(self, features):
        """features (B, frames, n_mels) -> pooled embedding (B, 6 * round8(160 * width)), e.g. for distillation."""
        x = features.transpose(1, 2).unsqueeze(1)  # (B, 1, n_mels, frames)
        x = self.last_conv(self.blocks(self.stem(x)))  # (B, C, F / 32, T / 32)
        return x.mean(dim=(2, 3))

    def forward(self, features):
        return self.head(self.embedding(features))


def build(labels: tuple[Label, ...], cfg: MobileNetConfig = MobileNetConfig()) -> WindowedModel:
    card = windowed_card("mobilenet", labels, cfg.frontend, cfg.window_samples)
    return WindowedModel(FrontEnd(cfg.frontend), MobileNetV3(cfg, len(labels)), card, cfg.window_samples)
