#!/usr/bin/env bash
# What set a tag off by mistake, trained back (docs/data.md "What set a tag off by mistake"), from start to end:
#  1. a house of appliances: synthetic look-alikes of the smoke alarm that are none (microwave and phone beeps, door
#     chimes, squeaks, other piezo buzzers; export.data.synth_alarms at seed 2000, where training's are seed 0), its
#     training split end to end in one file, its validation split in another, and seed 3000's in a third;
#  2. the service (config.yaml, the default model alone, detection clips on with clips.tags) over the training split:
#     every tag event is a false start, its clip kept;
#  3. `streamd review` answered "n" for every clip keeps each as "other sound", a sound with none of the tags on
#     (training's lookalikes); export/recipes/sat-home-beeps.yaml trains on them (15 min on 2 cores);
#  4. the tag starts `streamd scan` publishes with config.yaml over each file, for the default model,
#     runs/sat-home-beeps and, where trained, its control (sat-afterspeech-control) and sat-home-beeps-more
#     (export/recipes/sat-home-beeps-more.yaml: p_lookalike 0.2).
#     bash scripts/false_starts.sh [WORK_DIR]        (default /tmp/false-starts; skips what is already made)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
work=${1:-/tmp/false-starts}
cache=${STREAMD_CACHE:-$HOME/.cache/streamd}
home=$cache/recordings/home-beeps
mkdir -p "$work"
say() { echo "== $*" >&2; }
source scripts/measure_lib.sh

for seed in 2000 3000; do
  [ -f "$work/beeps$seed/manifest.csv" ] || $py -m export.data.synth_alarms --count 0 --negatives 300 --squeaks 100 \
    --piezo-negatives 100 --seed $seed --out "$work/beeps$seed" > /dev/null
done

say "laying the appliances end to end"
$py - "$work" <<'PY'
import sys
from pathlib import Path
import numpy as np, soundfile as sf
from export.data.manifest import read_manifest
from export.data.splits import split_of
work = Path(sys.argv[1])
gap = np.zeros(8000, np.float32)  # 0.5 s between sounds
for name, seed, split in (("train", 2000, "train"), ("val", 2000, "val"), ("seed3000", 3000, None)):
    clips = [c for c in read_manifest(work / f"beeps{seed}" / "manifest.csv") if split is None or split_of(c) == split]
    audio = np.concatenate([x for c in clips for x in (sf.read(c.path, dtype="float32")[0], gap)])
    sf.write(work / f"{name}.wav", audio, 16000, subtype="PCM_16")
    print(f"{name}.wav: {len(clips)} sounds, {len(audio) / 16000 / 3600:.2f} h", file=sys.stderr)
PY

if [ ! -f "$home/manifest.csv" ]; then
  say "the service over the training split, clips of keywords and tags on"
  rm -rf "$work/clips"
  service_config models/streamd-sat.onnx "$work/clips" tags > "$work/mine.yaml"
  $py -m streamd.cli run --config "$work/mine.yaml" --source "file:$work/train.wav" --fast --log-level WARNING
  n=$(ls "$work/clips"/*.wav | wc -l)
  say "reviewing the $n clips: none of the tags in any"
  for _ in $(seq "$n"); do echo n; done \
    | .venv/bin/streamd review "$work/clips" --config "$work/mine.yaml" --out "$home" --no-play | tail -n 2
fi
if [ ! -f runs/sat-home-beeps/last.pt ]; then
  say "training export/recipes/sat-home-beeps.yaml (~15 min)"
  $py -m export.train export/recipes/sat-home-beeps.yaml --out runs/sat-home-beeps
fi

say "tag starts and keyword events published over each file (config.yaml's thresholds)"
mapfile -t models < <(trained_models sat-afterspeech-control sat-home-beeps sat-home-beeps-more)
count_events "${models[@]}" -- train val seed3000

say "smoke_alarm scores per 160 ms hop over each file (the model alone, no smoothing)"
$py - "$work" "${models[@]}" <<'PY'
import sys
from pathlib import Path
import numpy as np, soundfile as sf
from streamd.model import load_model
work, models = Path(sys.argv[1]), sys.argv[2:]
for file in ("train", "val", "seed3000"):
    audio = sf.read(work / f"{file}.wav", dtype="float32")[0]
    for path in models:
        model = load_model(path, hop_samples=2560)
        column, state, scores = model.info.label_names.index("smoke_alarm"), model.new_state(), []
        for start in range(0, len(audio) - 2560 + 1, 2560):
            out, state = model.step(audio[start:start + 2560], state)
            scores.append(np.ravel(out)[column])
        scores = np.array(scores)
        print(f"{Path(path).stem:28s} {file:9s} hops {len(scores)}: above 0.3 {(scores > 0.3).sum()}, "
              f"0.5 {(scores > 0.5).sum()}, 0.8 {(scores > 0.8).sum()}")
PY
