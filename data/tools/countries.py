#!/usr/bin/env python3
"""Build data/countries.json, the country shapes `residency::physics` embeds.

Input: Natural Earth admin-0 countries (public domain) as TopoJSON from the npm package
`world-atlas` 2.0.2 (ISC): countries-50m.json, and countries-10m.json only for the few codes
that have no shape at 1:50m. Numeric ids (ISO 3166-1 numeric) are mapped to alpha-2 with
Debian's `iso-codes` package (/usr/share/iso-codes/json/iso_3166-1.json).

How it was run (Python 3.11, standard library only):

    cd "$(mktemp -d)" && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    apt-get install -y iso-codes    # 4.15.0-1 on Debian 12
    python3 /path/to/repo/data/tools/countries.py package /path/to/repo/data/countries.json

The output is deterministic for the same inputs (no dates, sorted keys and countries).

Output format (JSON):

    {"format": 1, "unit": 1e-4,
     "countries": [{"code": "IN", "name": "India", "source": "50m",
                    "bbox": [west, south, east, north],   # degrees; west > east if it
                                                          # crosses the antimeridian
                    "point": [lon, lat],                  # inside the largest polygon
                    "polygons": [[ring, hole, ...], ...]}]}

Each ring is a flat list of integers in units of 1e-4 degree (about 11 m, finer than the
0.0036 x 0.0017 degree quantization of the 1:50m TopoJSON, so rounding moves no vertex by
more than about 6 m): lon0, lat0, then the differences dlon, dlat to each next vertex. Rings
are closed (last vertex equals the first) and the first ring of a polygon is its outer
boundary, the rest are holes. Edges are straight lines in longitude/latitude, as in Natural
Earth's shapefiles. No simplification beyond Natural Earth's own 1:50m generalisation.

world-atlas "stitches" Natural Earth's cuts at the antimeridian (for d3's spherical
polygons), so some rings cross +-180 and Antarctica's coast encircles the South Pole. To keep
rings planar, longitudes are unwrapped along each ring (no step between neighbours is more
than 180 degrees; a ring starts in [-180, 180) and may run past 180, e.g. Russia's Chukotka to
about 190), and a ring that encircles a pole is closed through that pole (two vertices at
latitude +-90). world-atlas's own ring around the South Pole at latitude -89.999 (what is left
of Natural Earth's polar cut) is dropped, so the pole itself is inside Antarctica.
"""

import json
import sys

ISO_JSON = "/usr/share/iso-codes/json/iso_3166-1.json"
UNIT = 1e-4

# Natural Earth units without an ISO 3166-1 numeric code, by NE name. None means "split by
# SPLITS below". Merging into the de jure country keeps a claim for that country from being
# refuted for a point in the merged area (a false refutation is the costly error here).
NO_NUMERIC = {
    "Kosovo": "XK",  # user-assigned code, used by registries and accepted by CountryCode
    "Somaliland": "SO",  # de facto state; ISO 3166 counts it as part of Somalia
    "N. Cyprus": "CY",  # de facto state; ISO 3166 counts it as part of Cyprus
    "Siachen Glacier": "IN",  # disputed with Pakistan; administered by India since 1984
    "Indian Ocean Ter.": None,  # Christmas Island (CX) and Cocos (Keeling) Islands (CC)
}

# ISO codes with no Natural Earth unit of their own whose land lies inside another unit's
# polygons: polygons of the parent unit wholly inside one of the boxes are copied to the
# child code (they stay in the parent too: Guadeloupe is France, and is also GP).
# (parent code or NE name, child code, [(west, south, east, north), ...])
SPLITS = [
    ("FR", "GF", [(-55.0, 2.0, -51.0, 6.0)]),
    ("FR", "GP", [(-62.0, 15.8, -61.0, 16.6)]),
    ("FR", "MQ", [(-61.3, 14.3, -60.7, 15.0)]),
    ("FR", "RE", [(55.0, -21.5, 56.0, -20.7)]),
    ("FR", "YT", [(44.9, -13.1, 45.3, -12.5)]),
    ("NO", "SJ", [(-10.0, 70.5, -7.0, 71.5), (10.0, 74.0, 35.0, 81.0)]),
    ("NO", "BV", [(3.0, -54.7, 3.8, -54.2)]),
    ("NL", "BQ", [(-68.5, 11.9, -68.1, 12.4), (-63.3, 17.4, -62.9, 17.7)]),
    ("NZ", "TK", [(-173.0, -10.0, -171.0, -8.0)]),
    ("Indian Ocean Ter.", "CX", [(105.0, -11.0, 106.0, -10.0)]),
    ("Indian Ocean Ter.", "CC", [(96.0, -13.0, 97.5, -11.5)]),
]


def load_topology(path):
    """Return {unit name: (numeric id or None, [polygon]), ...}, polygon = [ring], ring =
    [(lon, lat)], with arcs decoded (TopoJSON quantized, delta-encoded)."""
    with open(path, encoding="utf-8") as f:
        topo = json.load(f)
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)

    def ring(indices):
        out = []
        for i in indices:
            pts = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(pts if not out else pts[1:])
        return out

    units = {}
    for g in topo["objects"]["countries"]["geometries"]:
        if g["type"] == "Polygon":
            polys = [g["arcs"]]
        elif g["type"] == "MultiPolygon":
            polys = g["arcs"]
        else:
            continue
        name = g["properties"]["name"]
        _, existing = units.setdefault(name, (g.get("id"), []))
        existing.extend([[ring(r) for r in p] for p in polys])
    return units


def unwrap(ring):
    """Planar form of a spherical ring (see the module doc), or None for the polar artifact."""
    out = [ring[0]]
    for lon, lat in ring[1:]:
        prev = out[-1][0]
        while lon - prev > 180:
            lon -= 360
        while lon - prev < -180:
            lon += 360
        out.append((lon, lat))
    turn = out[-1][0] - out[0][0]
    if abs(turn) > 180:  # encircles a pole: the unwrapped ring ends 360 degrees away
        if all(abs(lat) > 89.99 for _, lat in ring):
            return None
        pole = -90.0 if sum(lat for _, lat in ring) < 0 else 90.0
        out += [(out[-1][0], pole), (out[0][0], pole), out[0]]
    shift = 0
    while min(x for x, _ in out) + shift >= 180:
        shift -= 360
    while min(x for x, _ in out) + shift < -180:
        shift += 360
    return [(x + shift, y) for x, y in out]


def quantize(ring):
    q = [(round(lon / UNIT), round(lat / UNIT)) for lon, lat in ring]
    # Drop consecutive duplicates created by rounding; keep the ring closed.
    out = [q[0]]
    for p in q[1:]:
        if p != out[-1]:
            out.append(p)
    if out[-1] != out[0]:
        out.append(out[0])
    return out


def encode(qring):
    flat = [qring[0][0], qring[0][1]]
    for (x0, y0), (x1, y1) in zip(qring, qring[1:]):
        flat += [x1 - x0, y1 - y0]
    return flat


def ring_area(qring):
    """Planar area in square units (degrees), for choosing the largest polygon."""
    return abs(
        sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(qring, qring[1:]))
    ) / 2


def inside(poly, x, y):
    """Even-odd rule over every ring of a polygon: holes count as outside."""
    c = False
    for r in poly:
        for (x0, y0), (x1, y1) in zip(r, r[1:]):
            if (y0 > y) != (y1 > y):
                if x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                    c = not c
    return c


def representative_point(poly):
    """A point inside the polygon: the midpoint of the widest interior span on one of 64
    horizontal lines through the polygon (a cheap stand-in for a pole of inaccessibility)."""
    ys = [y for x, y in poly[0]]
    lo, hi = min(ys), max(ys)
    best = None
    for k in range(1, 64):
        y = lo + (hi - lo) * k / 64 + 0.5  # half a unit: never exactly on a vertex
        xs = []
        for r in poly:
            for (x0, y0), (x1, y1) in zip(r, r[1:]):
                if (y0 > y) != (y1 > y):
                    xs.append(x0 + (y - y0) * (x1 - x0) / (y1 - y0))
        xs.sort()
        for a, b in zip(xs[0::2], xs[1::2]):
            if best is None or b - a > best[0]:
                best = (b - a, (a + b) / 2, y)
    if best is None:  # degenerate sliver: fall back to the first vertex
        return poly[0][0]
    _, x, y = best
    assert inside(poly, x, y), "representative point not inside"
    return (x, y)


def bbox(polys):
    """[west, south, east, north] in units; a box across the antimeridian (west > east) when
    that is narrower, as in RFC 7946, e.g. for Fiji and Russia."""
    south = min(y for p in polys for x, y in p[0])
    north = max(y for p in polys for x, y in p[0])
    half = 180 / UNIT
    spans = []
    for p in polys:
        a, b = min(x for x, y in p[0]), max(x for x, y in p[0])
        if b - a >= 2 * half:
            return [-half, south, half, north]
        if b > half:  # an unwrapped ring running past 180: split at the antimeridian
            spans += [(a, half), (-half, b - 2 * half)]
        else:
            spans.append((a, b))
    spans.sort()
    # Largest gap in longitude coverage (including the wrap-around one): the box is the
    # complement of that gap.
    merged = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    full = 360 / UNIT
    gap = (merged[0][0] + full - merged[-1][1], merged[0][0], merged[-1][1])
    for (a0, b0), (a1, b1) in zip(merged, merged[1:]):
        if a1 - b0 > gap[0]:
            gap = (a1 - b0, a1, b0)
    _, west, east = gap
    if west == -half and east == half:
        return [-half, south, half, north]
    return [west if west < half else west - 2 * half, south, east, north]


def main(pkg_dir, out_path):
    with open(ISO_JSON, encoding="utf-8") as f:
        iso = json.load(f)["3166-1"]
    by_numeric = {e["numeric"]: e for e in iso}
    names = {e["alpha_2"]: e.get("common_name", e["name"]) for e in iso}
    names["XK"] = "Kosovo"

    countries = {}  # code -> {"source", "polygons"}
    notes = []
    for res in ("50m", "10m"):
        units = load_topology(f"{pkg_dir}/countries-{res}.json")
        found = {}  # code or NE name -> polygons, this resolution
        for name, (numeric, polys) in sorted(units.items()):
            if numeric in by_numeric:
                code = by_numeric[numeric]["alpha_2"]
            elif name in NO_NUMERIC:
                code = NO_NUMERIC[name] or name
            else:
                notes.append(f"{res}: skipped {name!r} (no ISO code)")
                continue
            found.setdefault(code, []).extend(polys)
        for parent, child, boxes in SPLITS:
            for poly in found.get(parent, []):
                xs = [x for x, y in poly[0]]
                ys = [y for x, y in poly[0]]
                if any(
                    w <= min(xs) and max(xs) <= e and s <= min(ys) and max(ys) <= n
                    for w, s, e, n in boxes
                ):
                    found.setdefault(child, []).append(poly)
        for code, polys in sorted(found.items()):
            if code not in names or code in countries:
                continue  # NE name used only for splitting, or already had at 1:50m
            countries[code] = {"source": res, "polygons": polys}

    out = []
    for code in sorted(countries):
        polys = []
        for poly in countries[code]["polygons"]:
            rings = [unwrap(r) for r in poly]
            rings = [quantize(r) for r in rings if r is not None]
            rings = [r for r in rings if len(r) >= 4]  # a triangle at least, closed
            if rings:
                polys.append(rings)
        largest = max(polys, key=lambda p: ring_area(p[0]))
        px, py = representative_point(largest)
        if px >= 180 / UNIT:
            px -= 360 / UNIT
        out.append(
            {
                "code": code,
                "name": names[code],
                "source": countries[code]["source"],
                "bbox": [round(v * UNIT, 4) for v in bbox(polys)],
                "point": [round(px * UNIT, 4), round(py * UNIT, 4)],
                "polygons": [[encode(r) for r in p] for p in polys],
            }
        )
    missing = sorted(set(names) - set(countries))
    doc = {"format": 1, "unit": UNIT, "countries": out}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(f"{len(out)} countries written to {out_path}")
    print("from 1:10m:", " ".join(c["code"] for c in out if c["source"] == "10m"))
    print("no shape:", " ".join(missing) or "none")
    for n in notes:
        print(n)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: countries.py WORLD_ATLAS_PACKAGE_DIR OUT.json")
    main(sys.argv[1], sys.argv[2])
