import os
import threading
import time

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from streamd.sources import FileSource, SourceError, StdinSource, open_source

MODEL_RATE_HZ = 16000


def _drain(source, pump_samples=1000, timeout_s=10.0):
    """Run a source to its end; return everything in its ring."""
    source.start()
    deadline = time.monotonic() + timeout_s
    if source.realtime:
        while not source.finished and time.monotonic() < deadline:
            source.wait_for_data(0.2)
    else:
        while source.pump(pump_samples):
            pass
    source.stop()
    assert source.finished
    ring = source.ring
    return ring.read(ring.oldest_index, ring.end_index - ring.oldest_index)


@pytest.fixture
def stereo_44k(tmp_path):
    rng = np.random.default_rng(0)
    audio = np.clip(0.3 * rng.standard_normal((22050, 2)), -1, 1).astype(np.float32)  # 0.5 s, full scale (sources clip)
    path = tmp_path / "stereo44k.wav"
    soundfile.write(path, audio, 44100, subtype="FLOAT")
    return path, audio


def test_file_real_time_and_fast_deliver_identical_samples(stereo_44k):
    path, _ = stereo_44k
    t0 = time.monotonic()
    real_time = _drain(open_source(f"file:{path}", "a", MODEL_RATE_HZ))
    elapsed_s = time.monotonic() - t0
    fast = _drain(open_source(f"file:{path}", "b", MODEL_RATE_HZ, fast=True), pump_samples=777)
    assert np.array_equal(real_time, fast)
    assert len(fast) == 8000
    assert 0.45 < elapsed_s < 1.5  # real-time pace: 0.5 s of audio


def test_stereo_44k_file_matches_offline_resample(stereo_44k):
    path, audio = stereo_44k
    got = _drain(open_source(f"file:{path}", "s", MODEL_RATE_HZ, fast=True))
    offline = resample_poly(audio.astype(np.float64).mean(axis=1), 160, 441)
    assert got.shape == offline.shape
    assert np.abs(got - offline).max() < 1e-5


def test_channel_selection(stereo_44k):
    path, audio = stereo_44k
    got = _drain(open_source(f"file:{path}", "r", MODEL_RATE_HZ, fast=True, channels=[1]))
    offline = resample_poly(audio[:, 1].astype(np.float64), 160, 441)
    assert np.abs(got - offline).max() < 1e-5
    with pytest.raises(SourceError, match="2 channel"):
        open_source(f"file:{path}", "r", MODEL_RATE_HZ, channels=[2])


def test_pump_never_exceeds_its_budget_and_ends_with_zero(tmp_path):
    path = tmp_path / "flac.flac"
    soundfile.write(path, np.linspace(-0.5, 0.5, 4800, dtype=np.float32), 48000, subtype="PCM_24")
    source = open_source(f"file:{path}", "p", MODEL_RATE_HZ, fast=True)
    assert source.realtime is False
    counts = []
    while (n := source.pump(100)) > 0:
        counts.append(n)
    assert max(counts) <= 100 and sum(counts) == 1600 and source.ring.end_index == 1600
    assert source.finished and source.pump(100) == 0
    kinds = [note.kind for note in source.drain_notes()]
    assert kinds == ["source_opened", "source_finished"]


def test_stdin_pipe_pcm_at_model_rate():
    pcm = (np.random.default_rng(4).standard_normal(8000) * 4000).astype("<i2")
    read_fd, write_fd = os.pipe()

    def writer():  # odd-sized writes split frames between reads
        data = pcm.tobytes()
        for i in range(0, len(data), 333):
            os.write(write_fd, data[i : i + 333])
            time.sleep(0.0005)
        os.close(write_fd)

    thread = threading.Thread(target=writer)
    thread.start()
    got = _drain(StdinSource("in", MODEL_RATE_HZ, fd=read_fd))
    thread.join()
    os.close(read_fd)
    assert np.array_equal(got, pcm.astype(np.float32) / 32768)


CHILD = """
import sys, time, numpy as np
from streamd.sources import open_source
source = open_source(sys.argv[1], "stdin", 16000, fast=sys.argv[2] == "fast")
source.start()
if source.realtime:
    while not source.finished:
        source.wait_for_data(0.2)
else:
    while source.pump(500):
        pass
source.stop()
np.save(sys.stdout.buffer, source.ring.read(0, source.ring.end_index))
"""


@pytest.mark.parametrize("mode", ["fast", "realtime"])
def test_stdin_spec_reads_real_standard_input(stereo_44k, mode):
    """`... | streamd run --source stdin:44100:2`: 44.1 kHz stereo s16le through a process's stdin."""
    import io
    import subprocess
    import sys

    _, audio = stereo_44k
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    done = subprocess.run([sys.executable, "-c", CHILD, "stdin:44100:2", mode], input=pcm.tobytes(),
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    got = np.load(io.BytesIO(done.stdout))
    offline = resample_poly((pcm.astype(np.float64) / 32768).mean(axis=1), 160, 441)
    assert got.shape == offline.shape
    assert np.abs(got - offline).max() < 1e-5


@pytest.mark.parametrize("spec, message", [
    ("microphone", "unknown source"),
    ("file:", "unknown source"),
    ("stdin:fast", "integers"),
    ("stdin:16000:0", "1..64 channels"),
])
def test_bad_specs_say_what_is_expected(spec, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec, "x", MODEL_RATE_HZ)


def test_missing_and_corrupt_files_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="cannot read audio file"):
        open_source(f"file:{tmp_path / 'absent.wav'}", "x", MODEL_RATE_HZ)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF1234WAVEnot really")
    with pytest.raises(SourceError, match="cannot read audio file"):
        FileSource(str(junk), "x", MODEL_RATE_HZ)


def test_mic_refuses_fast():
    with pytest.raises(SourceError, match="faster than real time"):
        open_source("mic", "m", MODEL_RATE_HZ, fast=True)
