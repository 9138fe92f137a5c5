"""What COP-GEN thinks of each window when asked for location or date: one GeoJSON point per
window and sample at the window's true centre (``<run>_windows.geojson``)."""

import math

LOCATION, DATE = "3d_cartesian_lat_lon", "mean_timestamps"
EARTH_RADIUS_KM = 6371.0088


def points_name(request):
    return f"{request.run_name}_windows.geojson"


def window_points(model, lattice, tiling, request, result, scalars):
    """A GeoJSON FeatureCollection: one point per window and sample at the window's true centre,
    with what the model thinks of it (predicted latitude, longitude and its distance from the
    true centre in km; predicted date)."""
    layout = tiling.layout(*lattice.units, 0, request.steps, size=4)
    features = []
    for sample in range(request.samples):
        for index, (row, col) in enumerate(layout.windows):
            lat, lon = lattice.window_centre_lonlat(row, col)
            properties = {"sample": sample + 1, "window_row": row, "window_col": col}
            if LOCATION in scalars:
                plat, plon = model.postprocess(LOCATION, result[LOCATION][sample, index][None])[0]
                properties.update(predicted_lat=round(float(plat), 5), predicted_lon=round(float(plon), 5),
                                  distance_km=round(haversine_km(lat, lon, plat, plon), 2))
            if DATE in scalars:
                year, month, day = model.postprocess(DATE, result[DATE][sample, index][None])[0]
                properties["predicted_date"] = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
            features.append({"type": "Feature", "properties": properties,
                             "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}})
    return {"type": "FeatureCollection", "features": features}


def haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
