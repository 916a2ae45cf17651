#!/usr/bin/env bash
# What fired by mistake, trained back (docs/data.md "What fired by mistake"), from start to end:
#  1. a "television": flite's talk (voices the default never heard, never a keyword), its training half end to end
#     in one file, its validation half in another, and festival's held-out talk (another synthesiser) in a third;
#  2. the service (config.yaml's thresholds, gates and group, the default model, detection clips on) over the
#     training half: every keyword event is a false accept, its clip kept;
#  3. `streamd record "tv talk" --from CLIPS` lays the clips out as recordings; export/recipes/sat-home.yaml
#     trains on them (15 min on 2 cores);
#  4. the keyword events `streamd scan` publishes with config.yaml over each file, for the default model, runs/sat-home
#     and, where they are trained, its control (sat-afterspeech-control), sat-home-gentle (export/recipes/
#     sat-home-gentle.yaml: a third of the rate) and its control (sat-kwclose-gentle-control).
#     bash scripts/false_accepts.sh [WORK_DIR]        (default /tmp/false-accepts; skips what is already made)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
work=${1:-/tmp/false-accepts}
cache=${STREAMD_CACHE:-$HOME/.cache/streamd}
home=$cache/recordings/home
mkdir -p "$work"
say() { echo "== $*" >&2; }
source scripts/measure_lib.sh

flite=$cache/synth/flite-talk
festival=$cache/synth_talk/festival/seed1000
[ -f "$flite/manifest.csv" ] || $py -m export.data.synth_talk --engines flite --count 300 --seed 0 --out "$flite"
[ -f "$festival/manifest.csv" ] || $py -m export.data.synth_talk --engines festival --count 300 --seed 1000 --out "$festival"

say "laying the talk end to end"
$py - "$flite" "$festival" "$work" <<'PY'
import sys
from pathlib import Path
import numpy as np, soundfile as sf
from export.data.manifest import read_manifest
from export.data.splits import split_of
flite, festival, work = sys.argv[1:]
gap = np.zeros(8000, np.float32)  # 0.5 s between paragraphs
for name, manifest, split in (("train", flite, "train"), ("val", flite, "val"), ("festival", festival, None)):
    clips = [c for c in read_manifest(Path(manifest) / "manifest.csv") if split is None or split_of(c) == split]
    audio = np.concatenate([x for c in clips for x in (sf.read(c.path, dtype="float32")[0], gap)])
    sf.write(Path(work) / f"{name}.wav", audio, 16000, subtype="PCM_16")
    print(f"{name}.wav: {len(clips)} paragraphs, {len(audio) / 16000 / 3600:.2f} h", file=sys.stderr)
PY

if [ ! -f "$home/manifest.csv" ]; then
  say "the service over the training half, detection clips on"
  rm -rf "$work/clips"
  service_config models/streamd-sat.onnx "$work/clips" > "$work/mine.yaml"
  $py -m streamd.cli run --config "$work/mine.yaml" --source "file:$work/train.wav" --fast --log-level WARNING
  .venv/bin/streamd record "tv talk" --from "$work/clips" --out "$home"
fi
if [ ! -f runs/sat-home/last.pt ]; then
  say "training export/recipes/sat-home.yaml (~15 min)"
  $py -m export.train export/recipes/sat-home.yaml --out runs/sat-home
fi

say "keyword events published over each file (config.yaml's thresholds, gates and group)"
mapfile -t models < <(trained_models sat-afterspeech-control sat-home sat-kwclose-gentle-control sat-home-gentle)
count_events "${models[@]}" -- train val festival
