"""The streaming contract on the torch side, and the wrapper that makes any clip classifier stream.

Every family is a StreamingModel:

    step(audio [B, hop], state: list[Tensor]) -> (logits [B, n_labels], next state)

with logits before the sigmoid (the export adds it). ``state_shapes`` names each state tensor and
gives its shape without the batch axis; zeros mean start of stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from export.frontend import FrontEnd
from streamd.contract import Label


@dataclass(frozen=True)
class ModelCard:
    """What a model says about itself besides weights; becomes the ONNX metadata."""

    family: str
    labels: tuple[Label, ...]
    sample_rate_hz: int
    hop_samples: tuple[int, ...]
    receptive_field_s: float


class StreamingModel(nn.Module):
    card: ModelCard

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """Where the weights (or, in a model without any, the buffers) are: CPU or CUDA."""
        return next(iter([*self.parameters(), *self.buffers()]), torch.zeros(0)).device

    def init_state(self, batch_size: int = 1) -> list[torch.Tensor]:
        return [torch.zeros(batch_size, *shape, device=self.device) for shape in self.state_shapes().values()]

    def step(self, audio: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def stream(self, audio: torch.Tensor, hop_samples: int) -> torch.Tensor:
        """Step through audio [B, T] hop by hop from a zero state: logits [B, T // hop, n_labels]."""
        state = self.init_state(audio.shape[0])
        outputs = []
        for start in range(0, audio.shape[1] - hop_samples + 1, hop_samples):
            logits, state = self.step(audio[:, start : start + hop_samples], state)
            outputs.append(logits)
        return torch.stack(outputs, dim=1)


class WindowedModel(StreamingModel):
    """A clip classifier over the last ``window_samples`` of audio; the window is the state.

    ``classifier`` maps features [B, frames, n_features] to logits [B, n_labels].
    """

    def __init__(self, frontend: FrontEnd, classifier: nn.Module, card: ModelCard, window_samples: int):
        super().__init__()
        if max(card.hop_samples) > window_samples:
            raise ValueError(f"hops {card.hop_samples} must not exceed the window of {window_samples} samples")
        self.frontend = frontend
        self.classifier = classifier
        self.card = card
        self.window_samples = window_samples

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"window": (self.window_samples,)}

    def classify(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B, window_samples] -> logits [B, n_labels] (the training entry point)."""
        return self.classifier(self.frontend(clips))

    def step(self, audio, state):
        window = torch.cat([state[0], audio], dim=1)[:, -self.window_samples :]
        return self.classify(window), [window]
