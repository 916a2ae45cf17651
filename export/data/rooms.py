"""Rooms of the image-source kind (Allen & Berkley 1979): a shoebox whose walls reflect sound, a source and a
microphone in it, and the impulse response between them as a sum of the mirror images of the source.

This is another room model than the one training draws from (export.data.augment.room_impulse_response: a
direct path, a few early reflections and a noise tail at a drawn direct-to-reverberant ratio), so the
evaluation's rooms (``export.evaluate --room-rt60-s``) are rooms the model never heard: their reflections
follow from the geometry, and the direct-to-reverberant ratio falls with the distance as it does in a house.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from export.data.augment import reverberate, room_impulse_response

SPEED_OF_SOUND_M_S = 343.0
WALL_MARGIN_M = 0.5  # source and microphone stay this far from every wall
DISTANCE_M = (1.0, 4.0)  # the evaluation's talker, from the microphone: across a living room
BANK_ROOMS = 128  # training's shoebox rooms (room_bank), drawn once per process
BANK_STREAM = 7161  # the bank's random stream, apart from the evaluation's (Rooms: 7160)
MODELS = ("shoebox", "tail")  # Rooms(model=...): image-source rooms, or training's kind at their times and ratios


@dataclass(frozen=True)
class Room:
    size_m: tuple[float, float, float]
    source_m: tuple[float, float, float]
    mic_m: tuple[float, float, float]
    rt60_s: float

    @property
    def distance_m(self) -> float:
        return float(np.linalg.norm(np.subtract(self.source_m, self.mic_m)))


def wall_reflection(size_m: tuple[float, float, float], rt60_s: float) -> float:
    """The pressure reflection coefficient of every wall that gives the room rt60_s by Sabine's formula."""
    lx, ly, lz = size_m
    volume, surface = lx * ly * lz, 2 * (lx * ly + lx * lz + ly * lz)
    absorption = min(0.161 * volume / (surface * rt60_s), 1.0)
    return float(np.sqrt(1.0 - absorption))


def decay_time_s(rir: np.ndarray, sample_rate_hz: int) -> float:
    """The reverberation time measured as one measures a room: the time the backward-integrated energy
    (Schroeder) takes from -5 to -25 dB, times three (T20)."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    db = 10 * np.log10(energy / energy[0] + 1e-30)
    return 3.0 * (int(np.argmax(db < -25)) - int(np.argmax(db < -5))) / sample_rate_hz


def impulse_response(room: Room, sample_rate_hz: int, fits: int = 3) -> np.ndarray:
    """The room's impulse response from source to microphone, rt60_s long (-60 dB), its direct path at
    sample 0 with amplitude 1 (a clip played through it keeps its timing). Each mirror image of the source
    arrives after its distance at the speed of sound, scaled by 1/distance and by the wall reflection
    coefficient once per wall it was mirrored in; arrivals are rounded to the nearest sample.

    Sabine's coefficient leaves a shoebox ringing longer than asked (sound running along one axis meets few
    walls), so the coefficient is refitted fits times until the measured decay (decay_time_s) is rt60_s."""
    beta = wall_reflection(room.size_m, room.rt60_s)
    for _ in range(fits):  # energy decays at a rate ~ -ln(beta): scale it by measured / asked
        beta = beta ** (decay_time_s(_mirrors(room, sample_rate_hz, beta), sample_rate_hz) / room.rt60_s)
    return _mirrors(room, sample_rate_hz, beta)


def _mirrors(room: Room, sample_rate_hz: int, beta: float) -> np.ndarray:
    size, source, mic = (np.asarray(v, np.float64) for v in (room.size_m, room.source_m, room.mic_m))
    reach_m = SPEED_OF_SOUND_M_S * room.rt60_s + room.distance_m
    orders = [np.arange(-n, n + 1) for n in np.ceil(reach_m / (2 * size)).astype(int) + 1]
    n_samples = int(room.rt60_s * sample_rate_hz) + 1
    direct_s = room.distance_m / SPEED_OF_SOUND_M_S
    rir = np.zeros(n_samples)
    for q in np.ndindex(2, 2, 2):  # the source mirrored (1) or not (0) in each axis
        axes = []
        for axis in range(3):
            n = orders[axis]
            position = (1 - 2 * q[axis]) * source[axis] + 2 * n * size[axis]
            axes.append((position - mic[axis], np.abs(n - q[axis]) + np.abs(n)))
        (dx, rx), (dy, ry), (dz, rz) = axes
        distance = np.sqrt(dx[:, None, None] ** 2 + dy[None, :, None] ** 2 + dz[None, None, :] ** 2)
        walls = rx[:, None, None] + ry[None, :, None] + rz[None, None, :]
        delay = np.rint((distance / SPEED_OF_SOUND_M_S - direct_s) * sample_rate_hz).astype(np.int64)
        inside = delay < n_samples
        gain = beta ** walls[inside] * room.distance_m / distance[inside]
        rir += np.bincount(delay[inside], weights=gain, minlength=n_samples)
    return rir.astype(np.float32)


def direct_to_reverberant_db(rir: np.ndarray) -> float:
    """Energy of the direct path (sample 0) against all that follows it, in dB."""
    rest = float(np.sum(rir[1:].astype(np.float64) ** 2))
    return float(10 * np.log10(rir[0] ** 2 / max(rest, 1e-20)))


def draw_room(rng: np.random.Generator, rt60_s: float, distance_m: tuple[float, float]) -> Room:
    """A living room or kitchen: 3-7 x 3-6 x 2.4-3.2 m, the microphone anywhere WALL_MARGIN_M from the walls, the
    source distance_m from it in a random direction (drawn again until it fits the room too)."""
    while True:
        size = (rng.uniform(3.0, 7.0), rng.uniform(3.0, 6.0), rng.uniform(2.4, 3.2))
        mic = np.array([rng.uniform(WALL_MARGIN_M, s - WALL_MARGIN_M) for s in size])
        direction = rng.standard_normal(3)
        direction[2] *= 0.3  # people talk at about the height of a device on a shelf
        source = mic + rng.uniform(*distance_m) * direction / np.linalg.norm(direction)
        if all(WALL_MARGIN_M <= p <= s - WALL_MARGIN_M for p, s in zip(source, size)):
            return Room(tuple(size), tuple(source), tuple(mic), rt60_s)


def tail_like(rir: np.ndarray, rt60_s: float, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Training's kind of room (augment.room_impulse_response: a few early reflections and a noise tail) with
    the reverberation time rt60_s and rir's direct-to-reverberant ratio: the same room heard without its geometry."""
    tail = room_impulse_response(rt60_s, sample_rate_hz, rng)
    tail[1:] *= np.float32(10 ** ((direct_to_reverberant_db(tail) - direct_to_reverberant_db(rir)) / 20))
    return tail


@functools.lru_cache(maxsize=4)
def room_bank(rt60_s: tuple[float, float], distance_m: tuple[float, float], sample_rate_hz: int,
              count: int = BANK_ROOMS, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Impulse responses of count drawn rooms for training (scene room_model "shoebox"): their reverberation times
    evenly spread over rt60_s, each room and talker drawn as the evaluation draws them (draw_room) but from another
    random stream, so no room is one the evaluation plays. ~0.1 s a room, so built once and kept."""
    rng = np.random.default_rng([seed, BANK_STREAM])
    rt60s = np.linspace(*rt60_s, count)
    return tuple(impulse_response(draw_room(rng, float(t), distance_m), sample_rate_hz) for t in rt60s)


class Rooms:
    """A fixed set of drawn rooms (count of them, one rt60_s, sources distance_m from the microphone) and the
    audio played in one of them: each clip in the room its name picks, so every run hears a clip alike."""

    def __init__(self, rt60_s: float, distance_m: tuple[float, float], sample_rate_hz: int, seed: int = 0,
                 count: int = 16, model: str = "shoebox"):
        if model not in MODELS:
            raise ValueError(f"room model {model!r} is not one of {', '.join(MODELS)}")
        rng = np.random.default_rng([seed, 7160])
        self.model = model
        self.rooms = [draw_room(rng, rt60_s, distance_m) for _ in range(count)]
        self.responses = [impulse_response(room, sample_rate_hz) for room in self.rooms]
        if model == "tail":  # each room as training's model makes one, at the shoebox's time and ratio
            self.responses = [tail_like(rir, rt60_s, sample_rate_hz, rng) for rir in self.responses]

    def play(self, audio: np.ndarray, name: str) -> np.ndarray:
        """audio as the microphone hears it in the room for name: same length, RMS kept (the level is
        --gain-db's to change), the tail past the end cut as training's reverberate cuts it."""
        rir = self.responses[sum(name.encode()) % len(self.responses)]
        return np.clip(reverberate(audio, rir), -1.0, 1.0)

    def summary(self) -> dict:
        drr = [direct_to_reverberant_db(r) for r in self.responses]
        return {"rooms": len(self.rooms), "model": self.model, "rt60_s": self.rooms[0].rt60_s,
                "distance_m": [round(min(r.distance_m for r in self.rooms), 2),
                               round(max(r.distance_m for r in self.rooms), 2)],
                "direct_to_reverberant_db": {"median": round(float(np.median(drr)), 1),
                                             "min": round(min(drr), 1), "max": round(max(drr), 1)}}
