"""Derive the bundled daily irradiance traces from NREL TMY3 files (host-only, run once).

The TMY3 files ship inside the pvlib-python wheel (pvlib/data/*.csv, BSD-3-Clause package; the data
are NREL's National Solar Radiation Database TMY3, Wilcox & Marion 2008, NREL/TP-581-43156).
Usage: python weather/make_weather.py pvlib-0.16.1-py3-none-any.whl
Writes weather/<site>.json: the site's latitude and 365 daily global horizontal irradiation totals
(Wh/m^2, the sum of the hourly GHI column), January 1 first.
"""

import json
import sys
import zipfile

SITES = {
    "tmy3_703165_sand_point_ak": "pvlib/data/703165TY.csv",
    "tmy3_723170_greensboro_nc": "pvlib/data/723170TYA.CSV",
}


def main(wheel):
    with zipfile.ZipFile(wheel) as z:
        for site, member in SITES.items():
            lines = z.read(member).decode("latin-1").splitlines()
            head = lines[0].split(",")
            wmo, name, state, tz, lat, lon, elev = head[0], head[1].strip('"'), head[2], head[3], head[4], \
                head[5], head[6]
            days = {}
            order = []
            for line in lines[2:]:
                cols = line.split(",")
                date = cols[0][:5]  # MM/DD (the TMY year differs per month)
                if date not in days:
                    days[date] = 0.0
                    order.append(date)
                days[date] += float(cols[4])
            ghi = [round(days[d], 1) for d in order]
            assert len(ghi) == 365, len(ghi)
            out = {"version": 1, "site": "%s %s, %s (WMO %s)" % (name.title(), state, "USA", wmo),
                   "latitude_deg": float(lat), "longitude_deg": float(lon), "elevation_m": float(elev),
                   "utc_offset_h": float(tz),
                   "source": "NREL TMY3 (National Solar Radiation Database 1991-2005 update, Wilcox & Marion "
                             "2008, NREL/TP-581-43156), station %s, file %s as distributed in the pvlib-python "
                             "0.16.1 wheel; daily sums of the hourly 'GHI (W/m^2)' column "
                             "(weather/make_weather.py)" % (wmo, member),
                   "daily_ghi_wh_m2": ghi}
            with open("weather/%s.json" % site, "w") as fh:
                json.dump(out, fh, indent=1)
                fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
