"""Train a model family on scenes built from manifests.

    python -m export.train export/recipes/sat-default.yaml --out runs/sat-default [--resume] [--steps N]
        [--device auto|cpu|cuda]

Progress bars show the loss; every ``eval_every`` steps a fixed set of validation scenes (built only
from the validation split) is scored and the best checkpoint kept in ``OUT/best.pt``. The model, its
teachers and each batch live on the device (CUDA when present, unless ``--device cpu``); scenes are
mixed on the CPU, and checkpoints are saved from the CPU, so they load anywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from export.data.audio import load_audio
from export.data.manifest import Clip, manifest_file, read_manifest
from export.data.scenes import Pools, SceneConfig, SceneSampler, make_word
from export.data.freqwarp import freq_warp
from export.data.specaug import spec_augment
from export.data.teacher_targets import TeacherTargets
from export.data.splits import is_time_split, split_of, time_split
from export.families import build_model, load_checkpoint, save_checkpoint
from export.files import write_whole
from export.onnx_import import load_weights
from export.labels import COMMANDS, DEFAULT_LABELS, KEYWORDS, tag_name
from export.streaming import StreamingModel, WindowedModel
from streamd.contract import KIND_KEYWORD, KIND_TAG, Label

log = logging.getLogger("export.train")


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str = "sat"
    size: str = "default"
    overrides: dict = field(default_factory=dict)
    steps: int = 3000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 200
    seed: int = 0
    threads: int = 2
    eval_every: int = 250
    val_scenes: int = 384
    windows_per_scene: int = 2  # windowed families: 1 s crops taken from each scene
    scene: dict = field(default_factory=dict)  # SceneConfig overrides
    shared_data: str = "../shared/data"  # relative to the repo root
    synthetic: tuple[str, ...] = ()  # extra manifests (synthetic speech, alarms); train split only
    # synthetic voices kept out of training to measure on: a synthetic clip whose speaker names one of them
    # ("jf_nezumi": that voice, its blends and warps) does not train
    held_out_voices: tuple[str, ...] = ()
    # your own recordings: manifests (or folders holding a manifest.csv) laid out like shared_data (kws/<word>/,
    # tags/<sound>/, speech/, noise/); split as shared_data is, their validation part held out for training's
    # validation and for scripts/ship.sh's evaluation, and recorded clips as shared_data's are
    recordings: tuple[str, ...] = ()
    init: str = ""  # start from this checkpoint's (or shipped SAT/UiT .onnx file's) weights; empty: from scratch
    # a shallower model from init's: block i of the recipe's model starts as init's block init_blocks[i]
    # (e.g. [0, 2] of four); the other blocks are left out; empty: block for block
    init_blocks: tuple[int, ...] = ()
    # keywords beyond export.labels.KEYWORDS (a wake word of your own): labels appended to the model's;
    # their positives are clips labelled with the word (synth_speech --new-keywords, your recordings)
    new_keywords: tuple[str, ...] = ()
    # sound tags beyond export.labels.TAGS (your doorbell, a cuckoo clock): labels appended after new_keywords;
    # their positives are tag clips labelled with the name (a manifest of your recordings)
    new_tags: tuple[str, ...] = ()
    keyword_pos_weight: float = 1.0  # weight of positive keyword targets in the loss (keywords are rare)
    # SpecAugment on the front end's output while training, export.data.specaug.spec_augment's keywords
    # ({time_masks, max_time_frames, freq_masks, max_freq_bins}); empty: off
    spec_augment: dict = field(default_factory=dict)
    # vocal tract length perturbation of the front end's output while training, export.data.freqwarp's
    # keywords ({p, max_alpha}); empty: off
    freq_warp: dict = field(default_factory=dict)
    # {dscnn: checkpoint, weight: 0..1, agree_only: true to blend only where the command teacher decides as
    # the scene does, efficientat: folder, tag_weight: 0..1, tag_label_weight: 0..1 the floor of a tag clip's
    # own label under the teacher's blend (1: the label always wins), tag_columns: true for precomputed targets on
    # every column (export/data/teacher_targets.py), else tag_every/tag_window_columns; tag_scene_view: true (with
    # tag_columns) has the teacher also hear the scene itself at every tag_every-th column those targets cover and
    # replace them there (TagDistiller.scene_view; speech stays the scene's); audioset_weight: w > 0
    # (with tag_columns) also teaches a training-only head the teacher's 527 AudioSet probabilities on the
    # tag clips, each class's loss weighted w (AudioSetHead)}
    teacher: dict = field(default_factory=dict)
    # labels whose rows of the output head alone learn; every other weight stays as init left it, so the
    # other labels score exactly as before (a detector widened without touching the keywords); empty: all
    train_labels: tuple[str, ...] = ()


# keys whose mappings a recipe merges into its base's, key by key, rather than replacing them
MERGED_KEYS = ("overrides", "scene", "teacher")


def recipe_dict(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A recipe file's keys on top of its ``base:`` recipe's (a path relative to the file)."""
    path = path.resolve()
    if path in seen:
        raise SystemExit(f"{path}: recipe bases form a loop ({' -> '.join(p.name for p in seen + (path,))})")
    raw = yaml.safe_load(path.read_text()) or {}
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not (path.parent / base).is_file():
        raise SystemExit(f"{path}: base recipe {base} not found (a path relative to this file)")
    merged = recipe_dict(path.parent / base, seen + (path,))
    for key, value in raw.items():
        merged[key] = {**merged.get(key, {}), **value} if key in MERGED_KEYS else value
    return merged


def load_recipe(path: str | Path) -> Recipe:
    raw = recipe_dict(Path(path))
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SystemExit(f"{path}: unknown recipe key(s) {', '.join(unknown)}; known: base, {', '.join(sorted(known))}")
    for key in ("synthetic", "held_out_voices", "recordings", "new_keywords", "new_tags", "train_labels",
                "init_blocks"):
        if key in raw:
            raw[key] = tuple(raw[key])
    for key in ("new_keywords", "new_tags"):
        clash = sorted(set(raw.get(key, ())) & {label.name for label in DEFAULT_LABELS})
        if clash:
            raise SystemExit(f"{path}: {key} {clash} are labels of the default model already")
    taken = sorted(set(raw.get("new_tags", ())) & (set(raw.get("new_keywords", ())) | set(NEGATIVE_LABELS)))
    if taken:
        raise SystemExit(f"{path}: new_tags {taken} name a new keyword or clips that training takes as negatives")
    recipe = Recipe(**raw)
    if recipe.train_labels and recipe.weight_decay:
        raise SystemExit(f"{path}: train_labels needs weight_decay: 0 (decay would shrink the frozen rows too)")
    if recipe.init_blocks and not recipe.init:
        raise SystemExit(f"{path}: init_blocks picks blocks of the init model; name one with init:")
    return recipe


def recipe_labels(recipe: Recipe) -> tuple[Label, ...]:
    """The model's labels: the default household set, then the recipe's new keywords and new tags."""
    return (DEFAULT_LABELS + tuple(Label(k, KIND_KEYWORD) for k in recipe.new_keywords)
            + tuple(Label(t, KIND_TAG) for t in recipe.new_tags))


def recipe_keywords(recipe: Recipe) -> tuple[str, ...]:
    return tuple(label.name for label in recipe_labels(recipe) if label.kind == KIND_KEYWORD)


# ----------------------------------------------------------------------------------------- data

# labels of clips that train as negatives, whatever the recipe's labels (clip_role)
NEGATIVE_LABELS = ("_silence_", "_unknown_", "not_wake_word", "noise", "beep", "chime", "squeak", "lookalike")


def clip_role(clip: Clip, keywords: tuple[str, ...] = KEYWORDS) -> tuple[str, str]:
    """(role, name) of a shared-data or synthetic clip: keyword/unknown/speech/noise/lookalike/tag/skip."""
    label = clip.label
    if label in keywords:
        return "keyword", label
    if label == "hey_computer":
        return "keyword", "computer"  # the phrase ends with the wake word: fire after it
    if label == "_silence_":
        return "skip", ""
    rel = str(clip.path)
    if "/kws/" in rel or label in ("_unknown_", "not_wake_word"):
        # a carrier ("hey") + word; the label too, which for your own recordings is what was said ("hey kitchen on")
        said = " ".join(a for a in (label, clip.attr("text"), clip.attr("word")) if a)
        text = " " + said.replace("_", " ") + " "
        if any(f" {k} " in text for k in keywords):
            return "skip", ""  # "go on", "right now": a keyword inside is no negative
        return "unknown", label
    if label == "speech":
        return "speech", "speech"
    if label == "noise" or label in ("beep", "chime", "squeak"):
        return "noise", label
    if label == "lookalike":
        return "lookalike", label
    return "tag", tag_name(label)


def pool_role(clip: Clip, label_names: tuple[str, ...], keywords: tuple[str, ...] = KEYWORDS) -> tuple[str, str]:
    """clip_role as build_pools takes it: a tag clip of a sound the model has no label for is left out ("skip"), or
    where it is one of your own recordings "unlabelled" (the kettle that set off the smoke alarm: a lookalike, heard
    with none of the tags on)."""
    role, name = clip_role(clip, keywords)
    if role == "tag" and name not in label_names:
        return ("unlabelled", name) if clip.attrs.get("recording") else ("skip", "")
    return role, name


def build_pools(clips: list[Clip], sample_rate_hz: int, label_names: tuple[str, ...],
                teacher_targets: TeacherTargets | None = None, keywords: tuple[str, ...] = KEYWORDS,
                audioset_targets: TeacherTargets | None = None) -> Pools:
    """Decoded clips by role; with teacher_targets, each tag clip also carries the teacher's column targets
    (and with audioset_targets its AudioSet ones)."""
    pools = Pools()
    clips = list(clips)
    if teacher_targets is not None or audioset_targets is not None:
        clips = tqdm(clips, desc="clips (teacher targets on a cache miss)", unit="clip", mininterval=10)
    for clip in clips:
        role, name = pool_role(clip, label_names, keywords)
        if role == "skip":
            continue
        audio = load_audio(clip.path, sample_rate_hz)
        if len(audio) < sample_rate_hz // 10 or not np.any(audio):
            continue
        if role == "keyword":
            pools.keywords.setdefault(name, []).append(make_word(audio, bool(clip.attrs.get("synthetic"))))
        elif role == "unknown":
            pools.unknown.append(make_word(audio, bool(clip.attrs.get("synthetic"))))
        elif role == "speech":
            pools.speech.append(audio)
        elif role == "noise":  # synthetic beeps, chimes, squeaks: negatives by design, no teacher
            pools.noise.append(audio)
            pools.noise_recorded.append(False)
            pools.noise_teacher.append(None)
        elif role in ("lookalike", "unlabelled"):
            pools.lookalikes.append(audio)
        else:
            pools.tags.setdefault(name, []).append(audio)
            pools.tag_synthetic.setdefault(name, []).append(bool(clip.attrs.get("synthetic")))
            if teacher_targets is not None:
                pools.tag_teacher.setdefault(name, []).append(teacher_targets(clip.path, audio))
            if audioset_targets is not None:
                pools.tag_audioset.setdefault(name, []).append(audioset_targets(clip.path, audio))
    return pools


def rooms_taught(scene: dict) -> bool:
    """Whether a recipe's scenes take the recorded rooms' teacher targets (noise_unsure, noise_teacher_weight)."""
    return bool(scene.get("noise_unsure") or scene.get("noise_teacher_weight"))


def manifest_path(root: Path, source: str, key: str) -> Path:
    """A recipe's manifest (or data folder: its manifest.csv) under key, relative to the repo root unless absolute
    or ~; a clear exit where it is missing."""
    path = Path(source).expanduser()
    path = manifest_file((path if path.is_absolute() else root / path).resolve())
    if not path.is_file():
        raise SystemExit(f"{key}: {path} not found (make it first: the recipe's comments and docs/data.md say how)")
    return path


def read_recordings(path: Path) -> list[Clip]:
    """A recordings manifest's clips; a clear exit where it lists none or files that are no audio, a warning where
    its split holds nothing out (or trains nothing) and where clips lie outside the folders the evaluation reads."""
    from export.evaluation.clips import in_group, select_clips

    clips, groups = select_clips(path, "all")  # groups: the folders as the manifest writes them (links unresolved)
    if not clips:
        raise SystemExit(f"{path}: lists no clips")
    unreadable = []
    for clip in clips:  # a header each: before a long run, not in the middle of loading
        try:
            sf.info(str(clip.path))
        except RuntimeError as error:
            unreadable.append(f"{clip.path}: {error}")
    if unreadable:
        raise SystemExit(f"{path}: {len(unreadable)} of {len(clips)} files cannot be read, e.g. {unreadable[0]}; "
                         "list WAV, FLAC or OGG files (ffmpeg -i IN -ac 1 -ar 16000 OUT.wav converts others)")
    split = [c for c in clips if not is_time_split(c)]
    n_val = sum(split_of(c) == "val" for c in split)
    by_file = sum(bool(c.speaker) and c.attrs.get("split_by") == "file" for c in split)
    log.info("%s: %d clips train, %d validate; long recordings split in time: %d%s", path, len(split) - n_val, n_val,
             len(clips) - len(split), f"; {by_file} clips split by file name, as their speakers would all fall on "
             "one side (the validation hears the speakers training heard)" if by_file else "")
    if split and n_val in (0, len(split)):
        side = "validation" if n_val else "training"
        log.warning("%s: all %d clips fall in the %s split (export.data.splits: by speaker, else by file name), "
                    "so %s; record more clips", path, len(split), side,
                    "none trains" if n_val else "none is held out to measure")
    folders = ("kws", "tags", "speech", "noise")
    unread = [c for c in clips if not any(in_group(c, groups, f) for f in folders)]
    if unread:
        log.warning("%s: %d clips (e.g. %s) are in none of the folders the evaluation reads (%s/): they train, but "
                    "scripts/ship.sh will not measure them", path, len(unread), unread[0].path, "/, ".join(folders))
    return clips


def split_clips(recipe: Recipe, root: Path) -> tuple[list[Clip], list[Clip], list[Clip]]:
    """(train clips, val clips, long noise files split in time) of a recipe's data: shared_data's and the
    recordings' split by export.data.splits, the synthetic manifests' training part (and their smoke alarms' val)."""
    recorded = read_manifest((root / recipe.shared_data / "manifest.csv").resolve())
    for source in recipe.recordings:
        mine = read_recordings(manifest_path(root, source, "recordings"))
        for clip in mine:
            clip.attrs["recording"] = True  # its sounds under names the model has none for train as lookalikes
        recorded += mine
    noise_files = [c for c in recorded if is_time_split(c)]
    rest = [c for c in recorded if not is_time_split(c)]
    train_clips = [c for c in rest if split_of(c) == "train"]
    val_clips = [c for c in rest if split_of(c) == "val"]
    for manifest in recipe.synthetic:
        synth = read_manifest(manifest_path(root, manifest, "synthetic"))
        for clip in synth:
            clip.attrs["synthetic"] = True
        held = [c for c in synth if held_out(c, recipe.held_out_voices)]
        if held:
            log.info("%s: %d clips of held-out voices (%s) left out of training", manifest, len(held),
                     ", ".join(recipe.held_out_voices))
        train_clips += [c for c in synth if split_of(c) == "train" and not held_out(c, recipe.held_out_voices)]
        val_clips += [c for c in synth if c.label == "smoke_alarm" and split_of(c) == "val"]
    return train_clips, val_clips, noise_files


def held_out(clip: Clip, voices: tuple[str, ...]) -> bool:
    """Is the clip's speaker one of the held-out voices (or a blend or warp of one)?"""
    return any(voice in clip.speaker for voice in voices)


def unlabelled_sounds(clips: list[Clip], label_names, keywords: tuple[str, ...]) -> dict[str, int]:
    """How many of the recordings' tag clips (streamd record --kind sound, streamd review) name each sound that is
    no label of the model: build_pools takes them as lookalikes (pool_role)."""
    counts: dict[str, int] = {}
    for clip in clips:
        role, name = pool_role(clip, label_names, keywords)
        if role == "unlabelled":
            counts[name] = counts.get(name, 0) + 1
    return counts


def train_clips(recipe: Recipe, root: Path) -> list[Clip]:
    return split_clips(recipe, root)[0]


def load_pools(recipe: Recipe, root: Path, sample_rate_hz: int, label_names,
               teacher_targets: TeacherTargets | None = None,
               audioset_targets: TeacherTargets | None = None) -> tuple[Pools, Pools]:
    """(train, val) pools; the long noise recordings (the rooms) are split in time (export.data.splits.time_split).
    With teacher_targets and rooms_taught, the training rooms carry the teacher's column targets too, computed over
    each whole recording (cached by file) and cut where its audio is (validation scenes keep every noise column
    negative, as before)."""
    train_clips, val_clips, noise_files = split_clips(recipe, root)
    keywords = recipe_keywords(recipe)
    train = build_pools(train_clips, sample_rate_hz, label_names, teacher_targets, keywords, audioset_targets)
    val = build_pools(val_clips, sample_rate_hz, label_names, keywords=keywords)
    missing = [n for n in recipe.new_keywords if n not in train.keywords] + [n for n in recipe.new_tags
                                                                             if n not in train.tags]
    if missing:
        raise SystemExit(f"{recipe.name}: no training clip of {missing}; label clips with the name in a manifest "
                         "under the recipe's recordings: or synthetic:")
    unlabelled = unlabelled_sounds(train_clips + val_clips, label_names, keywords)
    if unlabelled:
        said = (f"{sum(unlabelled.values())} recorded clips are of sounds the model has no label for ("
                + ", ".join(f"{name} {n}" for name, n in sorted(unlabelled.items())) + "): ")
        if recipe.scene.get("p_lookalike"):
            log.info(said + "they train as sounds with none of its tags on (scene.p_lookalike); name them under "
                     "new_tags: to learn them instead")
        else:
            log.warning(said + "they would train as sounds with none of its tags on, but the recipe's "
                        "scene.p_lookalike is 0, so they do not train; set it, or name them under new_tags: to "
                        "learn them (docs/data.md \"What set a tag off by mistake\")")
    rooms = [load_audio(clip.path, sample_rate_hz) for clip in noise_files]
    for split, pools in (("train", train), ("val", val)):
        pools.noise += [time_split(audio, split) for audio in rooms]
        pools.noise_recorded += [True] * len(rooms)
    if teacher_targets is not None and rooms_taught(recipe.scene):
        for clip, audio in zip(noise_files, rooms):
            n_columns = -(-len(time_split(audio, "train")) // teacher_targets.column_samples)
            train.noise_teacher.append(teacher_targets(clip.path, audio)[:n_columns])
    return train, val


def describe(pools: Pools) -> str:
    n_kw = sum(len(v) for v in pools.keywords.values())
    n_tag = sum(len(v) for v in pools.tags.values())
    return (f"{n_kw} keyword words over {len(pools.keywords)} keywords, {len(pools.unknown)} other words, "
            f"{len(pools.speech)} speech, {len(pools.noise)} noise, {n_tag} tag clips over {len(pools.tags)} tags")


# ---------------------------------------------------------------------------------------- model

def build(recipe: Recipe, labels) -> StreamingModel:
    return build_model(recipe.family, labels, recipe.size, **recipe.overrides)


def warm_start(model: StreamingModel, path: Path, blocks: tuple[int, ...] = ()) -> None:
    """Load a trained checkpoint's (or a shipped SAT/UiT ONNX file's) weights into the recipe's model.
    The recipe's model may have parts the checkpoint lacks (e.g. SAT's zero-initialised frame branch,
    a new keyword's row of the head), which keep their initial values; every other tensor the
    checkpoint has must fit, so a mismatched family or size fails here. blocks: see Recipe.init_blocks."""
    donor, meta = load_weights(path)
    donor_labels = [name for name, _ in meta["labels"]]
    target = model.state_dict()
    donor_state = picked_blocks(donor.state_dict(), blocks) if blocks else donor.state_dict()
    weights = widened_mlps(relabelled(donor_state, donor_labels, target, [l.name for l in model.card.labels]), target)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected:
        raise ValueError(f"{path}: the recipe's model has no {sorted(unexpected)}; is the recipe's family/size the checkpoint's?")
    new = [l.name for l in model.card.labels if l.name not in donor_labels]
    log.info("initialised from %s%s%s", path, f"; new, not in it: {sorted(missing)}" if missing else "",
             f"; new labels: {new}" if new else "")


def picked_blocks(donor: dict, blocks: tuple[int, ...]) -> dict:
    """donor's tensors with its transformer blocks renumbered: block i is donor's block blocks[i]; donor's
    other blocks are left out (a shallower student starting from some of a deeper model's layers)."""
    have = {int(k.split(".")[1]) for k in donor if k.startswith("blocks.")}
    if not have:
        raise SystemExit("init_blocks: the init model has no transformer blocks")
    unknown = sorted(set(blocks) - have)
    if unknown:
        raise SystemExit(f"init_blocks: the init model has blocks {sorted(have)}, not {unknown}")
    out = {k: v for k, v in donor.items() if not k.startswith("blocks.")}
    for i, source in enumerate(blocks):
        prefix = f"blocks.{source}."
        out.update({f"blocks.{i}.{k[len(prefix):]}": v for k, v in donor.items() if k.startswith(prefix)})
    return out


def relabelled(donor: dict, donor_labels: list[str], target: dict, target_labels: list[str]) -> dict:
    """donor's tensors, with those indexed by label (the head's rows) laid out for target's labels:
    a label both have keeps the donor's row, a new label keeps target's initial row."""
    if donor_labels == target_labels:
        return donor
    where = {name: i for i, name in enumerate(donor_labels)}
    out = dict(donor)
    for key, weights in donor.items():
        want = target.get(key)
        if want is None or weights.ndim == 0 or weights.shape[0] != len(donor_labels) or want.shape[0] != len(target_labels) \
                or weights.shape[1:] != want.shape[1:]:
            continue
        grown = want.clone()
        for i, name in enumerate(target_labels):
            if name in where:
                grown[i] = weights[where[name]]
        out[key] = grown
    return out


def widened_mlps(donor: dict, target: dict) -> dict:
    """donor's tensors, with each transformer MLP (keys ``*.mlp.0`` / ``*.mlp.2``) grown to target's
    hidden width where target's is wider: the donor's units first, the new units keep target's
    initial input weights and get zero output weights, so the grown model computes what the donor
    did and the new units start learning from there (a wider ``mlp_ratio`` on a trained model)."""
    out = dict(donor)
    for key, weights in donor.items():
        want = target.get(key)
        if want is None or want.shape == weights.shape or ".mlp." not in key:
            continue
        if (key.endswith(".mlp.0.weight") and want.shape[1:] == weights.shape[1:]) or key.endswith(".mlp.0.bias"):  # (hidden, d) / (hidden,)
            grown = want.clone()
            grown[: weights.shape[0]] = weights
        elif key.endswith(".mlp.2.weight") and want.shape[0] == weights.shape[0]:  # (d, hidden)
            grown = torch.zeros_like(want)
            grown[:, : weights.shape[1]] = weights
        else:
            continue
        out[key] = grown
    return out


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when torch sees a GPU, else the CPU; cuda without a GPU is an error, not a fallback."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (this torch build or machine has none)")
    return torch.device(name)


def restrict_to_labels(model: StreamingModel, names: tuple[str, ...], label_names: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze every weight but the head's rows of names (their gradients elsewhere are zeroed); returns the
    parameters left to learn. Use no weight decay with it: AdamW would shrink the frozen rows too."""
    unknown = sorted(set(names) - set(label_names))
    if unknown:
        raise SystemExit(f"train_labels: {unknown} are not labels of the model")
    head = getattr(model, "head", None)
    if not isinstance(head, torch.nn.Linear):
        raise SystemExit(f"train_labels needs a model whose output is one linear head (SAT, UiT), not {model.card.family}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    rows = torch.zeros(len(label_names), device=head.weight.device)
    rows[[label_names.index(n) for n in names]] = 1.0
    head.weight.requires_grad_(True).register_hook(lambda grad: grad * rows[:, None])
    head.bias.requires_grad_(True).register_hook(lambda grad: grad * rows)
    return [head.weight, head.bias]


def set_normalisation(model: StreamingModel, sampler: SceneSampler, rng, n_scenes: int = 128) -> None:
    """Per-feature mean and std of the front end over training scenes."""
    audio = torch.from_numpy(np.stack([sampler.sample(rng)[0] for _ in range(n_scenes)])).to(model.device)
    with torch.no_grad():
        feats = model.frontend.raw(audio).flatten(0, 1)
    model.frontend.set_normalisation(feats.mean(0), feats.std(0))


def add_feature_hook(model: StreamingModel, augment) -> torch.utils.hooks.RemovableHandle:
    """augment(features, frontend) on the front end's output while the model trains: a forward hook,
    so the weights, the export and the streaming path stay as they are."""

    def hook(module, inputs, features):
        return augment(features, module) if module.training else features

    return model.frontend.register_forward_hook(hook)


def add_freq_warp(model: StreamingModel, settings: dict, rng: np.random.Generator):
    """Warp the features along frequency (export.data.freqwarp), drawn from the training rng."""
    return add_feature_hook(model, lambda f, frontend: freq_warp(f, frontend, rng, **settings)) if settings else None


def add_spec_augment(model: StreamingModel, settings: dict, rng: np.random.Generator):
    """Mask the features (SpecAugment), masks from the training rng (reproducible)."""
    return add_feature_hook(model, lambda f, _: spec_augment(f, rng, **settings)) if settings else None


def logits_and_targets(model, audio, targets, mask, rng, windows_per_scene: int, column_samples: int):
    """Per-column logits for streaming models; per-window logits for windowed ones."""
    if not isinstance(model, WindowedModel):
        return model(audio), targets, mask
    W = model.window_samples
    n_columns = targets.shape[1]
    min_column = max(0, math.ceil(W / column_samples) - 1)
    clips, t, m = [], [], []
    for b in range(audio.shape[0]):
        for c in rng.integers(min_column, n_columns, size=windows_per_scene):
            end = (int(c) + 1) * column_samples
            clip = audio[b, max(0, end - W) : end]
            clips.append(F.pad(clip, (W - clip.shape[0], 0)))
            t.append(targets[b, c])
            m.append(mask[b, c])
    return model.classify(torch.stack(clips)), torch.stack(t), torch.stack(m)


def blend_commands(hard: torch.Tensor, soft: torch.Tensor, weight: float, agree_only: bool = False) -> torch.Tensor:
    """Command targets (..., 10) from the scene's hard ones and the teacher's probabilities:
    (1 - weight) * hard + weight * soft. agree_only: only in columns where the teacher decides as the scene
    does (the same command at >= 0.5, or none); elsewhere the hard targets stay. The teacher is wrong on
    about 8 % of real clips of unseen speakers (it hears a quiet "down" as nothing, "dog" as "down"), and
    blending there teaches the student the same mistake."""
    blended = (1 - weight) * hard + weight * soft
    if not agree_only:
        return blended
    def decision(p):  # index of the command at >= 0.5, or -1 for none
        best, index = p.max(dim=-1)
        return torch.where(best >= 0.5, index, torch.full_like(index, -1))
    agree = (decision(hard) == decision(soft)).unsqueeze(-1)
    return torch.where(agree, blended, hard)


class CommandDistiller:
    """Blend the DS-CNN teacher's command probabilities into the per-column keyword targets.

    The teacher hears the 1 s ending at each column's end, as a windowed model would; where a target
    is not masked, target = blend_commands(hard, teacher, weight, agree_only). hard_on_speech: where the
    scene says speech but no command (running speech, other words, a word still being said), the hard
    targets stay: the teacher learnt from isolated 1 s words and in running speech hears "stop" in "a
    cup" (0.98-0.99) or "a double shot", which the blend would teach."""

    def __init__(self, checkpoint: Path, weight: float, label_names: tuple[str, ...], column_samples: int,
                 agree_only: bool = False, hard_on_speech: bool = False, device: torch.device = torch.device("cpu")):
        from export.teachers import WINDOW_SAMPLES, DSCNNTeacher

        self.teacher = DSCNNTeacher(checkpoint).to(device)
        self.weight = weight
        self.agree_only = agree_only
        self.speech = label_names.index("speech") if hard_on_speech and "speech" in label_names else None
        self.columns = [label_names.index(c) for c in COMMANDS]
        self.column_samples = column_samples
        self.window_samples = WINDOW_SAMPLES

    def __call__(self, audio: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor):
        B, n_columns = targets.shape[:2]
        padded = F.pad(audio, (self.window_samples - self.column_samples, 0))
        windows = padded.unfold(1, self.window_samples, self.column_samples)[:, :n_columns]  # (B, C, window)
        soft = self.teacher.command_probs(windows.reshape(-1, self.window_samples)).reshape(B, n_columns, -1)
        hard = targets[..., self.columns]
        blended = blend_commands(hard, soft, self.weight, self.agree_only)
        if self.speech is not None:
            speech_only = (targets[..., self.speech] >= 0.5) & (mask[..., self.speech] > 0) & (hard.max(dim=-1).values < 0.5)
            blended = torch.where(speech_only.unsqueeze(-1), hard, blended)
        out = targets.clone()
        out[..., self.columns] = blended
        return out, mask


class TagDistiller:
    """Blend the EfficientAT AudioSet teacher's tag probabilities into the tag targets.

    The teacher is costlier, so it hears ``window_columns`` columns ending at every ``every``-th
    column; there, for each tag it can name, target = (1 - weight) * hard + weight * teacher, and the
    target counts even where the weak clip label left it masked (the teacher knows whether the sound
    is there).

    ``scene_view``: with the precomputed column targets (``tag_columns``), which are the teacher's view of each
    clip alone, the teacher hears the scene as the student does (the clip under a word, a bed, a second sound, a
    room, another equaliser and level) at every ``every``-th column those targets cover, and its view there
    replaces theirs: weight * teacher for every tag it can name but speech, except a label the scene holds at 1
    (the clip's own), which stays."""

    def __init__(self, checkpoint_dir: Path, weight: float, label_names: tuple[str, ...], column_samples: int,
                 every: int = 4, window_columns: int = 8, device: torch.device = torch.device("cpu"),
                 scene_view: bool = False):
        from export.labels import TAGS
        from export.teacher_efficientat import EfficientATTeacher

        self.teacher = EfficientATTeacher(checkpoint_dir).eval().to(device)
        self.weight = weight
        self.columns = torch.tensor([label_names.index(t) for t in TAGS], device=device)
        # the scene's view leaves speech to the scene: its targets there (words, talk) are what the speech gate
        # learns, and are often soft where no tag clip lies
        self.scene_tags = torch.tensor([i for i, t in enumerate(TAGS) if t != "speech"], device=device)
        self.scene_columns = self.columns[self.scene_tags]
        self.column_samples = column_samples
        self.every = every
        self.window_samples = window_columns * column_samples
        self.scene_view = scene_view

    def windows(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, n_columns, window): the window_columns columns ending at each column, zeros before the scene."""
        padded = F.pad(audio, (self.window_samples - self.column_samples, 0))
        return padded.unfold(1, self.window_samples, self.column_samples)

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor):
        if self.scene_view:
            return self.replace_taught(audio, targets, mask)
        B, n_columns = targets.shape[:2]
        chosen = torch.arange(self.every - 1, n_columns, self.every, device=audio.device)  # columns whose end gets a teacher window
        windows = self.windows(audio)[:, chosen]  # (B, K, window)
        soft = self.teacher.tag_probs(windows.reshape(-1, self.window_samples)).reshape(B, len(chosen), -1)
        known = torch.isfinite(soft)
        out, out_mask = targets.clone(), mask.clone()
        hard = targets[:, chosen][..., self.columns]
        blended = torch.where(known, (1 - self.weight) * hard + self.weight * soft.nan_to_num(), hard)
        out[:, chosen.unsqueeze(1), self.columns] = blended
        seen = mask[:, chosen][..., self.columns]
        out_mask[:, chosen.unsqueeze(1), self.columns] = torch.where(known, torch.ones_like(seen), seen)
        return out, out_mask

    def replace_taught(self, audio: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor):
        """scene_view: the columns the precomputed targets taught (a tag strictly between 0 and 1 and counted, as
        only a teacher's belief is), every every-th one, get the teacher's view of the scene itself."""
        tags = targets[..., self.scene_columns]
        taught = ((tags > 0) & (tags < 1) & (mask[..., self.scene_columns] > 0)).any(dim=-1)  # (B, n_columns)
        column = torch.arange(targets.shape[1], device=audio.device)
        scene, at = (taught & (column % self.every == self.every - 1)).nonzero().unbind(dim=1)  # (K,), (K,)
        if not len(scene):
            return targets, mask
        soft = self.teacher.tag_probs(self.windows(audio)[scene, at])[:, self.scene_tags]
        before = tags[scene, at]
        out = targets.clone()
        out[scene.unsqueeze(1), at.unsqueeze(1), self.scene_columns] = torch.where(
            torch.isfinite(soft) & (before < 1), self.weight * soft.nan_to_num(), before)
        return out, mask


class ModelDistiller:
    """Blend a trained streaming model's per-column probabilities into every target: a smaller student
    learns what a larger model of ours hears, on every label and column of the scene.

    The teacher steps over the whole scene from a zero state as the student does, with the same column
    length, so its columns are the student's. Where a target is known, target = (1 - weight) * hard +
    weight * teacher; where the scene left it masked, the teacher's probability alone, and it counts.
    Labels the teacher lacks, or not among only (when given), keep their hard targets and mask."""

    def __init__(self, path: Path, weight: float, label_names: tuple[str, ...], column_samples: int,
                 device: torch.device = torch.device("cpu"), only: tuple[str, ...] = ()):
        teacher, meta = load_weights(path)
        teacher_columns = getattr(teacher, "column_samples", None)  # windowed families have none
        if teacher_columns != column_samples:
            raise SystemExit(f"teacher model {path}: a streaming model with {column_samples}-sample columns is needed "
                             f"(it is {meta['family']}, columns {teacher_columns})")
        self.teacher = teacher.eval().to(device)
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.weight = weight
        names = [name for name, _ in meta["labels"]]
        shared = [n for n in label_names if n in names and (not only or n in only)]
        self.student_index = torch.tensor([label_names.index(n) for n in shared], device=device)
        self.teacher_index = torch.tensor([names.index(n) for n in shared], device=device)

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor):
        soft = torch.sigmoid(self.teacher(audio))[..., self.teacher_index]  # (B, C, shared)
        hard = targets[..., self.student_index]
        known = mask[..., self.student_index] > 0
        out, out_mask = targets.clone(), mask.clone()
        out[..., self.student_index] = torch.where(known, (1 - self.weight) * hard + self.weight * soft, soft)
        out_mask[..., self.student_index] = 1.0
        return out, out_mask


def distillers(recipe: Recipe, root: Path, label_names: tuple[str, ...], column_samples: int,
               device: torch.device = torch.device("cpu")) -> list:
    """The teachers a recipe names, on device: {dscnn: checkpoint, weight} for the commands, {efficientat:
    folder, tag_weight, tag_every, tag_window_columns} for the tags, {model: file, model_weight, model_labels}
    for all labels (or those listed). The model teacher comes last: it blends into what the others made."""
    out = []
    teacher = recipe.teacher
    if teacher.get("dscnn"):
        out.append(CommandDistiller(root / teacher["dscnn"], float(teacher.get("weight", 0.3)), label_names, column_samples,
                                    agree_only=bool(teacher.get("agree_only", False)),
                                    hard_on_speech=bool(teacher.get("hard_on_speech", False)), device=device))
        log.info("distilling the ten commands from %s (weight %.2f%s%s)", teacher["dscnn"], out[-1].weight,
                 ", where it agrees with the scene" if out[-1].agree_only else "",
                 ", not in speech without a command" if out[-1].speech is not None else "")
    def tag_distiller(scene_view: bool = False) -> TagDistiller:
        return TagDistiller(root / teacher["efficientat"], float(teacher.get("tag_weight", 0.5)), label_names,
                            column_samples, every=int(teacher.get("tag_every", 4)),
                            window_columns=int(teacher.get("tag_window_columns", 8)), device=device,
                            scene_view=scene_view)

    if teacher.get("efficientat") and teacher.get("tag_columns"):
        log.info("tags: the teacher's precomputed column targets (weight %.2f in the scenes)",
                 float(teacher.get("tag_weight", 0.5)))
        if teacher.get("tag_scene_view"):
            out.append(tag_distiller(scene_view=True))
            log.info("tags: the teacher also hears the scenes themselves, every %d-th column it taught",
                     out[-1].every)
    elif teacher.get("efficientat"):
        out.append(tag_distiller())
        log.info("distilling the tags from %s (weight %.2f)", teacher["efficientat"], out[-1].weight)
    if teacher.get("model"):
        only = tuple(teacher.get("model_labels", ()))
        out.append(ModelDistiller(root / teacher["model"], float(teacher.get("model_weight", 0.8)), label_names,
                                  column_samples, device=device, only=only))
        log.info("distilling %s from the model %s (weight %.2f)", ", ".join(only) if only else "every label",
                 teacher["model"], out[-1].weight)
    return out


class AudioSetHead(torch.nn.Module):
    """A head that only training has: the teacher's 527 AudioSet classes from the features the model's own
    head reads (a forward hook on ``model.head`` keeps them), taught the teacher's probabilities on the tag
    clips. The shared features must then carry what the teacher tells apart among all of AudioSet, not
    only among our 58 tags; the exported model is the model alone. It starts at zero weights and a bias of
    each class's mean probability (prior), so its first steps learn the head and leave the features be."""

    def __init__(self, model: StreamingModel, weight: float, prior: np.ndarray):
        super().__init__()
        head = getattr(model, "head", None)
        if isinstance(model, WindowedModel) or not isinstance(head, torch.nn.Linear):
            raise SystemExit(f"teacher.audioset_weight needs a streaming model with a linear head (sat), "
                             f"not {type(model).__name__}")
        self.linear = torch.nn.Linear(head.in_features, 527)
        torch.nn.init.zeros_(self.linear.weight)
        with torch.no_grad():
            self.linear.bias.copy_(torch.logit(torch.as_tensor(prior, dtype=torch.float32).clamp(1e-4, 1 - 1e-4)))
        self.weight = weight
        self.features: torch.Tensor | None = None
        head.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.features = inputs[0]

    def extend(self, logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's logits (B, C, n) and a mask of n + 527 columns -> both over n + 527 columns, the
        AudioSet part of the mask weighted."""
        n = logits.shape[-1]
        extended = torch.cat([logits, self.linear(self.features)], dim=-1)
        return extended, torch.cat([mask[..., :n], mask[..., n:] * self.weight], dim=-1)


def masked_bce(logits, targets, mask, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none", pos_weight=pos_weight)
    return (loss * mask).sum(-1).sum() / mask[..., 0].numel()  # sum over labels, mean over outputs


def training_step(model, optimizer, params: list, batch, teachers: list, pos_weight: torch.Tensor, rng,
                  recipe: Recipe, column_samples: int, audioset_head: AudioSetHead | None = None) -> torch.Tensor:
    """One optimizer step on a batch (audio, targets, mask) already on the model's device: the teachers
    blend their targets in, then loss, backward, gradient clipping over params, update. Returns the loss."""
    audio, targets, mask = batch
    for teacher in teachers:
        targets, mask = teacher(audio, targets, mask)
    logits, t, m = logits_and_targets(model, audio, targets, mask, rng, recipe.windows_per_scene, column_samples)
    if audioset_head is not None:
        logits, m = audioset_head.extend(logits, m)
    loss = masked_bce(logits, t, m, pos_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return loss


# ----------------------------------------------------------------------------------- evaluation

@dataclass
class ValSet:
    audio: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


def make_val_set(sampler: SceneSampler, n: int, seed: int) -> ValSet:
    rng = np.random.default_rng(seed)
    scenes = [sampler.sample(rng) for _ in range(n)]
    return ValSet(*(torch.from_numpy(np.stack(x)) for x in zip(*scenes)))


def validate(model, val: ValSet, label_names, recipe: Recipe, column_samples: int) -> dict:
    """Loss, keyword scene accuracy and tag top-1 on the fixed validation scenes."""
    model.eval()
    keywords = recipe_keywords(recipe)
    kw_idx = [i for i, n in enumerate(label_names) if n in keywords]
    tag_idx = [i for i, n in enumerate(label_names) if n not in keywords and n != "speech"]
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model.stream(val.audio[i : i + 32].to(model.device), column_samples)).cpu()
                           for i in range(0, len(val.audio), 32)])
    loss = masked_bce(torch.logit(probs.clamp(1e-6, 1 - 1e-6)), val.targets, val.mask).item()
    kw_hits = kw_total = false_alarms = quiet = tag_hits = tag_total = 0
    for p, t in zip(probs, val.targets):
        kw_peak = p[:, kw_idx].max(0).values  # per keyword, over the scene
        truth = t[:, kw_idx].max(0).values
        if truth.max() > 0:
            kw_total += 1
            kw_hits += int(kw_peak.argmax() == truth.argmax() and kw_peak.max() > 0.5)
        else:
            quiet += 1
            false_alarms += int(kw_peak.max() > 0.5)
        tag_truth = t[:, tag_idx].max(0).values
        if tag_truth.max() > 0:
            tag_total += 1
            tag_hits += int(p[:, tag_idx].mean(0).argmax() == tag_truth.argmax())
    model.train()
    return {
        "val_loss": round(loss, 4),
        "keyword_acc": round(kw_hits / max(1, kw_total), 4),
        "keyword_false_alarm_rate": round(false_alarms / max(1, quiet), 4),
        "tag_top1": round(tag_hits / max(1, tag_total), 4),
    }


def score(metrics: dict) -> float:
    return metrics["keyword_acc"] - metrics["keyword_false_alarm_rate"] + metrics["tag_top1"]


# ------------------------------------------------------------------------------------------ loop

def save(path: Path, model, optimizer, step: int, recipe: Recipe, metrics: dict) -> None:
    """A checkpoint that export.export_model reads, plus the optimizer beside it for --resume. Each file is
    written whole under another name and renamed, the checkpoint last: a run killed at any moment resumes
    from whole files."""
    save_atomic(optimizer.state_dict(), path.with_suffix(".optim"))
    extra = {"step": step, "recipe": dataclasses.asdict(recipe), "metrics": metrics}
    write_whole(path, lambda part: save_checkpoint(model, part, recipe.family, recipe.size, recipe.overrides, extra))


def save_atomic(obj, path: Path) -> None:
    write_whole(path, lambda part: torch.save(obj, part))


def train(recipe: Recipe, out: Path, resume: bool, root: Path, device: torch.device = torch.device("cpu")) -> dict:
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    out.mkdir(parents=True, exist_ok=True)
    labels = recipe_labels(recipe)
    label_names = tuple(l.name for l in labels)
    model = build(recipe, labels)
    column_samples = model.card.hop_samples[0]
    scene_cfg = SceneConfig(**{**recipe.scene, "column_samples": column_samples,
                               "teacher_weight": float(recipe.teacher.get("tag_weight", 0.5)),
                               "label_weight": float(recipe.teacher.get("tag_label_weight", 1.0))})

    t0 = time.time()
    kd = recipe.teacher
    window_columns = int(kd.get("tag_window_columns", 8))
    columns_kd = TeacherTargets(root / kd["efficientat"], column_samples, window_columns) \
        if kd.get("efficientat") and kd.get("tag_columns") else None
    audioset_weight = float(kd.get("audioset_weight", 0.0))
    if audioset_weight and columns_kd is None:
        raise SystemExit("teacher.audioset_weight needs teacher.efficientat with tag_columns: true")
    if rooms_taught(recipe.scene) and columns_kd is None:
        raise SystemExit("scene.noise_unsure and noise_teacher_weight need teacher.efficientat with tag_columns: true")
    audioset_kd = TeacherTargets(root / kd["efficientat"], column_samples, window_columns, audioset=True) \
        if audioset_weight else None
    train_pools, val_pools = load_pools(recipe, root, model.card.sample_rate_hz, label_names, columns_kd, audioset_kd)
    log.info("data loaded in %.0f s; train: %s", time.time() - t0, describe(train_pools))
    log.info("val: %s", describe(val_pools))
    sampler = SceneSampler(train_pools, label_names, scene_cfg)
    val = make_val_set(SceneSampler(val_pools, label_names, scene_cfg), recipe.val_scenes, seed=12345)

    if recipe.init:
        warm_start(model, root / recipe.init, recipe.init_blocks)
    model.to(device)
    pos_weight = torch.ones(len(label_names) + sampler.n_audioset, device=device)
    pos_weight[[label_names.index(k) for k in recipe_keywords(recipe)]] = recipe.keyword_pos_weight

    if audioset_weight:  # each AudioSet class's mean probability over the training tag clips' columns
        audioset_prior = np.concatenate([a for clips in train_pools.tag_audioset.values() for a in clips]).astype(np.float32).mean(0)

    def learning(m: StreamingModel) -> tuple[list, AudioSetHead | None]:
        """The parameters the optimizer moves, and the AudioSet head hooked to m (if the recipe has one)."""
        head = AudioSetHead(m, audioset_weight, audioset_prior).to(device) if audioset_weight else None
        own = restrict_to_labels(m, recipe.train_labels, label_names) if recipe.train_labels else list(m.parameters())
        return own + (list(head.parameters()) if head is not None else []), head

    params, audioset_head = learning(model)
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    start_step, best = 0, -math.inf
    if resume and (out / "last.pt").exists():
        model, meta = load_checkpoint(out / "last.pt")
        model.to(device).train()
        params, audioset_head = learning(model)
        if audioset_head is not None:
            audioset_head.load_state_dict(torch.load(out / "last.audioset.pt", map_location="cpu", weights_only=True))
        optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        optimizer.load_state_dict(torch.load(out / "last.optim", map_location="cpu", weights_only=True))
        start_step = meta["extra"]["step"]
        best = max(score(m) for m in map(json.loads, (out / "history.jsonl").read_text().splitlines()))
        rng = np.random.default_rng([recipe.seed, start_step])
        log.info("resumed at step %d", start_step)
    elif not recipe.init:
        set_normalisation(model, sampler, rng)

    teachers = distillers(recipe, root, label_names, column_samples, device)
    log.info("training on %s", device)
    add_freq_warp(model, recipe.freq_warp, rng)  # before the masks: a masked band stays masked
    add_spec_augment(model, recipe.spec_augment, rng)

    schedule = lambda s: min(1.0, (s + 1) / recipe.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / recipe.steps)))
    history = []

    def evaluate_and_save(done: int) -> None:
        nonlocal best
        metrics = {"step": done, **validate(model, val, label_names, recipe, column_samples)}
        history.append(metrics)
        tqdm.write(json.dumps(metrics))
        if audioset_head is not None:  # before last.pt, which says which step --resume starts from
            save_atomic(audioset_head.state_dict(), out / "last.audioset.pt")
        save(out / "last.pt", model, optimizer, done, recipe, metrics)
        if score(metrics) > best:
            best = score(metrics)
            save(out / "best.pt", model, optimizer, done, recipe, metrics)
        with (out / "history.jsonl").open("a") as f:
            f.write(json.dumps(metrics) + "\n")

    model.train()
    bar = tqdm(range(start_step, recipe.steps), initial=start_step, total=recipe.steps, desc=recipe.name, mininterval=5)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * schedule(step)
        batch = [torch.from_numpy(np.stack(x)).to(device)
                 for x in zip(*[sampler.sample(rng) for _ in range(recipe.batch_size)])]
        loss = training_step(model, optimizer, params, batch, teachers, pos_weight, rng, recipe, column_samples,
                             audioset_head)
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{recipe.lr * schedule(step):.1e}", refresh=False)
        done = step + 1
        if done % recipe.eval_every == 0 or done == recipe.steps:
            evaluate_and_save(done)
    if recipe.steps == 0:  # no training: the init weights under the recipe's overrides, scored and saved as they are
        evaluate_and_save(0)
    return history[-1] if history else {}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--steps", type=int, help="override the recipe's step count")
    parser.add_argument("--init", help="override the recipe's init: a checkpoint or SAT/UiT .onnx file to start from")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where the model trains (default: CUDA when present, else the CPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    recipe = load_recipe(args.recipe)
    if args.steps is not None:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    if args.init is not None:  # a path from the command line is relative to the working directory
        recipe = dataclasses.replace(recipe, init=str(Path(args.init).resolve()))
    root = Path(__file__).resolve().parent.parent
    print(json.dumps(train(recipe, args.out, args.resume, root, resolve_device(args.device))))


if __name__ == "__main__":
    main()
