"""Detection clips: pre-roll from the ring, post-roll awaited, sidecar, bounded by count and bytes."""

import json
import os
from pathlib import Path

import numpy as np
import soundfile

from streamd.clips import ClipSaver
from streamd.ring import RingBuffer

SR = 16000


def ramp_ring(seconds: float, capacity_s: float = 10.0) -> RingBuffer:
    ring = RingBuffer(int(capacity_s * SR))
    ring.write((np.arange(int(seconds * SR)) % 1000 / 1000.0).astype(np.float32))
    return ring


def test_clip_waits_for_post_roll_and_holds_the_right_samples(tmp_path):
    ring = ramp_ring(2.0)
    saver = ClipSaver(tmp_path, SR, pre_roll_s=1.0, post_roll_s=0.5, max_count=10, max_bytes=10**8)
    saver.request(ring, 2 * SR, "a-yes", b'{"seq":1}')
    assert saver.service() == 0  # the post-roll has not arrived
    ring.write(np.zeros(SR // 2, np.float32))
    assert saver.service() == 1
    audio, rate = soundfile.read(tmp_path / "a-yes.wav", dtype="float32")
    assert rate == SR and len(audio) == int(1.5 * SR)
    expected = np.concatenate([(np.arange(SR, 2 * SR) % 1000 / 1000.0), np.zeros(SR // 2)])
    assert np.abs(audio - expected).max() < 1 / 32767 + 1e-6
    assert json.loads((tmp_path / "a-yes.json").read_text()) == {"seq": 1}


def test_a_tag_clip_holds_its_whole_event_from_pre_roll_before_its_start(tmp_path):
    ring = ramp_ring(3.0)
    saver = ClipSaver(tmp_path, SR, pre_roll_s=0.5, post_roll_s=0.5, max_count=10, max_bytes=10**8)
    saver.request(ring, 3 * SR, "t-dog", b"{}", start_samples=SR)  # a tag from 1 s to 3 s
    ring.write(np.zeros(SR // 4, np.float32))
    assert saver.service() == 0  # its end's post-roll has not arrived
    ring.write(np.zeros(SR // 4, np.float32))
    assert saver.service() == 1
    audio = soundfile.read(tmp_path / "t-dog.wav", dtype="float32")[0]
    expected = np.concatenate([np.arange(SR // 2, 3 * SR) % 1000 / 1000.0, np.zeros(SR // 2)])
    assert len(audio) == 3 * SR and np.abs(audio - expected).max() < 1 / 32767 + 1e-6


def ramp(start_s: float, end_s: float) -> np.ndarray:
    return (np.arange(int(start_s * SR), int(end_s * SR)) % 1000 / 1000.0).astype(np.float32)


def test_an_open_clip_holds_a_tag_longer_than_the_ring_and_ends_where_it_is_closed(tmp_path):
    """A tag's clip is opened at its start and copied as the audio arrives, so a 6 s event is whole though the ring
    holds 2 s; closed when the tag's end is published (later: hold_s), it ends post-roll after the tag's end."""
    ring = RingBuffer(2 * SR)
    ring.write(ramp(0.0, 1.5))
    saver = ClipSaver(tmp_path, SR, pre_roll_s=0.5, post_roll_s=0.5, max_count=10, max_bytes=10**8)
    saver.open(("mic", "m", "dog"), ring, start_samples=SR)  # a tag that began at 1 s
    for t in np.arange(1.5, 9.0, 0.5):
        ring.write(ramp(t, t + 0.5))
        assert saver.service() == 0
    assert saver.is_open(("mic", "m", "dog")) and not saver.is_open(("mic", "m", "cat"))
    saver.close(("mic", "m", "dog"), ring, 7 * SR, "t-dog", b"{}", start_samples=SR)  # ended at 7 s
    assert not saver.is_open(("mic", "m", "dog"))  # closed: waits to be written
    assert saver.service() == 1  # its post-roll had arrived already
    audio = soundfile.read(tmp_path / "t-dog.wav", dtype="float32")[0]
    assert len(audio) == 7 * SR and np.abs(audio - ramp(0.5, 7.5)).max() < 1 / 32767 + 1e-6


def test_an_open_clip_keeps_its_last_max_clip_s_and_one_never_closed_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr("streamd.clips.MAX_CLIP_S", 3.0)
    ring = ramp_ring(1.0)
    saver = ClipSaver(tmp_path, SR, pre_roll_s=0.5, post_roll_s=0.0, max_count=10, max_bytes=10**8)
    saver.open(("mic", "m", "siren"), ring, start_samples=SR // 2)
    saver.open(("mic", "m", "dog"), ring, start_samples=SR // 2)
    for t in np.arange(1.0, 6.0, 0.5):
        ring.write(ramp(t, t + 0.5))
        saver.service()
    saver.close(("mic", "m", "siren"), ring, 6 * SR, "t-siren", b"{}", start_samples=SR // 2)
    saver.close(("mic", "m", "cat"), ring, 6 * SR, "t-cat", b"{}", start_samples=5 * SR)  # never opened: the ring's
    assert saver.service(finishing=True) == 2
    siren = soundfile.read(tmp_path / "t-siren.wav", dtype="float32")[0]
    assert len(siren) == 3 * SR and np.abs(siren - ramp(3.0, 6.0)).max() < 1 / 32767 + 1e-6  # its last 3 s
    assert soundfile.info(tmp_path / "t-cat.wav").frames == int(1.5 * SR)  # 0.5 s before 5 s to the end, 6 s
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t-cat.json", "t-cat.wav", "t-siren.json", "t-siren.wav"]


def test_a_clip_of_a_name_already_taken_is_kept_beside_it(tmp_path):
    """A service restarted within the same second numbers its events from 0 again: same stem, both clips kept."""
    for seq in (1, 2, 3):
        saver = ClipSaver(tmp_path, SR, pre_roll_s=0.5, post_roll_s=0.0, max_count=10, max_bytes=10**8)
        saver.request(ramp_ring(1.0), SR, "20261207-120000-000000-yes", json.dumps({"seq": seq}).encode())
        assert saver.service() == 1
    stem = tmp_path / "20261207-120000-000000-yes"
    kept = sorted(Path(f"{stem}{n}.{ext}") for n in ("", "-2", "-3") for ext in ("json", "wav"))
    assert sorted(tmp_path.iterdir()) == kept
    assert [json.loads(Path(f"{stem}{n}.json").read_text())["seq"] for n in ("", "-2", "-3")] == [1, 2, 3]


def test_finishing_writes_what_is_there_and_pre_roll_is_clamped_to_the_ring(tmp_path):
    ring = ramp_ring(12.0, capacity_s=10.0)  # oldest held sample is at 2 s
    saver = ClipSaver(tmp_path, SR, pre_roll_s=9.0, post_roll_s=1.0, max_count=10, max_bytes=10**8)
    saver.request(ring, int(11.5 * SR), "b", b"{}")
    assert saver.service(finishing=True) == 1
    assert soundfile.info(tmp_path / "b.wav").frames == int((12.0 - 2.5) * SR)


def test_oldest_clips_are_removed_first_by_count_and_bytes(tmp_path):
    ring = ramp_ring(3.0)
    saver = ClipSaver(tmp_path, SR, pre_roll_s=0.5, post_roll_s=0.0, max_count=3, max_bytes=10**8)
    for i in range(5):
        saver.request(ring, 2 * SR, f"clip{i}", b"{}")
        saver.service()
        os.utime(tmp_path / f"clip{i}.wav", ns=(i * 10**9, i * 10**9))  # distinct ages, whatever the clock resolution
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["clip2.wav", "clip3.wav", "clip4.wav"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["clip2.json", "clip3.json", "clip4.json"]
    one_clip = (tmp_path / "clip4.wav").stat().st_size + (tmp_path / "clip4.json").stat().st_size
    small = ClipSaver(tmp_path, SR, 0.5, 0.0, max_count=100, max_bytes=2 * one_clip)
    small.request(ring, 2 * SR, "clip5", b"{}")
    small.service()
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["clip4.wav", "clip5.wav"]


# A disk that fills up, made real for one process: writes past RLIMIT_FSIZE fail with EFBIG (SIGXFSZ ignored),
# which libsndfile reports as its own error type, not OSError.
FULL_DISK = """
import json, resource, signal, sys
from pathlib import Path
import numpy as np
from streamd.clips import ClipSaver
from streamd.ring import RingBuffer

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
folder = Path(sys.argv[1])
ring = RingBuffer(10 * 16000)
ring.write(np.full(3 * 16000, 0.1, np.float32))
saver = ClipSaver(folder, 16000, pre_roll_s=1.5, post_roll_s=0.5, max_count=100, max_bytes=10**8)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, hard))  # a 2 s clip is 64 kB
saver.request(ring, 2 * 16000, "full", b'{"seq": 1}')
written_full = saver.service()
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
saver.request(ring, 2 * 16000, "room", b'{"seq": 2}')
written_room = saver.service()
print(json.dumps({"full": written_full, "room": written_room, "failed": saver.failed, "saved": saver.saved,
                  "files": sorted(p.name for p in folder.iterdir())}))
"""


def test_a_full_disk_loses_the_clip_not_the_service(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result == {"full": 0, "room": 1, "failed": 1, "saved": 1, "files": ["room.json", "room.wav"]}, result
    assert "clip" in done.stderr and "full.wav not saved" in done.stderr
    assert soundfile.info(tmp_path / "room.wav").frames == 2 * SR


def test_a_vanished_folder_and_stale_parts_are_handled(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / ".old.wav.part").write_bytes(b"RIFF")  # a process killed mid-write
    (folder / "kept.wav.part").write_bytes(b"not ours")
    ring = ramp_ring(3.0)
    saver = ClipSaver(folder, SR, pre_roll_s=0.5, post_roll_s=0.0, max_count=10, max_bytes=10**8)
    assert sorted(p.name for p in folder.iterdir()) == ["kept.wav.part"]
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()  # someone removed the folder while the service runs
    saver.request(ring, 2 * SR, "lost", b"{}")
    assert saver.service() == 0 and saver.failed == 1 and not folder.exists()
    folder.mkdir()
    saver.request(ring, 2 * SR, "back", b"{}")
    assert saver.service() == 1 and sorted(p.name for p in folder.iterdir()) == ["back.json", "back.wav"]
