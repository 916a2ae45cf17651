"""SAT-style streaming audio transformer with a persistent per-layer key/value cache.

Log-mel frames are cut into patches of ``patch_frames`` x ``patch_mels``; the patches of one time
column (``patch_frames`` frames, the latency quantum) are that column's tokens. Every layer lets a
column attend to itself and to the ``cache_columns`` columns before it, with a learned bias per
head and column offset: positions are relative and bounded, so a stream can run for days.

Training runs one big step over a whole sequence from a zero state; the block-banded mask makes
that exactly the computation that stepping column by column performs with the cache.
State per stream: the front end's carried samples, a validity flag per cached column (zero state
= nothing cached yet), and each layer's keys and values for the cached columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from export.families.layers import feed_forward
from export.frontend import FrontEnd, FrontEndConfig
from export.streaming import ModelCard, StreamingModel
from streamd.contract import Label

MASKED = -1e4  # additive mask: exp(-1e4) is 0 in float32, and stays finite through int8 quantisation


@dataclass(frozen=True)
class SATConfig:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 2
    patch_frames: int = 16  # 16 frames x 10 ms = 160 ms per column
    patch_mels: int = 16
    cache_columns: int = 12  # per layer: 12 x 160 ms = 1.92 s of earlier context
    frame_features: int = 0  # > 0: a per-frame branch (all mels -> this many features, 10 ms apart) feeds every token
    hop_columns: tuple[int, ...] = (1, 2, 3, 6, 12)  # 160, 320, 480, 960, 1920 ms
    dropout: float = 0.1
    frontend: FrontEndConfig = FrontEndConfig()


class Attention(nn.Module):
    def __init__(self, cfg: SATConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.offset_bias = nn.Parameter(torch.zeros(cfg.n_heads, cfg.cache_columns + 1))
        self.dropout = cfg.dropout

    def forward(self, x, key_cache, value_cache, offsets, allowed):
        # x (B, Tq, d); caches (B, Tc, d); offsets, allowed (B or 1, Tq, Tc + Tq) over tokens
        B, Tq, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        keys = torch.cat([key_cache, k], dim=1)  # (B, Tk, d)
        values = torch.cat([value_cache, v], dim=1)
        bias = self.offset_bias[:, offsets.clamp(0, self.offset_bias.shape[1] - 1)]  # (nh, Tq, Tk)
        mask = torch.where(allowed, bias.unsqueeze(0), torch.tensor(MASKED))  # (B, nh, Tq, Tk)
        q, kh, vh = (t.unflatten(2, (self.n_heads, self.head_dim)).transpose(1, 2) for t in (q, keys, values))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, kh, vh, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).flatten(2)  # (B, Tq, d)
        return self.proj(y), keys, values


class Block(nn.Module):
    def __init__(self, cfg: SATConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.mlp = feed_forward(cfg.d_model, cfg.mlp_ratio, cfg.dropout)

    def forward(self, x, key_cache, value_cache, offsets, allowed):
        y, keys, values = self.attn(self.norm1(x), key_cache, value_cache, offsets, allowed)
        x = x + y
        return x + self.mlp(self.norm2(x)), keys, values


class SATModel(StreamingModel):
    def __init__(self, labels: tuple[Label, ...], cfg: SATConfig = SATConfig()):
        super().__init__()
        fe = cfg.frontend
        assert fe.n_mels % cfg.patch_mels == 0 and cfg.d_model % cfg.n_heads == 0
        self.cfg = cfg
        self.frontend = FrontEnd(fe)
        self.tokens_per_column = fe.n_mels // cfg.patch_mels
        self.column_samples = cfg.patch_frames * fe.hop_samples
        self.patch_embed = nn.Linear(cfg.patch_frames * cfg.patch_mels, cfg.d_model)
        self.freq_embed = nn.Parameter(torch.zeros(self.tokens_per_column, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, len(labels))
        nn.init.normal_(self.freq_embed, std=0.02)
        if cfg.frame_features:
            # A patch's linear embedding sees 160 ms of 16 mel bands at once; onsets that tell "down", "go" and
            # "no" apart last tens of ms and span the spectrum. This branch gives each token a nonlinear summary
            # of every 10 ms frame across all mels. Its output layer starts at zero, so the branch can be added
            # to a trained model without changing what it computes (warm start).
            self.frame_mlp = nn.Sequential(nn.Linear(fe.n_mels, cfg.frame_features), nn.GELU())
            self.frame_proj = nn.Linear(cfg.patch_frames * cfg.frame_features, self.tokens_per_column * cfg.d_model)
            nn.init.zeros_(self.frame_proj.weight)
            nn.init.zeros_(self.frame_proj.bias)
        receptive_columns = cfg.n_layers * cfg.cache_columns + 1
        self.card = ModelCard(
            family="sat",
            labels=tuple(labels),
            sample_rate_hz=fe.sample_rate_hz,
            hop_samples=tuple(c * self.column_samples for c in cfg.hop_columns),
            receptive_field_s=(receptive_columns * self.column_samples + self.frontend.carry_samples) / fe.sample_rate_hz,
        )

    def state_shapes(self):
        cached_tokens = self.cfg.cache_columns * self.tokens_per_column
        shapes = {"frontend": (self.frontend.carry_samples,), "valid": (self.cfg.cache_columns,)}
        for i in range(self.cfg.n_layers):
            shapes[f"key{i}"] = (cached_tokens, self.cfg.d_model)
            shapes[f"value{i}"] = (cached_tokens, self.cfg.d_model)
        return shapes

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, n_columns * patch_frames, n_mels) -> tokens (B, n_columns * tokens_per_column, d)."""
        B, n_frames, n_mels = features.shape
        P, Fm = self.cfg.patch_frames, self.cfg.patch_mels
        patches = features.reshape(B, n_frames // P, P, n_mels // Fm, Fm)  # (B, cols, P, fp, Fm)
        patches = patches.permute(0, 1, 3, 2, 4).flatten(3)  # (B, cols, fp, P*Fm)
        tokens = self.patch_embed(patches) + self.freq_embed  # (B, cols, fp, d)
        if self.cfg.frame_features:
            frames = self.frame_mlp(features).reshape(B, n_frames // P, P * self.cfg.frame_features)  # (B, cols, P*F)
            tokens = tokens + self.frame_proj(frames).unflatten(2, (n_mels // Fm, -1))  # (B, cols, fp, d)
        return tokens.flatten(1, 2)  # (B, cols*fp, d)

    @staticmethod
    def ones_for(valid: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Ones of shape (B, len(columns)), built by broadcasting so that the ONNX trace keeps it dynamic."""
        return valid[:, :1] * 0 + torch.ones_like(columns, dtype=valid.dtype)[None, :]

    def attention_layout(self, n_new_columns: int, valid: torch.Tensor):
        """Column offsets (query - key) and the allowed mask, per token, for cached + new columns."""
        M, fp = self.cfg.cache_columns, self.tokens_per_column
        device = valid.device
        query_column = torch.arange(n_new_columns * fp, device=device) // fp + M  # (Tq,)
        key_column = torch.arange((n_new_columns + M) * fp, device=device) // fp  # (Tk,)
        offsets = query_column[:, None] - key_column[None, :]  # (Tq, Tk)
        in_window = (offsets >= 0) & (offsets <= M)
        column_valid = torch.cat([valid, self.ones_for(valid, torch.arange(n_new_columns, device=device))], dim=1)  # (B, M + Cq)
        key_valid = column_valid[:, key_column] > 0.5  # (B, Tk)
        allowed = in_window.unsqueeze(0) & key_valid.unsqueeze(1)  # (B, Tq, Tk)
        return offsets, allowed.unsqueeze(1)  # (Tq, Tk), (B, 1, Tq, Tk)

    def column_logits(self, audio: torch.Tensor, state: list[torch.Tensor]):
        """audio (B, n_columns * column_samples) -> per-column logits (B, n_columns, n_labels), next state."""
        carry, valid, *caches = state
        samples = torch.cat([carry, audio], dim=1)
        n_columns = audio.shape[1] // self.column_samples
        x = self.embed(self.frontend(samples))  # (B, Tq, d)
        offsets, allowed = self.attention_layout(n_new_columns=n_columns, valid=valid)
        M, fp = self.cfg.cache_columns, self.tokens_per_column
        next_caches = []
        for block, key_cache, value_cache in zip(self.blocks, caches[0::2], caches[1::2]):
            x, keys, values = block(x, key_cache, value_cache, offsets, allowed)
            next_caches += [keys[:, -M * fp :], values[:, -M * fp :]]
        B, T, d = x.shape
        pooled = self.norm(x).reshape(B, T // fp, fp, d).mean(dim=2)  # (B, cols, d)
        next_valid = torch.cat([valid, self.ones_for(valid, torch.arange(n_columns, device=valid.device))], dim=1)[:, -M:]
        next_carry = samples[:, -self.frontend.carry_samples :]
        return self.head(pooled), [next_carry, next_valid, *next_caches]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Full sequence from a zero state (training): audio (B, T) -> per-column logits (B, T // column, n_labels)."""
        usable = audio.shape[1] // self.column_samples * self.column_samples
        logits, _ = self.column_logits(audio[:, :usable], self.init_state(audio.shape[0]))
        return logits

    def step(self, audio, state):
        logits, next_state = self.column_logits(audio, state)
        return logits.max(dim=1).values, next_state  # a hop's score is its most confident column
