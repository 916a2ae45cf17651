"""Turn audio arriving in blocks of any size into model hops, carrying one stream's state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamd.model import Model


@dataclass(frozen=True)
class HopResult:
    end_sample: int  # stream position (samples since start) just after this hop
    scores: np.ndarray  # float32 [n_labels]


class StreamRunner:
    """One model on one stream. The output depends only on the samples, never on block sizes."""

    def __init__(self, model: Model, hop_samples: int):
        if hop_samples not in model.info.hop_samples:
            raise ValueError(f"{model.name} accepts hops {list(model.info.hop_samples)}, not {hop_samples}")
        self.model = model
        self.hop_samples = hop_samples
        self.state = model.new_state()
        self.position_samples = 0  # samples consumed by hops so far
        self._pending = np.zeros(0, np.float32)

    def reset(self, position_samples: int) -> None:
        """Start a fresh stream at position_samples (after a gap or a skip)."""
        self.state = self.model.new_state()
        self.position_samples = position_samples
        self._pending = np.zeros(0, np.float32)

    def push(self, block: np.ndarray) -> list[HopResult]:
        """Append samples; step the model for every full hop now buffered."""
        buffered = np.concatenate([self._pending, block.astype(np.float32, copy=False)])
        results = []
        n_hops = len(buffered) // self.hop_samples
        for i in range(n_hops):
            hop = buffered[i * self.hop_samples : (i + 1) * self.hop_samples]
            scores, self.state = self.model.step(hop, self.state)
            self.position_samples += self.hop_samples
            results.append(HopResult(self.position_samples, scores))
        self._pending = buffered[n_hops * self.hop_samples :].copy()
        return results
