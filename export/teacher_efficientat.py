"""EfficientAT "mn04_as" (MobileNetV3 width 0.4, AudioSet 527 classes) as a teacher for our tags.

Front end and network follow ../shared/teachers/efficientat-mn04/README.md exactly; module names
follow the checkpoint's keys so that it loads strictly. Training may use it; shipped models never do.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.labels import TAGS

CHECKPOINT = "mn04_as_mAP_432.pt"
LABELS_CSV = "class_labels_indices.csv"
N_CLASSES = 527

INPUT_RATE_HZ = 16000
MODEL_RATE_HZ = 32000
PREEMPHASIS = 0.97
N_FFT = 1024
WINDOW_SAMPLES = 800
HOP_SAMPLES = 320
N_MELS = 128
FMAX_HZ = 15000.0
LOG_OFFSET = 1e-5
NORM_SHIFT, NORM_SCALE = 4.5, 5.0

# 2x upsampler: windowed sinc, cut off just below the input Nyquist so 8 kHz content does not image.
UPSAMPLE_HALF_TAPS = 128  # taps each side of the centre, at the output rate
UPSAMPLE_CUTOFF_HZ = 7800.0
UPSAMPLE_KAISER_BETA = 10.0

WIDTH = 0.4
BN_EPS = 1e-3
# (in, kernel, expanded, out, squeeze-excitation, hardswish, stride), MobileNetV3-Large before scaling.
BLOCKS = (
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1),
)
STEM_CHANNELS, LAST_CONV_FACTOR, HEAD_CHANNELS, DROPOUT = 16, 6, 1280, 0.2

# Our tag -> AudioSet display names (as in class_labels_indices.csv). Tag prob = max over its classes.
# Tags missing here have no honest AudioSet equivalent and score NaN (can_opening, drinking_sipping,
# washing_machine). A tag never takes an ontology parent of another tag's classes (Bird is above Crow,
# Insect above Cricket, Chicken/rooster above Crowing, Aircraft above Helicopter, Engine and Light engine
# above Chainsaw): parents always score at least as high as their children and would win every clip.
# One exception: street_music has nothing narrower than Music.
AUDIOSET_TO_TAG: dict[str, tuple[str, ...]] = {
    "airplane": ("Fixed-wing aircraft, airplane", "Aircraft engine", "Jet engine", "Propeller, airscrew"),
    "breathing": ("Breathing", "Pant", "Gasp", "Wheeze"),
    "brushing_teeth": ("Toothbrush", "Electric toothbrush"),
    "car_horn": ("Vehicle horn, car horn, honking", "Toot", "Air horn, truck horn"),
    "cat": ("Cat", "Meow", "Purr", "Caterwaul"),
    "chainsaw": ("Chainsaw",),
    "chirping_birds": ("Bird vocalization, bird call, bird song", "Chirp, tweet"),
    "church_bells": ("Church bell", "Change ringing (campanology)"),
    "clapping": ("Clapping", "Applause"),
    "clock_alarm": ("Alarm clock",),
    "clock_tick": ("Tick", "Tick-tock", "Clock"),
    "coughing": ("Cough", "Throat clearing"),
    "cow": ("Cattle, bovinae", "Moo"),
    "crackling_fire": ("Fire", "Crackle"),
    "crickets": ("Cricket",),
    "crow": ("Crow", "Caw"),
    "crying_baby": ("Baby cry, infant cry",),
    "dog": ("Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)"),
    "door_wood_creaks": ("Creak", "Squeak"),
    "door_wood_knock": ("Knock",),
    "engine": ("Idling", "Medium engine (mid frequency)", "Heavy engine (low frequency)", "Engine starting",
               "Accelerating, revving, vroom"),
    "fireworks": ("Fireworks", "Firecracker"),
    "footsteps": ("Walk, footsteps",),
    "frog": ("Frog", "Croak"),
    "glass_breaking": ("Shatter", "Glass"),
    "hand_saw": ("Sawing",),
    "helicopter": ("Helicopter",),
    "hen": ("Cluck",),
    "insects": ("Fly, housefly", "Bee, wasp, etc.", "Mosquito", "Buzz"),
    "keyboard_typing": ("Typing", "Computer keyboard", "Typewriter"),
    "laughing": ("Laughter", "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle"),
    "mouse_click": ("Clicking",),
    "pig": ("Pig", "Oink"),
    "pouring_water": ("Pour", "Trickle, dribble", "Fill (with liquid)"),
    "rain": ("Rain", "Raindrop", "Rain on surface"),
    "rooster": ("Crowing, cock-a-doodle-doo",),
    "sea_waves": ("Waves, surf", "Ocean"),
    "sheep": ("Sheep", "Bleat"),
    "siren": ("Siren", "Civil defense siren", "Police car (siren)", "Ambulance (siren)",
              "Fire engine, fire truck (siren)", "Emergency vehicle"),
    "sneezing": ("Sneeze",),
    "snoring": ("Snoring",),
    "thunderstorm": ("Thunderstorm", "Thunder"),
    "toilet_flush": ("Toilet flush",),
    "train": ("Train", "Rail transport", "Railroad car, train wagon", "Train wheels squealing",
              "Subway, metro, underground", "Train horn", "Train whistle"),
    "vacuum_cleaner": ("Vacuum cleaner",),
    "water_drops": ("Drip",),
    "wind": ("Wind", "Wind noise (microphone)"),
    "air_conditioner": ("Air conditioning", "Mechanical fan"),
    "children_playing": ("Children playing", "Children shouting"),
    "drilling": ("Drill", "Power tool"),
    "gun_shot": ("Gunshot, gunfire", "Machine gun", "Cap gun", "Fusillade"),
    "jackhammer": ("Jackhammer",),
    "street_music": ("Music",),
    "speech": ("Speech", "Male speech, man speaking", "Female speech, woman speaking",
               "Child speech, kid speaking", "Conversation", "Narration, monologue"),
    "smoke_alarm": ("Smoke detector, smoke alarm", "Fire alarm"),
}


def read_class_names(checkpoint_dir: str | Path) -> tuple[str, ...]:
    """The 527 AudioSet display names, in output order."""
    with open(Path(checkpoint_dir) / LABELS_CSV, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
    return tuple(r["display_name"] for r in rows)


# ----------------------------------------------------------------------------------- front end

def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate_hz: int, fmin_hz: float, fmax_hz: float) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangles on the Kaldi mel scale at bin centres; Nyquist bin weight 0."""
    def mel(f):
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    lo, hi = mel(fmin_hz), mel(fmax_hz)
    delta = (hi - lo) / (n_mels + 1)
    left = lo + np.arange(n_mels)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    bins = mel(sample_rate_hz / n_fft * np.arange(n_fft // 2))[None, :]
    weights = np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))
    return torch.from_numpy(np.pad(weights, ((0, 0), (0, 1)))).float()


def upsample_filter() -> torch.Tensor:
    """Kaiser-windowed sinc low-pass at the output rate, gain 2 (zero stuffing halves the level)."""
    n = np.arange(-UPSAMPLE_HALF_TAPS, UPSAMPLE_HALF_TAPS + 1)
    fc = UPSAMPLE_CUTOFF_HZ / MODEL_RATE_HZ  # cycles per output sample
    h = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(len(n), UPSAMPLE_KAISER_BETA)
    return torch.from_numpy(2 * h / h.sum()).float()


class MelFrontEnd(nn.Module):
    """16 kHz audio (N, T) -> normalised log-mel (N, 1, 128, frames) as EfficientAT computes it at 32 kHz."""

    def __init__(self):
        super().__init__()
        self.register_buffer("upsampler", upsample_filter().view(1, 1, -1), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-PREEMPHASIS, 1.0]]]), persistent=False)
        self.register_buffer("window", torch.hann_window(WINDOW_SAMPLES, periodic=False), persistent=False)
        self.register_buffer("mel", kaldi_mel_banks(N_MELS, N_FFT, MODEL_RATE_HZ, 0.0, FMAX_HZ), persistent=False)

    def upsample(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, T) at 16 kHz -> (N, 2T) at 32 kHz: zero stuffing and FIR as one transposed conv."""
        y = F.conv_transpose1d(audio.unsqueeze(1), self.upsampler, stride=2)  # (N, 1, 2T - 1 + taps - 1)
        return y[:, 0, UPSAMPLE_HALF_TAPS : UPSAMPLE_HALF_TAPS + 2 * audio.shape[1]]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.upsample(audio)
        x = F.conv1d(x.unsqueeze(1), self.preemphasis).squeeze(1)  # x[n+1] - 0.97 x[n], (N, 2T - 1)
        spec = torch.stft(x, N_FFT, hop_length=HOP_SAMPLES, win_length=WINDOW_SAMPLES, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)  # (N, 513, frames)
        power = spec.real ** 2 + spec.imag ** 2
        logmel = torch.log(self.mel @ power + LOG_OFFSET)  # (N, 128, frames)
        return ((logmel + NORM_SHIFT) / NORM_SCALE).unsqueeze(1)


# ----------------------------------------------------------------------------------- network

def round8(channels: float) -> int:
    """Nearest multiple of 8 (at least 8), one step up if that fell more than 10% below."""
    rounded = max(8, int(channels + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * channels else rounded


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            activation: type[nn.Module] | None = None) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=BN_EPS)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, round8(channels // 4))
        self.fc2 = nn.Linear(round8(channels // 4), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))  # (N, C)
        return x * gate[:, :, None, None]


class ChannelSE(nn.Module):
    """Holds one channel SE under the checkpoint's name (EfficientAT's concurrent-SE wrapper)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    def __init__(self, c_in, kernel, expanded, c_out, se, hardswish, stride):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        layers = [conv_bn(c_in, expanded, activation=act)] if expanded != c_in else []
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, activation=act))
        if se:
            layers.append(ChannelSE(expanded))
        layers.append(conv_bn(expanded, c_out))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV3(nn.Module):
    """log-mel (N, 1, 128, frames) -> logits (N, 527)."""

    def __init__(self, width: float = WIDTH, n_classes: int = N_CLASSES):
        super().__init__()
        layers = [conv_bn(1, round8(STEM_CHANNELS * width), 3, 2, activation=nn.Hardswish)]
        for c_in, k, exp, c_out, se, hs, s in BLOCKS:
            layers.append(InvertedResidual(round8(c_in * width), k, round8(exp * width), round8(c_out * width), se, hs, s))
        last_in = round8(BLOCKS[-1][3] * width)
        layers.append(conv_bn(last_in, LAST_CONV_FACTOR * last_in, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        head = round8(HEAD_CHANNELS * width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(LAST_CONV_FACTOR * last_in, head), nn.Hardswish(),
            nn.Dropout(DROPOUT), nn.Linear(head, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ----------------------------------------------------------------------------------- teacher

class EfficientATTeacher(nn.Module):
    """16 kHz audio (N, T) -> AudioSet probabilities (N, 527); tag_probs -> (N, len(TAGS)), NaN where unmapped."""

    def __init__(self, checkpoint_dir: str | Path):
        super().__init__()
        checkpoint_dir = Path(checkpoint_dir)
        self.frontend = MelFrontEnd()
        self.net = MobileNetV3()
        state = torch.load(checkpoint_dir / CHECKPOINT, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state, strict=True)
        self.eval()
        self.class_names = read_class_names(checkpoint_dir)
        index = {name: i for i, name in enumerate(self.class_names)}
        unknown = [n for names in AUDIOSET_TO_TAG.values() for n in names if n not in index]
        if unknown:
            raise ValueError(f"AUDIOSET_TO_TAG names classes not in {LABELS_CSV}: {unknown}")
        # (527, len(TAGS)) membership; a tag's prob is the max over its member classes.
        members = torch.zeros(N_CLASSES, len(TAGS), dtype=torch.bool)
        for t, tag in enumerate(TAGS):
            for name in AUDIOSET_TO_TAG.get(tag, ()):
                members[index[name], t] = True
        self.register_buffer("members", members, persistent=False)
        self.mapped = tuple(t for t in TAGS if t in AUDIOSET_TO_TAG)

    @torch.no_grad()
    def forward(self, audio_16k: torch.Tensor) -> torch.Tensor:
        """(N, T) float audio at 16 kHz in [-1, 1] -> (N, 527) sigmoid probabilities."""
        return torch.sigmoid(self.net(self.frontend(audio_16k)))

    @torch.no_grad()
    def tag_probs(self, audio_16k: torch.Tensor) -> torch.Tensor:
        """(N, T) -> (N, len(TAGS)) in TAGS order; NaN for tags with no AudioSet equivalent."""
        return self.classes_to_tags(self(audio_16k))

    def classes_to_tags(self, probs: torch.Tensor) -> torch.Tensor:
        """(N, 527) AudioSet probabilities -> (N, len(TAGS)), max over each tag's classes, NaN if none."""
        masked = torch.where(self.members, probs.unsqueeze(-1), torch.zeros(()))  # (N, 527, tags)
        out = masked.amax(dim=1)
        return torch.where(self.members.any(dim=0), out, torch.full((), math.nan))


# ----------------------------------------------------------------------------------- check on real clips

def evaluate_tags(teacher: EfficientATTeacher, data_root: str | Path, max_per_label: int | None = None,
                  split: str = "all", every_clip: bool = False) -> dict:
    """Top-1 over our mappable tags for the single-label tag clips (and speech/) of a shared-data
    manifest; split "val" or "train" keeps only that side of training's split (export/data/splits.py).
    every_clip: every clip of the manifest is a tag clip (a synthetic folder, export.data.synth_machines)."""
    from collections import defaultdict

    from export.data.audio import load_audio
    from export.evaluation.clips import in_group, select_clips, tag_source
    from export.labels import tag_name

    clips, groups = select_clips(Path(data_root).resolve(), split)
    by_label: dict[str, list[Path]] = defaultdict(list)
    for clip in clips:
        label = tag_name(clip.label)
        if label in AUDIOSET_TO_TAG and (every_clip or in_group(clip, groups, "tags") or label == "speech"):
            by_label[label].append(clip.path)
    hits: dict[str, list[bool]] = {}
    by_source: dict[str, list[bool]] = defaultdict(list)  # as export.evaluate's top1_by_source
    for label, paths in sorted(by_label.items()):
        hits[label] = []
        for path in paths[:max_per_label]:
            audio = torch.from_numpy(load_audio(path)).unsqueeze(0)
            tags = torch.nan_to_num(teacher.tag_probs(audio)[0], nan=-1.0)
            hits[label].append(TAGS[int(tags.argmax())] == label)
            by_source[tag_source(groups.get(path, ""))].append(hits[label][-1])
    per_label = {label: float(np.mean(h)) for label, h in hits.items()}
    return {
        "clips": sum(len(h) for h in hits.values()),
        "top1": float(np.mean([x for h in hits.values() for x in h])),
        "top1_balanced": float(np.mean(list(per_label.values()))),
        "per_label": per_label,
        "top1_by_source": {source: {"clips": len(h), "top1": float(np.mean(h))} for source, h in sorted(by_source.items())},
    }


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Our-tag top-1 of the EfficientAT teacher on shared-data clips.")
    parser.add_argument("--teacher", default="../shared/teachers/efficientat-mn04")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--max-per-label", type=int, default=None)
    parser.add_argument("--split", choices=("all", "train", "val"), default="all",
                        help="only this side of training's validation split")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every-clip", action="store_true",
                        help="every clip of --data is a tag clip, not only those under tags/ (synthetic folders)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = evaluate_tags(EfficientATTeacher(args.teacher), args.data, args.max_per_label, args.split, args.every_clip)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
