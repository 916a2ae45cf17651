#!/usr/bin/env bash
# Export a trained checkpoint into models/, evaluate it on the validation split, and write its card.
#   bash scripts/ship.sh CHECKPOINT NAME RECIPE [--int8]
# The validation numbers are of ../shared/data's validation split and of the recipe's recordings:' (a new tag or
# keyword of your own gets its threshold from its own held-out clips there).
# e.g. bash scripts/ship.sh runs/sat-distil/best.pt streamd-sat export/recipes/sat-distil.yaml --int8
# CHECKPOINT may be a SAT/UiT .onnx file export_model wrote (re-shipping a model without its run); the card
# has a validation curve where history.jsonl sits beside CHECKPOINT. CHECKPOINT models/NAME.onnx itself
# re-cards the shipped file as it is (after a change to the evaluation): no export, and the curve comes
# from its card where the run's history.jsonl is gone.
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint=$1 name=$2 recipe=$3 int8=${4:-}
py=.venv/bin/python
say() { echo "ship.sh: $*" >&2; }  # each stage, as the evaluations run quietly for minutes
data=../shared/data
out=runs/eval/$name
licence="CC-BY-NC-3.0 (weights trained on ESC-50 and UrbanSound8K, non-commercial)"
synthetic="espeak-ng keyword speech, synthetic alarms"
# the recipe's manifests with its base recipes' (a recipe may name a base: and inherit them)
manifests=$($py -c 'import sys; from export.train import load_recipe; print(" ".join(load_recipe(sys.argv[1]).synthetic))' "$recipe")
# its own recordings (recordings:), whose validation split is evaluated beside ../shared/data's
recordings=$($py -c 'import sys; from export.train import load_recipe, manifest_path
from pathlib import Path
print("\n".join(str(manifest_path(Path.cwd(), r, "recordings")) for r in load_recipe(sys.argv[1]).recordings))' "$recipe")
data_args=(--data "$data")
while read -r r; do [ -n "$r" ] && data_args+=(--data "$r"); done <<< "$recordings"
[[ $manifests == *synth/alarms-wide* ]] && synthetic+=" (also 2.5-4.3 kHz and 520 Hz)"
[[ $manifests == *synth/music* ]] && synthetic+=", synthetic music"
[[ $manifests == *synth/squeaks* ]] && synthetic+=", synthetic squeaks"
[[ $manifests == *synth/talk* ]] && synthetic+=", synthetic talk"
[[ $manifests == *synth/machines* ]] && synthetic+=", synthetic machine sounds"
[ ${#data_args[@]} -gt 2 ] && synthetic+=", your recordings (validation split held out)"
provenance=$(printf '{"recipe": "%s", "data": "../shared/data (validation split held out), %s"}' "$recipe" "$synthetic")

recard=
[[ $checkpoint -ef models/$name.onnx ]] && recard=1
if [ -z "$recard" ]; then
  $py -m export.export_model "$checkpoint" --out "models/$name.onnx" --licence "$licence" \
    --provenance-json "$provenance" ${int8:+--int8}
fi
models=("models/$name.onnx")
[ -n "$int8" ] && models+=("models/$name.int8.onnx")
# held-out synthetic music (seed 1000; training uses seed 0): false accepts where the shared data has none
music=${STREAMD_CACHE:-$HOME/.cache/streamd}/synth_music/seed1000
[ -f "$music/manifest.csv" ] || $py -m export.data.synth_music --out "$music" --count 80 --seconds 30 --seed 1000
# held-out squeaks (seed 1000): smoke_alarm's look-alikes, a stress test reported on the card
squeaks=${STREAMD_CACHE:-$HOME/.cache/streamd}/synth_squeaks/seed1000
[ -f "$squeaks/manifest.csv" ] || $py -m export.data.synth_alarms --out "$squeaks" --count 0 --negatives 0 --squeaks 120 --seed 1000
# held-out synthetic talk (seed 1000): running speech full of near-misses, a stress test of the keywords
talk=${STREAMD_CACHE:-$HOME/.cache/streamd}/synth_talk/seed1000
[ -f "$talk/manifest.csv" ] || $py -m export.data.synth_talk --out "$talk" --count 300 --seed 1000
for m in "${models[@]}"; do
  say "evaluating $m on the validation split of $data${recordings:+ and of the recordings: of the recipe} (~5 min on 2 cores)"
  $py -m export.evaluate "$m" "${data_args[@]}" --split val --hop-ms 160 --out "$out" --quiet
done
say "evaluating models/$name.onnx on held-out synthetic music, squeaks and talk (~3 min)"
$py -m export.evaluate "models/$name.onnx" --data "$music" --split all --hop-ms 160 --tasks wakeword,alarms --out "$out/music" --quiet
$py -m export.evaluate "models/$name.onnx" --data "$squeaks" --split all --hop-ms 160 --tasks alarms --out "$out/squeaks" --quiet
$py -m export.evaluate "models/$name.onnx" --data "$talk" --split all --hop-ms 160 --tasks wakeword --out "$out/talk" --quiet
history=$(dirname "$checkpoint")/history.jsonl
card_args=(--eval "$out/$name.json" --recipe "$recipe"
           --music-eval "$out/music/$name.json" --squeak-eval "$out/squeaks/$name.json" --talk-eval "$out/talk/$name.json")
[ -f "$history" ] && card_args+=(--history "$history")
[ -n "$recard" ] && card_args+=(--history-from-card "models/$name.md")
[ -n "$int8" ] && card_args+=(--int8 "models/$name.int8.onnx" --int8-eval "$out/$name.int8.json")
train="python -m export.train $recipe --out $(dirname "$checkpoint")   # after its init recipe, if it names one"
[[ $checkpoint == *.onnx ]] && train="# re-shipped from $checkpoint (its weights as they were)"
if [ -n "$recard" ]; then  # the card keeps how the file was made, and says how it was re-carded
  train=$($py -c 'import sys
block = open(sys.argv[1]).read().split("## Reproduce", 1)[1].split("```")[1].strip().splitlines()
print("\n".join(l for l in block if not l.startswith(("#", f"bash scripts/ship.sh models/{sys.argv[2]}.onnx "))))' \
          "models/$name.md" "$name")
  train+=$'\n'"# re-carded from the shipped file (its bytes as they were) after a change to the evaluation:"
fi
say "writing models/$name.md"
$py -m export.model_card "models/$name.onnx" "${card_args[@]}" --reproduce "$(cat <<MSG
$train
bash scripts/ship.sh $checkpoint $name $recipe $int8
MSG
)"
