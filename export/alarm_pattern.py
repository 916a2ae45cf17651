"""A smoke/CO alarm detector that knows the alarm patterns instead of learning them: a matched filter.

Smoke alarms sound the temporal-three pattern (ISO 8201, NFPA 72, UL 217: 3 x (0.5 s on, 0.5 s off),
1.5 s off, each time within +-10 %) and CO alarms temporal-four (4 x (0.1 s on, 0.1 s off), 5 s off),
on a piezo horn anywhere from about 2.3 to 4.6 kHz, or, where people sleep, a 520 Hz square wave. A
learned tagger hears the pitches it was trained on (the default model: 2.9-3.5 kHz, docs/data.md); this
detector hears the pattern at any of those pitches, and nothing else.

Per 20 ms frame (32 ms Hann window, 31.25 Hz bins) and 250 Hz sub-band: how tonal its strongest bin is
(how far it stands above its neighbours 3-8 bins away, and what share of the whole frame's power it
holds: a horn's tone stands out by 20-40 dB and holds about a third, speech harmonics and a note's
overtone in music far less) and how loud it is. The state keeps the last 6 s of both. A frame is "on"
in a sub-band when it is tonal there and within 6-12 dB of the loudest frame of that sub-band in the
history (a tone's reverberant tail in a gap is a tone too, but a fainter one); in the gaps between beeps,
where a room's tail lingers longest, 4-8 dB below. Each hop, every template (pattern x time scale
0.85-1.15 x where the group ends in the last 0.6 s) scores min(mean "on" over each beep) - max(mean
"on" over each gap and each 0.3 s piece of the 1.2 s pause before the group and of the gap plus 0.6 s
after it): near 1 only when every beep sounds and everything between and around them is quiet at that
pitch, so steady beeping, a held tone and a microwave's four beeps score low. Segments are eroded by 15 % at each end, which absorbs +-10 % timing per device. The
best score over sub-bands and templates, held for hold_s (a group matches only while its end is within
slack_s of the hop's end: a single hop at 480 ms, too short for the service's smoother), becomes the
logit. The numbers are the alarm standards' and those measured in models/streamd-alarm.md; nothing is
learned.

The group is confirmed once the quiet after it has passed: about 1.2 s after its last beep, so a group
cut short (an alarm heard from its second beep on) is not one, and the next whole group, one cycle
later, is.

Not a general tagger: its only label is ``smoke_alarm``. The service runs it beside the default model.
It has no learned weights, so there is nothing to train: the file is built from the numbers below and
checked against torch at every hop it accepts, as export.export_model checks trained models:

    python -m export.alarm_pattern --out models/streamd-alarm.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from export.export_model import parity_table
from export.onnx_export import export_and_check, model_info
from export.streaming import ModelCard, StreamingModel
from streamd.contract import ContractError, Label
from streamd.model import load_model

ALARM_LABELS = (Label("smoke_alarm", "tag"),)

# pattern -> (beeps, on_s, gap_s) of one group; pauses come before and after it
PATTERNS = {"t3": (3, 0.5, 0.5), "t4": (4, 0.1, 0.1)}


@dataclass(frozen=True)
class AlarmPatternConfig:
    sample_rate_hz: int = 16000
    frame_samples: int = 512  # 32 ms Hann window: 31.25 Hz bins
    step_samples: int = 320  # 20 ms between frames: a temporal-four beep is 5 frames
    bands_hz: tuple = ((2300.0, 4600.0), (440.0, 620.0))  # piezo horns; the low-frequency alarm's 520 Hz
    band_bins: int = 8  # sub-band width (250 Hz): one horn's pitch stays in one from beep to beep
    guard_bins: int = 2  # a Hann window's main lobe: bins within this of a tone are the tone
    context_bins: int = 8  # neighbours up to this far (beyond the guard) are the background
    contrast_db: tuple = (10.0, 20.0)  # tone-to-neighbours contrast at which "tonal" ramps from 0 to 1
    share_db: tuple = (-20.0, -12.0)  # the tone's bin against the whole frame's power: 0 .. 1 (a lone tone: -5 dB)
    below_peak_db: tuple = (6.0, 12.0)  # a tone this far below the sub-band's loudest is fully on .. off
    gap_below_peak_db: tuple = (4.0, 8.0)  # the same for the gaps between beeps, where a room's tail lingers
    history_s: float = 6.0
    scales: tuple = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)  # +-10 % per device, and some
    pre_pause_s: float = 1.2  # quiet before a group (temporal-three pauses 1.5 s +-10 %, temporal-four 5 s)
    post_pause_s: float = 0.6  # ... and after it for a gap and this much more: steady beeping is no alarm
    piece_s: float = 0.3  # pauses are judged in pieces this long or shorter
    slack_s: float = 0.6  # a group may end anywhere this far before the hop's end (>= the longest hop)
    slack_step_frames: int = 2  # ... on a grid of this many frames (the erosion absorbs the rest)
    erode: float = 0.15  # fraction of each segment ignored at each end
    score_centre: float = 0.7  # the score where the probability is 0.5
    score_gain: float = 14.0  # logit per unit of score
    hold_s: float = 0.5  # a score is held this long (>= the longest hop, so every match lasts two hops or more)
    hop_samples: tuple = (2560, 5120, 7680)  # 160, 320, 480 ms


def ramp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """0 at or below lo, 1 at or above hi, linear between."""
    return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)


class AlarmPatternModel(StreamingModel):
    """audio hops -> logit of smoke_alarm; state: carried samples, the sub-bands' recent tonality and levels,
    the held score and its age."""

    def __init__(self, labels: tuple[Label, ...] = ALARM_LABELS, cfg: AlarmPatternConfig = AlarmPatternConfig()):
        super().__init__()
        if tuple(labels) != ALARM_LABELS:
            raise ValueError(f"the alarm pattern detector has one label, {ALARM_LABELS[0]}; got {labels}")
        if any(h % cfg.step_samples or h / cfg.sample_rate_hz > cfg.slack_s for h in cfg.hop_samples):
            raise ValueError(f"hops must be whole frames and no longer than slack_s: {cfg.hop_samples}")
        self.cfg = cfg
        self.card = ModelCard(family="alarm", labels=ALARM_LABELS, sample_rate_hz=cfg.sample_rate_hz,
                              hop_samples=tuple(cfg.hop_samples), receptive_field_s=cfg.history_s)
        bin_hz = cfg.sample_rate_hz / cfg.frame_samples
        reach = cfg.guard_bins + cfg.context_bins
        # bins whose contrast is needed, per band, and the DFT rows that compute them and their neighbours
        ranges = [(math.floor(lo / bin_hz), math.ceil(hi / bin_hz)) for lo, hi in cfg.bands_hz]  # first, last bin
        rows = torch.cat([torch.arange(a - reach, b + reach + 1) for a, b in ranges])
        window = torch.hann_window(cfg.frame_samples, periodic=True, dtype=torch.float64)
        n = torch.arange(cfg.frame_samples, dtype=torch.float64)
        phase = 2.0 * math.pi * rows[:, None].double() * n[None, :] / cfg.frame_samples
        kernels = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window
        kernels = kernels - kernels.mean(dim=1, keepdim=True)  # a DC offset is no tone
        self.register_buffer("dft_kernels", kernels.float().unsqueeze(1), persistent=False)
        self.register_buffer("window_squared", (window * window).float().view(1, 1, -1), persistent=False)
        offsets = torch.arange(-reach, reach + 1).abs()
        neighbours = ((offsets > cfg.guard_bins) & (offsets <= reach)).float()
        self.register_buffer("neighbour_kernel", (neighbours / neighbours.sum()).view(1, 1, -1), persistent=False)
        # where each needed bin sits among the DFT rows (its neighbours are the rows around it), and which of
        # those bins each sub-band takes the max of: half-overlapping sub-bands of band_bins, a short range one
        centres, sub_bands, row = [], [], 0
        for a, b in ranges:
            n_bins, first = b - a + 1, len(centres)
            centres += range(row + reach, row + reach + n_bins)
            row += n_bins + 2 * reach
            width = min(cfg.band_bins, n_bins)
            sub_bands += [[first + min(j + i, n_bins - 1) for i in range(cfg.band_bins)]
                          for j in range(0, n_bins - width + 1, cfg.band_bins // 2)]
        self.register_buffer("centre_rows", torch.tensor(centres), persistent=False)
        self.register_buffer("sub_band_bins", torch.tensor(sub_bands).reshape(-1), persistent=False)
        self.n_frames = round(cfg.history_s * cfg.sample_rate_hz / cfg.step_samples)
        self.n_bands = len(sub_bands)
        for kind, spans in zip(("beep", "pause", "gap"), self._templates()):
            self.register_buffer(f"{kind}_starts", spans[..., 0].reshape(-1), persistent=False)
            self.register_buffer(f"{kind}_ends", spans[..., 1].reshape(-1), persistent=False)
            self.register_buffer(f"{kind}_per_frame", 1.0 / (spans[..., 1] - spans[..., 0]).float().unsqueeze(-1),
                                 persistent=False)

    @property
    def carry_samples(self) -> int:
        return self.cfg.frame_samples - self.cfg.step_samples

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"carry": (self.carry_samples,), "tonal_history": (self.n_bands, self.n_frames),
                "level_history": (self.n_bands, self.n_frames), "held_score": (1,), "held_age_s": (1,)}

    def _templates(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The beeps, the pauses around the group and the gaps between its beeps [templates, spans, 2] of
        every template of every pattern, as (start, end) indices into the cumulative sum of the history (0 =
        the oldest frame's start, n_frames = the newest frame's end). Patterns with fewer spans repeat their
        first one, which leaves a min or max over the spans as it was."""
        cfg = self.cfg
        frame_s = cfg.step_samples / cfg.sample_rate_hz
        ends = range(0, round(cfg.slack_s / frame_s) + 1, cfg.slack_step_frames)  # frames between the end and now
        out = {}
        for name, (beeps, on_s, gap_s) in PATTERNS.items():
            beep_rows, pause_rows, gap_rows = [], [], []
            # a pause is judged in pieces of at most piece_s, so that one beep inside it cannot hide in its mean
            n_before = math.ceil(cfg.pre_pause_s / cfg.piece_s)
            n_after = math.ceil((gap_s + cfg.post_pause_s) / cfg.piece_s)
            for scale in cfg.scales:
                on_f, gap_f = on_s * scale / frame_s, gap_s * scale / frame_s
                group_f = beeps * on_f + (beeps - 1) * gap_f
                after_f = gap_f + cfg.post_pause_s / frame_s  # where a next beep of steady beeping would be
                for late in ends:
                    start = self.n_frames - late - after_f - group_f  # the group's first frame, fractional
                    if start - cfg.pre_pause_s / frame_s < 0:
                        raise ValueError(f"history_s {cfg.history_s} is too short for {name} at scale {scale}")
                    beep_spans = [(start + k * (on_f + gap_f), start + k * (on_f + gap_f) + on_f) for k in range(beeps)]
                    gap_spans = [(b, b + gap_f) for _, b in beep_spans[:-1]]
                    before = self._pieces(start - cfg.pre_pause_s / frame_s, start, n_before, left=False)
                    after = self._pieces(beep_spans[-1][1], beep_spans[-1][1] + after_f, n_after, right=False)
                    beep_rows.append([self._eroded(a, b) for a, b in beep_spans])
                    pause_rows.append(before + after)
                    gap_rows.append([self._eroded(a, b) for a, b in gap_spans])
            out[name] = (beep_rows, pause_rows, gap_rows)

        def padded(rows_per_pattern: list[list[list[tuple[int, int]]]]) -> torch.Tensor:
            width = max(len(r[0]) for r in rows_per_pattern)
            return torch.tensor([row + row[:1] * (width - len(row)) for rows in rows_per_pattern for row in rows])

        return tuple(padded([rows[k] for rows in out.values()]) for k in range(3))

    def _pieces(self, a: float, b: float, n: int, left: bool = True, right: bool = True) -> list[tuple[int, int]]:
        """[a, b) eroded as _eroded does, then cut into n equal pieces."""
        lo, hi = self._eroded(a, b, left, right)
        edges = [lo + (hi - lo) * k / n for k in range(n + 1)]
        return [(round(x), max(round(y), round(x) + 1)) for x, y in zip(edges, edges[1:])]

    def _eroded(self, a: float, b: float, left: bool = True, right: bool = True) -> tuple[int, int]:
        """[a, b) in frames with erode x its length (at least one frame) dropped at the ends asked for."""
        cut = max(1.0, self.cfg.erode * (b - a)) if b - a > 3 else 0.0
        lo, hi = round(a + (cut if left else 0.0)), round(b - (cut if right else 0.0))
        return lo, max(hi, lo + 1)

    def band_values(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, carry + k * step] -> per sub-band and frame [B, bands, k]: how tonal (0..1), and the
        level of its loudest bin (dB above the 1e-10 floor of the power)."""
        cfg = self.cfg
        spec = torch.conv1d(audio.unsqueeze(1), self.dft_kernels, stride=cfg.step_samples)  # [B, 2 rows, k]
        re, im = spec.chunk(2, dim=1)
        power = (re * re + im * im).transpose(1, 2)  # [B, k, rows]
        batch, frames, _ = power.shape
        # all of each frame's power but its mean (a microphone's DC offset), in the bins' scale (Parseval):
        # a lone pure tone's bin holds about a third of it
        w2 = self.window_squared
        energy = torch.conv1d((audio * audio).unsqueeze(1), w2, stride=cfg.step_samples)
        mean = torch.conv1d(audio.unsqueeze(1), w2, stride=cfg.step_samples)
        total = (cfg.frame_samples * (energy - mean * mean / w2.sum())).clamp(min=0.0).reshape(batch * frames, 1)
        reach = cfg.guard_bins + cfg.context_bins
        power = power.reshape(batch * frames, 1, -1)
        background = F.conv1d(power, self.neighbour_kernel).squeeze(1)  # centred on rows reach .. rows - reach
        power = power.squeeze(1)
        own = power.index_select(1, self.centre_rows)  # [B*k, bins]
        background = background.index_select(1, self.centre_rows - reach)
        contrast_db = 10.0 * torch.log10((own + 1e-10) / (background + 1e-10))
        share_db = 10.0 * torch.log10((own + 1e-10) / (total + 1e-10))
        tone = ramp(contrast_db, *cfg.contrast_db) * ramp(share_db, *cfg.share_db)
        # dB above the power floor, so that the all-zero state (a stream's start) holds silence, not a loud past
        level_db = 10.0 * torch.log10(own + 1e-10) + 100.0

        def per_sub_band(x: torch.Tensor) -> torch.Tensor:  # [B*k, bins] -> max over each sub-band [B, bands, k]
            x = x.index_select(1, self.sub_band_bins).reshape(batch, frames, self.n_bands, -1).amax(dim=3)
            return x.transpose(1, 2)

        return per_sub_band(tone), per_sub_band(level_db)

    @staticmethod
    def on_values(tonal: torch.Tensor, below_db: torch.Tensor, below_peak_db: tuple) -> torch.Tensor:
        """A tone at most full_db below the sub-band's loudest frame in the history (below_db) is on; one
        empty_db below is off: a tone's reverberant tail in a gap is still a tone, but a fainter one."""
        full_db, empty_db = below_peak_db
        return tonal * ramp(-below_db, -empty_db, -full_db)

    def pattern_score(self, on: torch.Tensor, on_in_gaps: torch.Tensor) -> torch.Tensor:
        """"on" [B, bands, n_frames], as beeps and pauses take it and as the gaps between beeps take it ->
        best template score [B] (in -1..1)."""
        def cumulative(x: torch.Tensor) -> torch.Tensor:  # [B, n_frames + 1, bands]: frames first, so that each
            return F.pad(torch.cumsum(x, dim=2), (1, 0)).transpose(1, 2)  # gathered index is one contiguous row

        csum, gap_csum = cumulative(on), cumulative(on_in_gaps)
        beeps = self._segment_means(csum, "beep").amin(dim=2)  # weakest beep [B, templates, bands]
        quiet = torch.maximum(self._segment_means(csum, "pause").amax(dim=2),  # loudest quiet part
                              self._segment_means(gap_csum, "gap").amax(dim=2))
        return (beeps - quiet).amax(dim=(1, 2))

    def _segment_means(self, csum: torch.Tensor, kind: str) -> torch.Tensor:
        """csum [B, n + 1, bands] -> mean over each "beep", "pause" or "gap" span of every template
        [B, templates, spans, bands]."""
        starts, ends = getattr(self, f"{kind}_starts"), getattr(self, f"{kind}_ends")
        per_frame = getattr(self, f"{kind}_per_frame")  # [templates, spans, 1]
        batch, _, bands = csum.shape
        total = csum.index_select(1, ends) - csum.index_select(1, starts)
        return total.reshape(batch, *per_frame.shape[:2], bands) * per_frame

    def step(self, audio, state):
        cfg = self.cfg
        carry, tonal_history, level_history, held_score, held_age_s = state
        joined = torch.cat([carry, audio], dim=1)
        tonal, level_db = self.band_values(joined)
        tonal_history = torch.cat([tonal_history, tonal], dim=2)[:, :, -self.n_frames:]
        level_history = torch.cat([level_history, level_db], dim=2)[:, :, -self.n_frames:]
        below_db = level_history.amax(dim=2, keepdim=True) - level_history
        score = self.pattern_score(self.on_values(tonal_history, below_db, cfg.below_peak_db),
                                   self.on_values(tonal_history, below_db, cfg.gap_below_peak_db)).unsqueeze(1)
        # A group matches while its end is within slack_s of the hop's end: a single hop at the longest hop,
        # too short for a smoother's window. The best score is held hold_s, then the hop's own takes over.
        held_age_s = held_age_s + tonal.shape[2] * cfg.step_samples / cfg.sample_rate_hz
        fresh = (score >= held_score) | (held_age_s > cfg.hold_s)
        held_score = torch.where(fresh, score, held_score)
        held_age_s = torch.where(fresh, torch.zeros_like(held_age_s), held_age_s)
        logit = cfg.score_gain * (held_score - cfg.score_centre)
        return logit, [joined[:, -self.carry_samples:], tonal_history, level_history, held_score, held_age_s]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.alarm_pattern",
                                     description="Write the alarm pattern detector as a contract ONNX file.")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    args = parser.parse_args(argv)

    cfg = AlarmPatternConfig()
    model = AlarmPatternModel(ALARM_LABELS, cfg).eval()
    info = model_info(model, provenance={"data": "none: a matched filter for the temporal-three and temporal-four "
                                                  "alarm patterns, no learned weights",
                                         "recipe": "python -m export.alarm_pattern"},
                      licence="Apache-2.0", extra={"parameters": "0", "config": json.dumps(asdict(cfg))})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        reports = export_and_check(model, args.out, info, seconds=12.0)
    except (AssertionError, ContractError) as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 1
    loaded = load_model(args.out)
    print(f"wrote {args.out}: family alarm, 1 label, hops {list(info.hop_samples)}, "
          f"state {loaded.state_bytes} bytes, {args.out.stat().st_size} bytes on disk")
    print("ONNX vs torch, stepped from a zero state over synthetic and random audio:")
    print(parity_table(reports, info.sample_rate_hz))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
