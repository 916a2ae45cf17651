"""The DS-CNN command teacher, heard on real held-out speakers: the port (front end, scaling, label
order) must reproduce the reference's accuracy, or distilling from it teaches the wrong thing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from export.teachers import DSCNNTeacher, evaluate_commands

SHARED = Path(__file__).resolve().parents[2] / "shared"
CHECKPOINT = SHARED / "teachers" / "dscnn-mlperf" / "checkpoint.pth"


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="needs ../shared/teachers (present in CI)")
def test_teacher_names_the_validation_commands_as_the_reference_does():
    torch.set_num_threads(1)
    report = evaluate_commands(DSCNNTeacher(CHECKPOINT), SHARED / "data", split="val")
    assert report["clips"] == 435  # the validation side of kws/gsc_v2 (export/data/splits.py)
    assert report["accuracy_12"] > 0.93  # measured 0.963; the reference scores 91-92 % on the whole test set
    assert report["accuracy_11"] >= report["accuracy_12"]
    assert min(report["per_class_accuracy_12"].values()) > 0.8


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="needs ../shared/teachers (present in CI)")
def test_teacher_in_noise_loses_accuracy_as_the_snr_falls():
    """The yardstick docs/evaluation.md "Keywords in noise" compares the student with."""
    torch.set_num_threads(1)
    teacher = DSCNNTeacher(CHECKPOINT)
    at_10 = evaluate_commands(teacher, SHARED / "data", split="val", snr_db=10.0)["accuracy_11"]
    at_0 = evaluate_commands(teacher, SHARED / "data", split="val", snr_db=0.0)["accuracy_11"]
    assert 0.70 < at_10 < 0.88  # measured 0.789 (0.966 clean)
    assert 0.35 < at_0 < at_10  # measured 0.439


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="needs ../shared/teachers (present in CI)")
def test_teacher_across_a_room_loses_accuracy_as_the_room_rings_longer():
    """The yardstick docs/evaluation.md "Keywords across a room" compares the student with: the same rooms."""
    torch.set_num_threads(1)
    teacher = DSCNNTeacher(CHECKPOINT)
    at_03 = evaluate_commands(teacher, SHARED / "data", split="val", room_rt60_s=0.3)["accuracy_11"]
    at_09 = evaluate_commands(teacher, SHARED / "data", split="val", room_rt60_s=0.9)["accuracy_11"]
    assert 0.88 < at_03 < 0.95  # measured 0.922 (0.966 dry)
    assert 0.70 < at_09 < at_03 - 0.08  # measured 0.782
