"""How a model's smoke_alarm answers a temporal-three alarm as its piezo pitch moves.

For each fundamental, a few 8 s alarms (export.data.synth_alarms, seeds 100..) at -26 dBFS RMS over
white noise 20 dB below, after 1 s of silence, streamed at 160 ms from a zero state; printed: the
highest 5-hop mean of smoke_alarm per alarm (the evaluation's smoothing window). A detector that has
only heard one band shows its edges here.

    python -m export.alarm_sweep models/streamd-sat.onnx [more models]
"""

import sys

import numpy as np

from export.data.synth_alarms import make_alarm_with_beeps
from export.evaluation.alarms import ALARM_WINDOW_HOPS
from export.evaluation.decisions import moving_mean
from export.evaluation.streaming import Scorer
from streamd.model import load_model

PITCHES_HZ = (520, 2300, 2600, 2800, 3000, 3200, 3400, 3600, 3800, 4000, 4200, 4500)
ALARMS_PER_PITCH = 6
HOP_SAMPLES = 2560  # 160 ms at 16 kHz
ALARM_RMS = 0.05  # -26 dBFS
NOISE_RMS = 0.005  # 20 dB below


def kind_at(pitch_hz: int) -> str:
    return "t3low" if pitch_hz < 1000 else "t3"  # t3low is its own 500-540 Hz square wave


def alarm(pitch_hz: int, seed: int, sample_rate_hz: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio, _ = make_alarm_with_beeps(kind_at(pitch_hz), 8.0, sample_rate_hz, rng, (pitch_hz, pitch_hz + 1))
    audio = audio / np.sqrt(np.mean(audio[audio != 0] ** 2)) * ALARM_RMS
    audio = audio + NOISE_RMS * rng.standard_normal(len(audio))
    return np.concatenate([np.zeros(sample_rate_hz), audio]).astype(np.float32)


def sweep(path: str, pitches_hz=PITCHES_HZ, alarms_per_pitch: int = ALARMS_PER_PITCH) -> dict[int, list[float]]:
    """pitch -> the highest smoothed smoke_alarm score (ALARM_WINDOW_HOPS mean) for each of its alarms."""
    model = load_model(path, hop_samples=HOP_SAMPLES)  # as the service loads it
    scorer = Scorer(model, HOP_SAMPLES)
    column = model.info.label_names.index("smoke_alarm")
    peaks = {}
    for pitch_hz in pitches_hz:
        peaks[pitch_hz] = []
        for seed in range(100, 100 + alarms_per_pitch):
            scores = scorer.stream([alarm(pitch_hz, seed, model.info.sample_rate_hz)]).scores[:, [column]]
            peaks[pitch_hz].append(float(moving_mean(scores, ALARM_WINDOW_HOPS).max()))
    return peaks


def main(paths: list[str]) -> None:
    for path in paths:
        print(path)
        for pitch_hz, peaks in sweep(path).items():
            label = "520 Hz square (t3low)" if kind_at(pitch_hz) == "t3low" else f"{pitch_hz} Hz"
            print(f"  {label:>22}: " + " ".join(f"{p:.2f}" for p in peaks))


if __name__ == "__main__":
    main(sys.argv[1:])
