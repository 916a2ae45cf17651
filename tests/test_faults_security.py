"""Security: by default nothing listens beyond this machine; a network endpoint is an explicit choice;
the control endpoint validates commands (tests/test_faults_input.py fuzzes it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streamd import config as cfg

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("config", [cfg.Config(), cfg.load_config(REPO / "config.yaml")], ids=["builtin", "config.yaml"])
def test_default_endpoints_are_local_ipc(config):
    for endpoint in (cfg.bus_endpoint(config), cfg.control_endpoint(config)):
        assert endpoint.startswith("ipc:///"), endpoint
    assert config.bus.allow_network is False and config.control.allow_network is False


NETWORK_ENDPOINTS = ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.20:5555", "tcp://[::]:5555",
                     "tcp://eth0:5555", "tcp://[::ffff:10.0.0.1]:5555", "tcp://127.0.0.1.example.com:5555",
                     "tcp://127.0.0.1:5555;10.0.0.1:5555", "tcp://:5555"]
LOCAL_ENDPOINTS = ["tcp://127.0.0.1:5555", "tcp://localhost:5555", "tcp://[::1]:5555", "ipc:///tmp/streamd-x/events"]
OTHER_TRANSPORTS = ["ws://0.0.0.0:5555", "udp://0.0.0.0:5555", "pgm://eth0;239.192.1.1:5555", "inproc://x"]


@pytest.mark.parametrize("section", ["bus", "control"])
@pytest.mark.parametrize("endpoint", NETWORK_ENDPOINTS)
def test_network_endpoint_needs_explicit_opt_in(section, endpoint):
    with pytest.raises(cfg.ConfigError, match=rf"{section}\.endpoint.*allow_network"):
        cfg.config_from_dict({section: {"endpoint": endpoint}})


@pytest.mark.parametrize("section", ["bus", "control"])
def test_network_endpoint_with_opt_in_is_accepted(section):
    config = cfg.config_from_dict({section: {"endpoint": "tcp://0.0.0.0:5555", "allow_network": True}})
    assert getattr(config, section).endpoint == "tcp://0.0.0.0:5555"


@pytest.mark.parametrize("section", ["bus", "control"])
@pytest.mark.parametrize("endpoint", LOCAL_ENDPOINTS)
def test_local_endpoints_need_no_opt_in(section, endpoint):
    config = cfg.config_from_dict({section: {"endpoint": endpoint}})
    assert getattr(config, section).endpoint == endpoint


@pytest.mark.parametrize("section", ["bus", "control"])
@pytest.mark.parametrize("endpoint", OTHER_TRANSPORTS)
def test_other_transports_are_refused_even_with_opt_in(section, endpoint):
    with pytest.raises(cfg.ConfigError, match=rf"{section}\.endpoint"):
        cfg.config_from_dict({section: {"endpoint": endpoint, "allow_network": True}})


def test_opt_in_for_the_bus_does_not_open_the_control_endpoint():
    with pytest.raises(cfg.ConfigError, match=r"control\.endpoint"):
        cfg.config_from_dict({"bus": {"endpoint": "tcp://0.0.0.0:5555", "allow_network": True},
                              "control": {"endpoint": "tcp://0.0.0.0:5556"}})


def test_default_config_file_sets_no_network_endpoint():
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    assert raw["bus"]["endpoint"] is None and raw["control"]["endpoint"] is None


# The systemd unit's `systemd-analyze security --offline=true` exposure is bounded by
# tests/test_systemd_unit.py::test_exposure_score_is_low (the unit owner's test); docs/faults.md reports it.
