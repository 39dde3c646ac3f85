"""Solar harvesting from latitude, date and measured weather (issue 21)."""

import math

import pytest

from iotbpf.energy.harvest import ClearSkySolar, declination_rad, haurwitz_ghi, load_weather, make_harvester

NS = 1000000000
H = 3600 * NS
DAY = 24 * H


def reference_day_wh(panel, doy, steps=200000):
    """Midpoint rule with 200k steps over the day (an independent, slow reference)."""
    lat = panel.lat
    d = declination_rad(doy)
    total = 0.0
    dt = 86400.0 / steps
    for k in range(steps):
        w = ((k + 0.5) * dt - 43200.0) * math.pi / 43200.0
        total += haurwitz_ghi(math.sin(lat) * math.sin(d) + math.cos(lat) * math.cos(d) * math.cos(w)) * dt
    return total / 3600.0


@pytest.mark.parametrize("lat, doy", [(55.3, 355), (55.3, 172), (36.1, 80), (0.0, 1), (-33.9, 172)])
def test_clear_sky_day_matches_a_fine_numerical_integral(lat, doy):
    panel = ClearSkySolar(lat, 1.0, 1.0, start_doy=doy)
    assert panel.energy_j(0, DAY) / 3600.0 == pytest.approx(reference_day_wh(panel, doy), rel=1e-6)
    hourly = sum(panel.energy_j(i * H, (i + 1) * H) for i in range(24))
    assert hourly == pytest.approx(panel.energy_j(0, DAY), rel=1e-6)


def test_geometry_day_length_and_seasons():
    # Cooper's declination: +23.45 deg at the June solstice (doy 172), ~0 at the equinox (doy 81)
    assert math.degrees(declination_rad(172)) == pytest.approx(23.45, abs=0.01)
    assert abs(math.degrees(declination_rad(81))) < 0.5
    equinox = ClearSkySolar(55.3, 1.0, 1.0)._day(81)
    assert (equinox[1] - equinox[0]) / 3600 == pytest.approx(12.0, abs=0.1)
    winter = ClearSkySolar(55.3, 1.0, 1.0)._day(355)
    summer = ClearSkySolar(55.3, 1.0, 1.0)._day(172)
    assert (winter[1] - winter[0]) / 3600 < 7.5 < 16.5 < (summer[1] - summer[0]) / 3600
    assert summer[5] > 10 * winter[5]  # a northern winter day brings a tenth of a summer day's sun
    # no sun at night, most at solar noon
    p = ClearSkySolar(36.1, 1.0, 1.0, start_doy=172)
    assert p.power_w(0) == 0.0 and p.power_w(12 * H) > p.power_w(9 * H) > 0


def test_measured_weather_sets_each_days_total():
    lat, ghi, source = load_weather("tmy3_703165_sand_point_ak")
    assert lat == 55.317 and "TMY3" in source and len(ghi) == 365
    panel = make_harvester({"kind": "clearsky", "weather": "tmy3_703165_sand_point_ak", "area_m2": 0.01,
                            "efficiency": 0.15, "charger_efficiency": 0.8, "start_doy": 335})
    scale = 0.01 * 0.15 * 0.8
    assert panel.energy_j(0, DAY) == pytest.approx(ghi[334] * 3600 * scale, rel=1e-12)
    year = panel.energy_j(0, 365 * DAY)
    assert year == pytest.approx(sum(ghi) * 3600 * scale, rel=1e-9)
    # the clear sky bounds every measured year: the Aleutian site keeps about half of it
    clear = ClearSkySolar(lat, 0.01, 0.15, 335, None, 0.8).energy_j(0, 365 * DAY)
    assert 0.45 < year / clear < 0.6
    lat2, ghi2, _ = load_weather("tmy3_723170_greensboro_nc")
    assert 3.5 < sum(ghi2) / 365 / 1000 < 5.0  # peak-sun-hours per day at 36 N, not the old 7.6
    clear2 = ClearSkySolar(lat2, 1.0, 1.0).energy_j(0, 365 * DAY) / 3600
    assert 0.6 < sum(ghi2) / clear2 < 0.85


def test_clearsky_spec_errors():
    from iotbpf.energy.models import ModelError
    with pytest.raises(ModelError, match="area_m2"):
        make_harvester({"kind": "clearsky", "latitude_deg": 40})
    with pytest.raises(ModelError, match="unknown weather"):
        make_harvester({"kind": "clearsky", "weather": "nowhere", "area_m2": 1})
