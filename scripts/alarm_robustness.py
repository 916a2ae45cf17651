"""Smoke and CO alarms in harder rooms: the alarm pattern detector against the default model.

In-band alarms (2.9-3.5 kHz, where both can hear them; export.data.synth_alarms) over real backgrounds of
../shared/data (coffee-order speech, the kitchen and dish-washing recordings) at 0 and -10 dB (the
background's RMS against the sounding alarm's), dry and through an exponential noise tail of RT60 0.4 s.
An alarm is heard by a model when the service would start smoke_alarm for it: config.yaml's smoke_alarm
settings on the model's scores at the hop config.yaml runs it at, a start after the alarm began; "either"
is what the shipped config, which runs both, answers. Prints a Markdown table (models/streamd-alarm.md,
"Harder rooms").

    .venv/bin/python scripts/alarm_robustness.py [--alarms 8]
"""

import argparse
import glob

import numpy as np
import soundfile as sf

from export.data.augment import random_excerpt, reverberate, rms
from export.data.synth_alarms import make_alarm_with_beeps
from streamd.config import load_config
from streamd.runner import StreamRunner
from streamd.service import load_models
from streamd.smoothing import TagSmoother

SR = 16000
LEAD_S = 2.0


def wet_tail(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """An exponentially decaying noise tail far louder than its direct path: an alarm a room or two away
    (the training rooms of export.data.augment keep the direct path 0-10 dB above the tail)."""
    t = np.arange(int(rt60_s * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60_s)
    ir[0] = 1.0
    return ir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=8, help="alarms per row")
    args = parser.parse_args()
    config = load_config("config.yaml")
    specs = {spec.name: spec for spec in load_models(config)}
    names = [name for name, spec in specs.items() if "smoke_alarm" in spec.model.info.label_names]
    settings = config.tag_settings()["smoke_alarm"][0]
    speech = np.concatenate([sf.read(f, dtype="float32")[0] for f in sorted(glob.glob("../shared/data/speech/*.flac"))[:40]])
    backgrounds = {"speech": speech,
                   "kitchen": sf.read("../shared/data/noise/kitchen.flac", dtype="float32")[0],
                   "dishes": sf.read("../shared/data/noise/doing_the_dishes.flac", dtype="float32")[0]}

    def heard(name: str, audio: np.ndarray) -> bool:
        spec = specs[name]
        column = spec.model.info.label_names.index("smoke_alarm")
        tag = TagSmoother("smoke_alarm", settings.smoother(spec.hop_samples, SR), SR, spec.hop_samples)
        for result in StreamRunner(spec.model, spec.hop_samples).push(audio):
            for decision in tag.update(float(result.scores[column]), result.end_sample):
                if decision.kind == "start" and decision.end_sample > LEAD_S * SR:
                    return True
        return False

    print("| background | SNR dB | RT60 s | pattern | " + " | ".join(names) + " | either |")
    print("|---|---|---|---|" + "---|" * (len(names) + 1))
    row = 0
    for bg_name, bg in backgrounds.items():
        for snr_db in (0, -10):
            for rt60_s in (0.0, 0.4):
                for kind in ("t3", "t4"):
                    rng = np.random.default_rng(row)
                    row += 1
                    hits = dict.fromkeys(names, 0)
                    either = 0
                    for _ in range(args.alarms):
                        alarm, _ = make_alarm_with_beeps(kind, 12.0, SR, rng, (2900.0, 3500.0))
                        if rt60_s:
                            alarm = reverberate(alarm, wet_tail(rt60_s, rng))
                        scene = random_excerpt(bg, len(alarm) + round(2 * LEAD_S * SR), rng).astype(np.float64)
                        scene *= rms(alarm[np.abs(alarm) > 1e-4]) * 10 ** (-snr_db / 20) / rms(scene)
                        scene[round(LEAD_S * SR):round(LEAD_S * SR) + len(alarm)] += alarm
                        scene = np.clip(scene, -1.0, 1.0).astype(np.float32)
                        found = {name: heard(name, scene) for name in names}
                        for name in names:
                            hits[name] += found[name]
                        either += any(found.values())
                    cells = " | ".join(f"{hits[name]}/{args.alarms}" for name in names)
                    print(f"| {bg_name} | {snr_db} | {rt60_s:g} | {kind} | {cells} | {either}/{args.alarms} |", flush=True)


if __name__ == "__main__":
    main()
