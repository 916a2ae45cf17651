"""Shared pytest fixtures."""

from __future__ import annotations

# ---- audio-input fixtures (owner: audio input / capture; tests/vmic.py) ----
import os

import pytest

from vmic import VirtualMic


@pytest.fixture
def vmic(monkeypatch):
    """A private PulseAudio daemon whose default source hears what `vmic.play(wav)` plays.

    Sets PULSE_SERVER and XDG_RUNTIME_DIR in this process (so an in-process capture from "default"
    uses it); pass `env={**os.environ, **vmic.env}` to child processes. Torn down after the test.
    """
    if not VirtualMic.available():
        message = "pulseaudio/pulseaudio-utils not installed (scripts/setup.sh installs them)"
        if os.environ.get("STREAMD_REQUIRE_VMIC"):  # scripts/test.sh: CI must run the capture tests
            pytest.fail(message)
        pytest.skip(message)
    mic = VirtualMic()
    try:
        mic.start()
    except RuntimeError as err:
        mic.close()
        pytest.fail(f"virtual microphone did not start: {err}")
    for key, value in mic.env.items():
        monkeypatch.setenv(key, value)
    try:
        yield mic
    finally:
        mic.close()


# ---- end of audio-input fixtures ----
