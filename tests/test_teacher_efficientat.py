"""The EfficientAT mn04 AudioSet teacher: strict load, front end, tag mapping, and real behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from export.data.synth_alarms import make_alarm
from export.labels import TAGS
from export.teacher_efficientat import (
    AUDIOSET_TO_TAG, CHECKPOINT, FMAX_HZ, INPUT_RATE_HZ, MODEL_RATE_HZ, N_CLASSES, N_FFT, N_MELS,
    EfficientATTeacher, MelFrontEnd, kaldi_mel_banks, read_class_names,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEACHER_DIR = SHARED / "teachers" / "efficientat-mn04"
DOG_DIR = SHARED / "data" / "tags" / "esc50" / "dog"
needs_teacher = pytest.mark.skipif(not (TEACHER_DIR / CHECKPOINT).exists(), reason="needs ../shared/teachers (present in CI)")


@pytest.fixture(scope="module")
def teacher():
    torch.set_num_threads(1)
    return EfficientATTeacher(TEACHER_DIR)


@needs_teacher
def test_checkpoint_loads_strictly_with_every_key(teacher):
    state = torch.load(TEACHER_DIR / CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(teacher.net.state_dict()) == set(state)
    n_params = sum(p.numel() for p in teacher.net.parameters())
    assert 0.95e6 < n_params < 1.0e6  # the README's 0.98 M
    assert torch.equal(teacher.net.classifier[5].weight, state["classifier.5.weight"])


@needs_teacher
def test_mapping_names_only_existing_classes_and_known_tags():
    names = set(read_class_names(TEACHER_DIR))
    assert len(names) == N_CLASSES
    assert set(AUDIOSET_TO_TAG) <= set(TAGS)
    missing = [n for classes in AUDIOSET_TO_TAG.values() for n in classes if n not in names]
    assert missing == []
    # each AudioSet class feeds at most one tag, so no two tags tie by construction
    used = [n for classes in AUDIOSET_TO_TAG.values() for n in classes]
    assert len(used) == len(set(used))


@needs_teacher
def test_output_shapes_ranges_and_nan_for_unmapped_tags(teacher):
    audio = torch.from_numpy(np.random.default_rng(0).normal(0, 0.05, (2, INPUT_RATE_HZ)).astype(np.float32))
    probs = teacher(audio)
    assert probs.shape == (2, N_CLASSES)
    assert float(probs.min()) >= 0 and float(probs.max()) <= 1
    tags = teacher.tag_probs(audio)
    assert tags.shape == (2, len(TAGS))
    unmapped = [t not in AUDIOSET_TO_TAG for t in TAGS]
    assert torch.isnan(tags[:, unmapped]).all()
    assert not torch.isnan(tags[:, [not u for u in unmapped]]).any()
    # a tag's probability is the max over its AudioSet classes
    index = {n: i for i, n in enumerate(teacher.class_names)}
    dog = [index[n] for n in AUDIOSET_TO_TAG["dog"]]
    assert torch.allclose(tags[:, TAGS.index("dog")], probs[:, dog].amax(dim=1))


def test_upsampler_keeps_the_band_and_removes_images():
    t = np.arange(INPUT_RATE_HZ) / INPUT_RATE_HZ
    tone_hz = 3000.0
    x = torch.from_numpy(np.sin(2 * np.pi * tone_hz * t).astype(np.float32)).unsqueeze(0)
    y = MelFrontEnd().upsample(x)[0].numpy()
    assert y.shape == (2 * INPUT_RATE_HZ,)
    expected = np.sin(2 * np.pi * tone_hz * np.arange(2 * INPUT_RATE_HZ) / MODEL_RATE_HZ)
    middle = slice(1000, -1000)
    assert np.max(np.abs(y[middle] - expected[middle])) < 1e-3  # in phase, gain 1
    spectrum = np.abs(np.fft.rfft(y[middle] * np.hanning(len(y[middle]))))
    freqs = np.fft.rfftfreq(len(y[middle]), 1 / MODEL_RATE_HZ)
    image = spectrum[np.abs(freqs - (INPUT_RATE_HZ - tone_hz)) < 50].max()
    assert image < 1e-4 * spectrum.max()  # the 13 kHz image is more than 80 dB down


def test_kaldi_mel_banks_cover_0_to_15khz_without_nyquist():
    banks = kaldi_mel_banks(N_MELS, N_FFT, MODEL_RATE_HZ, 0.0, FMAX_HZ).numpy()
    assert banks.shape == (N_MELS, N_FFT // 2 + 1)
    assert banks[:, -1].sum() == 0
    bin_hz = MODEL_RATE_HZ / N_FFT
    assert banks[:, int(FMAX_HZ / bin_hz) + 1 :].sum() == 0  # nothing above 15 kHz
    peaks_hz = banks.argmax(axis=1) * bin_hz
    assert np.all(np.diff(peaks_hz) >= 0)  # bands rise in frequency


@needs_teacher
def test_temporal_three_alarm_scores_smoke_alarm_above_white_noise(teacher):
    rng = np.random.default_rng(0)
    alarm = make_alarm("t3", 5.0, INPUT_RATE_HZ, rng)
    noise = (rng.normal(0, 0.1, alarm.shape)).astype(np.float32)
    tags = teacher.tag_probs(torch.from_numpy(np.stack([alarm, noise])))
    smoke = tags[:, TAGS.index("smoke_alarm")]
    assert smoke[0] > smoke[1] + 0.1, smoke


@needs_teacher
@pytest.mark.skipif(not DOG_DIR.is_dir(), reason="needs ../shared/data/tags/esc50/dog (present in CI)")
def test_real_dog_clip_has_dog_in_top_three_tags(teacher):
    from export.data.audio import decode

    clip = sorted(DOG_DIR.glob("*.flac"))[0]
    audio = torch.from_numpy(decode(clip, INPUT_RATE_HZ)).unsqueeze(0)
    tags = torch.nan_to_num(teacher.tag_probs(audio)[0], nan=-1.0)
    top3 = [TAGS[i] for i in tags.topk(3).indices]
    assert "dog" in top3, top3


@needs_teacher
def test_every_clip_judges_a_synthetic_folder_that_has_no_tags_subfolder(teacher, tmp_path):
    from export.data.synth_machines import generate
    from export.teacher_efficientat import evaluate_tags

    generate(tmp_path, count=2, seconds=4.0, seed=1000)  # a wailing and a yelping siren, under siren/
    report = evaluate_tags(teacher, tmp_path, every_clip=True)
    assert report["clips"] == 2 and list(report["per_label"]) == ["siren"]
    assert report["per_label"]["siren"] >= 0.5  # the AudioSet teacher hears a siren
    assert report["top1_by_source"] == {"siren": {"clips": 2, "top1": report["per_label"]["siren"]}}  # folder siren/
    with pytest.warns(RuntimeWarning):  # without the flag only tags/ clips count: none here
        assert evaluate_tags(teacher, tmp_path)["clips"] == 0
