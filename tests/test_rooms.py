"""Image-source rooms (export/data/rooms.py); the evaluation's --room-rt60-s is tested in test_evaluate.py."""

from __future__ import annotations

import numpy as np
import pytest

from export.data.rooms import (SPEED_OF_SOUND_M_S, WALL_MARGIN_M, Room, Rooms, decay_time_s, direct_to_reverberant_db,
                               draw_room, impulse_response, room_bank)

SR = 16000


@pytest.mark.parametrize("rt60_s", [0.3, 0.6])
def test_a_room_decays_in_the_time_asked_with_its_direct_path_first(rt60_s):
    room = Room((5.0, 4.0, 2.8), (3.5, 2.0, 1.2), (1.5, 1.5, 1.0), rt60_s)
    rir = impulse_response(room, SR)
    assert len(rir) == int(rt60_s * SR) + 1
    assert rir[0] == pytest.approx(1.0)  # the direct path at sample 0, amplitude 1: a clip keeps its timing
    assert decay_time_s(rir, SR) == pytest.approx(rt60_s, rel=0.05)
    # Sabine's coefficient alone would ring ~1.4x longer in a shoebox: the refit is what makes the time right
    assert decay_time_s(impulse_response(room, SR, fits=0), SR) > 1.2 * rt60_s


def test_the_first_reflection_arrives_from_the_nearest_wall_by_the_geometry():
    # both 0.5 m above the floor, 1 m apart: the floor's mirror image is sqrt(1 + 1) m away, every other
    # wall's at least 2 m farther; nothing arrives between the direct path and it
    room = Room((6.0, 5.0, 3.0), (4.0, 2.5, 0.5), (3.0, 2.5, 0.5), 0.4)
    rir = impulse_response(room, SR)
    floor = round((np.sqrt(2.0) - 1.0) / SPEED_OF_SOUND_M_S * SR)
    assert np.flatnonzero(rir[1:])[0] + 1 == floor
    assert 0 < rir[floor] < 1 / np.sqrt(2.0)  # 1/distance of the direct path's, times a wall's reflection < 1


def test_farther_talkers_and_longer_rooms_are_heard_with_less_direct_sound():
    near = Room((5.0, 4.0, 2.8), (2.0, 2.0, 1.2), (1.5, 2.0, 1.2), 0.6)
    far = Room((5.0, 4.0, 2.8), (4.2, 2.0, 1.2), (1.0, 2.0, 1.2), 0.6)
    drier = Room((5.0, 4.0, 2.8), (4.2, 2.0, 1.2), (1.0, 2.0, 1.2), 0.3)
    drr = {name: direct_to_reverberant_db(impulse_response(r, SR)) for name, r in
           (("near", near), ("far", far), ("drier", drier))}
    assert drr["near"] > drr["far"] + 6  # 0.5 m against 3.2 m
    assert drr["drier"] > drr["far"] + 3


def test_drawn_rooms_keep_their_talker_at_the_asked_distance_inside_the_walls():
    rng = np.random.default_rng(0)
    for _ in range(50):
        room = draw_room(rng, 0.5, (1.0, 4.0))
        assert 1.0 <= room.distance_m <= 4.0
        for point in (room.source_m, room.mic_m):
            assert all(WALL_MARGIN_M <= p <= s - WALL_MARGIN_M for p, s in zip(point, room.size_m))


def test_playing_in_a_room_keeps_length_and_level_and_is_the_same_for_the_same_name():
    rooms = Rooms(0.5, (1.0, 3.0), SR, seed=0, count=4)
    assert len({len(r) for r in rooms.responses}) == 1 and len(rooms.rooms) == 4
    rng = np.random.default_rng(1)
    word = np.concatenate([np.zeros(1600), 0.2 * rng.standard_normal(4000), np.zeros(6400)]).astype(np.float32)
    wet = rooms.play(word, "kws/yes/a.flac")
    assert wet.dtype == np.float32 and len(wet) == len(word)
    rms = [np.sqrt(np.mean(x.astype(np.float64) ** 2)) for x in (wet, word)]
    assert rms[0] == pytest.approx(rms[1], rel=1e-4)
    assert np.abs(wet[:1600]).max() < 1e-6  # causal: nothing before the sound (FFT rounding aside)
    assert np.abs(wet[5600:8000]).max() > 0.01  # the room rings on after it
    assert np.array_equal(wet, rooms.play(word, "kws/yes/a.flac"))
    assert np.array_equal(wet, Rooms(0.5, (1.0, 3.0), SR, seed=0, count=4).play(word, "kws/yes/a.flac"))
    summary = rooms.summary()
    assert summary["rooms"] == 4 and summary["rt60_s"] == 0.5
    assert summary["direct_to_reverberant_db"]["min"] <= summary["direct_to_reverberant_db"]["median"] < 0


def test_training_bank_spreads_its_rooms_over_the_times_asked_and_shares_none_with_the_evaluation():
    bank = room_bank((0.3, 0.6), (1.0, 4.0), SR, count=4)
    assert len(bank) == 4
    times = [decay_time_s(rir, SR) for rir in bank]
    assert times == pytest.approx([0.3, 0.4, 0.5, 0.6], rel=0.05)  # evenly spread, each as asked
    assert all(rir[0] == pytest.approx(1.0) for rir in bank)
    assert room_bank((0.3, 0.6), (1.0, 4.0), SR, count=4) is bank  # built once per process
    # the evaluation's rooms at the bank's first time come from another random stream: none is the bank's room
    evaluation = Rooms(0.3, (1.0, 4.0), SR, seed=0, count=4).responses
    assert not any(len(e) == len(bank[0]) and np.allclose(e, bank[0]) for e in evaluation)


def test_training_kind_of_room_keeps_each_shoebox_time_and_ratio_but_not_its_reflections():
    shoebox = Rooms(0.5, (1.0, 4.0), SR, seed=0, count=4)
    tail = Rooms(0.5, (1.0, 4.0), SR, seed=0, count=4, model="tail")
    assert tail.rooms == shoebox.rooms and tail.summary()["model"] == "tail" and shoebox.summary()["model"] == "shoebox"
    for a, b in zip(shoebox.responses, tail.responses):
        assert direct_to_reverberant_db(b) == pytest.approx(direct_to_reverberant_db(a), abs=0.01)
        assert 0.7 * 0.5 <= decay_time_s(b, SR) <= 1.05 * 0.5  # its early reflections shorten the T20 measured
        assert b[0] == pytest.approx(1.0)
        n = min(len(a), len(b))
        assert np.corrcoef(a[1:n], b[1:n])[0, 1] < 0.2  # another room's fine structure: a noise tail, no mirrors
    with pytest.raises(ValueError, match="room model 'hall'"):
        Rooms(0.5, (1.0, 4.0), SR, model="hall")
