"""Training scenes, distillation targets, and a tiny end-to-end training run with resume."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from export.data.scenes import Pools, SceneConfig, SceneSampler, Word, active_columns, change_speed, word_bounds
from export.data.augment import reverberate
from export.data.manifest import Clip, write_manifest
from export.data.rooms import room_bank
from export.labels import COMMANDS, DEFAULT_LABELS

NAMES = tuple(label.name for label in DEFAULT_LABELS)
SR = 16000
COLUMN = 2560
TEACHER = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "dscnn-mlperf" / "checkpoint.pth"
# every device training may use here: the CPU always, CUDA where torch sees a GPU (never in CI)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


def tone(seconds: float, hz: float = 1000.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_word_bounds_find_the_loud_part():
    clip = np.zeros(SR, np.float32)
    clip[4000:9000] = tone(5000 / SR)
    onset, offset = word_bounds(clip)
    assert abs(onset - 4000) <= 160 and abs(offset - 9000) <= 160


def test_active_columns_follow_energy():
    placed = np.zeros(8 * COLUMN, np.float32)
    placed[2 * COLUMN : 4 * COLUMN] = tone(2 * COLUMN / SR)
    assert active_columns(placed, COLUMN).tolist() == [False, False, True, True, False, False, False, False]


def keyword_only_sampler(cfg: SceneConfig) -> SceneSampler:
    word = np.zeros(SR, np.float32)
    word[3200:11200] = tone(0.5, 700)
    pools = Pools(keywords={"stop": [Word(word, 3200, 11200)]})
    return SceneSampler(pools, NAMES, cfg)


@pytest.mark.parametrize("seed", range(5))
def test_keyword_targets_fire_after_the_word_and_ignore_while_it_is_spoken(seed):
    cfg = SceneConfig(n_columns=20, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1))
    audio, targets, mask = keyword_only_sampler(cfg).sample(np.random.default_rng(seed))
    j, speech = NAMES.index("stop"), NAMES.index("speech")
    loud = np.nonzero(np.abs(audio) > 0.01)[0]
    start, end = loud[0], loud[-1] + 1
    column_end = (np.arange(cfg.n_columns) + 1) * COLUMN
    fire = (column_end >= end) & (column_end <= end + cfg.keyword_window_s * SR)
    assert fire.any()
    np.testing.assert_array_equal(targets[:, j], fire.astype(np.float32))
    during = (column_end > start) & (column_end < end)
    assert (mask[during, j] == 0).all() and (mask[column_end <= start, j] == 1).all()
    assert targets[during, speech].all(), "a spoken word is speech"
    others = [i for i, n in enumerate(NAMES) if n not in ("stop", "speech")]
    assert targets[:, others].sum() == 0


def test_a_word_after_speech_follows_the_end_of_the_talk_after_a_pause_and_keeps_its_targets():
    talk = np.zeros(3 * SR, np.float32)
    talk[: 2 * SR] = tone(2.0, 300)  # its talk ends at 2 s, then silence the scene must not take
    cfg = SceneConfig(n_columns=20, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_speech_before=1.0,
                      speech_pause_s=(0.2, 0.4), speech_before_db=(-3.0, -3.0), level_db=(-20.0, -20.0),
                      snr_db=(40.0, 40.0))  # the word -20 dBFS or louder, far above the near-silence
    sampler = keyword_only_sampler(cfg)
    sampler.pools.speech.append(talk)
    j, speech = NAMES.index("stop"), NAMES.index("speech")
    column_end = (np.arange(cfg.n_columns) + 1) * COLUMN
    db = lambda x: 10 * np.log10(np.mean(x ** 2))  # noqa: E731
    with_talk = 0
    for seed in range(10):
        audio, targets, mask = sampler.sample(np.random.default_rng(seed))
        # the talk is drawn after the word is placed, so the same seed without it gives the word alone
        alone, alone_targets, _ = keyword_only_sampler(dataclasses.replace(cfg, p_speech_before=0.0)).sample(
            np.random.default_rng(seed))
        said = np.flatnonzero(np.abs(alone) > 0.05)  # above the near-silence (-50 dBFS at most), below the tones
        talked = np.flatnonzero(np.abs(audio - alone) > 0.05)
        np.testing.assert_array_equal(targets[:, j], alone_targets[:, j])  # the keyword's targets as without talk
        if not len(talked):  # no room for a column of talk before the word and its pause
            assert said[0] < COLUMN + 0.4 * SR + 1
            continue
        with_talk += 1
        assert 0.2 <= (said[0] - talked[-1]) / SR <= 0.4 + 1e-3  # talk ends, a pause of speech_pause_s, the word
        assert abs(db((audio - alone)[talked[0]: talked[-1]]) - db(alone[said[0]: said[-1]]) + 3) < 0.5  # 3 dB below
        talking = (column_end > talked[0] + COLUMN) & (column_end <= talked[-1])
        assert talking.any() and targets[talking, speech].all() and mask[talking, speech].all()
        others = [i for i, n in enumerate(NAMES) if n not in ("stop", "speech")]
        assert targets[:, others].sum() == 0
    assert with_talk >= 5


def test_without_speech_before_a_scene_is_drawn_as_before():
    cfg = SceneConfig(n_columns=20, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1))
    sampler = keyword_only_sampler(cfg)
    sampler.pools.speech.append(tone(2.0, 300))
    before = keyword_only_sampler(cfg).sample(np.random.default_rng(3))  # no speech pool: no draw either way
    for x, y in zip(sampler.sample(np.random.default_rng(3)), before):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("room", [{"room_model": "tail", "reverb_drr_db": (-10.0, -10.0)},
                                  {"room_model": "shoebox", "room_distance_m": (2.5, 3.5)}])
def test_a_tag_sound_heard_across_a_room_rings_on_and_is_marked_where_it_rings(room):
    """p_tag_reverb: the sound through one of the word rooms (reverb_rt60_s, and reverb_drr_db or the shoebox's
    distance) before its tag is marked; off (0) it draws nothing, so older recipes' scenes are drawn as before."""
    clip = np.zeros(4 * SR, np.float32)
    clip[SR : SR + 2 * COLUMN] = tone(2 * COLUMN / SR, 3000)  # two whole columns of sound, then silence
    base = dict(n_columns=25, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0))
    dry = SceneSampler(Pools(tags={"smoke_alarm": [clip]}), NAMES, SceneConfig(**base))
    far = SceneSampler(Pools(tags={"smoke_alarm": [clip]}), NAMES,
                       SceneConfig(**base, p_tag_reverb=1.0, reverb_rt60_s=(0.8, 0.8), **room))
    j = NAMES.index("smoke_alarm")
    for seed in range(3):
        (a, t, _), (b, u, _) = dry.sample(np.random.default_rng(seed)), far.sample(np.random.default_rng(seed))
        assert t[:, j].sum() == 3  # the clip as it was: 2 columns of sound from 6.25 columns in
        assert (u[t[:, j] == 1, j] == 1).all()  # where the sound was, it still is
        assert 4 <= u[:, j].sum() <= 7  # and the room's tail, within 30 dB of the sound, rings into the next columns
        ends = np.flatnonzero(t[:, j])[-1]
        assert u[ends + 1, j] == 1 and np.abs(b[(ends + 1) * COLUMN:(ends + 2) * COLUMN]).max() > 0
    off = SceneSampler(Pools(tags={"smoke_alarm": [clip]}), NAMES, SceneConfig(**base, p_tag_reverb=0.0))
    for x, y in zip(off.sample(np.random.default_rng(4)), dry.sample(np.random.default_rng(4))):
        np.testing.assert_array_equal(x, y)


def test_a_word_heard_in_a_shoebox_room_is_one_of_the_banks_rooms_and_an_unknown_room_model_is_refused():
    word = tone(0.4, 800)
    cfg = {"p_reverb": 1.0, "reverb_rt60_s": (0.3, 0.5), "room_model": "shoebox", "room_distance_m": (1.0, 3.0)}
    sampler = keyword_only_sampler(SceneConfig(**cfg))
    wet = sampler._reverb(np.random.default_rng(0), word)
    bank = room_bank((0.3, 0.5), (1.0, 3.0), SR)
    assert any(np.allclose(wet, reverberate(word, rir)) for rir in bank)
    assert not np.allclose(wet, word)
    with pytest.raises(ValueError, match="room_model 'hall'"):
        SceneSampler(Pools(), NAMES, SceneConfig(room_model="hall"))


def test_a_dry_keyword_never_goes_through_a_room_and_the_others_do(monkeypatch):
    rooms = []
    for dry in [(), ("stop",)]:
        cfg = SceneConfig(n_columns=20, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_reverb=1.0,
                          dry_keywords=dry)
        sampler = keyword_only_sampler(cfg)
        monkeypatch.setattr(sampler, "_reverb", lambda rng, audio: rooms.append(dry) or audio)
        for seed in range(3):
            sampler.sample(np.random.default_rng(seed))
    assert rooms == [()] * 3  # every scene's stop went through a room, and none once stop was dry


def test_tag_targets_are_active_columns_and_quiet_parts_are_ignored():
    clip = np.zeros(4 * SR, np.float32)
    clip[SR : 2 * SR] = tone(1.0, 3000)
    cfg = SceneConfig(n_columns=25, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0))
    sampler = SceneSampler(Pools(tags={"smoke_alarm": [clip]}), NAMES, cfg)
    audio, targets, mask = sampler.sample(np.random.default_rng(0))
    j = NAMES.index("smoke_alarm")
    on = targets[:, j] == 1
    assert 5 <= on.sum() <= 8  # about 1 s of 0.16 s columns
    assert (mask[~on, j] == 0).all(), "quiet parts of a weakly labelled clip are neither positive nor negative"
    assert np.abs(audio).max() <= 0.99


def test_scenes_are_reproducible_from_the_seed():
    cfg = SceneConfig(n_columns=10, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1))
    a = keyword_only_sampler(cfg).sample(np.random.default_rng(7))
    b = keyword_only_sampler(cfg).sample(np.random.default_rng(7))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.skipif(not TEACHER.exists(), reason="needs ../shared/teachers (present in CI)")
@pytest.mark.parametrize("device", DEVICES)
def test_distiller_blends_teacher_probabilities_into_command_targets(device):
    from export.train import CommandDistiller

    distil = CommandDistiller(TEACHER, 0.5, NAMES, COLUMN, device=torch.device(device))
    audio = torch.from_numpy(np.stack([tone(2.56, 500), np.zeros(int(2.56 * SR), np.float32)])).to(device)
    targets = torch.zeros(2, 16, len(NAMES), device=device)
    targets[0, 5, NAMES.index("yes")] = 1.0
    targets[0, 5, NAMES.index("dog")] = 1.0
    mask = torch.ones_like(targets)
    out, out_mask = distil(audio, targets, mask)
    assert torch.equal(out_mask, mask)
    commands = [NAMES.index(c) for c in COMMANDS]
    others = [i for i in range(len(NAMES)) if i not in commands]
    assert torch.equal(out[..., others], targets[..., others]), "only the ten commands are distilled"
    soft = (out[..., commands] - 0.5 * targets[..., commands]) / 0.5
    assert soft.min() >= 0 and soft.max() <= 1 and soft.sum(-1).max() <= 1 + 1e-5  # a softmax share
    assert out[0, 5, NAMES.index("yes")] >= 0.5


@pytest.mark.skipif(not TEACHER.exists() or shutil.which("espeak-ng") is None, reason="needs the teacher and espeak-ng")
def test_hard_on_speech_keeps_the_teacher_out_of_speech_without_a_command():
    from export.data.synth_speech import SAMPLE_RATE_HZ
    from export.train import CommandDistiller

    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", "a cup"], capture_output=True,
                         check=True).stdout
    said, rate = sf.read(io.BytesIO(wav), dtype="float32")
    said = resample_poly(said, SAMPLE_RATE_HZ, rate).astype(np.float32)
    audio = np.zeros(int(2.56 * SR), np.float32)
    audio[8000 : 8000 + len(said)] = 0.3 * said / np.abs(said).max()
    audio = torch.from_numpy(np.stack([audio, audio]))
    targets = torch.zeros(2, 16, len(NAMES))
    targets[:, :, NAMES.index("speech")] = 1.0  # the scene says speech throughout, no command
    targets[1, 12:, NAMES.index("speech")] = 0.0  # ...except the last columns of the second scene
    targets[1, 14, NAMES.index("yes")] = 1.0  # and one column where a command was said
    mask = torch.ones_like(targets)
    commands = [NAMES.index(c) for c in COMMANDS]
    plain, _ = CommandDistiller(TEACHER, 0.7, NAMES, COLUMN)(audio, targets, mask)
    assert plain[0, :, NAMES.index("stop")].max() > 0.5, "the teacher hears 'stop' in 'a cup', and the blend teaches it"
    hard, _ = CommandDistiller(TEACHER, 0.7, NAMES, COLUMN, hard_on_speech=True)(audio, targets, mask)
    assert torch.equal(hard[0], targets[0]), "speech without a command: the hard targets, untouched"
    assert torch.equal(hard[1, :12], targets[1, :12])
    assert torch.equal(hard[1, 12:, commands], plain[1, 12:, commands]), "no speech, or a command: blended as before"


def write_tiny_corpus(root: Path) -> Path:
    """A manifest with tone 'keywords', a noise file and tag clips: enough to run the trainer."""
    rows = ["path,labels,speaker,duration_s"]
    rng = np.random.default_rng(0)
    for i, (word, hz) in enumerate([("yes", 600), ("stop", 1200)] * 6):
        path = root / "kws" / word / f"s{i}_nohash_0.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        clip = np.zeros(SR, np.float32)
        clip[4000:10000] = tone(6000 / SR, hz)
        sf.write(path, clip, SR)
        rows.append(f"{path.relative_to(root)},{word},s{i},1.0")
    for i in range(6):
        path = root / "tags" / "esc50" / "dog" / f"4-{1000 + i}-A-0.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.2 * rng.standard_normal(2 * SR)).astype(np.float32), SR)
        rows.append(f"{path.relative_to(root)},dog,,2.0")
    noise = root / "noise" / "white.wav"
    noise.parent.mkdir(parents=True, exist_ok=True)
    sf.write(noise, (0.01 * rng.standard_normal(10 * SR)).astype(np.float32), SR)
    rows.append(f"{noise.relative_to(root)},noise;white_noise,,10.0")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("device", DEVICES)
def test_training_runs_checkpoints_and_resumes(tmp_path, monkeypatch, device):
    from export.families import load_checkpoint
    from export.train import load_recipe, train

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(
        f"name: tiny\nfamily: sat\nsize: tiny\nsteps: 4\nbatch_size: 2\neval_every: 2\nval_scenes: 4\n"
        f"threads: 1\nshared_data: {corpus}\nscene: {{n_columns: 8}}\n"
    )
    out = tmp_path / "run"
    recipe = load_recipe(recipe_path)
    final = train(recipe, out, resume=False, root=tmp_path, device=torch.device(device))
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4] and final["step"] == 4
    assert all(np.isfinite(h["val_loss"]) for h in history)
    model, meta = load_checkpoint(out / "last.pt")  # saved from the device, loads on the CPU
    assert meta["family"] == "sat" and meta["extra"]["step"] == 4
    assert model.frontend.feature_std.min() > 0 and not torch.all(model.frontend.feature_mean == 0)

    train(dataclasses.replace(recipe, steps=6), out, resume=True, root=tmp_path, device=torch.device(device))
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4, 6], "resume continues from the last checkpoint"
    assert not list(out.glob(".*.part")), "every file was renamed into place"


def test_a_run_killed_while_saving_resumes_from_whole_files(tmp_path, monkeypatch):
    from export.train import load_recipe, train

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    (tmp_path / "tiny.yaml").write_text(
        f"name: tiny\nfamily: sat\nsize: tiny\nsteps: 4\nbatch_size: 2\neval_every: 2\nval_scenes: 4\n"
        f"threads: 1\nshared_data: {corpus}\nscene: {{n_columns: 8}}\n")
    real_save, optimizer_saves = torch.save, []

    def killed_on_the_second_optimizer_save(obj, f, *args, **kwargs):
        if "last.optim" in str(f):
            optimizer_saves.append(f)
            if len(optimizer_saves) == 2:  # step 4: half the file is written, then the process is gone
                Path(f).write_bytes(b"half a file")
                raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", killed_on_the_second_optimizer_save)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(load_recipe(tmp_path / "tiny.yaml"), out, resume=False, root=tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    final = train(load_recipe(tmp_path / "tiny.yaml"), out, resume=True, root=tmp_path)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4] and final["step"] == 4, "resumed from step 2's whole files"


def tiny_run(tmp_path: Path, monkeypatch) -> str:
    """A tiny SAT trained 2 steps into tmp_path/run on the tiny corpus; returns the recipe lines a
    recipe of its own (root tmp_path, init: run/last.pt) shares with it."""
    from export.train import load_recipe, train

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    common = f"family: sat\nsize: tiny\nbatch_size: 2\nval_scenes: 4\nthreads: 1\nshared_data: {corpus}\nscene: {{n_columns: 8}}\n"
    (tmp_path / "tiny.yaml").write_text(f"name: tiny\nsteps: 2\neval_every: 2\n{common}")
    train(load_recipe(tmp_path / "tiny.yaml"), tmp_path / "run", resume=False, root=tmp_path)
    return common


def test_a_recipe_of_zero_steps_saves_its_init_weights_under_its_overrides(tmp_path, monkeypatch):
    from export.families import load_checkpoint
    from export.train import load_recipe, train

    common = tiny_run(tmp_path, monkeypatch)
    (tmp_path / "dc.yaml").write_text(f"name: dc\nsteps: 0\ninit: run/last.pt\noverrides: {{frontend: {{remove_dc: true}}}}\n{common}")
    final = train(load_recipe(tmp_path / "dc.yaml"), tmp_path / "dc", resume=False, root=tmp_path)

    assert final["step"] == 0 and np.isfinite(final["val_loss"])
    donor, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    for name in ("last.pt", "best.pt"):
        model, meta = load_checkpoint(tmp_path / "dc" / name)
        assert meta["overrides"] == {"frontend": {"remove_dc": True}} and model.frontend.cfg.remove_dc
        assert not donor.frontend.cfg.remove_dc
        for key, value in donor.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), f"{key}: zero steps change no weight"


def test_init_on_the_command_line_replaces_the_recipes_and_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    from export.families import load_checkpoint
    from export.train import main

    common = tiny_run(tmp_path, monkeypatch)
    (tmp_path / "zero.yaml").write_text(f"name: zero\nsteps: 0\ninit: nowhere/last.pt\n{common}")
    monkeypatch.chdir(tmp_path)  # the recipe's own init would be read under the repository, and is not there
    main([str(tmp_path / "zero.yaml"), "--init", "run/last.pt", "--out", str(tmp_path / "zero"), "--device", "cpu"])
    donor, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    model, _ = load_checkpoint(tmp_path / "zero" / "last.pt")
    for key, value in donor.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), f"{key}: started from --init's weights"


def test_the_device_is_cuda_when_present_and_never_a_silent_fallback():
    from export.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA device"):
            resolve_device("cuda")


def test_warm_start_adds_new_parts_and_rejects_a_different_model(tmp_path):
    from export.families import build_model, save_checkpoint
    from export.train import warm_start

    donor = build_model("sat", DEFAULT_LABELS, "tiny")
    path = save_checkpoint(donor, tmp_path / "donor.pt", "sat", "tiny")
    grown = build_model("sat", DEFAULT_LABELS, "tiny", frame_features=8)
    warm_start(grown, path)
    assert all(torch.equal(grown.state_dict()[k], v) for k, v in donor.state_dict().items())
    assert torch.count_nonzero(grown.frame_proj.weight) == 0, "the new branch keeps its zero start"
    with pytest.raises(ValueError, match="family/size"):
        warm_start(build_model("sat", DEFAULT_LABELS, "tiny", n_layers=2), path)
    with pytest.raises(RuntimeError, match="size mismatch"):
        warm_start(build_model("sat", DEFAULT_LABELS, "small"), path)


def test_warm_start_widens_the_mlps_without_changing_what_the_model_computes(tmp_path):
    from export.families import build_model, save_checkpoint
    from export.train import warm_start

    torch.manual_seed(0)
    donor = build_model("sat", DEFAULT_LABELS, "tiny").eval()
    path = save_checkpoint(donor, tmp_path / "donor.pt", "sat", "tiny")
    wide = build_model("sat", DEFAULT_LABELS, "tiny", mlp_ratio=4).eval()
    warm_start(wide, path)
    hidden = donor.blocks[0].mlp[0].out_features
    assert wide.blocks[0].mlp[0].out_features == 2 * hidden
    assert torch.count_nonzero(wide.blocks[0].mlp[2].weight[:, hidden:]) == 0
    assert torch.count_nonzero(wide.blocks[0].mlp[0].weight[hidden:]) > 0, "new units keep their random inputs"
    audio = torch.from_numpy(tone(2.0)).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(wide(audio), donor(audio), rtol=1e-5, atol=1e-5)


def test_spec_augment_masks_features_while_training_only():
    from export.families import build_model
    from export.train import add_spec_augment

    model = build_model("sat", DEFAULT_LABELS, "tiny")
    audio = torch.from_numpy(tone(1.0)).unsqueeze(0)
    clean = model.frontend(audio)
    add_spec_augment(model, {"time_masks": 1, "max_time_frames": 30, "freq_masks": 1, "max_freq_bins": 10},
                     np.random.default_rng(0))
    model.train()
    masked = model.frontend(audio)
    assert not torch.equal(masked, clean)
    changed = (masked != clean)[0]
    assert changed.all(dim=1).sum() <= 30 and changed.all(dim=0).sum() <= 10, "whole frames and whole bins"
    model.eval()
    assert torch.equal(model.frontend(audio), clean)
    assert add_spec_augment(model, {}, np.random.default_rng(0)) is None


def test_recipe_rejects_unknown_keys(tmp_path):
    from export.train import load_recipe

    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nstepz: 3\n")
    with pytest.raises(SystemExit, match="stepz"):
        load_recipe(path)


def test_a_recipe_inherits_its_base_and_merges_its_mappings(tmp_path):
    from export.train import load_recipe

    (tmp_path / "parent.yaml").write_text("name: parent\nsteps: 100\nlr: 0.001\n"
                                          "scene: {p_keyword: 0.5, p_unknown: 0.2}\nteacher: {weight: 0.7}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("base: ../parent.yaml\nname: child\nsteps: 50\n"
                                                 "scene: {p_burst: 0.3, p_unknown: 0.4}\n")
    recipe = load_recipe(tmp_path / "sub" / "child.yaml")
    assert (recipe.name, recipe.steps, recipe.lr) == ("child", 50, 0.001)
    assert recipe.scene == {"p_keyword": 0.5, "p_unknown": 0.4, "p_burst": 0.3}
    assert recipe.teacher == {"weight": 0.7}
    (tmp_path / "parent.yaml").write_text("base: sub/child.yaml\nname: parent\n")
    with pytest.raises(SystemExit, match="loop"):
        load_recipe(tmp_path / "sub" / "child.yaml")
    (tmp_path / "orphan.yaml").write_text("base: nowhere.yaml\nname: orphan\n")
    with pytest.raises(SystemExit, match="base recipe nowhere.yaml not found"):
        load_recipe(tmp_path / "orphan.yaml")


def test_teacher_column_windows_end_at_each_column():
    from export.data.teacher_targets import column_windows

    audio = np.arange(1, 10 * COLUMN + 100, dtype=np.float32)  # 10 columns and a partial one
    windows = column_windows(audio, COLUMN, 4 * COLUMN)
    assert windows.shape == (11, 4 * COLUMN)
    np.testing.assert_array_equal(windows[0, -COLUMN:], audio[:COLUMN])  # first column, zeros before
    assert not windows[0, : 3 * COLUMN].any()
    np.testing.assert_array_equal(windows[5], audio[2 * COLUMN : 6 * COLUMN])  # column 5 ends at 6 columns
    assert windows[10, -1] == 0 and windows[10, -COLUMN] == audio[10 * COLUMN]  # partial last column, zero tail


def test_teacher_targets_blend_into_the_columns_of_the_excerpt():
    from export.labels import TAGS

    n_clip_columns = 40
    clip = np.tile(tone(0.16, 3000), n_clip_columns)  # loud throughout: every column active
    soft = np.full((n_clip_columns, len(TAGS)), np.nan, np.float16)
    dog, siren = TAGS.index("dog"), TAGS.index("siren")
    soft[:, dog] = np.arange(n_clip_columns) / 100  # the clip column is readable from the target
    soft[:, siren] = 0.8
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), teacher_weight=0.5)
    sampler = SceneSampler(Pools(tags={"smoke_alarm": [clip]}, tag_teacher={"smoke_alarm": [soft]}), NAMES, cfg)
    audio, targets, mask = sampler.sample(np.random.default_rng(3))
    j_dog, j_siren, j_alarm = (NAMES.index(n) for n in ("dog", "siren", "smoke_alarm"))
    # the excerpt starts at some clip column k0: scene column c carries clip column k0 + c
    k0 = round(float(targets[0, j_dog]) / 0.5 * 100)
    np.testing.assert_allclose(targets[:, j_dog], 0.5 * (k0 + np.arange(10)) / 100, atol=2e-3)
    np.testing.assert_allclose(targets[:, j_siren], 0.4, atol=1e-3)  # (1 - w) * 0 + w * 0.8
    assert (targets[:, j_alarm] == 1).all(), "the teacher never lowers a hard positive (alarm: NaN, hard 1)"
    assert (mask[:, [j_dog, j_siren]] == 1).all()
    assert (targets[:, NAMES.index("cat")] == 0).all()


def teacher_beliefs(n_columns: int, **probability_of) -> np.ndarray:
    """A clip's teacher column targets: these tags' probabilities in every column, unknown (NaN) elsewhere."""
    from export.labels import TAGS

    soft = np.full((n_columns, len(TAGS)), np.nan, np.float16)
    for tag, probability in probability_of.items():
        soft[:, TAGS.index(tag)] = probability
    return soft


@pytest.mark.parametrize("label_weight, synthetic, dog_target",
                         [(1.0, False, 1.0), (0.5, False, 0.5), (0.0, False, 0.1 + 0.9 * 0.2), (0.0, True, 1.0)])
def test_the_teacher_lowers_a_recorded_clip_s_own_label_down_to_its_floor(label_weight, synthetic, dog_target):
    clip = np.tile(tone(0.16, 3000), 40)  # loud throughout: the dog is active in every column
    soft = teacher_beliefs(40, dog=0.2, cat=0.9)  # the teacher hears a cat more than a dog
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), teacher_weight=0.9,
                      label_weight=label_weight)
    pools = Pools(tags={"dog": [clip]}, tag_teacher={"dog": [soft]}, tag_synthetic={"dog": [synthetic]})
    _, targets, mask = SceneSampler(pools, NAMES, cfg).sample(np.random.default_rng(3))
    np.testing.assert_allclose(targets[:, NAMES.index("dog")], dog_target, atol=1e-3)
    np.testing.assert_allclose(targets[:, NAMES.index("cat")], 0.9 * 0.9, atol=1e-3)  # another tag: as always
    assert (mask[:, NAMES.index("dog")] == 1).all()


def test_a_second_clip_s_teacher_never_lowers_the_first_clip_s_label():
    clip = np.tile(tone(0.16, 3000), 40)
    dog_soft, cat_soft = teacher_beliefs(40, dog=0.2, cat=0.9), teacher_beliefs(40, cat=0.3, dog=0.1)
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), teacher_weight=0.9,
                      label_weight=0.0, p_second_tag=1.0, second_tag_db=(0.0, 0.0))
    pools = Pools(tags={"dog": [clip], "cat": [clip]}, tag_teacher={"dog": [dog_soft], "cat": [cat_soft]})
    sampler = SceneSampler(pools, NAMES, cfg)
    for seed in range(6):  # either clip first: each label ends at least at its own clip's blend, never below
        _, targets, _ = sampler.sample(np.random.default_rng(seed))
        assert (targets[:, NAMES.index("dog")] >= 0.1 + 0.9 * 0.2 - 1e-3).all()
        assert (targets[:, NAMES.index("cat")] >= 0.1 + 0.9 * 0.3 - 1e-3).all()


def test_a_faster_tag_clip_takes_its_teacher_columns_along():
    from export.labels import TAGS

    n_clip_columns = 60
    clip = np.tile(tone(0.16, 3000), n_clip_columns)
    soft = np.full((n_clip_columns, len(TAGS)), np.nan, np.float16)
    dog = TAGS.index("dog")
    soft[:, dog] = np.arange(n_clip_columns) / 100  # the clip column is readable from the target
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), teacher_weight=1.0,
                      p_tag_speed=1.0, tag_speed_range=(1.5, 1.5))
    sampler = SceneSampler(Pools(tags={"smoke_alarm": [clip]}, tag_teacher={"smoke_alarm": [soft]}), NAMES, cfg)
    audio, targets, _ = sampler.sample(np.random.default_rng(3))
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SR / len(audio) - 4500) < 20, "3 kHz played 1.5x faster"
    columns = np.rint(targets[:, NAMES.index("dog")] * 100)
    steps = np.diff(columns)
    assert set(steps.tolist()) <= {1.0, 2.0} and abs(steps.mean() - 1.5) < 0.2, "1.5 clip columns per scene column"

def test_a_faster_word_is_shorter_higher_and_keeps_its_bounds():
    word = np.zeros(SR, np.float32)
    word[4000:12000] = tone(0.5, 500)
    fast = change_speed(Word(word, 4000, 12000, synthetic=True), 1.25)
    assert len(fast.audio) == 12800 and (fast.onset, fast.offset) == (3200, 9600) and fast.synthetic
    spectrum = np.abs(np.fft.rfft(fast.audio[fast.onset : fast.offset]))
    assert abs(np.argmax(spectrum) * SR / (fast.offset - fast.onset) - 625) < 10  # 500 Hz played 1.25x faster
    assert word_bounds(fast.audio) == pytest.approx((fast.onset, fast.offset), abs=160)


def test_a_phrase_too_long_to_slow_down_is_placed_at_its_own_speed():
    n_columns = 8
    phrase = tone((n_columns - 1) * COLUMN / SR * 0.95, 700)  # fits the scene, but not 1/0.85 times longer
    cfg = SceneConfig(n_columns=n_columns, p_keyword=0.0, p_unknown=1.0, p_background=(0, 0, 0, 1), p_speed=1.0,
                      speed_range=(0.85, 0.85))
    sampler = SceneSampler(Pools(unknown=[Word(phrase, 0, len(phrase))]), NAMES, cfg)
    for seed in range(3):
        audio, _, _ = sampler.sample(np.random.default_rng(seed))
        assert (np.abs(audio) > 0.01).sum() <= len(phrase)


def test_recorded_words_are_drawn_at_the_asked_rate():
    recorded = np.zeros(SR, np.float32)
    recorded[4000:8000] = tone(0.25, 700)
    synthetic = np.zeros(SR, np.float32)
    synthetic[4000:8000] = tone(0.25, 2000)
    words = [Word(recorded, 4000, 8000)] + [Word(synthetic, 4000, 8000, synthetic=True)] * 9
    picks = {}
    for p in (None, 0.8):
        cfg = SceneConfig(n_columns=10, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_recorded_word=p)
        sampler = SceneSampler(Pools(keywords={"stop": words}), NAMES, cfg)
        rng = np.random.default_rng(0)
        drawn = []
        for _ in range(400):
            audio, _, _ = sampler.sample(rng)
            spectrum = np.abs(np.fft.rfft(audio))
            drawn.append(np.argmax(spectrum) * SR / len(audio) < 1000)  # the 700 Hz recorded word
        picks[p] = np.mean(drawn)
    assert 0.05 < picks[None] < 0.16  # 1 in 10 when all words count alike
    assert 0.74 < picks[0.8] < 0.86


def test_a_second_tag_clip_marks_both_tags():
    a, b = np.tile(tone(0.16, 1000), 20), np.tile(tone(0.16, 3000), 20)
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), p_second_tag=1.0,
                      second_tag_db=(0.0, 0.0))
    sampler = SceneSampler(Pools(tags={"dog": [a], "siren": [b]}), NAMES, cfg)
    for seed in range(4):
        audio, targets, _ = sampler.sample(np.random.default_rng(seed))
        on = targets[:, [NAMES.index("dog"), NAMES.index("siren")]].all(axis=0)
        assert on.sum() >= 1  # the same tag twice, or both
        assert np.abs(audio).max() <= 0.99


def test_tag_weights_draw_a_tag_that_much_more_often():
    a, b = np.tile(tone(0.16, 1000), 20), np.tile(tone(0.16, 3000), 20)
    pools = Pools(tags={"dog": [a], "smoke_alarm": [b]})

    def alarm_share(**weights):
        cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), tag_weights=weights)
        sampler, rng = SceneSampler(pools, NAMES, cfg), np.random.default_rng(0)
        return np.mean([sampler.sample(rng)[1][:, NAMES.index("smoke_alarm")].any() for _ in range(400)])

    assert 0.42 < alarm_share() < 0.58
    assert 0.74 < alarm_share(smoke_alarm=4) < 0.86  # 4 to 1


def test_keyword_weights_draw_a_keyword_that_much_more_often():
    words = {k: [Word(tone(0.3, hz), 0, int(0.3 * SR), False)] for k, hz in (("yes", 600), ("stop", 1200))}
    pools = Pools(keywords=words, noise=[np.zeros(4 * SR, np.float32)])

    def stop_share(**weights):
        cfg = SceneConfig(n_columns=10, p_keyword=1.0, p_unknown=0.0, keyword_weights=weights)
        sampler, rng = SceneSampler(pools, NAMES, cfg), np.random.default_rng(0)
        return np.mean([sampler.sample(rng)[1][:, NAMES.index("stop")].any() for _ in range(400)])

    assert 0.42 < stop_share() < 0.58
    assert 0.74 < stop_share(stop=4) < 0.86  # 4 to 1


def test_a_tag_bed_puts_noise_under_the_tag_at_the_asked_level():
    beeps = np.tile(np.concatenate([tone(0.16, 3000), np.zeros(3 * 2560, np.float32)]), 10)  # whole quiet columns
    noise = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.01
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), p_tag_bed=1.0,
                      tag_bed_db=(-20.0, -20.0))
    sampler = SceneSampler(Pools(tags={"smoke_alarm": [beeps]}, noise=[noise]), NAMES, cfg)
    audio, targets, _ = sampler.sample(np.random.default_rng(1))
    cols = audio.reshape(10, -1)
    quiet = np.mean(cols ** 2, axis=1) < 0.5 * np.mean(cols ** 2, axis=1).max()
    assert quiet.any() and (np.abs(cols[quiet]).max(axis=1) > 0).all(), "the gaps between beeps hold noise"
    bed_db = 10 * np.log10(np.mean(cols[quiet] ** 2))
    tag_db = 10 * np.log10(np.mean(audio ** 2))
    assert -24 < bed_db - tag_db < -17  # 20 dB below the sound (the beeps dominate the scene's power)
    assert targets[~quiet, NAMES.index("smoke_alarm")].min() == 1.0
    plain = SceneSampler(Pools(tags={"smoke_alarm": [beeps]}, noise=[noise]), NAMES,
                         SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0)))
    audio, _, _ = plain.sample(np.random.default_rng(1))
    assert (audio.reshape(10, -1)[quiet] == 0).all(), "without a bed the gaps stay silent"



def test_a_late_tag_arrives_into_a_room_that_was_there_before_it():
    """p_tag_late: the sound starts tag_late_s into the scene, the room (noise/ at tag_bed_db) before it and under
    it; its tag is a known negative (unmasked 0) in the columns before it and on where it is loud."""
    barks = np.tile(tone(0.16, 1000), 40)  # a sound that fills every column it is in
    noise = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.01
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), p_tag_late=1.0,
                      tag_late_s=(0.8, 0.8), tag_bed_db=(-20.0, -20.0))
    sampler = SceneSampler(Pools(tags={"dog": [barks]}, noise=[noise]), NAMES, cfg)
    dog, before = NAMES.index("dog"), 12800 // 2560  # 0.8 s: columns 0-4 end before the sound
    for seed in range(6):
        audio, targets, mask = sampler.sample(np.random.default_rng(seed))
        cols = audio.reshape(10, -1)
        room = np.mean(cols[:before] ** 2, axis=1)
        assert (room > 0).all() and (targets[:before, dog] == 0).all() and (mask[:before, dog] == 1).all()
        assert (targets[before + 1:, dog] == 1).all()  # the whole columns after the start hold the sound
        sound_db = 10 * np.log10(np.mean(audio[12800:] ** 2))
        if 10 * np.log10(room.mean()) > -70:  # a noise/ room (else near-silence): 20 dB below the sound
            assert -22 < 10 * np.log10(room.mean()) - sound_db < -18
    off = SceneSampler(Pools(tags={"dog": [barks]}, noise=[noise]), NAMES,
                       SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0)))
    audio, targets, _ = off.sample(np.random.default_rng(0))
    assert targets[0, dog] == 1  # without it the sound opens the scene


def test_a_lookalike_is_a_scene_of_its_own_with_every_tag_negative_and_never_a_bed():
    alarm = np.tile(np.concatenate([tone(0.5, 3200), np.zeros(8000, np.float32)]), 8)
    piezo = np.tile(np.concatenate([tone(0.2, 3200), np.zeros(3200, np.float32)]), 20)  # the tone, steady beeping
    noise = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.01
    pools = Pools(tags={"smoke_alarm": [alarm]}, noise=[noise], lookalikes=[piezo])
    tag = NAMES.index("smoke_alarm")
    every = SceneSampler(pools, NAMES, SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0),
                                                   p_tag_bed=1.0, tag_bed_db=(-20.0, -20.0), p_lookalike=1.0))
    for seed in range(4):
        audio, targets, mask = every.sample(np.random.default_rng(seed))
        spectrum = np.abs(np.fft.rfft(audio))
        assert abs(np.argmax(spectrum) * SR / len(audio) - 3200) < 20, "the scene's sound is the look-alike"
        assert not targets.any() and mask.all(), "every tag negative, nothing ignored"
    # as a bed, the look-alike would sit under an alarm: a bed comes from noise/ only, and alarms stay positive
    some = SceneSampler(pools, NAMES, SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0),
                                                  p_tag_bed=1.0, p_lookalike=0.5))
    marked = [some.sample(np.random.default_rng(seed))[1][:, tag].max() for seed in range(40)]
    assert 10 < sum(marked) < 30
    none = SceneSampler(pools, NAMES, SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0)))
    old = SceneSampler(Pools(tags={"smoke_alarm": [alarm]}, noise=[noise]), NAMES, none.cfg)
    assert all(np.array_equal(none.sample(np.random.default_rng(s))[0], old.sample(np.random.default_rng(s))[0])
               for s in range(4)), "p_lookalike 0 draws nothing: old recipes replay"

@pytest.mark.parametrize("seed", range(4))
def test_a_noise_burst_starts_and_stops_in_a_quiet_scene_and_is_no_speech(seed):
    noise = np.random.default_rng(9).standard_normal(SR * 10).astype(np.float32) * 0.05
    cfg = SceneConfig(n_columns=16, p_keyword=0.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_burst=1.0,
                      burst_s=(0.5, 1.0), level_db=(-20.0, -20.0))
    audio, targets, mask = SceneSampler(Pools(noise=[noise]), NAMES, cfg).sample(np.random.default_rng(seed))
    frames_db = 10 * np.log10(np.mean(audio.reshape(-1, 160) ** 2, axis=1))  # 10 ms; near-silence is below -50
    loud = np.flatnonzero(frames_db > -40)
    length_s = (loud[-1] + 1 - loud[0]) * 0.01
    assert 0.45 < length_s <= 1.01, "one burst of the asked length, quiet around it"
    cols = audio.reshape(cfg.n_columns, -1)
    assert -21.5 < 10 * np.log10(np.mean(cols ** 2, axis=1).max()) < -17, "at the scene level (loudest column)"
    assert not targets.any() and mask.all(), "a burst is no label: speech and keywords learn it is nothing"
    off = SceneSampler(Pools(noise=[noise]), NAMES, SceneConfig(n_columns=16, p_keyword=0.0, p_unknown=0.0,
                                                               p_background=(0, 0, 0, 1)))
    assert np.abs(off.sample(np.random.default_rng(seed))[0]).max() < 0.03, "off: near-silence only"
    tag_scenes = [SceneSampler(Pools(tags={"dog": [tone(1.0, 500)]}, noise=[noise]), NAMES,
                               SceneConfig(n_columns=16, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0),
                                           p_burst=p_burst)).sample(np.random.default_rng(seed))[0] for p_burst in (0.0, 1.0)]
    assert np.array_equal(*tag_scenes), "never over a labelled sound"


@pytest.mark.parametrize("seed", range(4))
def test_a_tag_burst_is_the_loud_part_of_a_tag_clip_marked_as_that_tag_and_no_speech(seed):
    noise = np.random.default_rng(9).standard_normal(SR * 10).astype(np.float32) * 0.05
    bark = np.concatenate([np.zeros(SR * 2, np.float32), tone(0.2, 600), np.zeros(SR * 2, np.float32)])  # 5 s clip
    cfg = SceneConfig(n_columns=16, p_keyword=0.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_burst=1.0,
                      p_tag_burst=1.0, burst_s=(0.5, 1.0), level_db=(-20.0, -20.0))
    audio, targets, mask = SceneSampler(Pools(tags={"dog": [bark]}, noise=[noise]), NAMES, cfg).sample(
        np.random.default_rng(seed))
    cols = audio.reshape(cfg.n_columns, -1)
    power_db = 10 * np.log10(np.mean(cols ** 2, axis=1) + 1e-12)
    loud = power_db > power_db.max() - 10
    assert -21.5 < power_db.max() < -17, "the bark, at the scene level"
    assert 1 <= loud.sum() <= 3, "0.2 s of bark: one to three columns"
    dog = targets[:, NAMES.index("dog")]
    assert (dog[loud] == 1).all() and dog.sum() == loud.sum(), "marked as a dog where it is loud"
    assert not np.delete(targets, NAMES.index("dog"), axis=1).any(), "and nothing else: no speech, no keyword"
    assert mask[:, NAMES.index("speech")].all()
    noise_only = SceneSampler(Pools(tags={"dog": [bark]}, noise=[noise]), NAMES,
                              dataclasses.replace(cfg, p_tag_burst=0.0)).sample(np.random.default_rng(seed))[1]
    assert not noise_only.any(), "p_tag_burst 0: the noise burst as before"


def test_an_equalised_scene_changes_its_spectrum_not_its_targets():
    word = Word(tone(1.0, 700), 4000, 12000)
    scenes = []
    for p_eq in (0.0, 1.0):
        cfg = SceneConfig(n_columns=10, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_eq=p_eq,
                          eq_db=12.0)
        scenes.append(SceneSampler(Pools(keywords={"stop": [word]}), NAMES, cfg).sample(np.random.default_rng(0)))
    (plain, plain_targets, _), (eq, eq_targets, _) = scenes
    assert np.array_equal(plain_targets, eq_targets)
    # a colouring, not a gain: the level changes by different amounts in different bands, within +-12 dB
    spectra = [np.abs(np.fft.rfft(x)) ** 2 for x in (plain, eq)]
    freqs = np.fft.rfftfreq(len(plain), 1 / 16000)
    change_db = [10 * np.log10(spectra[1][(freqs >= lo) & (freqs < hi)].sum() / spectra[0][(freqs >= lo) & (freqs < hi)].sum())
                 for lo, hi in ((100, 400), (600, 800), (2000, 4000), (5000, 7000))]
    assert max(np.abs(change_db)) <= 12.5 and np.ptp(change_db) > 1.0


def test_a_humming_scene_gains_mains_hum_under_everything_and_keeps_its_targets():
    word = Word(tone(1.0, 700), 4000, 12000)
    scenes = []
    for p_hum in (0.0, 1.0):
        cfg = SceneConfig(n_columns=10, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_hum=p_hum,
                          hum_db=(-30.0, -30.0))
        scenes.append(SceneSampler(Pools(keywords={"stop": [word]}), NAMES, cfg).sample(np.random.default_rng(0)))
    (plain, plain_targets, _), (hum, hum_targets, _) = scenes
    assert np.array_equal(plain_targets, hum_targets)
    added = hum.astype(np.float64) - plain
    assert 20 * np.log10(np.sqrt(np.mean(added ** 2))) == pytest.approx(-30.0, abs=0.2)  # the same all through
    assert 20 * np.log10(np.sqrt(np.mean(added[:4000] ** 2))) == pytest.approx(-30.0, abs=1.0)  # silence hums too
    spectrum = np.abs(np.fft.rfft(added)) ** 2
    freqs = np.fft.rfftfreq(len(added), 1 / 16000)
    assert spectrum[freqs < 700].sum() > 0.99 * spectrum.sum()


def test_an_overdriven_scene_is_clipped_at_full_scale_and_keeps_its_targets():
    word = Word(tone(1.0, 700), 4000, 12000)
    for p_clip, over_db in ((1.0, (6.0, 6.0)), (0.0, (6.0, 6.0))):
        cfg = SceneConfig(n_columns=10, p_keyword=1.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_clip=p_clip,
                          clip_over_db=over_db)
        sampler = SceneSampler(Pools(keywords={"stop": [word]}), NAMES, cfg)
        audio, targets, _ = sampler.sample(np.random.default_rng(0))
        peak_share = np.mean(np.abs(audio) >= 0.999)
        if p_clip:  # a 6 dB push clips every sample of a sine above half its peak: about a third of the word
            assert np.abs(audio).max() == pytest.approx(1.0) and 0.05 < peak_share < 0.5
        else:
            assert np.abs(audio).max() <= 0.99 and peak_share == 0
        assert targets[:, NAMES.index("stop")].max() == 1.0


def add_clips(corpus: Path, folder: str, label: str, audio: np.ndarray, n: int = 6, speaker: str = "") -> None:
    """n copies of audio in corpus/folder, each a row of the manifest labelled label (by speaker{i} with a speaker,
    in Speech Commands' file names)."""
    rows = (corpus / "manifest.csv").read_text().splitlines()
    for i in range(n):
        path = corpus / folder / (f"{speaker}{i}_nohash_0.wav" if speaker else f"{i}.wav")
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, SR)
        rows.append(f"{path.relative_to(corpus)},{label},{speaker and f'{speaker}{i}'},{len(audio) / SR}")
    (corpus / "manifest.csv").write_text("\n".join(rows) + "\n")


def tiny_donor(path: Path) -> torch.nn.Module:
    """A tiny SAT model of the default labels, saved as a checkpoint to start a recipe from."""
    from export.families import build_model, save_checkpoint

    torch.manual_seed(0)
    donor = build_model("sat", DEFAULT_LABELS, "tiny")
    save_checkpoint(donor, path, "sat", "tiny")
    return donor


def test_a_new_keyword_is_appended_to_the_labels_and_learns_from_its_clips(tmp_path, monkeypatch):
    from export.families import load_checkpoint
    from export.train import clip_role, load_recipe, recipe_labels, train

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    word = np.zeros(SR, np.float32)  # a word of the user's: a 900 Hz tone, labelled with itself
    word[3000:9000] = tone(6000 / SR, 900)
    add_clips(corpus, "kws/hey_kitchen", "hey kitchen", word, speaker="u")
    donor = tiny_donor(tmp_path / "donor.pt")
    recipe_path = tmp_path / "kitchen.yaml"
    recipe_path.write_text(
        f"name: kitchen\nfamily: sat\nsize: tiny\nsteps: 2\nbatch_size: 2\neval_every: 2\nval_scenes: 4\nthreads: 1\n"
        f"shared_data: {corpus}\nscene: {{n_columns: 8}}\ninit: donor.pt\nnew_keywords: [hey kitchen]\nlr: 0.0\n"
    )
    recipe = load_recipe(recipe_path)
    labels = recipe_labels(recipe)
    assert labels[:-1] == DEFAULT_LABELS and (labels[-1].name, labels[-1].kind) == ("hey kitchen", "keyword")
    clip = Clip(path=Path("kws/hey_kitchen/u0_nohash_0.wav"), labels=("hey kitchen",))
    assert clip_role(clip) == ("tag", "hey kitchen"), "without the recipe the word is no keyword"
    assert clip_role(clip, recipe.new_keywords + ("yes",)) == ("keyword", "hey kitchen")
    negative = Clip(path=Path("kws/precise/not_wake_word/x.wav"), labels=("not_wake_word", "text=hey kitchen lights"))
    assert clip_role(negative, ("hey kitchen",)) == ("skip", ""), "a phrase holding the new keyword is no negative"
    carried = Clip(path=Path("unknown/kitchen_00003.wav"), labels=("_unknown_", "word=kitchen", "text=hey kitchen"))
    assert clip_role(carried, ("hey kitchen",)) == ("skip", ""), "synth_speech's carrier 'hey' made it the keyword"
    assert clip_role(carried) == ("unknown", "_unknown_")
    said = Clip(path=Path("/mine/kws/hey_kitchen_on/take-001.wav"), labels=("hey kitchen on",))  # streamd record
    assert clip_role(said, ("hey kitchen",)) == ("skip", ""), "your own phrase holding the keyword is no negative"
    near = Clip(path=Path("/mine/kws/hey_chicken/take-001.wav"), labels=("hey chicken",))
    assert clip_role(near, ("hey kitchen",)) == ("unknown", "hey chicken"), "a near-miss you said is a negative"

    train(recipe, tmp_path / "run", resume=False, root=tmp_path)
    model, meta = load_checkpoint(tmp_path / "run" / "last.pt")
    assert meta["labels"][-1] == ["hey kitchen", "keyword"] and len(meta["labels"]) == len(DEFAULT_LABELS) + 1
    # lr 0: the head is what warm start left: the donor's rows for its labels, a fresh row for the new one
    torch.testing.assert_close(model.head.weight[:-1], donor.head.weight)
    assert not torch.equal(model.head.weight[-1], torch.zeros_like(model.head.weight[-1]))


def test_a_new_tag_is_appended_after_new_keywords_and_learns_from_its_clips(tmp_path, monkeypatch):
    """A sound of the user's (a cuckoo clock): clips labelled with it become that tag's positives only where the
    recipe names it; the shipped rows stay, the new tag gets a row of its own after the new keyword's."""
    from export.families import load_checkpoint
    from export.train import build_pools, clip_role, load_recipe, recipe_labels, train

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    call = np.concatenate([tone(0.3, 700), tone(0.3, 580), np.zeros(SR, np.float32)])  # two falling tones
    add_clips(corpus, "sounds/cuckoo", "cuckoo", call)
    add_clips(corpus, "kws/hey_kitchen", "hey kitchen", tone(0.4, 900), speaker="u")  # every new label needs clips
    donor = tiny_donor(tmp_path / "donor.pt")
    recipe_path = tmp_path / "cuckoo.yaml"
    recipe_path.write_text(
        f"name: cuckoo\nfamily: sat\nsize: tiny\nsteps: 2\nbatch_size: 2\neval_every: 2\nval_scenes: 4\nthreads: 1\n"
        f"shared_data: {corpus}\nscene: {{n_columns: 8, tag_weights: {{cuckoo: 4}}}}\ninit: donor.pt\n"
        f"new_keywords: [hey kitchen]\nnew_tags: [cuckoo]\nlr: 0.0\n")
    recipe = load_recipe(recipe_path)
    labels = recipe_labels(recipe)
    assert labels[:-2] == DEFAULT_LABELS
    assert [(label.name, label.kind) for label in labels[-2:]] == [("hey kitchen", "keyword"), ("cuckoo", "tag")]
    clip = Clip(path=corpus / "sounds" / "cuckoo" / "0.wav", labels=("cuckoo",))
    assert clip_role(clip) == ("tag", "cuckoo")
    names = tuple(label.name for label in labels)
    pools = build_pools([clip], SR, names)
    assert len(pools.tags["cuckoo"]) == 1
    assert build_pools([clip], SR, NAMES).tags == {}, "a model without the tag has no use for its clips"
    cfg = SceneConfig(n_columns=8, p_background=(1.0, 0.0, 0.0, 0.0), p_keyword=0.0, p_unknown=0.0)
    _, targets, _ = SceneSampler(pools, names, cfg).sample(np.random.default_rng(0))
    assert targets[:, names.index("cuckoo")].max() == 1.0 and targets[:, names.index("dog")].max() == 0.0

    train(recipe, tmp_path / "run", resume=False, root=tmp_path)
    model, meta = load_checkpoint(tmp_path / "run" / "last.pt")
    assert meta["labels"][-1] == ["cuckoo", "tag"] and len(meta["labels"]) == len(DEFAULT_LABELS) + 2
    torch.testing.assert_close(model.head.weight[:-2], donor.head.weight)  # lr 0: the donor's rows as they were


def test_held_out_voices_are_left_out_of_the_synthetic_clips_that_train(tmp_path, caplog):
    """held_out_voices: a synthetic clip whose speaker names one of them (the voice, its blends, its warps) does not
    train; the others train on their split's training side as before."""
    from export.data.splits import split_of
    from export.train import load_recipe, split_clips

    caplog.set_level(logging.INFO, logger="export.train")
    corpus = write_tiny_corpus(tmp_path / "data")
    voices = ["kokoro:jf_alpha", "kokoro:jf_nezumi", "kokoro:jf_alpha+jf_nezumi", "kokoro:jm_kumo"]
    synth = tmp_path / "synth"
    clips = [Clip(synth / f"{i}.wav", ("yes",), f"{voice}*{warp:.2f}", 0.5)
             for i, (voice, warp) in enumerate((v, w) for v in voices for w in (0.88, 0.92, 0.96, 1.0, 1.04, 1.08))]
    write_manifest(clips, synth / "manifest.csv")
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nsynthetic: [{synth / 'manifest.csv'}]\n")
    every = {c.path.name for c in split_clips(load_recipe(recipe_path), tmp_path)[0] if c.attrs.get("synthetic")}
    assert every == {c.path.name for c in clips if split_of(c) == "train"} and len(every) > 6
    recipe_path.write_text(recipe_path.read_text() + "held_out_voices: [jf_nezumi]\n")
    recipe = load_recipe(recipe_path)
    assert recipe.held_out_voices == ("jf_nezumi",)
    kept = {c.path.name: c.speaker for c in split_clips(recipe, tmp_path)[0] if c.attrs.get("synthetic")}
    assert set(kept) == {name for name in every if "nezumi" not in next(c.speaker for c in clips
                                                                         if c.path.name == name)}
    assert kept and all("nezumi" not in speaker for speaker in kept.values())
    assert any("12 clips of held-out voices (jf_nezumi) left out of training" in r.getMessage() for r in caplog.records)


def test_recordings_train_on_their_training_split_as_recorded_clips_and_validate_on_the_rest(tmp_path, monkeypatch,
                                                                                             caplog):
    """A folder of your own recordings under recordings: is split as ../shared/data is (by file name here): the
    training part trains the new tag as recorded clips, the validation part only validates; a missing folder, a file
    that is no audio, a new tag with no clip, a split that holds nothing out, clips the evaluation would not read and
    sounds the model has no label for are told."""
    from export.data.splits import split_of
    from export.train import load_pools, load_recipe, recipe_labels, split_clips

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="export.train")
    corpus = write_tiny_corpus(tmp_path / "data")
    call = np.concatenate([tone(0.3, 700), tone(0.3, 580), np.zeros(SR, np.float32)])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("path,labels,speaker,duration_s\n")
    add_clips(mine, "tags/cuckoo", "cuckoo", call, n=20)
    hum = (0.01 * np.sin(2 * np.pi * 100 * np.arange(10 * SR) / SR)).astype(np.float32)
    add_clips(mine, "noise", "noise", hum, n=1)  # the home's own background: split in time, as noise/ is
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nnew_tags: [cuckoo]\nrecordings: [mine]\n")
    recipe = load_recipe(recipe_path)
    assert recipe.recordings == ("mine",)
    train_clips, val_clips, noise_files = split_clips(recipe, tmp_path)
    ours = [(c, split_of(c)) for c in train_clips + val_clips if c.label == "cuckoo"]
    n_val = sum(split == "val" for _, split in ours)
    assert len(ours) == 20 and 0 < n_val < 20 and [c.path.name for c in noise_files] == ["white.wav", "0.wav"]
    assert all((c in val_clips) == (split == "val") and not c.attrs.get("synthetic") for c, split in ours)
    names = tuple(label.name for label in recipe_labels(recipe))
    train, val = load_pools(recipe, tmp_path, SR, names)
    assert len(train.tags["cuckoo"]) == 20 - n_val and len(val.tags["cuckoo"]) == n_val
    assert train.tag_synthetic["cuckoo"] == [False] * (20 - n_val)
    told = [r.getMessage() for r in caplog.records]
    assert f"{mine / 'manifest.csv'}: {20 - n_val} clips train, {n_val} validate; long recordings split in time: 1" in told[0]
    assert len(train.noise) == len(val.noise) == 2 and len(val.noise[1]) == 2 * SR  # its last fifth validates
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()

    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nnew_tags: [cuckoo]\nrecordings: [nowhere]\n")
    with pytest.raises(SystemExit, match=r"recordings: .*nowhere/manifest.csv not found"):
        split_clips(load_recipe(recipe_path), tmp_path)
    (mine / "tags" / "cuckoo" / "3.wav").write_bytes(b"ftypM4A recorded on a phone")  # not audio soundfile reads
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nnew_tags: [cuckoo]\nrecordings: [mine]\n")
    with pytest.raises(SystemExit, match=r"mine/manifest.csv: 1 of 21 files cannot be read, e.g. .*/3.wav: .*ffmpeg"):
        split_clips(load_recipe(recipe_path), tmp_path)
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nnew_tags: [cuckoo]\n")
    with pytest.raises(SystemExit, match=r"no training clip of \['cuckoo'\]"):
        load_pools(load_recipe(recipe_path), tmp_path, SR, names)

    one = tmp_path / "one"  # one speaker says every clip, in a folder the evaluation does not read
    one.mkdir()
    (one / "manifest.csv").write_text("path,labels,speaker,duration_s\n")
    add_clips(one, "sounds", "cuckoo", call, n=3)
    rows = (one / "manifest.csv").read_text().replace(",,", ",me,")
    (one / "manifest.csv").write_text(rows)
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nrecordings: [{one / 'manifest.csv'}]\n")
    assert split_of(Clip(one / "sounds" / "0.wav", ("cuckoo",), "me")) == "train"  # by speaker: nothing held out
    caplog.clear()
    train_clips, val_clips, _ = split_clips(load_recipe(recipe_path), tmp_path)
    assert [c.path.name for c in val_clips if c.label == "cuckoo"] == ["0.wav"]  # by file name instead
    assert sorted(c.path.name for c in train_clips if c.label == "cuckoo") == ["1.wav", "2.wav"]
    told = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "2 clips train, 1 validate; long recordings split in time: 0; 3 clips split by file name" in told[0]
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "3 clips (e.g." in warned[0]
    assert "in none of the folders the evaluation reads" in warned[0]
    (one / "manifest.csv").write_text("\n".join(rows.splitlines()[:2]) + "\n")  # one clip: no split to make
    caplog.clear()
    split_clips(load_recipe(recipe_path), tmp_path)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "all 1 clips fall in the training split" in warned[0] and "none is held out" in warned[0]

    sf.write(mine / "tags" / "cuckoo" / "3.wav", call, SR)  # converted
    add_clips(mine, "tags/kettle", "kettle", call, n=3)  # a sound `streamd review` kept under a name of its own
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nnew_tags: [cuckoo]\nrecordings: [mine]\n")
    caplog.clear()
    train, val = load_pools(load_recipe(recipe_path), tmp_path, SR, names)
    assert "kettle" not in train.tags and "kettle" not in val.tags
    assert len(train.lookalikes) + len(val.lookalikes) == 3  # heard with none of the tags on
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "3 recorded clips are of sounds the model has no label for (kettle 3)" in warned[0]
    assert "scene.p_lookalike is 0, so they do not train" in warned[0] and "new_tags:" in warned[0]
    recipe_path.write_text(f"name: r\nshared_data: {corpus}\nnew_tags: [cuckoo]\nrecordings: [mine]\n"
                           "scene: {p_lookalike: 0.1}\n")
    caplog.clear()
    load_pools(load_recipe(recipe_path), tmp_path, SR, names)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("they train as sounds with none of its tags on" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("keys, message", [
    ("new_tags: [dog]", r"new_tags \['dog'\] are labels of the default model already"),
    ("new_keywords: [cuckoo]\nnew_tags: [cuckoo]", r"new_tags \['cuckoo'\] name a new keyword or clips that training"),
    ("new_tags: [chime]", r"new_tags \['chime'\] name a new keyword or clips that training takes as negatives"),
])
def test_a_recipe_cannot_add_a_tag_the_model_has_or_that_names_negatives(tmp_path, keys, message):
    from export.train import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(f"name: r\n{keys}\n")
    with pytest.raises(SystemExit, match=message):
        load_recipe(path)


def test_a_recipe_cannot_add_a_keyword_the_model_has(tmp_path):
    from export.train import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("name: r\nnew_keywords: [stop]\n")
    with pytest.raises(SystemExit, match=r"new_keywords \['stop'\] are labels of the default model already"):
        load_recipe(path)


def test_command_teacher_is_blended_only_where_it_decides_as_the_scene_does():
    from export.train import blend_commands

    down, no = COMMANDS.index("down"), COMMANDS.index("no")
    def row(**probs):
        r = torch.zeros(len(COMMANDS))
        for name, p in probs.items():
            r[COMMANDS.index(name)] = p
        return r
    hard = torch.stack([row(down=1.0), row(down=1.0), row(), row(), row(down=1.0)])
    soft = torch.stack([row(down=0.9, no=0.05),  # agrees: blended
                        row(no=0.8, down=0.1),  # says "no" for a "down": hard stays
                        row(down=0.6),  # a non-keyword heard as "down": hard stays
                        row(down=0.3, no=0.2),  # a non-keyword, teacher unsure (no command >= 0.5): blended
                        row(down=0.4)])  # a "down" the teacher hears as nothing: hard stays
    plain = blend_commands(hard, soft, 0.7)
    torch.testing.assert_close(plain, 0.3 * hard + 0.7 * soft)
    gated = blend_commands(hard, soft, 0.7, agree_only=True)
    torch.testing.assert_close(gated[[0, 3]], plain[[0, 3]])
    torch.testing.assert_close(gated[[1, 2, 4]], hard[[1, 2, 4]])
    assert gated[1, down] == 1.0 and gated[1, no] == 0.0 and gated[2, down] == 0.0
    # batch and column axes pass through
    assert blend_commands(hard.reshape(1, 5, -1), soft.reshape(1, 5, -1), 0.7, True).shape == (1, 5, len(COMMANDS))


@pytest.mark.skipif(not TEACHER.exists(), reason="needs ../shared/teachers (present in CI)")
@pytest.mark.parametrize("device", DEVICES)
def test_the_training_benchmark_times_the_model_with_the_teachers_of_its_recipe(tmp_path, device):
    from export.bench_train import device_step_ms
    from export.train import load_recipe

    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(f"name: tiny\nfamily: sat\nsize: tiny\nbatch_size: 2\nscene: {{n_columns: 8}}\n"
                           f"teacher: {{dscnn: {TEACHER}, weight: 0.5}}\n")
    times_ms, teachers = device_step_ms(load_recipe(recipe_path), tmp_path, torch.device(device), steps=3)
    assert teachers == ["CommandDistiller"] and len(times_ms) == 3 and min(times_ms) > 0


def test_training_only_the_rows_of_some_labels_leaves_every_other_weight_as_it_was(tmp_path, monkeypatch):
    from export.families import load_checkpoint
    from export.train import load_recipe, train

    common = tiny_run(tmp_path, monkeypatch)
    (tmp_path / "dog.yaml").write_text(f"name: dog\nsteps: 4\neval_every: 4\nlr: 0.01\nweight_decay: 0\n"
                                       f"init: run/last.pt\ntrain_labels: [dog]\n{common}")
    train(load_recipe(tmp_path / "dog.yaml"), tmp_path / "dog", resume=False, root=tmp_path)

    before, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    after, _ = load_checkpoint(tmp_path / "dog" / "last.pt")
    dog = NAMES.index("dog")
    old, new = before.state_dict(), after.state_dict()
    for key in old:
        if key in ("head.weight", "head.bias"):
            others = [i for i in range(len(NAMES)) if i != dog]
            assert torch.equal(old[key][others], new[key][others]), f"{key}: another label's row moved"
            assert not torch.equal(old[key][dog], new[key][dog]), f"{key}: the dog row did not learn"
        else:
            assert torch.equal(old[key], new[key]), f"{key} moved"

    (tmp_path / "decay.yaml").write_text(f"name: decay\nsteps: 1\ninit: run/last.pt\ntrain_labels: [dog]\n{common}")
    with pytest.raises(SystemExit, match="weight_decay: 0"):
        load_recipe(tmp_path / "decay.yaml")


def test_a_shallower_model_starts_from_the_chosen_blocks_of_a_deeper_one(tmp_path):
    from export.families import build_model, save_checkpoint
    from export.train import warm_start

    torch.manual_seed(0)
    donor = build_model("sat", DEFAULT_LABELS, "tiny")  # three blocks
    path = save_checkpoint(donor, tmp_path / "donor.pt", "sat", "tiny")
    student = build_model("sat", DEFAULT_LABELS, "tiny", n_layers=2)
    warm_start(student, path, blocks=(0, 2))
    theirs, ours = donor.state_dict(), student.state_dict()
    for key, value in ours.items():
        if key.startswith("blocks.1."):
            assert torch.equal(value, theirs["blocks.2." + key[len("blocks.1."):]]), key
        elif key.startswith("blocks.0."):
            assert torch.equal(value, theirs[key]), key
        else:
            assert torch.equal(value, theirs[key]), f"{key}: front end, embedding, norm and head come along"
    with pytest.raises(SystemExit, match=r"blocks \[0, 1, 2\], not \[5\]"):
        warm_start(build_model("sat", DEFAULT_LABELS, "tiny", n_layers=2), path, blocks=(0, 5))


def test_init_blocks_needs_an_init_model(tmp_path):
    from export.train import load_recipe

    (tmp_path / "r.yaml").write_text("name: r\ninit_blocks: [0, 2]\n")
    with pytest.raises(SystemExit, match="init_blocks"):
        load_recipe(tmp_path / "r.yaml")
    (tmp_path / "r.yaml").write_text("name: r\ninit: x.pt\ninit_blocks: [0, 2]\n")
    assert load_recipe(tmp_path / "r.yaml").init_blocks == (0, 2)


def test_a_model_teacher_blends_into_known_targets_and_fills_masked_ones(tmp_path):
    from export.families import build_model, save_checkpoint
    from export.train import ModelDistiller

    torch.manual_seed(0)
    teacher = build_model("sat", DEFAULT_LABELS, "tiny").eval()
    path = save_checkpoint(teacher, tmp_path / "teacher.pt", "sat", "tiny")
    names = NAMES + ("hey_kitchen",)  # a label the teacher lacks keeps its own targets
    distil = ModelDistiller(path, 0.75, names, COLUMN)
    audio = torch.from_numpy(np.stack([tone(8 * COLUMN / SR), tone(8 * COLUMN / SR, hz=3000)]))
    targets = torch.zeros(2, 8, len(names))
    targets[0, 3:, 0] = 1.0
    mask = torch.ones(2, 8, len(names))
    mask[1, :, 5] = 0.0  # unknown there: the teacher alone decides
    mask[:, :, -1] = 0.0
    out, out_mask = distil(audio, targets, mask)

    with torch.no_grad():
        soft = torch.sigmoid(teacher(audio))
    assert soft.shape == (2, 8, len(NAMES))
    torch.testing.assert_close(out[..., :-1], torch.where(mask[..., :-1] > 0, 0.25 * targets[..., :-1] + 0.75 * soft, soft))
    assert torch.all(out_mask[..., :-1] == 1), "the teacher knows every label it has"
    assert torch.equal(out[..., -1], targets[..., -1]) and torch.equal(out_mask[..., -1], mask[..., -1])

    # only: the listed labels blend as above, every other label keeps its targets and mask
    listed = (NAMES[0], NAMES[5])
    out, out_mask = ModelDistiller(path, 0.75, names, COLUMN, only=listed)(audio, targets, mask)
    for j, name in enumerate(names):
        if name in listed:
            blended = 0.25 * targets[..., j] + 0.75 * soft[..., j]
            torch.testing.assert_close(out[..., j], torch.where(mask[..., j] > 0, blended, soft[..., j]))
            assert torch.all(out_mask[..., j] == 1)
        else:
            assert torch.equal(out[..., j], targets[..., j]) and torch.equal(out_mask[..., j], mask[..., j])


def test_a_model_teacher_must_stream_in_the_students_columns(tmp_path):
    from export.families import build_model, save_checkpoint
    from export.train import ModelDistiller

    path = save_checkpoint(build_model("dscnn", DEFAULT_LABELS, "small"), tmp_path / "cnn.pt", "dscnn", "small")
    with pytest.raises(SystemExit, match="streaming model with 2560-sample columns"):
        ModelDistiller(path, 0.8, NAMES, COLUMN)
    sat = save_checkpoint(build_model("sat", DEFAULT_LABELS, "tiny", patch_frames=8), tmp_path / "sat.pt", "sat", "tiny",
                          {"patch_frames": 8})
    with pytest.raises(SystemExit, match="columns 1280"):
        ModelDistiller(sat, 0.8, NAMES, COLUMN)


def test_a_shallower_student_trains_from_its_teachers_blocks_and_probabilities(tmp_path, monkeypatch):
    from export.families import load_checkpoint
    from export.train import load_recipe, train

    common = tiny_run(tmp_path, monkeypatch)
    (tmp_path / "student.yaml").write_text(
        f"name: student\nsteps: 2\neval_every: 2\ninit: run/last.pt\ninit_blocks: [0, 2]\noverrides: {{n_layers: 2}}\n"
        f"teacher: {{model: run/last.pt, model_weight: 0.8}}\n{common}")
    final = train(load_recipe(tmp_path / "student.yaml"), tmp_path / "student", resume=False, root=tmp_path)
    assert final["step"] == 2 and np.isfinite(final["val_loss"])
    student, meta = load_checkpoint(tmp_path / "student" / "last.pt")
    assert len(student.blocks) == 2 and meta["overrides"] == {"n_layers": 2}


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "export" / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_committed_recipe_loads(path):
    from export.train import load_recipe

    recipe = load_recipe(path)
    assert recipe.name == path.stem, "a recipe's name is its file's, so runs/NAME and the card say which"


def audioset_pools(with_audioset: bool) -> tuple[Pools, np.ndarray]:
    """One tag clip (loud throughout) and one word; with its AudioSet column targets, class k of clip column
    c reading (c + k) / 1000 so the placement is readable, and its tag targets, siren reading c / 100."""
    from export.labels import TAGS

    n_clip_columns = 40
    clip = np.tile(tone(0.16, 3000), n_clip_columns)
    probs = ((np.arange(n_clip_columns)[:, None] + np.arange(527)[None, :]) / 1000).astype(np.float16)
    soft = np.full((n_clip_columns, len(TAGS)), np.nan, np.float16)
    soft[:, TAGS.index("siren")] = np.arange(n_clip_columns) / 100
    word = np.zeros(SR, np.float32)
    word[3200:11200] = tone(0.5, 700)
    pools = Pools(tags={"dog": [clip]}, keywords={"stop": [Word(word, 3200, 11200)]}, tag_teacher={"dog": [soft]},
                  tag_audioset={"dog": [probs]} if with_audioset else {})
    return pools, probs


@pytest.mark.parametrize("seed", range(4))
def test_audioset_targets_follow_the_clip_and_leave_the_scene_as_it_was(seed):
    cfg = SceneConfig(n_columns=10, p_keyword=0.5, p_unknown=0.0, p_background=(1, 0, 0, 0), teacher_weight=1.0)
    plain = SceneSampler(audioset_pools(False)[0], NAMES, cfg).sample(np.random.default_rng(seed))
    pools, probs = audioset_pools(True)
    sampler = SceneSampler(pools, NAMES, cfg)
    audio, targets, mask = sampler.sample(np.random.default_rng(seed))
    n = len(NAMES)
    assert sampler.n_audioset == 527 and targets.shape == mask.shape == (10, n + 527)
    np.testing.assert_array_equal(audio, plain[0])  # no draw of its own: the same scene, the same labels
    np.testing.assert_array_equal(targets[:, :n], plain[1])
    np.testing.assert_array_equal(mask[:, :n], plain[2])
    spoken = plain[1][:, NAMES.index("speech")] == 1
    assert (mask[spoken, n:] == 0).all(), "the teacher never heard the word laid over the clip"
    assert (mask[~spoken, n:] == 1).all(), "the clip fills the scene: every other column is taught"
    # the excerpt starts at clip column k0 (read from the tag targets): scene column c carries clip column
    # k0 + c, in the AudioSet targets as in the tag targets, every class alike
    rows = np.flatnonzero(~spoken)
    k0 = round(float(targets[0, NAMES.index("siren")]) * 100)
    np.testing.assert_allclose(targets[rows, n:], probs[k0 + rows].astype(np.float32))


def test_the_audioset_head_starts_at_its_prior_and_weights_its_share_of_the_mask():
    from export.families import build_model
    from export.train import AudioSetHead

    model = build_model("sat", DEFAULT_LABELS, size="tiny")
    prior = np.linspace(0.001, 0.5, 527)
    head = AudioSetHead(model, weight=0.05, prior=prior)
    logits = model(torch.from_numpy(tone(1.28)).unsqueeze(0))  # (1, 8, n): the hook keeps what model.head read
    assert head.features.shape == (1, 8, model.head.in_features)
    mask = torch.ones(1, 8, len(NAMES) + 527)
    extended, weighted = head.extend(logits, mask)
    assert extended.shape == weighted.shape == (1, 8, len(NAMES) + 527)
    assert torch.equal(extended[..., : len(NAMES)], logits)
    np.testing.assert_allclose(torch.sigmoid(extended[0, :, len(NAMES):]).detach().numpy(),
                               np.broadcast_to(prior, (8, 527)), rtol=1e-4)  # zero weights: the prior, whatever it hears
    assert (weighted[..., : len(NAMES)] == 1).all() and torch.allclose(weighted[..., len(NAMES):], torch.tensor(0.05))
    with pytest.raises(SystemExit, match="linear head"):
        AudioSetHead(build_model("dscnn", DEFAULT_LABELS), weight=0.05, prior=prior)


def test_training_with_the_audioset_head_resumes_and_exports_the_model_alone(tmp_path, monkeypatch):
    from export.families import load_checkpoint
    from export.train import load_recipe, train

    teacher = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
    common = tiny_run(tmp_path, monkeypatch)
    (tmp_path / "aset.yaml").write_text(
        f"name: aset\nsteps: 2\neval_every: 2\ninit: run/last.pt\n"
        f"teacher: {{efficientat: {teacher}, tag_columns: true, audioset_weight: 0.05}}\n{common}")
    recipe = load_recipe(tmp_path / "aset.yaml")
    first = train(recipe, tmp_path / "aset", resume=False, root=tmp_path)
    head = torch.load(tmp_path / "aset" / "last.audioset.pt", weights_only=True)
    assert head["linear.weight"].shape == (527, 96) and head["linear.weight"].abs().sum() > 0, "the head learnt"
    cached = list((tmp_path / "cache" / "teacher").rglob("*.npy"))
    assert sorted({np.load(f).shape[1] for f in cached}) == [58, 527], "tag and AudioSet targets, cached apart"
    final = train(dataclasses.replace(recipe, steps=4), tmp_path / "aset", resume=True, root=tmp_path)
    assert first["step"] == 2 and final["step"] == 4 and np.isfinite(final["val_loss"])
    model, _ = load_checkpoint(tmp_path / "aset" / "last.pt")
    donor, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    assert model.state_dict().keys() == donor.state_dict().keys(), "the exported model has no AudioSet head"
    (tmp_path / "bad.yaml").write_text(f"name: bad\nsteps: 2\nteacher: {{audioset_weight: 0.05}}\n{common}")
    with pytest.raises(SystemExit, match="needs teacher.efficientat with tag_columns"):
        train(load_recipe(tmp_path / "bad.yaml"), tmp_path / "bad", resume=False, root=tmp_path)


def test_the_tag_teacher_hearing_the_scene_replaces_only_what_its_precomputed_view_taught():
    """scene_view: at every other column where the precomputed targets taught (a tag strictly between 0 and 1), the
    teacher's view of the scene's own window replaces theirs, 0.9 x its probability; the clip's own label (1),
    speech, the mask, the other columns and a scene nothing taught stay as they were."""
    from export.labels import TAGS
    from export.train import TagDistiller

    teacher = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
    distil = TagDistiller(teacher, 0.9, NAMES, COLUMN, every=2, window_columns=8, scene_view=True)
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(np.stack([tone(2.56, 700) + 0.05 * rng.standard_normal(int(2.56 * SR)).astype(np.float32),
                                       tone(2.56, 300)]))
    targets = torch.zeros(2, 16, len(NAMES))
    dog, siren, speech = NAMES.index("dog"), NAMES.index("siren"), NAMES.index("speech")
    targets[0, 4:12, dog] = 0.3  # the clean clip's teacher view
    targets[0, 4:12, siren] = 1.0  # the clip's own label
    targets[:, :, speech] = 0.5  # soft speech everywhere: no tag was taught by it
    targets[1, :, siren] = 1.0
    mask = torch.ones_like(targets)
    out, out_mask = distil(audio, targets, mask)
    assert torch.equal(out_mask, mask) and torch.equal(out[1], targets[1])
    assert torch.equal(out[..., speech], targets[..., speech])
    changed = sorted({int(c) for c in (out[0] != targets[0]).any(-1).nonzero()})
    assert changed == [5, 7, 9, 11], "every other taught column (the 2nd, 4th, ...), and no other"
    assert torch.equal(out[0, :, siren], targets[0, :, siren]), "the clip's own label stays"
    windows = distil.windows(audio)[0, changed]
    soft = distil.teacher.tag_probs(windows)
    tags = [i for i, t in enumerate(TAGS) if t not in ("speech", "siren") and torch.isfinite(soft[:, i]).all()]
    assert len(tags) >= 50
    assert torch.allclose(out[0, changed][:, [NAMES.index(TAGS[i]) for i in tags]], 0.9 * soft[:, tags], atol=1e-6)
    unknown = [NAMES.index(t) for i, t in enumerate(TAGS) if not torch.isfinite(soft[:, i]).all()]
    assert torch.equal(out[0, :, unknown], targets[0, :, unknown]), "tags the teacher cannot name keep theirs"


def test_the_precompute_command_fills_the_audioset_cache_when_the_recipe_asks(tmp_path, monkeypatch, capsys):
    from export.data.teacher_targets import main

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    teacher = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
    recipe = tmp_path / "aset.yaml"
    recipe.write_text(f"name: aset\nshared_data: {corpus}\n"
                      f"teacher: {{efficientat: {teacher}, tag_columns: true, audioset_weight: 0.05}}\n")
    main([str(recipe)])
    main([str(recipe)])  # the second run finds everything cached
    out = capsys.readouterr().out.splitlines()
    n = int(out[0].split()[0])  # the training dog clips
    assert n > 0 and out == [f"{n} tag clips, 0 with tag targets cached already",
                             f"{n} tag clips, 0 with AudioSet targets cached already",
                             f"{n} tag clips, {n} with tag targets cached already",
                             f"{n} tag clips, {n} with AudioSet targets cached already"]
    shapes = [np.load(f).shape[1] for f in (tmp_path / "cache" / "teacher").rglob("*.npy")]
    assert shapes.count(58) == shapes.count(527) == n and len(shapes) == 2 * n


def test_the_precompute_command_leaves_a_new_keywords_clips_to_the_words(tmp_path, monkeypatch, capsys):
    """A new keyword's clips train as words (clip_role with the recipe's keywords), so the tag teacher has nothing
    to compute for them."""
    from export.data.teacher_targets import main
    from export.train import load_recipe, train_clips

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    add_clips(corpus, "hey_kitchen", "hey kitchen", tone(0.4, 900), speaker="u")  # where synth_speech writes them
    teacher = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
    recipe = tmp_path / "kitchen.yaml"
    recipe.write_text(f"name: kitchen\nshared_data: {corpus}\nnew_keywords: [hey kitchen]\n"
                      f"teacher: {{efficientat: {teacher}, tag_columns: true}}\n")
    main([str(recipe)])
    labels = [c.label for c in train_clips(load_recipe(recipe), tmp_path)]
    assert "hey kitchen" in labels
    assert capsys.readouterr().out.splitlines() == [f"{labels.count('dog')} tag clips, 0 with tag targets cached already"]


def test_the_precompute_command_keys_its_cache_by_the_recipe_models_columns(tmp_path, monkeypatch):
    from export.data.teacher_targets import TeacherTargets, main
    from export.train import clip_role, load_recipe, train_clips

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")
    teacher = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
    recipe = tmp_path / "short.yaml"  # 80 ms columns (8 frames), where the default SAT has 160 ms
    recipe.write_text(f"name: short\nshared_data: {corpus}\nsize: tiny\noverrides: {{patch_frames: 8}}\n"
                      f"teacher: {{efficientat: {teacher}, tag_columns: true}}\n")
    main([str(recipe)])
    clips = [c for c in train_clips(load_recipe(recipe), tmp_path) if clip_role(c)[0] == "tag"]
    assert clips
    assert all(TeacherTargets(teacher, 1280, 8).cached(c.path) for c in clips), "what training will look up"
    assert not any(TeacherTargets(teacher, 2560, 8).cached(c.path) for c in clips)
    moved = shutil.copytree(corpus, tmp_path / "fresh copy")  # new paths and mtimes, the same bytes
    assert all(TeacherTargets(teacher, 1280, 8).cached(moved / c.path.relative_to(corpus)) for c in clips)


def room_with_teacher(n_columns: int, heard: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A recorded room of n_columns (low noise) and its teacher column targets: NaN but for the tags in heard."""
    from export.labels import TAGS

    room = np.random.default_rng(5).standard_normal(n_columns * COLUMN).astype(np.float32) * 0.01
    soft = np.full((n_columns, len(TAGS)), np.nan, np.float16)
    for tag, p in heard.items():
        soft[:, TAGS.index(tag)] = p
    return room, soft


def test_a_recorded_room_leaves_unsure_the_tags_its_teacher_hears_there():
    # the room's first half is a 500 Hz hum in which the teacher hears speech, its second half 1500 Hz where
    # it hears none; a cat nowhere above 0.1
    room, soft = room_with_teacher(40, {"speech": np.repeat([0.8, 0.0], 20), "cat": np.full(40, 0.1)})
    room = np.concatenate([tone(20 * COLUMN / SR, 500), tone(20 * COLUMN / SR, 1500)])
    pools = Pools(noise=[room], noise_recorded=[True], noise_teacher=[soft])
    j_speech, j_cat = NAMES.index("speech"), NAMES.index("cat")

    def scene(seed: int, **kw):
        cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(0, 0, 1, 0), **kw)
        return SceneSampler(pools, NAMES, cfg).sample(np.random.default_rng(seed))

    both = 0
    for seed in range(12):
        audio, targets, mask = scene(seed, noise_unsure=0.3)
        spectra = np.abs(np.fft.rfft(audio.reshape(10, COLUMN), axis=1)) ** 2
        share_500 = spectra[:, 80] / (spectra[:, 80] + spectra[:, 240])  # 500 and 1500 Hz bins of 160 ms
        unsure = mask[:, j_speech] == 0
        assert (targets[:, j_speech] == 0).all()
        assert unsure[share_500 > 0.9].all() and not unsure[share_500 < 0.1].any(), f"seed {seed}: where it is heard"
        assert (mask[:, j_cat] == 1).all(), "0.1 is below noise_unsure: still a negative"
        both += unsure.any() and not unsure.all()
    assert both >= 2, "some scenes hold both halves"
    _, _, mask_off = scene(0)
    assert (mask_off[:, j_speech] == 1).all(), "off (the default): every noise column a negative, as before"


def test_a_word_or_a_sound_placed_over_the_room_keeps_its_own_targets():
    room, soft = room_with_teacher(40, {"speech": np.full(40, 0.9), "dog": np.full(40, 0.9)})
    bark = tone(5 * COLUMN / SR, 800)  # loud throughout: its tag is on in every column
    word = np.zeros(SR, np.float32)
    word[3200:11200] = tone(0.5, 700)
    pools = Pools(unknown=[Word(word, 3200, 11200)], tags={"dog": [bark]}, noise=[room], noise_recorded=[True],
                  noise_teacher=[soft])
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=1.0, p_background=(1, 0, 0, 0), p_tag_bed=1.0,
                      noise_unsure=0.3)
    _, targets, mask = SceneSampler(pools, NAMES, cfg).sample(np.random.default_rng(4))
    j_speech, j_dog = NAMES.index("speech"), NAMES.index("dog")
    barking = targets[:, j_dog] == 1
    assert barking.any() and (mask[barking, j_dog] == 1).all(), "the bark's own columns stay positive"
    assert (mask[~barking, j_dog] == 0).all(), "the room's dog is unsure where no bark marks it"
    spoken = targets[:, j_speech] == 1
    assert 3 <= spoken.sum() <= 5 and (mask[spoken, j_speech] == 1).all(), "the word marks speech again"
    assert (mask[~spoken, j_speech] == 0).all()


def test_a_burst_of_a_recorded_room_is_unsure_only_where_it_lies():
    room, soft = room_with_teacher(40, {"speech": np.full(40, 0.9)})
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(0, 0, 0, 1), p_burst=1.0,
                      burst_s=(0.5, 0.5), noise_unsure=0.3)
    pools = Pools(noise=[room], noise_recorded=[True], noise_teacher=[soft])
    audio, _, mask = SceneSampler(pools, NAMES, cfg).sample(np.random.default_rng(6))
    unsure = np.flatnonzero(mask[:, NAMES.index("speech")] == 0)
    assert len(unsure) in (4, 5) and (np.diff(unsure) == 1).all(), "0.5 s spans 4 or 5 columns, one stretch"
    power = np.mean(audio.reshape(10, COLUMN) ** 2, axis=1)
    assert np.argmax(power) in unsure, "where the burst lies: the rest is near-silence"


def test_p_recorded_noise_draws_the_recorded_rooms_that_often():
    synthetic = [tone(3.0, 2000)] * 9
    recorded = tone(3.0, 500)
    pools = Pools(noise=synthetic + [recorded], noise_recorded=[False] * 9 + [True])

    def recorded_share(p: float) -> float:
        cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(0, 0, 1, 0), p_recorded_noise=p)
        sampler, rng = SceneSampler(pools, NAMES, cfg), np.random.default_rng(0)
        peaks = [np.argmax(np.abs(np.fft.rfft(sampler.sample(rng)[0]))) * SR / (10 * COLUMN) for _ in range(400)]
        return float(np.mean(np.abs(np.array(peaks) - 500) < 20))

    assert 0.06 < recorded_share(0.0) < 0.15  # by clip: 1 in 10
    assert 0.42 < recorded_share(0.5) < 0.58


def test_the_recorded_rooms_carry_their_teacher_targets_into_the_training_pools(tmp_path, monkeypatch, capsys):
    from export.data.teacher_targets import TeacherTargets, main
    from export.train import load_pools, load_recipe, train

    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))
    corpus = write_tiny_corpus(tmp_path / "data")  # one noise/ recording of 10 s beside tone words and tags
    teacher = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
    recipe = tmp_path / "rooms.yaml"
    recipe.write_text(f"name: rooms\nshared_data: {corpus}\nscene: {{noise_unsure: 0.3, p_recorded_noise: 0.5}}\n"
                      f"teacher: {{efficientat: {teacher}, tag_columns: true}}\n")
    main([str(recipe)])
    assert capsys.readouterr().out.splitlines()[0].endswith("and 1 recorded rooms, 0 with tag targets cached already")
    targets = TeacherTargets(teacher, COLUMN, 8)
    assert targets.cached(corpus / "noise" / "white.wav"), "the precompute filled the whole room's cache"
    train_pools, val_pools = load_pools(load_recipe(recipe), tmp_path, SR, NAMES, targets)
    assert train_pools.noise_recorded == [True] and val_pools.noise_recorded == [True]
    room, soft = train_pools.noise[0], train_pools.noise_teacher[0]
    assert soft.shape == (-(-len(room) // COLUMN), 58), "the columns of the training part, cut where the audio is"
    assert val_pools.noise_teacher == [], "validation scenes keep every noise column negative"
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"name: bare\nshared_data: {corpus}\nscene: {{noise_unsure: 0.3}}\n")
    with pytest.raises(SystemExit, match="noise_teacher_weight need teacher.efficientat with tag_columns"):
        train(load_recipe(bare), tmp_path / "bare", resume=False, root=tmp_path)


def test_a_recorded_room_can_teach_what_its_teacher_hears_at_the_teachers_belief():
    heard = {"speech": np.full(40, 0.7), "cat": np.full(40, 0.1), "siren": np.full(40, 0.9)}
    room, soft = room_with_teacher(40, heard)
    wail = np.concatenate([tone(2 * COLUMN / SR, 800), np.zeros(3 * COLUMN, np.float32)])  # quiet after: unsure
    pools = Pools(tags={"siren": [wail]}, noise=[room], noise_recorded=[True], noise_teacher=[soft])
    cfg = SceneConfig(n_columns=10, p_keyword=0.0, p_unknown=0.0, p_background=(1, 0, 0, 0), p_tag_bed=1.0,
                      noise_teacher_weight=0.5)
    _, targets, mask = SceneSampler(pools, NAMES, cfg).sample(np.random.default_rng(4))
    j_speech, j_cat, j_siren = NAMES.index("speech"), NAMES.index("cat"), NAMES.index("siren")
    np.testing.assert_allclose(targets[:, j_speech], 0.35, atol=1e-3)  # 0.5 x 0.7, known
    np.testing.assert_allclose(targets[:, j_cat], 0.05, atol=1e-3)
    assert (mask[:, [j_speech, j_cat]] == 1).all()
    wailing = targets[:, j_siren] == 1
    assert wailing.any() and (mask[wailing, j_siren] == 1).all(), "the siren's own columns stay positive"
    assert (mask[~wailing, j_siren] == 0).all() and (targets[~wailing, j_siren] == 0).all(), \
        "where the placed siren left its tag unsure, the room teaches nothing"
