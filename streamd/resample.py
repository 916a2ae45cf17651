"""Channel mix-down and a streaming polyphase resampler whose output does not depend on block sizes.

The resampler computes exactly what `scipy.signal.resample_poly(x, up, down)` computes over the whole
signal (same Kaiser-windowed FIR, same centring), but incrementally: it carries the input history the
filter still needs, and emits output sample k as soon as the input it depends on has arrived. That
costs a delay of half the filter (about 0.6 ms of audio at the usual rates) and nothing else. Each
output sample is computed by the same sequence of float operations whatever the block size, so
blocks of 1, 37 or 4096 samples give bit-identical output.

The filter is computed here with numpy (`kaiser_lowpass`, the same windowed sinc as
`scipy.signal.firwin`, equal to it within 1e-12): importing scipy.signal for one call took most of
the service's start-up (1.7 s quiet, 7-10 s on a loaded machine). A same-rate stream passes through.
"""

from __future__ import annotations

from math import gcd

import numpy as np

KAISER_BETA = 5.0  # resample_poly's default window
HALF_LEN_PER_RATE = 10  # resample_poly's filter half-length, in units of max(up, down)


def kaiser_lowpass(num_taps: int, cutoff: float, beta: float) -> np.ndarray:
    """Linear-phase low-pass FIR, cutoff as a fraction of Nyquist, unit gain at DC: what
    `scipy.signal.firwin(num_taps, cutoff, window=("kaiser", beta))` computes, in the same order."""
    m = np.arange(num_taps) - 0.5 * (num_taps - 1)
    h = cutoff * np.sinc(cutoff * m)
    h *= np.kaiser(num_taps, beta)
    return h / np.sum(h)


def mix_down(block: np.ndarray, channels: list[int] | None = None) -> np.ndarray:
    """(frames,) or (frames, n_channels) -> mono: the mean of the chosen channels (all if None), in float64;
    one channel is returned as it is (a view, its own dtype): no copy on the audio path for the common case."""
    block = np.asarray(block)
    if block.ndim == 1:
        return block
    if channels is not None and len(channels) == 1:
        return block[:, channels[0]]
    picked = block if channels is None else block[:, channels]
    if picked.shape[1] == 1:
        return picked[:, 0]
    return picked.astype(np.float64).mean(axis=1)


class StreamResampler:
    """Mono float samples at in_rate_hz -> float32 at out_rate_hz, one block at a time."""

    def __init__(self, in_rate_hz: int, out_rate_hz: int):
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError(f"rates must be positive, not {in_rate_hz} -> {out_rate_hz}")
        self.in_rate_hz = int(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        g = gcd(self.in_rate_hz, self.out_rate_hz)
        self.up, self.down = self.out_rate_hz // g, self.in_rate_hz // g
        self.passthrough = self.up == self.down == 1
        max_rate = max(self.up, self.down, 2)  # (2: a valid cutoff; unused when passing through)
        self.half_len = HALF_LEN_PER_RATE * max_rate  # filter centre, in the upsampled domain
        taps = kaiser_lowpass(2 * self.half_len + 1, 1.0 / max_rate, KAISER_BETA) * self.up
        self.taps_per_phase = -(-len(taps) // self.up)
        padded = np.zeros(self.taps_per_phase * self.up)
        padded[: len(taps)] = taps
        # polyphase_by_tap[j, p] = taps[p + j * up]: output k uses x[i_k - j] * polyphase_by_tap[j, phase_k]
        self._polyphase_by_tap = padded.reshape(self.taps_per_phase, self.up)
        self._tap_offsets = np.arange(self.taps_per_phase)[:, None]
        self.reset()

    def reset(self) -> None:
        """Forget all history: the next sample starts a new stream (zeros before it)."""
        self._n_in = 0  # input samples received so far
        self._next_out = 0  # index of the next output sample to emit
        self._history = np.zeros(self.taps_per_phase)  # input samples from absolute index _history_start
        self._history_start = -self.taps_per_phase  # negative indices are the zeros before the stream
        self._flushed = False

    @property
    def output_samples(self) -> int:
        """Output samples emitted so far."""
        return self._next_out

    def process(self, mono: np.ndarray) -> np.ndarray:
        """Feed input samples; return the output samples they complete (float32)."""
        if self._flushed:
            raise RuntimeError("process() after flush(); call reset() to start a new stream")
        if self.passthrough:
            out = np.array(mono, np.float32).reshape(-1)  # a copy, as every other ratio gives new samples
            self._n_in += len(out)
            self._next_out += len(out)
            return out
        mono = np.asarray(mono, np.float64).reshape(-1)
        self._history = np.concatenate([self._history, mono])
        self._n_in += len(mono)
        # output k needs input up to (k * down + half_len) // up
        n_ready = (self._n_in * self.up - 1 - self.half_len) // self.down + 1
        return self._emit(n_ready)

    def flush(self) -> np.ndarray:
        """End of stream: emit the tail, so the total length is ceil(n_in * up / down) like resample_poly."""
        if self._flushed:
            return np.zeros(0, np.float32)
        self._flushed = True
        if self.passthrough:
            return np.zeros(0, np.float32)
        n_total = -(-self._n_in * self.up // self.down)
        pad = (n_total * self.down + self.half_len) // self.up + 1 - self._n_in
        self._history = np.concatenate([self._history, np.zeros(max(pad, 0))])
        return self._emit(n_total)

    def _emit(self, n_ready: int) -> np.ndarray:
        k = np.arange(self._next_out, max(n_ready, self._next_out), dtype=np.int64)
        if len(k) == 0:
            return np.zeros(0, np.float32)
        t = k * self.down + self.half_len
        newest = t // self.up - self._history_start  # position in _history of x[i_k]
        # Every tap's input and weight for every output at once, [tap, output]; then the taps are added one
        # row at a time, so each output gets the same float operations in the same order whatever the block
        # size (a matrix product or np.sum may not).
        products = self._history[newest[None, :] - self._tap_offsets] * self._polyphase_by_tap[:, t % self.up]
        acc = np.zeros(len(k))
        for row in products:
            acc += row
        self._next_out = int(k[-1]) + 1
        self._trim()
        return acc.astype(np.float32)

    def _trim(self) -> None:
        """Drop input history that no future output can reach."""
        first_needed = (self._next_out * self.down + self.half_len) // self.up - (self.taps_per_phase - 1)
        drop = first_needed - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start += drop


def resample(mono: np.ndarray, in_rate_hz: int, out_rate_hz: int) -> np.ndarray:
    """A whole signal at out_rate_hz (float32), through the stream resampler the service captures with."""
    if in_rate_hz == out_rate_hz:
        return np.asarray(mono, np.float32)
    resampler = StreamResampler(in_rate_hz, out_rate_hz)
    return np.concatenate([resampler.process(mono), resampler.flush()]).astype(np.float32)
