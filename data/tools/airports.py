#!/usr/bin/env python3
"""Build the location dictionaries `residency::hints` embeds: data/airports.csv,
data/iata-metro.csv and data/city-tokens.csv.

Input: the PyPI package `airportsdata` (MIT, by Mike Borsetti), whose wheel carries
`airportsdata/airports.csv` (every airport by ICAO code, with its IATA code when it has one)
and `airportsdata/iata_macs.csv` (IATA multi-airport city codes such as LON and NYC).

How it was run (Python 3, standard library only):

    cd "$(mktemp -d)" && pip download airportsdata==20260905 --no-deps -d . \
        && unzip -q airportsdata-20260905-py3-none-any.whl
    python3 /path/to/repo/data/tools/airports.py airportsdata /path/to/repo/data

The output is deterministic for the same input (sorted, no dates).

Outputs (UTF-8 CSV with a header line, fields quoted only when they contain a comma):

- airports.csv    iata,city,country,lat,lon   every airport that has an IATA code
- iata-metro.csv  code,city,country,lat,lon   metro codes that are not also an airport's
                                              code; the point is the mean of the metro's
                                              airports (each at most 55 km from it, SAO's
                                              Viracopos the farthest)
- city-tokens.csv token,iata,city,country,lat,lon
                                              city names as routers spell them (lower case,
                                              no spaces), each anchored on one airport of
                                              the city: its country and coordinates, and
                                              its city field unless CITY_NAMES says better

Coordinates are rounded to 1e-4 degree (about 11 m), far finer than what a hint means.
"""

import csv
import sys
import unicodedata
from pathlib import Path

# City tokens seen in router and PoP names, each anchored on the airport nearest the city's
# centre (not always the biggest: SHA not PVG, HND not NRT, LIN not MXP). Only cities whose
# name is unambiguous enough for a router name: no "santiago" (Chile, Spain, Cuba), no
# "victoria". Former names (bombay, calcutta, madras) are left out on purpose: a token such
# as "bombay" must not read as anything (see the tests of `hints`).
CITY_TOKENS = {
    # South Asia
    "mumbai": "BOM", "delhi": "DEL", "newdelhi": "DEL", "chennai": "MAA",
    "bangalore": "BLR", "bengaluru": "BLR", "hyderabad": "HYD", "kolkata": "CCU",
    "pune": "PNQ", "karachi": "KHI", "colombo": "CMB", "dhaka": "DAC",
    # East and South-East Asia, Oceania
    "singapore": "SIN", "hongkong": "HKG", "tokyo": "HND", "osaka": "ITM", "seoul": "GMP",
    "beijing": "PEK", "shanghai": "SHA", "guangzhou": "CAN", "shenzhen": "SZX",
    "taipei": "TSA", "kualalumpur": "KUL", "jakarta": "CGK", "bangkok": "BKK",
    "manila": "MNL", "hanoi": "HAN", "hochiminh": "SGN", "sydney": "SYD",
    "melbourne": "MEL", "auckland": "AKL", "perth": "PER", "brisbane": "BNE",
    # Middle East, Africa
    "dubai": "DXB", "fujairah": "FJR", "doha": "DOH", "riyadh": "RUH", "jeddah": "JED",
    "telaviv": "TLV", "istanbul": "IST", "cairo": "CAI", "johannesburg": "JNB",
    "capetown": "CPT", "lagos": "LOS", "nairobi": "NBO", "mombasa": "MBA",
    # Europe
    "london": "LHR", "manchester": "MAN", "paris": "CDG", "marseille": "MRS",
    "frankfurt": "FRA", "berlin": "BER", "munich": "MUC", "hamburg": "HAM",
    "dusseldorf": "DUS", "amsterdam": "AMS", "brussels": "BRU", "zurich": "ZRH",
    "geneva": "GVA", "vienna": "VIE", "milan": "LIN", "rome": "FCO", "madrid": "MAD",
    "barcelona": "BCN", "lisbon": "LIS", "dublin": "DUB", "copenhagen": "CPH",
    "stockholm": "ARN", "oslo": "OSL", "helsinki": "HEL", "warsaw": "WAW",
    "prague": "PRG", "budapest": "BUD", "bucharest": "OTP", "sofia": "SOF",
    "athens": "ATH", "kyiv": "KBP", "moscow": "SVO",
    # Americas
    "newyork": "LGA", "ashburn": "IAD", "washington": "DCA", "chicago": "ORD",
    "dallas": "DFW", "houston": "IAH", "atlanta": "ATL", "miami": "MIA",
    "losangeles": "LAX", "sanjose": "SJC", "sanfrancisco": "SFO", "seattle": "SEA",
    "denver": "DEN", "phoenix": "PHX", "boston": "BOS", "toronto": "YYZ",
    "montreal": "YUL", "vancouver": "YVR", "mexicocity": "MEX", "saopaulo": "GRU",
    "riodejaneiro": "GIG", "buenosaires": "EZE", "bogota": "BOG", "lima": "LIM",
}

# Where the anchor airport's city field is not the city the token names (the airport lies
# in a suburb, or the field carries a district), the display name is given here.
CITY_NAMES = {
    "ashburn": "Ashburn",  # IAD's city field says Washington; Ashburn is beside it
    "bengaluru": "Bengaluru",  # BLR's field: "Bangalore" (also a token)
    "buenosaires": "Buenos Aires",  # EZE's field: "Ezeiza"
    "dallas": "Dallas",  # DFW's field: "Dallas-Fort Worth"
    "delhi": "Delhi",  # DEL's field: "New Delhi" (also a token)
    "frankfurt": "Frankfurt am Main",  # FRA's field, kept: the token is its usual short form
    "fujairah": "Fujairah",  # FJR's field is empty
    "hochiminh": "Ho Chi Minh City",  # SGN's field, kept: routers drop "city"
    "istanbul": "Istanbul",  # IST's field: "Arnavutköy, Istanbul"
    "montreal": "Montreal",  # YUL's field: "Dorval"
    "taipei": "Taipei",  # TSA's field: "Taipei City"
    "toronto": "Toronto",  # YYZ's field: "Mississauga"
    "vancouver": "Vancouver",  # YVR's field: "Richmond"
}


def fold(text):
    """Lower case ASCII letters only: "São Paulo" -> "saopaulo"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalpha())


def point(lat, lon):
    return f"{float(lat):.4f}".rstrip("0").rstrip("."), f"{float(lon):.4f}".rstrip("0").rstrip(".")


def write(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        out.writerow(header)
        out.writerows(rows)


def main(package, data):
    package, data = Path(package), Path(data)
    airports = {}
    with open(package / "airports.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code = row["iata"].strip().upper()
            if not code:
                continue
            assert len(code) == 3 and code.isalpha(), row
            assert code not in airports, f"duplicate IATA code {code}"
            assert '"' not in row["city"] and "\n" not in row["city"], row
            airports[code] = row

    rows = []
    for code in sorted(airports):
        a = airports[code]
        rows.append([code, a["city"].strip(), a["country"].strip().upper(), *point(a["lat"], a["lon"])])
    write(data / "airports.csv", ["iata", "city", "country", "lat", "lon"], rows)

    metros = {}
    with open(package / "iata_macs.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            metros.setdefault(row["City Code"], []).append(row)
    metro_rows = []
    for code in sorted(metros):
        if code in airports:
            # An airport's own code means that airport (e.g. SHA is Hongqiao).
            continue
        members = [airports[m["Airport Code"]] for m in metros[code]]
        countries = {m["country"] for m in members}
        assert len(countries) == 1, (code, countries)
        lat = sum(float(m["lat"]) for m in members) / len(members)
        lon = sum(float(m["lon"]) for m in members) / len(members)
        metro_rows.append([code, metros[code][0]["City Name"], countries.pop(), *point(lat, lon)])
    write(data / "iata-metro.csv", ["code", "city", "country", "lat", "lon"], metro_rows)

    token_rows = []
    for token in sorted(CITY_TOKENS):
        a = airports[CITY_TOKENS[token]]
        city = CITY_NAMES.get(token, a["city"].strip())
        if token not in CITY_NAMES:
            # Derived from the data: the anchor's own city field must spell the token.
            assert fold(city) == token, (token, city)
        token_rows.append([token, CITY_TOKENS[token], city, a["country"].strip().upper(), *point(a["lat"], a["lon"])])
    write(data / "city-tokens.csv", ["token", "iata", "city", "country", "lat", "lon"], token_rows)
    print(f"{len(rows)} airports, {len(metro_rows)} metro codes, {len(token_rows)} city tokens")


if __name__ == "__main__":
    main(*sys.argv[1:3])
