"""Threads named for the operating system, so that their CPU can be told apart (streamd.threadname)."""

import sys
import threading
from pathlib import Path

import pytest

from streamd.threadname import name_this_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names threads on Linux only")


def _system_name() -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


def test_a_thread_takes_its_python_name_or_the_one_given_cut_to_15_bytes():
    seen = []

    def run():
        name_this_thread()
        seen.append(_system_name())
        name_this_thread("audio-a-long-stream-name")
        seen.append(_system_name())

    thread = threading.Thread(target=run, name="capture-mic")
    thread.start()
    thread.join()
    assert seen == ["capture-mic", "audio-a-long-st"]
    assert _system_name() != "capture-mic"  # the caller's (main) thread keeps its name
