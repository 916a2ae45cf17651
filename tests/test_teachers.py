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
@pytest.mark.parametrize("condition, milder, harsher, milder_range, harsher_floor, gap", [
    ("snr_db", 10.0, 0.0, (0.70, 0.88), 0.35, 0.0),  # measured 0.789 and 0.439 (0.966 clean)
    ("room_rt60_s", 0.3, 0.9, (0.88, 0.95), 0.70, 0.08),  # measured 0.922 and 0.782 (0.966 dry)
])
def test_teacher_loses_accuracy_as_noise_or_a_room_grows(condition, milder, harsher, milder_range, harsher_floor, gap):
    """The yardstick docs/evaluation.md "Keywords in noise" and "Keywords across a room" compare the student with:
    the same noise and the same rooms, the harsher setting well below the milder one."""
    torch.set_num_threads(1)
    teacher = DSCNNTeacher(CHECKPOINT)
    at_milder = evaluate_commands(teacher, SHARED / "data", split="val", **{condition: milder})["accuracy_11"]
    at_harsher = evaluate_commands(teacher, SHARED / "data", split="val", **{condition: harsher})["accuracy_11"]
    assert milder_range[0] < at_milder < milder_range[1]
    assert harsher_floor < at_harsher < at_milder - gap
