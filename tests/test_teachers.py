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
