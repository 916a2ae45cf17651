# What scripts/false_accepts.sh and scripts/false_starts.sh share (sourced from the repository root; they set $py and
# $work): the service's config for one model, the models to compare, and the events each publishes over a file.

# config.yaml with MODEL alone, private sockets, and detection clips into CLIPS ("off": none); with TAGS "tags", the
# tag events' clips too
service_config() {
  $py - "$1" "$2" "${3:-}" "$work" <<'PY'
import sys
from pathlib import Path
import yaml
model, clips, tags, work = sys.argv[1:]
config = yaml.safe_load(open("config.yaml"))
config["models"] = [{**config["models"][0], "path": str(Path(model).resolve())}]
config["clips"] = {"enabled": True, "tags": tags == "tags", "dir": clips, "max_count": 100000,
                   "max_bytes": 10**10} if clips != "off" else {"enabled": False}
config["bus"] = {"endpoint": f"ipc://{work}/bus"}
config["control"] = {"endpoint": f"ipc://{work}/control"}
yaml.safe_dump(config, sys.stdout)
PY
}

# models/streamd-sat.onnx, then each RUN trained under runs/ (exported into $work once), one path per line
trained_models() {
  echo models/streamd-sat.onnx
  for run in "$@"; do
    if [ -f "runs/$run/last.pt" ]; then
      [ -f "$work/$run.onnx" ] || $py -m export.export_model "runs/$run/last.pt" --out "$work/$run.onnx" > /dev/null
      echo "$work/$run.onnx"
    fi
  done
}

# for each MODEL (before --) and each NAME after it: the keyword events and tag starts `streamd scan` publishes over
# $work/NAME.wav with config.yaml's settings, counted per label, and the seconds the tags were on (their events'
# durations: a sound that comes and goes within hold_s is one long event, or several short ones)
count_events() {
  local models=() model name
  while [ "$1" != "--" ]; do models+=("$1"); shift; done
  shift
  for model in "${models[@]}"; do
    service_config "$model" off > "$work/count.yaml"
    for name in "$@"; do
      printf '%-28s %-9s ' "$(basename "$model" .onnx)" "$name"
      $py -m streamd.cli scan --json --config "$work/count.yaml" "$work/$name.wav" 2>/dev/null | $py -c "
import collections, json, sys
events = [json.loads(line) for line in sys.stdin if line.strip()]
words = collections.Counter(e['keyword'] for e in events if e.get('type') == 'keyword')
starts = collections.Counter(e['tag'] for e in events if e.get('type') == 'tag_start')
on_s = sum(e['duration_s'] for e in events if e.get('type') == 'tag_end')
print('keyword events', sum(words.values()), dict(words.most_common()), '| tag starts', sum(starts.values()),
      dict(starts.most_common()), f'| tags on {on_s:.0f} s')"
    done
  done
}
