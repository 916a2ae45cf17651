"""Audio through a model as the service runs it (its loader and runner), hop by hop from a zero state,
with what a room and a microphone add (reverberation, gain, hum, DC offset, noise), and the levels the scenes
are built at."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from export.data.manifest import Clip
from export.data.rooms import Rooms
from export.evaluation.clips import clip_audio
from streamd.gate import level_db
from streamd.model import Model
from streamd.runner import StreamRunner

FRAME_SAMPLES = 400  # 25 ms frames for the energy rules
ACTIVE_DB = -30.0  # mixture events: frames within this of the clip's loudest frame are the sound
BACKGROUND_RMS = 10 ** (-45 / 20)  # mixtures: background level (-45 dBFS)
EVENT_RMS = 10 ** (-25 / 20)  # mixtures: active level of each inserted sound (20 dB above background)
HUM_HZ = 50.0  # --hum-db: mains hum of a fixed make, so that runs compare
HUM_HARMONICS = {1: 1.0, 2: 0.5, 3: 1 / 3, 5: 0.2}  # order -> amplitude


@dataclass
class Scored:
    scores: np.ndarray  # float32 [n_hops, n_labels]
    end_samples: np.ndarray  # int64 [n_hops], stream position after each hop
    levels_db: np.ndarray | None = None  # float64 [n_hops], each hop's audio level (streamd.gate.level_db)
    opened: np.ndarray | None = None  # bool [n_hops, n_labels]: hops whose score may fire (the gates); None: all
    clip_span: tuple[int, int] | None = None  # Scorer.clip: the stream samples the clip itself fills, from, to

    def counted(self) -> np.ndarray:
        """The scores a trigger can fire on: 0 where a gate closed the hop."""
        return self.scores if self.opened is None else np.where(self.opened, self.scores, 0.0).astype(self.scores.dtype)

    def opened_at(self, label_index: int) -> np.ndarray | None:
        return None if self.opened is None else self.opened[:, label_index]


def mains_hum_at(start_sample: int, n: int, sample_rate_hz: int, rms_db: float) -> np.ndarray:
    """n samples of HUM_HZ hum from stream position start_sample (so blocks join), rms_db dBFS RMS."""
    t = (start_sample + np.arange(n)) / sample_rate_hz
    hum = sum(a * np.sin(2 * np.pi * k * HUM_HZ * t) for k, a in HUM_HARMONICS.items())
    return hum * 10 ** (rms_db / 20) / np.sqrt(sum(a * a for a in HUM_HARMONICS.values()) / 2)


class HopLevels:
    """Each whole hop's level (streamd.gate.level_db) of audio that arrives in blocks of any length."""

    def __init__(self, hop_samples: int):
        self.hop_samples = hop_samples
        self.db: list[float] = []
        self._rest = np.zeros(0, np.float32)

    def add(self, block: np.ndarray) -> None:
        audio = np.concatenate([self._rest, block])
        whole = len(audio) // self.hop_samples * self.hop_samples
        self.db += [level_db(hop) for hop in audio[:whole].reshape(-1, self.hop_samples)]
        self._rest = audio[whole:]


class Scorer:
    """One model at one hop; counts compute time per second of audio, caches per-clip streams."""

    def __init__(self, model: Model, hop_samples: int, split: str = "all", pad: str = "zeros", seed: int = 0,
                 gain_db: float = 0.0, hum_db: float | None = None, dc_offset: float = 0.0, phases: int = 1,
                 room: Rooms | None = None):
        self.model = model
        # Where a sound falls against the hop grid changes the scores (the validation keyword clips' accuracy
        # moved 93.1-94.3 % with it); the keyword tasks play everything at each of these leads, hop / phases apart.
        self.leads = [round(k * hop_samples / phases) for k in range(phases)]
        self.hum_db = hum_db  # mains hum (dBFS RMS) under every stream played, as a humming microphone adds it
        self.dc_offset = dc_offset  # added to every sample played, as a microphone's DC offset
        self.background: np.ndarray | None = None  # set_noise: mixed into the clips asked for noisy
        self.snr_db = 0.0
        self.gain = 10 ** (gain_db / 20)  # on every clip read, as a quieter (farther) or louder microphone would
        self.room = room  # every clip read is heard through one of its rooms, before the gain
        self.split = split
        self.hop_samples = hop_samples
        self.sample_rate_hz = model.info.sample_rate_hz
        self.pad = pad
        self.seed = seed
        self.compute_s = 0.0
        self.audio_s = 0.0
        self._cache: dict[tuple, Scored] = {}

    def audio(self, clip: Clip) -> np.ndarray:
        audio = clip_audio(clip, self.sample_rate_hz, self.split)
        if self.room is not None:
            audio = self.room.play(audio, str(clip.path))
        return audio if self.gain == 1.0 else np.clip(audio * self.gain, -1.0, 1.0).astype(np.float32)

    def stream(self, blocks) -> Scored:
        """Push blocks (arrays) through one fresh stream; the tail is zero-padded to a whole hop."""
        runner = StreamRunner(self.model, self.hop_samples)
        results, levels = [], HopLevels(self.hop_samples)
        n_samples = 0
        for block in blocks:
            played = self._microphone(block, n_samples)
            results += self._push(runner, played)
            levels.add(played)
            n_samples += len(block)
        tail = (-n_samples) % self.hop_samples
        if tail:
            results += self._push(runner, np.zeros(tail, np.float32))
            levels.add(np.zeros(tail, np.float32))
        if not results:
            n_labels = len(self.model.info.labels)
            return Scored(np.zeros((0, n_labels), np.float32), np.zeros(0, np.int64), np.zeros(0))
        return Scored(np.stack([r.scores for r in results]), np.array([r.end_sample for r in results], np.int64),
                      np.array(levels.db[: len(results)]))

    def _microphone(self, block: np.ndarray, start_sample: int) -> np.ndarray:
        """block as the microphone delivers it: with its hum and DC offset, if any, clipped to [-1, 1]."""
        if self.hum_db is None and not self.dc_offset:
            return block
        out = block.astype(np.float64) + self.dc_offset
        if self.hum_db is not None:
            out += mains_hum_at(start_sample, len(block), self.sample_rate_hz, self.hum_db)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _push(self, runner: StreamRunner, block: np.ndarray):
        start = time.perf_counter()
        results = runner.push(block)
        self.compute_s += time.perf_counter() - start
        self.audio_s += len(block) / self.sample_rate_hz
        return results

    def set_noise(self, background: np.ndarray, snr_db: float) -> None:
        """Clips asked for noisy get an excerpt of background, snr_db below the clip's own power."""
        if not len(background) or not np.any(background):
            raise SystemExit("--snr-db needs noise/ recordings in the data's split to mix in")
        self.background, self.snr_db = background, snr_db

    def clip(self, clip: Clip, pad_s: float = 0.0, noisy: bool = False, lead_samples: int = 0) -> Scored:
        """A clip with pad_s of padding (zeros or low noise) before and after, from a zero state; noisy
        (after set_noise): with the background mixed in over the clip and its padding. lead_samples more
        padding before it moves the clip against the hop grid (the leads below)."""
        noisy = noisy and self.background is not None
        key = (clip.path, pad_s, noisy, lead_samples)
        if key not in self._cache:
            audio = self.audio(clip)
            n_pad = round(pad_s * self.sample_rate_hz)
            n_lead = n_pad + lead_samples
            if n_lead or n_pad:
                before, after = self.padding(max(n_lead, n_pad), str(clip.path))
                audio = np.concatenate([before[:n_lead], audio, after[:n_pad]])
            if noisy:
                rng = np.random.default_rng([self.seed, sum(str(clip.path).encode())])
                audio = with_noise(audio, slice(n_lead, len(audio) - n_pad), self.background, self.snr_db, rng)
            self._cache[key] = dataclasses.replace(self.stream([audio]), clip_span=(n_lead, len(audio) - n_pad))
        return self._cache[key]

    def plays(self, items: list) -> list[tuple[int, object]]:
        """(lead, item) for each item at each lead, lead-major: per-play results reshape to [phases, items]."""
        return [(lead, item) for lead in self.leads for item in items]

    def padding(self, n_samples: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        if self.pad == "zeros":
            return np.zeros(n_samples, np.float32), np.zeros(n_samples, np.float32)
        rng = np.random.default_rng([self.seed, sum(name.encode())])
        noise = (BACKGROUND_RMS * rng.standard_normal(2 * n_samples)).astype(np.float32)
        return noise[:n_samples], noise[n_samples:]

    def ms(self, samples: int) -> float:
        return round(1000.0 * samples / self.sample_rate_hz, 1)

    @property
    def leads_ms(self) -> list[float]:
        return [self.ms(lead) for lead in self.leads]

    @property
    def ms_per_audio_s(self) -> float:
        return 1000.0 * self.compute_s / self.audio_s if self.audio_s else 0.0


def with_noise(audio: np.ndarray, part: slice, background: np.ndarray, snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """audio plus a random excerpt of background (looped if shorter) over its whole length, scaled so that
    audio[part] (the clip without its padding) is snr_db above the excerpt's power over the same part."""
    start = int(rng.integers(len(background)))
    noise = np.resize(np.roll(background, -start), len(audio)).astype(np.float64)
    signal_power = np.mean(audio[part].astype(np.float64) ** 2)
    noise_power = max(np.mean(noise[part] ** 2), 1e-12)
    scale = np.sqrt(signal_power / noise_power / 10 ** (snr_db / 10))
    return np.clip(audio + scale * noise, -1.0, 1.0).astype(np.float32)


def frame_db(audio: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    n = max(1, len(audio) // frame_samples)
    frames = np.resize(audio, n * frame_samples).reshape(n, frame_samples) if len(audio) else np.zeros((1, 1))
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)


def active_region(audio: np.ndarray) -> tuple[int, int]:
    """First and last sample of the frames within ACTIVE_DB of the loudest frame."""
    db = frame_db(audio)
    active = np.flatnonzero(db >= db.max() + ACTIVE_DB)
    return int(active[0] * FRAME_SAMPLES), int(min(len(audio), (active[-1] + 1) * FRAME_SAMPLES))


def word_only(audio: np.ndarray, margin_samples: int) -> np.ndarray:
    """audio cut to its active region (a keyword clip: the word) with margin_samples kept on each side."""
    start, end = active_region(audio)
    return audio[max(0, start - margin_samples): end + margin_samples]


def at_rms(x: np.ndarray, rms: float, part: slice = slice(None)) -> np.ndarray:
    """x scaled so that x[part] has RMS rms (float64)."""
    x = x.astype(np.float64)
    return x * (rms / max(np.sqrt(np.mean(x[part] ** 2)), 1e-9))
