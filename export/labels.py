"""The label set of the default household model, and how shared-data labels map onto it."""

from __future__ import annotations

from streamd.contract import KIND_KEYWORD, KIND_TAG, Label

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
WAKE_WORD = "computer"
KEYWORDS = COMMANDS + (WAKE_WORD,)
SILENCE, UNKNOWN = "_silence_", "_unknown_"  # Speech Commands' (MLPerf Tiny's) classes beside the commands

ESC50 = (
    "airplane", "breathing", "brushing_teeth", "can_opening", "car_horn", "cat", "chainsaw", "chirping_birds",
    "church_bells", "clapping", "clock_alarm", "clock_tick", "coughing", "cow", "crackling_fire", "crickets",
    "crow", "crying_baby", "dog", "door_wood_creaks", "door_wood_knock", "drinking_sipping", "engine",
    "fireworks", "footsteps", "frog", "glass_breaking", "hand_saw", "helicopter", "hen", "insects",
    "keyboard_typing", "laughing", "mouse_click", "pig", "pouring_water", "rain", "rooster", "sea_waves",
    "sheep", "siren", "sneezing", "snoring", "thunderstorm", "toilet_flush", "train", "vacuum_cleaner",
    "washing_machine", "water_drops", "wind",
)
URBANSOUND8K = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling", "gun_shot",
    "jackhammer", "siren", "street_music",
)
MERGED = {"dog_bark": "dog", "engine_idling": "engine"}  # UrbanSound8K name -> tag name

TAGS = tuple(dict.fromkeys(ESC50 + tuple(MERGED.get(c, c) for c in URBANSOUND8K) + ("speech", "smoke_alarm")))

DEFAULT_LABELS = tuple(Label(k, KIND_KEYWORD) for k in KEYWORDS) + tuple(Label(t, KIND_TAG) for t in TAGS)


def tag_name(dataset_label: str) -> str:
    """A shared-data class name as a tag of the default model."""
    return MERGED.get(dataset_label, dataset_label)
