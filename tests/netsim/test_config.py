"""World configuration: every field of every netsim config explains itself; defaults as documented."""

import dataclasses

import pytest

from netsim.channel import ChannelConfig
from netsim.config import WorldConfig
from netsim.energy import DeviceConfig, ServerConfig
from netsim.mobility import HighwayConfig, RandomWaypointConfig, StaticConfig
from netsim.ofdma import OfdmaConfig

CONFIGS = [WorldConfig, DeviceConfig, ServerConfig, OfdmaConfig, ChannelConfig, StaticConfig,
           RandomWaypointConfig, HighwayConfig]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_one_line_help_and_a_unit(config):
    for f in dataclasses.fields(config):
        help_ = f.metadata.get("help")
        assert isinstance(help_, str) and help_ and "\n" not in help_, (config.__name__, f.name)
        assert isinstance(f.metadata.get("unit"), str), (config.__name__, f.name)


@pytest.mark.parametrize(
    ("config", "name", "unit"),
    [(WorldConfig, "cell_radius_m", "m"), (WorldConfig, "coherence_s", "s"), (DeviceConfig, "cpu_hz_range", "Hz"),
     (OfdmaConfig, "bs_tx_power_dbm", "dBm"), (HighwayConfig, "speed_range_kmh", "km/h"),
     (ChannelConfig, "min_doppler_speed_mps", "m/s")],
)
def test_unit_matches_the_suffix_of_the_name(config, name, unit):
    (f,) = [f for f in dataclasses.fields(config) if f.name == name]
    assert f.metadata["unit"] == unit


def test_defaults():
    w = WorldConfig()
    assert (w.num_devices, w.cell_radius_m, w.coherence_s) == (10, 300.0, 0.01)
    assert w.ofdma == OfdmaConfig() and w.mobility == StaticConfig() and w.server == ServerConfig()
    assert DeviceConfig().kappa == 1e-28 and OfdmaConfig().num_rb == 51


@pytest.mark.parametrize("field, value", [("num_devices", 0), ("cell_radius_m", -1.0), ("coherence_s", 0.0)])
def test_world_config_errors_name_field_and_value(field, value):
    with pytest.raises(ValueError, match=field) as err:
        WorldConfig(**{field: value})
    assert repr(value) in str(err.value)
