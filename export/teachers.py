"""Teachers for knowledge distillation, each with its exact front end (see ../shared/teachers).

Training may use them; the shipped models never need them at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from export.families.dscnn import DSCNN, MFCC_FRONTEND, DSCNNConfig
from export.frontend import FrontEnd
from export.labels import COMMANDS

DSCNN_LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")
WINDOW_SAMPLES = 16000


class DSCNNTeacher(nn.Module):
    """The MLPerf Tiny reference DS-CNN: 1 s windows -> probabilities over DSCNN_LABELS."""

    def __init__(self, checkpoint: str | Path):
        super().__init__()
        self.frontend = FrontEnd(MFCC_FRONTEND)  # zero mean, unit std: the reference feeds raw MFCCs
        self.net = DSCNN(DSCNNConfig(dropout=0.0), n_labels=len(DSCNN_LABELS))
        self.net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        self.eval()
        self.command_index = [DSCNN_LABELS.index(c) for c in COMMANDS]

    @torch.no_grad()
    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """windows (N, 16000) -> probabilities (N, 12)."""
        # The reference divides each clip by its signed maximum (not the absolute maximum).
        peak = windows.max(dim=1, keepdim=True).values
        scaled = windows / torch.where(peak > 0, peak, torch.ones_like(peak))
        return torch.softmax(self.net(self.frontend(scaled)), dim=-1)

    def command_probs(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, 16000) -> (N, 10) probabilities of COMMANDS, in that order."""
        return self(windows)[:, self.command_index]
