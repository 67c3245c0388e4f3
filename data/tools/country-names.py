#!/usr/bin/env python3
"""Build data/country-names.csv: English country names and the ISO 3166-1 alpha-2 code each
stands for, so a registry answer that writes a country as a name ("United States", the last
line of ARIN's vCard address label; "South Africa" in AFRINIC's structured address) can be
read as a code by `residency`.

Input: Debian's `iso-codes` package (4.15.0-1 on Debian 12; LGPL-2.1-or-later), file
/usr/share/iso-codes/json/iso_3166-1.json: for every code its `name`, and where it has them its
`official_name` and `common_name`. Then the few spellings registries use that ISO does not
(below, `ALIASES`), each checked here to be unambiguous.

How it was run (Python 3.11, standard library only):

    apt-get install -y iso-codes
    python3 data/tools/country-names.py /usr/share/iso-codes/json/iso_3166-1.json data/country-names.csv

Output: CSV with a header `name,code`, one name per row, sorted by name. Names are written as
the source spells them; `residency` compares them case-insensitively, with a leading "The "
and surrounding punctuation ignored. The output is deterministic for the same input.
"""

import csv
import json
import sys

# Spellings seen in registry records, or common enough in operators' addresses, that ISO's
# names do not cover. Each maps to exactly one code.
ALIASES = {
    "USA": "US",
    "U.S.A.": "US",
    "United States of America": "US",
    "UK": "GB",
    "Great Britain": "GB",
    "Russia": "RU",
    "Republic of Korea": "KR",
    "Korea, South": "KR",
    "Korea, North": "KP",
    "Turkey": "TR",
    "Turkiye": "TR",
    "Czech Republic": "CZ",
    "Hong Kong SAR": "HK",
    "Hong Kong, China": "HK",
    "Macau": "MO",
    "Taiwan, R.O.C.": "TW",
    "Republic of China (Taiwan)": "TW",
    "Ivory Coast": "CI",
    "Cote d'Ivoire": "CI",
    "Swaziland": "SZ",
    "Burma": "MM",
    "Cape Verde": "CV",
    "Macedonia": "MK",
    "Vatican": "VA",
    "Palestine": "PS",
    "Brunei": "BN",
    "Laos": "LA",
    "Syria": "SY",
    "Moldova": "MD",
    "Tanzania": "TZ",
    "Venezuela": "VE",
    "Vietnam": "VN",
    "Iran": "IR",
    "Bolivia": "BO",
    "UAE": "AE",
}


def main(source, target):
    with open(source, encoding="utf-8") as f:
        entries = json.load(f)["3166-1"]
    names = {}

    def add(name, code):
        key = name.casefold()
        if key in names and names[key][1] != code:
            raise SystemExit(f"{name!r} would stand for both {names[key][1]} and {code}")
        names[key] = (name, code)

    codes = set()
    for entry in entries:
        code = entry["alpha_2"]
        codes.add(code)
        for field in ("name", "official_name", "common_name"):
            if field in entry:
                add(entry[field], code)
    for name, code in ALIASES.items():
        if code not in codes:
            raise SystemExit(f"alias {name!r} names {code}, which is not an ISO 3166-1 code")
        add(name, code)
    with open(target, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["name", "code"])
        for name, code in sorted(names.values(), key=lambda nc: nc[0].casefold()):
            out.writerow([name, code])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
