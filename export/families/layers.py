"""Layers shared by the transformer families."""

from __future__ import annotations

from torch import nn


def feed_forward(d_model: int, mlp_ratio: int, dropout: float) -> nn.Sequential:
    """The transformer block's MLP (state-dict keys mlp.0 and mlp.2), used by SAT and UiT."""
    return nn.Sequential(
        nn.Linear(d_model, mlp_ratio * d_model),
        nn.GELU(),
        nn.Linear(mlp_ratio * d_model, d_model),
        nn.Dropout(dropout),
    )
