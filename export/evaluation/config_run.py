"""What the scripts that measure a service config share (scripts/pause_gate.py, wake_arming.py, double_fires.py):
their common options, and the config's first model with its enabled keywords' settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from export.data.sources import SHARED_DATA
from export.evaluate import PHASES
from streamd.config import KeywordDefaults, load_config
from streamd.scheduler import ModelSpec
from streamd.service import load_models


def script_parser(doc: str, talk: bool = False) -> argparse.ArgumentParser:
    """--config, --data, --phases (and --talk): the options every such script takes, described by its docstring."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--data", type=Path, default=SHARED_DATA,
                        help="folder with manifest.csv (default ../shared/data)")
    parser.add_argument("--phases", type=int, default=PHASES,
                        help="play the clips or negative streams this many times, each at another phase of the hop "
                             "grid (as export.evaluate; default %(default)s); hours and counts are of all plays")
    if talk:
        parser.add_argument("--talk", type=Path, nargs="*", default=[], help="export.data.synth_talk folders")
    return parser


def config_keywords(config_path: Path) -> tuple[ModelSpec, dict[str, KeywordDefaults]]:
    """The config's first model, as the service loads it (its latency's hop fixed), and each enabled keyword's
    effective settings."""
    config = load_config(config_path)
    settings = {name: s for name, (s, enabled) in config.keyword_settings().items() if enabled}
    return load_models(config)[0], settings
