"""Training scenes for streaming models: a few seconds of background with spoken words and sounds
placed at known times, and a target per column (the model's output step) for every label.

Targets say when a streaming model should fire:
- a keyword is positive in the columns that end within ``keyword_window_s`` after the word ends
  (the model has heard all of it), ignored while the word is still being spoken, negative elsewhere;
- a tag is positive in the columns where its sound is active (by energy), ignored where its clip is
  quiet (a weak clip label says nothing certain there), negative elsewhere;
- every spoken word, keyword or not, is also ``speech``;
- a noise burst (``p_burst``: a fan, a tap or hiss starting and stopping) is nothing: without it a
  short burst of broadband sound after quiet is only ever a word, and ``speech`` fired on any such burst;
- with teacher targets (export/data/teacher_targets.py), a tag clip's columns take
  max(hard, (1 - w) * hard + w * teacher) for every tag the teacher knows, quiet parts included (the
  teacher heard them), so a scene also says which other sounds it resembles;
- a noise/ recording is no certain negative: with its teacher targets, a tag the teacher hears in it
  (speech in the kitchen recording, a cat in the miaowing one) is ignored (``noise_unsure``) or taught at
  the teacher's belief (``noise_teacher_weight``) in the columns that hold that part, unless something
  placed there marks the tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from export.data.augment import mains_hum, random_eq, random_reverb, reverberate
from export.data.rooms import MODELS as ROOM_MODELS
from export.data.rooms import room_bank

ACTIVE_DB = -30.0  # a column is active if its RMS is within this of the clip's loudest column
WORD_DB = -25.0  # word boundaries: frames within this of the loudest 10 ms frame


@dataclass(frozen=True)
class Word:
    """A spoken word (or short phrase) with its boundaries in samples."""

    audio: np.ndarray
    onset: int
    offset: int
    synthetic: bool = False  # a TTS voice rather than a recorded speaker


@dataclass
class Pools:
    """Decoded audio of one split, by role."""

    keywords: dict[str, list[Word]] = field(default_factory=dict)  # keyword -> real and synthetic words
    unknown: list[Word] = field(default_factory=list)  # words that are no keyword (hard negatives)
    speech: list[np.ndarray] = field(default_factory=list)  # long non-keyword speech
    noise: list[np.ndarray] = field(default_factory=list)  # long backgrounds without labels
    noise_recorded: list[bool] = field(default_factory=list)  # per noise clip: a real room (noise/), not synthetic
    # per noise clip: the teacher's [n_columns, n_tags] column targets, or None (synthetic, or none asked for)
    noise_teacher: list[np.ndarray | None] = field(default_factory=list)
    lookalikes: list[np.ndarray] = field(default_factory=list)  # sounds made to resemble a tag's, which are none
    tags: dict[str, list[np.ndarray]] = field(default_factory=dict)  # tag -> clips
    # tag -> per clip: made to be its tag (a synthetic alarm), so no teacher lowers its label; empty: none is
    tag_synthetic: dict[str, list[bool]] = field(default_factory=dict)
    tag_teacher: dict[str, list[np.ndarray]] = field(default_factory=dict)  # tag -> per clip [n_columns, n_tags] or empty
    # tag -> per clip [n_columns, 527] AudioSet probabilities of the teacher, or empty (no auxiliary targets)
    tag_audioset: dict[str, list[np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class SceneConfig:
    sample_rate_hz: int = 16000
    column_samples: int = 2560
    n_columns: int = 20  # 3.2 s
    keyword_window_s: float = 1.0  # positive this long after the word ends (the trigger fires once)
    keyword_margin_s: float = 0.6  # then ignored this long: the word is still in view, neither answer is wrong
    p_keyword: float = 0.6
    p_unknown: float = 0.35
    p_background: tuple[float, float, float, float] = (0.4, 0.15, 0.3, 0.15)  # tag, speech, noise, near-silence
    snr_db: tuple[float, float] = (0.0, 25.0)
    level_db: tuple[float, float] = (-35.0, -8.0)  # RMS of the loudest part, dBFS
    p_eq: float = 0.0  # chance that a scene is heard through a random smooth equaliser (another microphone)
    eq_db: float = 6.0  # its gains lie within +-eq_db (augment.eq_curve_db)
    p_hum: float = 0.0  # chance that a scene carries mains hum (augment.mains_hum): a cheap microphone, a ground loop
    hum_db: tuple[float, float] = (-65.0, -30.0)  # its RMS, dBFS
    p_clip: float = 0.0  # chance that a scene is overdriven: its peak pushed past full scale and clipped at +-1
    clip_over_db: tuple[float, float] = (0.0, 12.0)  # by how much the peak is pushed past full scale (dB)
    p_reverb: float = 0.0  # chance that a spoken word is heard through a simulated room
    reverb_rt60_s: tuple[float, float] = (0.1, 0.8)  # its reverberation time (augment.room_impulse_response)
    reverb_drr_db: tuple[float, float] = (0.0, 10.0)  # its direct-to-reverberant ratio: below 0, across the room
    p_tag_reverb: float = 0.0  # the same rooms for a tag clip's sound, before its tag is marked (no draw when 0)
    # which rooms: "tail" (augment.room_impulse_response: a few early reflections and a noise tail at reverb_drr_db)
    # or "shoebox" (one of rooms.room_bank's image-source rooms, the sound room_distance_m from the microphone: the
    # direct-to-reverberant ratio follows from the room and the distance, as in the evaluation's rooms)
    room_model: str = "tail"
    room_distance_m: tuple[float, float] = (0.5, 4.0)
    dry_keywords: tuple[str, ...] = ()  # keywords never put through a room (p_reverb): heard only as recorded
    p_speed: float = 0.0  # chance that a spoken word is played faster or slower (a new voice)
    speed_range: tuple[float, float] = (0.85, 1.15)  # its speed factor, pitch and tempo together
    p_tag_speed: float = 0.0  # the same for a tag clip (a bigger dog, a slower engine)
    tag_speed_range: tuple[float, float] = (0.9, 1.1)
    # chance of a recorded word where a pool holds recorded and synthetic words (None: draw from all alike);
    # TTS voices outnumber the recorded speakers, and the model is heard by recorded ones
    p_recorded_word: float | None = None
    p_second_tag: float = 0.0  # chance that a tag scene also holds a second tag clip (mixup of sounds)
    second_tag_db: tuple[float, float] = (-10.0, 5.0)  # its level relative to the first (dB)
    p_tag_bed: float = 0.0  # chance that a tag scene also holds a noise/ background under the sound
    # chance that a tag scene's sound is a look-alike (an alarm's tone in a rhythm no alarm has), every tag
    # negative. Drawn only as a scene's own sound: as noise it also lay under the alarms it imitates, and the
    # tone itself became the negative (no draw when 0: old recipes replay)
    p_lookalike: float = 0.0
    tag_bed_db: tuple[float, float] = (-30.0, -5.0)  # its level relative to the tag sound (dB)
    teacher_weight: float = 0.5  # target = (1 - w) * hard + w * teacher where the teacher knows the tag
    # the floor a recorded clip's own label keeps under that blend: target = max(label_weight * hard, blend) for
    # its own tag. 1: the label always wins where the sound is active; below 1 the teacher may lower it, so a
    # recording the teacher hears as something else is not learnt as sure (the student learns few recordings by
    # heart). A synthetic clip's label always wins: it is made to be its tag, which the teacher may not know
    label_weight: float = 1.0
    # how often a tag is drawn for a tag scene, relative to the others' 1 (e.g. {smoke_alarm: 4}: a
    # label that matters more than its 1/58 share); empty: all alike
    tag_weights: dict = field(default_factory=dict)
    # the same for the keyword of a keyword scene (e.g. {hey kitchen: 6}: a new keyword learning from
    # the shipped model catches up faster than at its 1/12 share); empty: all alike
    keyword_weights: dict = field(default_factory=dict)
    p_burst: float = 0.0  # chance that a noise or quiet background also holds a noise/ excerpt that starts and stops
    burst_s: tuple[float, float] = (0.3, 2.5)  # its length
    # chance that a burst is the loudest stretch of a tag clip (a knock, a bark), its tag marked, rather
    # than noise: short sounds after quiet that are neither speech nor a keyword (no draw when 0)
    p_tag_burst: float = 0.0
    # chance that a tag scene's sound starts tag_late_s into the scene, over a room (a noise/ excerpt, or
    # near-silence) that runs on under it: the service hears a sound arrive into a stream that already
    # holds other audio, where a scene that opens on the sound teaches it only from a cold start (no draw when 0)
    p_tag_late: float = 0.0
    tag_late_s: tuple[float, float] = (0.3, 1.5)
    # teacher probability from which a tag counts as heard in a noise/ recording (Pools.noise_teacher): its
    # target is then ignored where that part lies, not taught as absent (0: off, every noise column negative)
    noise_unsure: float = 0.0
    # the same recordings' known negatives take the teacher's belief: target = max(target, w * teacher), as a tag
    # clip's other tags do (0: off); the talk in the kitchen recording becomes speech at ~0.6 rather than unsure
    noise_teacher_weight: float = 0.0
    # chance that a noise draw takes one of the recorded rooms (Pools.noise_recorded) rather than a synthetic
    # clip: drawn by clip, the 7 recordings are 2 % of ~330 noise clips beside the music, beeps and squeaks
    # (0: by clip, the draw older recipes made)
    p_recorded_noise: float = 0.0
    # chance that a placed word (keyword or not) follows the end of a long speech clip (a coffee order, talk)
    # after a pause of speech_pause_s, at speech_before_db against the word: a command said after the speaker,
    # or someone else, stopped talking. The word's own columns keep their targets, the speech is speech and
    # no command (0: off, no draw)
    p_speech_before: float = 0.0
    speech_pause_s: tuple[float, float] = (0.1, 1.0)
    speech_before_db: tuple[float, float] = (-6.0, 3.0)


def word_bounds(audio: np.ndarray, sample_rate_hz: int = 16000) -> tuple[int, int]:
    """(onset, offset) samples of the loud part of a word clip."""
    frame = sample_rate_hz // 100
    n = max(1, len(audio) // frame)
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    active = np.nonzero(20 * np.log10(rms / rms.max()) > WORD_DB)[0]
    return int(active[0] * frame), int(min(len(audio), (active[-1] + 1) * frame))


def make_word(audio: np.ndarray, synthetic: bool = False) -> Word:
    onset, offset = word_bounds(audio)
    return Word(audio, onset, offset, synthetic)


def speed_changed(audio: np.ndarray, factor: float) -> np.ndarray:
    """audio played factor times faster, pitch and tempo together, as a tape would. Linear
    interpolation: its slight high-frequency loss is far below what a room or a microphone does."""
    n_out = max(1, int(round(len(audio) / factor)))
    return np.interp(np.arange(n_out) * factor, np.arange(len(audio)), audio).astype(np.float32)


def change_speed(word: Word, factor: float) -> Word:
    """The word played factor times faster: a new voice, its bounds moved with it."""
    audio = speed_changed(word.audio, factor)
    return Word(audio, int(word.onset / factor), min(len(audio), int(np.ceil(word.offset / factor))), word.synthetic)


def columns_at_speed(soft: np.ndarray, factor: float, n_columns: int) -> np.ndarray:
    """Per-column targets of a clip played factor times faster: new column k ends where the original's
    column (k + 1) * factor - 1 ends (nearest)."""
    k = np.rint((np.arange(n_columns) + 1) * factor).astype(int) - 1
    return soft[np.clip(k, 0, len(soft) - 1)]


def by_source(words: list[Word]) -> tuple[list[Word], list[Word]]:
    """(recorded, synthetic) words, each in its original order."""
    return [w for w in words if not w.synthetic], [w for w in words if w.synthetic]


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x * x) + 1e-12))


def loudest_column_db(x: np.ndarray, column_samples: int) -> np.floating:
    """Power (dB) of the loudest column of x (a whole number of columns), in x's precision."""
    columns = x.reshape(-1, column_samples)
    return 10 * np.log10(np.max(np.mean(columns * columns, axis=1)) + 1e-12)


def active_columns(placed: np.ndarray, column_samples: int) -> np.ndarray:
    """bool [n_columns]: where a placed sound (zeros elsewhere) is active."""
    cols = placed.reshape(-1, column_samples)
    power = np.mean(cols * cols, axis=1)
    peak = power.max()
    if peak <= 1e-10:
        return np.zeros(len(cols), bool)
    return 10 * np.log10(power / peak + 1e-12) > ACTIVE_DB


def draw_probabilities(names: list[str], weights: dict) -> np.ndarray | None:
    """Each name's chance from {name: weight} (others weigh 1); None without weights."""
    if not weights or not names:
        return None
    w = np.array([float(weights.get(n, 1.0)) for n in names])
    return w / w.sum()


def draw(rng: np.random.Generator, names: list[str], p: np.ndarray | None) -> str:
    """One of names; without probabilities the same draw as before weights existed, so old recipes replay."""
    return names[rng.integers(len(names)) if p is None else rng.choice(len(names), p=p)]


class SceneSampler:
    def __init__(self, pools: Pools, label_names: tuple[str, ...], cfg: SceneConfig = SceneConfig()):
        if cfg.room_model not in ROOM_MODELS:
            raise ValueError(f"scene room_model {cfg.room_model!r} is not one of {', '.join(ROOM_MODELS)}")
        self.pools = pools
        self.cfg = cfg
        self.index = {name: i for i, name in enumerate(label_names)}
        self.keyword_names = [k for k in pools.keywords if pools.keywords[k] and k in self.index]
        self.tag_names = [t for t in pools.tags if pools.tags[t] and t in self.index]
        self.tag_p = draw_probabilities(self.tag_names, cfg.tag_weights)
        self.keyword_p = draw_probabilities(self.keyword_names, cfg.keyword_weights)
        self.n_samples = cfg.n_columns * cfg.column_samples
        # (recorded, synthetic) words of each keyword, and of the non-keywords under None
        self.word_sources = {name: by_source(words) for name, words in pools.keywords.items()}
        self.word_sources[None] = by_source(pools.unknown)
        from export.labels import TAGS  # the teacher targets' column order

        self.teacher_columns = np.array([self.index.get(t, -1) for t in TAGS])
        # with AudioSet targets, each scene's targets and mask have 527 more columns after the labels'
        # (mask 0 except where a tag clip the teacher heard lies), for a head that only training has
        self.n_audioset = 527 if pools.tag_audioset else 0
        recorded = np.array(pools.noise_recorded, bool)
        self.recorded_noise, self.synthetic_noise = np.flatnonzero(recorded), np.flatnonzero(~recorded)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> audio float32 [n_samples], targets float32 [n_columns, n_labels (+ 527 AudioSet)], mask float32 (same)."""
        cfg = self.cfg
        targets = np.zeros((cfg.n_columns, len(self.index) + self.n_audioset), np.float32)
        mask = np.ones_like(targets)
        mask[:, len(self.index):] = 0.0
        audio = self._background(rng, targets, mask)
        if rng.random() < cfg.p_keyword and self.keyword_names:
            name = draw(rng, self.keyword_names, self.keyword_p)
            audio += self._word_in_scene(rng, self._draw_word(rng, name), audio, targets, mask, name)
        if rng.random() < cfg.p_unknown and self.pools.unknown:
            audio += self._word_in_scene(rng, self._draw_word(rng, None), audio, targets, mask, None)
        if cfg.p_eq and rng.random() < cfg.p_eq:  # the whole scene, as the microphone colours everything
            audio = random_eq(audio, cfg.sample_rate_hz, rng, cfg.eq_db)
        if cfg.p_hum and rng.random() < cfg.p_hum:  # under everything, words and silence alike; no label
            audio = audio + mains_hum(len(audio), cfg.sample_rate_hz, rng, rng.uniform(*cfg.hum_db))
        peak = np.abs(audio).max()
        if cfg.p_clip and peak > 0 and rng.random() < cfg.p_clip:  # a close talker into a hot input: clipped
            audio = np.clip(audio * (10 ** (rng.uniform(*cfg.clip_over_db) / 20) / peak), -1.0, 1.0)
        elif peak > 0.99:  # keep the mix inside [-1, 1] as a microphone would deliver it
            audio *= 0.99 / peak
        return audio.astype(np.float32), targets, mask

    def _excerpt(self, rng, clip: np.ndarray) -> np.ndarray:
        return self._excerpt_at(rng, clip)[0]

    def _noise_excerpt(self, rng, targets, mask) -> np.ndarray:
        """A noise clip's excerpt as long as the scene; a recorded room's targets as _room_targets sets them."""
        i = self._draw_noise(rng)
        audio, offset = self._excerpt_at(rng, self.pools.noise[i])
        self._room_targets(i, offset, 0, self.n_samples, targets, mask)
        return audio

    def _draw_noise(self, rng) -> int:
        """Index of a noise clip: a recorded room with p_recorded_noise, else a synthetic clip; all alike when off
        or when the pool holds only one of the two."""
        p = self.cfg.p_recorded_noise
        if p and 0 < len(self.recorded_noise) < len(self.pools.noise):
            pool = self.recorded_noise if rng.random() < p else self.synthetic_noise
            return int(pool[rng.integers(len(pool))])
        return int(rng.integers(len(self.pools.noise)))

    def _room_targets(self, i: int, offset: int, first: int, end: int, targets, mask) -> None:
        """Noise recording i lies in scene samples [first, end), its sample offset + x at scene sample x. In the
        columns that overlap it, each known target of a tag its teacher knows becomes max(target, w * teacher)
        (noise_teacher_weight w); then each tag the teacher hears at noise_unsure or more is ignored (mask 0)
        where no sound placed before marked it (a target of 0.5 or more). Words placed later mark speech again."""
        soft = self.pools.noise_teacher[i] if i < len(self.pools.noise_teacher) else None
        cfg = self.cfg
        if soft is None or not (cfg.noise_unsure or cfg.noise_teacher_weight):
            return
        rows, k = self._clip_columns(offset, len(soft))
        column_end = (rows + 1) * cfg.column_samples
        overlap = (column_end > first) & (column_end - cfg.column_samples < end)
        rows, k = rows[overlap], k[overlap]
        known = self.teacher_columns >= 0
        cols = self.teacher_columns[known]
        p = soft[k][:, known].astype(np.float32)
        cells = np.ix_(rows, cols)
        if cfg.noise_teacher_weight:  # never where a placed sound left its own tag unsure
            raised = np.isfinite(p) & (mask[cells] > 0)
            targets[cells] = np.where(raised, np.maximum(targets[cells], cfg.noise_teacher_weight * np.nan_to_num(p)),
                                      targets[cells])
        if cfg.noise_unsure:
            unsure = (np.nan_to_num(p) >= cfg.noise_unsure) & (targets[cells] < 0.5)
            mask[cells] = np.where(unsure, 0.0, mask[cells])

    def _excerpt_at(self, rng, clip: np.ndarray) -> tuple[np.ndarray, int]:
        """A random n_samples excerpt, placed at a random offset if the clip is shorter; with the clip
        sample at the scene's start (negative: the clip starts that many samples into the scene)."""
        out = np.zeros(self.n_samples, np.float32)
        if len(clip) >= self.n_samples:
            start = int(rng.integers(len(clip) - self.n_samples + 1))
            out[:] = clip[start : start + self.n_samples]
            return out, start
        start = int(rng.integers(self.n_samples - len(clip) + 1))
        out[start : start + len(clip)] = clip
        return out, -start

    def _at_level(self, rng, x: np.ndarray) -> np.ndarray:
        level = rng.uniform(*self.cfg.level_db)
        return x * np.float32(10 ** ((level - loudest_column_db(x, self.cfg.column_samples)) / 20))

    def _background(self, rng, targets, mask) -> np.ndarray:
        kind = rng.choice(4, p=np.array(self.cfg.p_background) / sum(self.cfg.p_background))
        if kind == 0 and self.tag_names and self.cfg.p_tag_late and rng.random() < self.cfg.p_tag_late:
            audio = self._late_tag(rng, targets, mask)
        elif kind == 0 and self.tag_names:
            if self.cfg.p_lookalike and self.pools.lookalikes and rng.random() < self.cfg.p_lookalike:
                audio = self._at_level(rng, self._excerpt(rng, self.pools.lookalikes[rng.integers(len(self.pools.lookalikes))]))
            else:
                audio = self._tag_excerpt(rng, targets, mask)
                if rng.random() < self.cfg.p_second_tag:
                    audio += self._tag_excerpt(rng, targets, mask, relative_to=audio)
            # sounds also happen in noisy rooms: without this a synthetic alarm is only ever heard in silence
            if self.cfg.p_tag_bed and self.pools.noise and rng.random() < self.cfg.p_tag_bed:
                bed = self._noise_excerpt(rng, targets, mask)
                gain_db = rms_db(audio) + rng.uniform(*self.cfg.tag_bed_db) - rms_db(bed)
                audio += bed * np.float32(10 ** (gain_db / 20))
        elif kind == 1 and self.pools.speech:
            audio = self._at_level(rng, self._excerpt(rng, self.pools.speech[rng.integers(len(self.pools.speech))]))
            self._mark(audio, targets, mask, "speech")
        elif kind == 2 and self.pools.noise:
            audio = self._at_level(rng, self._noise_excerpt(rng, targets, mask))
        else:
            audio = (rng.standard_normal(self.n_samples) * 10 ** (rng.uniform(-80, -50) / 20)).astype(np.float32)
        # part of the background, so a word placed later stays above it; never over a labelled sound,
        # which it could drown while the sound's target stays on (no draw when off: old recipes replay)
        if kind >= 2 and self.cfg.p_burst and self.pools.noise and rng.random() < self.cfg.p_burst:
            if self.cfg.p_tag_burst and self.tag_names and rng.random() < self.cfg.p_tag_burst:
                audio += self._tag_burst(rng, audio, targets, mask)
            else:
                audio += self._burst(rng, audio, targets, mask)
        return audio

    def _late_tag(self, rng, targets, mask) -> np.ndarray:
        """A tag clip's excerpt from tag_late_s into the scene, over a room that is there before it and
        under it: a noise/ excerpt tag_bed_db below the sound, or near-silence (-80..-50 dBFS)."""
        cfg = self.cfg
        start = min(int(rng.uniform(*cfg.tag_late_s) * cfg.sample_rate_hz), self.n_samples - 2 * cfg.column_samples)
        sound = self._tag_excerpt(rng, targets, mask, start=start)
        if self.pools.noise and rng.random() < 0.7:
            room = self._noise_excerpt(rng, targets, mask)
            gain_db = rms_db(sound[start:]) + rng.uniform(*cfg.tag_bed_db) - rms_db(room)
        else:
            room = rng.standard_normal(self.n_samples).astype(np.float32)
            gain_db = rng.uniform(-80, -50)
        return sound + room * np.float32(10 ** (gain_db / 20))

    def _tag_excerpt(self, rng, targets, mask, relative_to: np.ndarray | None = None, start: int = 0) -> np.ndarray:
        """A tag clip's excerpt at a random level (or relative to a first one), its targets marked; start:
        the excerpt begins that many samples into the scene, and its tag is a known negative before."""
        name = draw(rng, self.tag_names, self.tag_p)
        i = int(rng.integers(len(self.pools.tags[name])))
        clip = self.pools.tags[name][i]
        teacher = self.pools.tag_teacher.get(name)
        soft = teacher[i] if teacher else None
        audioset = self.pools.tag_audioset[name][i] if self.n_audioset else None
        if self.cfg.p_tag_speed and rng.random() < self.cfg.p_tag_speed:  # no draw when off: old recipes replay
            factor = rng.uniform(*self.cfg.tag_speed_range)
            clip = speed_changed(clip, factor)
            n_columns = -(-len(clip) // self.cfg.column_samples)
            if soft is not None:
                soft = columns_at_speed(soft, factor, n_columns)
            if audioset is not None:
                audioset = columns_at_speed(audioset, factor, n_columns)
        audio, offset = self._excerpt_at(rng, clip)
        if start:
            audio = np.concatenate([np.zeros(start, np.float32), audio[: self.n_samples - start]])
            offset -= start
        if self.cfg.p_tag_reverb and rng.random() < self.cfg.p_tag_reverb:  # heard across a room, tail marked too
            audio = self._reverb(rng, audio)
        if relative_to is None:
            audio = self._at_level(rng, audio)
        else:
            gain_db = rms_db(relative_to) + rng.uniform(*self.cfg.second_tag_db) - rms_db(audio)
            audio *= np.float32(10 ** (gain_db / 20))
        self._mark(audio, targets, mask, name)
        if start and name in self.index:  # the columns that end before the sound starts
            mask[: start // self.cfg.column_samples, self.index[name]] = 1.0
        if soft is not None:
            synthetic = self.pools.tag_synthetic.get(name, [])
            label_weight = 1.0 if i < len(synthetic) and synthetic[i] else self.cfg.label_weight
            self._blend_teacher(soft, offset, targets, mask, name, label_weight)
        if audioset is not None:
            self._place_audioset(audioset, offset, targets, mask)
        return audio

    def _clip_columns(self, offset: int, n_clip_columns: int) -> tuple[np.ndarray, np.ndarray]:
        """(scene columns that hold the clip, the clip column whose end is nearest each one's end)."""
        cfg = self.cfg
        k = np.rint((offset + (np.arange(cfg.n_columns) + 1) * cfg.column_samples) / cfg.column_samples).astype(int) - 1
        inside = (k >= 0) & (k < n_clip_columns)
        return np.flatnonzero(inside), k[inside]

    def _place_audioset(self, probs: np.ndarray, offset: int, targets, mask) -> None:
        """A clip's AudioSet column targets into the scene's AudioSet columns; with two clips, the larger
        of the two beliefs (the teacher heard each alone)."""
        rows, k = self._clip_columns(offset, len(probs))
        first = len(self.index)
        targets[rows, first:] = np.maximum(targets[rows, first:], probs[k].astype(np.float32))
        mask[rows, first:] = 1.0

    def _blend_teacher(self, soft: np.ndarray, offset: int, targets, mask, name: str, label_weight: float) -> None:
        """Blend a clip's teacher column targets into the scene columns that hold the clip (of tag name, whose
        label keeps label_weight)."""
        cfg = self.cfg
        rows, k = self._clip_columns(offset, len(soft))
        known = self.teacher_columns >= 0
        cols = self.teacher_columns[known]
        p = soft[k][:, known].astype(np.float32)
        finite = np.isfinite(p)
        hard = targets[np.ix_(rows, cols)]
        blended = np.where(finite, (1 - cfg.teacher_weight) * hard + cfg.teacher_weight * np.nan_to_num(p), hard)
        # the teacher may raise a target, never lower a hard positive (nor the first clip's, with two) but
        # this clip's own label, down to label_weight
        floor = np.where(cols == self.index.get(name, -1), np.float32(label_weight) * hard, hard)
        targets[np.ix_(rows, cols)] = np.maximum(floor, blended)
        mask[np.ix_(rows, cols)] = np.where(finite, 1.0, mask[np.ix_(rows, cols)])

    def _mark(self, placed, targets, mask, name: str, weak: bool = True) -> None:
        """name is on where placed is active; weak: its quiet parts are uncertain (a clip's label), else the
        other columns keep what they were given (a sound laid into a labelled scene)."""
        if name not in self.index:
            return
        active = active_columns(placed, self.cfg.column_samples)
        j = self.index[name]
        targets[active, j] = 1.0
        if weak:
            mask[~active, j] = 0.0
        else:
            mask[active, j] = 1.0

    def _draw_word(self, rng, keyword: str | None) -> Word:
        """A word of the keyword (None: a non-keyword), recorded with probability p_recorded_word."""
        words = self.pools.unknown if keyword is None else self.pools.keywords[keyword]
        recorded, synthetic = self.word_sources[keyword]
        p = self.cfg.p_recorded_word
        if p is not None and recorded and synthetic:
            words = recorded if rng.random() < p else synthetic
        return words[rng.integers(len(words))]

    def _word_in_scene(self, rng, word: Word, background, targets, mask, keyword: str | None) -> np.ndarray:
        """The word placed over the background, after speech with p_speech_before."""
        placed, start, end = self._place_word(rng, word, background, targets, mask, keyword)
        if self.cfg.p_speech_before and self.pools.speech and rng.random() < self.cfg.p_speech_before:
            placed += self._speech_before(rng, start, rms_db(placed[start:end]), targets, mask)
        return placed

    def _speech_before(self, rng, word_start: int, word_db: float, targets, mask) -> np.ndarray:
        """The end of a speech clip's talk, ending speech_pause_s before word_start, speech_before_db against
        the word (word_db), marked speech where it is active; nothing when less than a column fits."""
        cfg = self.cfg
        out = np.zeros(self.n_samples, np.float32)
        end = word_start - round(rng.uniform(*cfg.speech_pause_s) * cfg.sample_rate_hz)
        clip = self.pools.speech[rng.integers(len(self.pools.speech))]
        talk_end = word_bounds(clip, cfg.sample_rate_hz)[1]
        n = min(end, talk_end)
        if n < cfg.column_samples:
            return out
        out[end - n: end] = clip[talk_end - n: talk_end]
        out *= np.float32(10 ** ((word_db + rng.uniform(*cfg.speech_before_db) - rms_db(out[end - n: end])) / 20))
        self._mark(out, targets, mask, "speech", weak=False)  # the word's own speech columns stay as labelled
        return out

    def _reverb(self, rng, audio: np.ndarray) -> np.ndarray:
        """audio heard through one of the scene's rooms (room_model), same length and RMS."""
        cfg = self.cfg
        if cfg.room_model == "shoebox":
            bank = room_bank(tuple(cfg.reverb_rt60_s), tuple(cfg.room_distance_m), cfg.sample_rate_hz)
            return reverberate(audio, bank[rng.integers(len(bank))])
        return random_reverb(audio, cfg.sample_rate_hz, rng, cfg.reverb_rt60_s, cfg.reverb_drr_db)

    def _place_word(self, rng, word: Word, background, targets, mask,
                    keyword: str | None) -> tuple[np.ndarray, int, int]:
        """The word placed over the background, labelled; with its start and end sample."""
        cfg = self.cfg
        if cfg.p_speed and rng.random() < cfg.p_speed:
            factor = rng.uniform(*cfg.speed_range)
            if (word.offset - word.onset) / factor < self.n_samples - cfg.column_samples:  # a long phrase slowed may not fit
                word = change_speed(word, factor)
        # the tail lengthens the clip; the word still ends at word.offset
        if keyword not in cfg.dry_keywords and rng.random() < cfg.p_reverb:
            word = Word(self._reverb(rng, word.audio), word.onset, word.offset, word.synthetic)
        length = word.offset - word.onset
        # The word must end after at least 2 columns of context and leave room to fire.
        earliest_end = 2 * cfg.column_samples
        latest_end = self.n_samples - cfg.column_samples // 2
        end = int(rng.integers(max(earliest_end, length), latest_end))
        start = end - length
        placed = np.zeros(self.n_samples, np.float32)
        # Keep the clip's own lead-in and tail where they fit; the boundaries stay those of the word.
        clip_start = max(0, start - word.onset)
        src_start = clip_start - (start - word.onset)
        n = min(len(word.audio) - src_start, self.n_samples - clip_start)
        placed[clip_start : clip_start + n] = word.audio[src_start : src_start + n]
        signal_db = rms_db(placed[start:end])
        background_db = rms_db(background[start:end])
        if background_db < -60:
            gain_db = rng.uniform(*cfg.level_db) - signal_db
        else:
            gain_db = background_db + rng.uniform(*cfg.snr_db) - signal_db
        placed *= np.float32(10 ** (gain_db / 20))
        self._label_word(targets, mask, start, end, keyword)
        return placed, start, end

    def _burst(self, rng, background: np.ndarray, targets, mask) -> np.ndarray:
        """A noise/ excerpt of burst_s that starts and stops inside the scene (edges faded over 0-50 ms),
        as loud against the background as a word would be; no tag of its own (a recorded room's: _room_targets)."""
        cfg = self.cfg
        length = min(self.n_samples, int(rng.uniform(*cfg.burst_s) * cfg.sample_rate_hz))
        i = self._draw_noise(rng)
        source = self.pools.noise[i]
        start_in_source = int(rng.integers(max(1, len(source) - length + 1)))
        burst = source[start_in_source : start_in_source + length].astype(np.float32)
        fade = min(len(burst) // 2, int(rng.uniform(0.0, 0.05) * cfg.sample_rate_hz))
        if fade:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            burst[:fade] *= ramp
            burst[-fade:] *= ramp[::-1]
        placed, start = self._place_burst(rng, burst, background, lambda placed: rms_db(burst))
        self._room_targets(i, start_in_source - start, start, start + len(burst), targets, mask)
        return placed

    def _place_burst(self, rng, burst: np.ndarray, background: np.ndarray, loudness_db) -> tuple[np.ndarray, int]:
        """(burst at a random place in the scene, the scene sample it starts at), scaled so that
        loudness_db(placed) comes out as loud as a word would be there: the scene level over quiet, snr_db
        above a noise background."""
        cfg = self.cfg
        start = int(rng.integers(self.n_samples - len(burst) + 1))
        placed = np.zeros(self.n_samples, np.float32)
        placed[start : start + len(burst)] = burst
        background_db = rms_db(background[start : start + len(burst)])
        level_db = rng.uniform(*cfg.level_db) if background_db < -60 else background_db + rng.uniform(*cfg.snr_db)
        return placed * np.float32(10 ** ((level_db - loudness_db(placed)) / 20)), start

    def _tag_burst(self, rng, background: np.ndarray, targets, mask) -> np.ndarray:
        """burst_s of a tag clip around its loudest 10 ms, placed as _burst places noise, its loudest
        column at the level a word would have, its tag marked where it is active."""
        cfg = self.cfg
        name = draw(rng, self.tag_names, self.tag_p)
        clip = self.pools.tags[name][rng.integers(len(self.pools.tags[name]))]
        length = min(self.n_samples, len(clip), int(rng.uniform(*cfg.burst_s) * cfg.sample_rate_hz))
        frame = cfg.sample_rate_hz // 100
        n_frames = max(1, len(clip) // frame)
        loudest = int(np.argmax(np.mean(clip[: n_frames * frame].reshape(n_frames, -1) ** 2, axis=1))) * frame
        first = int(np.clip(loudest - rng.integers(length), 0, len(clip) - length))
        burst = clip[first : first + length].astype(np.float32)
        # by its loudest column: a knock is mostly quiet
        placed, _ = self._place_burst(rng, burst, background, lambda x: loudest_column_db(x, cfg.column_samples))
        self._mark(placed, targets, mask, name)
        return placed

    def _label_word(self, targets, mask, start: int, end: int, keyword: str | None) -> None:
        cfg = self.cfg
        column_end = (np.arange(cfg.n_columns) + 1) * cfg.column_samples
        column_start = column_end - cfg.column_samples
        spoken = (column_end > start) & (column_start < end)
        mask[spoken, len(self.index):] = 0.0  # the teacher never heard this word over the clip
        if "speech" in self.index:
            targets[spoken, self.index["speech"]] = 1.0
            mask[spoken, self.index["speech"]] = 1.0
        if keyword is None:
            return
        j = self.index[keyword]
        window = int(cfg.keyword_window_s * cfg.sample_rate_hz)
        margin = int(cfg.keyword_margin_s * cfg.sample_rate_hz)
        fire = (column_end >= end) & (column_end <= end + window)
        unsure = ((column_end > start) & (column_end < end)) | ((column_end > end + window) & (column_end <= end + window + margin))
        targets[fire, j] = 1.0
        mask[unsure, j] = 0.0
