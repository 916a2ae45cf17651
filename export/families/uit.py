"""UiT-style unified transformer: a pico ViT over a fixed 1 s window, one sigmoid head for keywords and tags.

Log-mel patches of ``patch_frames`` x ``patch_mels`` become tokens with a learned position per patch
(the window is fixed, so absolute positions are fine here); a few pre-norm transformer layers with
full attention; mean over tokens; one linear head. It streams as a WindowedModel: the state is the
last window of audio and every hop re-classifies that window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from export.families.common import frames_in, windowed_card
from export.families.layers import feed_forward
from export.frontend import FrontEnd, FrontEndConfig
from export.streaming import WindowedModel
from streamd.contract import Label


@dataclass(frozen=True)
class UiTConfig:
    d_model: int = 96
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 2
    patch_frames: int = 8  # 80 ms
    patch_mels: int = 16
    window_samples: int = 16000  # 1 s
    dropout: float = 0.1
    frontend: FrontEndConfig = FrontEndConfig()  # log-mel 64, 25 ms / 10 ms


class SelfAttention(nn.Module):
    def __init__(self, cfg: UiTConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # (B, T, d) each
        q, k, v = (t.unflatten(2, (self.n_heads, -1)).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).flatten(2))  # (B, T, d)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: UiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.mlp = feed_forward(cfg.d_model, cfg.mlp_ratio, cfg.dropout)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PicoViT(nn.Module):
    """features (B, frames, n_mels) -> logits (B, n_labels)."""

    def __init__(self, cfg: UiTConfig, n_frames: int, n_labels: int):
        super().__init__()
        n_mels = cfg.frontend.n_mels
        assert n_mels % cfg.patch_mels == 0 and cfg.d_model % cfg.n_heads == 0
        self.cfg = cfg
        self.used_frames = n_frames // cfg.patch_frames * cfg.patch_frames  # the newest frames; drop the oldest few
        n_tokens = self.used_frames // cfg.patch_frames * (n_mels // cfg.patch_mels)
        self.patch_embed = nn.Linear(cfg.patch_frames * cfg.patch_mels, cfg.d_model)
        self.pos_embed = nn.Parameter(torch.randn(n_tokens, cfg.d_model) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, n_labels)

    def forward(self, features):
        B, n_frames, n_mels = features.shape
        P, Fm = self.cfg.patch_frames, self.cfg.patch_mels
        x = features[:, n_frames - self.used_frames :]
        x = x.reshape(B, self.used_frames // P, P, n_mels // Fm, Fm).permute(0, 1, 3, 2, 4).flatten(3)  # (B, cols, bands, P*Fm)
        x = self.patch_embed(x).flatten(1, 2) + self.pos_embed  # (B, T, d)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))  # (B, n_labels)


def build(labels: tuple[Label, ...], cfg: UiTConfig = UiTConfig()) -> WindowedModel:
    n_frames = frames_in(cfg.frontend, cfg.window_samples)
    card = windowed_card("uit", labels, cfg.frontend, cfg.window_samples)
    return WindowedModel(FrontEnd(cfg.frontend), PicoViT(cfg, n_frames, len(labels)), card, cfg.window_samples)
