import numpy as np
import pytest
from scipy.signal import resample_poly

from streamd.resample import StreamResampler, mix_down

MODEL_RATE_HZ = 16000


def _stream(x, in_rate_hz, block):
    r = StreamResampler(in_rate_hz, MODEL_RATE_HZ)
    parts = [r.process(x[i : i + block]) for i in range(0, len(x), block)]
    return np.concatenate(parts + [r.flush()])


@pytest.mark.parametrize("in_rate_hz", [16000, 22050, 32000, 44100, 48000])
def test_output_does_not_depend_on_block_size(in_rate_hz):
    x = np.random.default_rng(in_rate_hz).uniform(-1, 1, in_rate_hz // 8)  # 125 ms
    outputs = {block: _stream(x, in_rate_hz, block) for block in (1, 37, 480, 4096, len(x))}
    reference = outputs[len(x)]
    assert len(reference) == -(-len(x) * MODEL_RATE_HZ // in_rate_hz)
    for block, y in outputs.items():
        assert np.array_equal(y, reference), f"block {block} differs"


@pytest.mark.parametrize("in_rate_hz", [22050, 44100, 48000, 8000])
def test_matches_offline_resample_poly(in_rate_hz):
    x = np.random.default_rng(1).standard_normal(in_rate_hz // 2)
    r = StreamResampler(in_rate_hz, MODEL_RATE_HZ)
    y = _stream(x, in_rate_hz, 333)
    offline = resample_poly(x, r.up, r.down)
    assert y.shape == offline.shape
    assert np.abs(y - offline).max() < 1e-5  # float32 rounding of the same arithmetic


def test_passband_tone_survives_and_alias_is_removed():
    in_rate_hz = 48000
    t = np.arange(in_rate_hz) / in_rate_hz
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)  # in the passband
    alias = 0.5 * np.sin(2 * np.pi * 11000 * t)  # above the new Nyquist (8 kHz): must vanish
    y = _stream(tone + alias, in_rate_hz, 480)
    t_out = np.arange(len(y)) / MODEL_RATE_HZ
    expected = 0.5 * np.sin(2 * np.pi * 1000 * t_out)
    middle = slice(1600, -1600)  # away from the zero-padded edges
    assert np.abs(y[middle] - expected[middle]).max() < 0.01


def test_identity_rate_is_exact_and_immediate():
    r = StreamResampler(16000, 16000)
    x = np.random.default_rng(2).uniform(-1, 1, 100).astype(np.float32)
    out = r.process(x)
    assert np.array_equal(out, x) and out.dtype == np.float32
    x[:] = 0  # the capture callback's buffer is reused by PortAudio: the output must be the resampler's own
    assert not np.array_equal(out, x)
    assert len(r.flush()) == 0


def test_reset_starts_a_new_stream():
    x = np.random.default_rng(3).standard_normal(4410)
    r = StreamResampler(44100, MODEL_RATE_HZ)
    first = np.concatenate([r.process(x), r.flush()])
    r.reset()
    again = np.concatenate([r.process(x), r.flush()])
    assert np.array_equal(first, again)


def test_history_stays_bounded():
    r = StreamResampler(44100, MODEL_RATE_HZ)
    for _ in range(200):
        r.process(np.zeros(441))
    assert len(r._history) <= r.taps_per_phase + 441


def test_mix_down_selects_and_averages_channels():
    block = np.array([[1.0, 3.0, 10.0], [2.0, 4.0, 20.0]], np.float32)
    np.testing.assert_array_equal(mix_down(block), [14 / 3, 26 / 3])
    np.testing.assert_array_equal(mix_down(block, [0, 1]), [2.0, 3.0])
    np.testing.assert_array_equal(mix_down(block, [2]), [10.0, 20.0])
    np.testing.assert_array_equal(mix_down(block[:, 0]), [1.0, 2.0])
    # averaging is done in float64; one channel is passed on as it came (no copy on the audio path)
    assert mix_down(block).dtype == np.float64 and mix_down(block, [0, 1]).dtype == np.float64
    assert mix_down(block, [2]).dtype == np.float32 and np.shares_memory(mix_down(block, [2]), block)


@pytest.mark.parametrize("in_rate_hz,out_rate_hz", [(22050, 16000), (44100, 16000), (48000, 16000), (8000, 16000),
                                                    (16000, 16000), (11025, 16000), (32000, 16000)])
def test_kaiser_lowpass_is_scipy_firwin(in_rate_hz, out_rate_hz):
    from scipy.signal import firwin

    from streamd.resample import HALF_LEN_PER_RATE, KAISER_BETA, kaiser_lowpass

    r = StreamResampler(in_rate_hz, out_rate_hz)
    max_rate = max(r.up, r.down, 2)
    n = 2 * HALF_LEN_PER_RATE * max_rate + 1
    ours = kaiser_lowpass(n, 1.0 / max_rate, KAISER_BETA)
    theirs = firwin(n, 1.0 / max_rate, window=("kaiser", KAISER_BETA))
    assert len(ours) == len(theirs) == n
    assert np.abs(ours - theirs).max() < 1e-12
    assert abs(ours.sum() - 1.0) < 1e-12


def test_the_service_does_not_import_scipy():
    import subprocess
    import sys

    code = ("import sys, streamd.cli, streamd.service, streamd.sources, streamd.resample; "
            "streamd.resample.StreamResampler(44100, 16000); print(sorted(m for m in sys.modules if m.startswith('scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
