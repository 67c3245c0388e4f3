//! Several vantage points' RTT bounds taken together: the disks' common region and the
//! countries in it (multilateration, as RIPE IPmap and CBG do it), and, when two disks cannot
//! overlap, the lower bound on an anycast address's sites (iGreedy).
//!
//! Every answer errs on the lenient side, like the single-vantage bound: a country is dropped
//! from the common region only when the geometry proves it has no territory there, and the
//! region is called empty only when no point can be in every disk. So a verdict decided here
//! never rests on a rounding.

use std::collections::BTreeSet;

use super::{Countries, great_circle_km};
use crate::model::CountryCode;

/// The region an address must lie in, seen from one vantage point: within `radius_km` of
/// `center` (`(latitude, longitude)`). `radius_km` is the hard bound (RTT × 100 km + slack),
/// never an estimator such as 4/9 c: a disk too small would drop the true location.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disk {
    pub center: (f64, f64),
    pub radius_km: f64,
}

impl Disk {
    /// No point is in both: the address cannot be one machine answering both vantages.
    pub fn disjoint(&self, other: &Disk) -> bool {
        great_circle_km(self.center, other.center) > self.radius_km + other.radius_km
    }
}

/// What every disk has in common.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Intersection {
    /// Countries that may have territory in every disk at once (a superset: see the module).
    pub countries: BTreeSet<CountryCode>,
    /// No point lies in every disk: the address answers different vantages from different
    /// places.
    pub empty: bool,
    /// A point in every disk was found (not only cells that touch each disk): the disks share a
    /// region for certain. `!empty && !proven`: they meet, if at all, only along their edges,
    /// within the search's resolution.
    pub proven: bool,
}

/// The disks' common region: is it empty, and which countries may lie in it.
///
/// The sphere is cut into longitude/latitude cells, each held as a cap (centre and a radius
/// that covers its corners). A cell is dropped when its cap is wholly outside some disk, or
/// when no country still in question comes within it; the rest are split until their caps are
/// about 1/50 of the smallest disk (at least 10 km), and a country within a surviving
/// smallest cell counts as present. A country whose territory is in a cell wholly inside every
/// disk is confirmed exactly. About 2,000 cells at most are examined whatever the disks' size.
pub fn intersect(countries: &Countries, disks: &[Disk]) -> Intersection {
    let Some(smallest) = disks.iter().map(|d| d.radius_km).reduce(f64::min) else {
        return Intersection::default();
    };
    if !smallest.is_finite() {
        // No disk bounds anything: every country is possible.
        return Intersection {
            countries: countries.codes().collect(),
            empty: false,
            proven: true,
        };
    }
    // A country must be near every disk's centre to be in their common region at all.
    let pending: BTreeSet<CountryCode> = countries
        .codes()
        .filter(|cc| {
            disks
                .iter()
                .all(|d| countries.is_within(*cc, d.center, d.radius_km))
        })
        .collect();
    let mut search = Search {
        countries,
        disks,
        leaf_km: (smallest / 50.0).max(10.0),
        pending,
        found: BTreeSet::new(),
        nonempty: false,
        proven: false,
    };
    let step = 10.0;
    let mut lat = -90.0;
    while lat < 90.0 {
        let mut lon = -180.0;
        while lon < 180.0 {
            search.cell(Cell {
                south: lat,
                north: lat + step,
                west: lon,
                east: lon + step,
            });
            lon += step;
        }
        lat += step;
    }
    Intersection {
        countries: search.found,
        empty: !search.nonempty,
        proven: search.proven,
    }
}

/// iGreedy's sites: the disks (by index) that are pairwise disjoint, chosen smallest first.
/// Each is a different site of the address, so their number is a lower bound on its sites,
/// and every disk not chosen overlaps at least one chosen one.
pub fn greedy_sites(disks: &[Disk]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..disks.len()).collect();
    order.sort_by(|a, b| disks[*a].radius_km.total_cmp(&disks[*b].radius_km));
    let mut chosen: Vec<usize> = Vec::new();
    for i in order {
        if chosen.iter().all(|&c| disks[c].disjoint(&disks[i])) {
            chosen.push(i);
        }
    }
    chosen
}

/// A longitude/latitude cell, in degrees.
#[derive(Debug, Clone, Copy)]
struct Cell {
    south: f64,
    north: f64,
    west: f64,
    east: f64,
}

impl Cell {
    /// Its centre and a radius (km) that covers it. On every edge of a cell smaller than a
    /// hemisphere the distance from the centre grows towards the corners, so the corners bound
    /// it; the edge midpoints and a margin guard the cells that touch a pole.
    fn cap(&self) -> ((f64, f64), f64) {
        let center = (
            (self.south + self.north) / 2.0,
            (self.west + self.east) / 2.0,
        );
        let (mid_lat, mid_lon) = center;
        let radius = [
            (self.south, self.west),
            (self.south, self.east),
            (self.north, self.west),
            (self.north, self.east),
            (self.south, mid_lon),
            (self.north, mid_lon),
            (mid_lat, self.west),
            (mid_lat, self.east),
        ]
        .into_iter()
        .map(|p| great_circle_km(center, p))
        .fold(0.0, f64::max);
        (center, radius * 1.01 + 0.5)
    }

    fn quarters(&self) -> [Cell; 4] {
        let lat = (self.south + self.north) / 2.0;
        let lon = (self.west + self.east) / 2.0;
        [
            Cell {
                north: lat,
                east: lon,
                ..*self
            },
            Cell {
                north: lat,
                west: lon,
                ..*self
            },
            Cell {
                south: lat,
                east: lon,
                ..*self
            },
            Cell {
                south: lat,
                west: lon,
                ..*self
            },
        ]
    }
}

struct Search<'a> {
    countries: &'a Countries,
    disks: &'a [Disk],
    leaf_km: f64,
    /// Countries near every disk, not yet found in the common region.
    pending: BTreeSet<CountryCode>,
    found: BTreeSet<CountryCode>,
    /// Some cell may hold a point of every disk.
    nonempty: bool,
    /// Some point in every disk was found.
    proven: bool,
}

impl Search<'_> {
    fn cell(&mut self, cell: Cell) {
        let (center, rho) = cell.cap();
        let mut inside_all = true;
        for disk in self.disks {
            let d = great_circle_km(center, disk.center);
            if d - rho > disk.radius_km {
                return;
            }
            if d + rho > disk.radius_km {
                inside_all = false;
            }
        }
        let center_inside = self
            .disks
            .iter()
            .all(|d| great_circle_km(center, d.center) <= d.radius_km);
        if inside_all || center_inside {
            self.nonempty = true;
            self.proven = true;
        }
        let near: Vec<CountryCode> = self
            .pending
            .iter()
            .copied()
            .filter(|cc| self.countries.is_within(*cc, center, rho))
            .collect();
        if rho <= self.leaf_km {
            // As small as the search goes: whatever may be in the cell counts.
            self.nonempty = true;
            for cc in near {
                self.pending.remove(&cc);
                self.found.insert(cc);
            }
            return;
        }
        if near.is_empty() && self.proven {
            return;
        }
        if center_inside {
            // The centre is a point of the common region: a country containing it is there.
            for cc in near {
                if self.countries.contains(cc, center) {
                    self.pending.remove(&cc);
                    self.found.insert(cc);
                }
            }
        }
        for quarter in cell.quarters() {
            if self.pending.is_empty() && self.proven {
                return;
            }
            self.cell(quarter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELHI: (f64, f64) = (28.61, 77.21);
    const CHENNAI: (f64, f64) = (13.08, 80.27);
    const SINGAPORE: (f64, f64) = (1.35, 103.82);

    fn codes(set: &BTreeSet<CountryCode>) -> Vec<String> {
        set.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn two_indian_disks_that_each_reach_neighbours_meet_only_in_india() {
        let countries = Countries::shipped().expect("shipped shapes");
        let delhi = Disk {
            center: DELHI,
            radius_km: 1100.0,
        };
        let chennai = Disk {
            center: CHENNAI,
            radius_km: 1100.0,
        };
        let alone: Vec<String> = countries
            .within(DELHI, 1100.0)
            .into_iter()
            .map(|(c, _)| c.to_string())
            .collect();
        assert!(alone.contains(&"PK".to_string()) && alone.contains(&"NP".to_string()));
        let both = intersect(countries, &[delhi, chennai]);
        assert!(!both.empty && both.proven);
        assert_eq!(codes(&both.countries), ["IN"]);
    }

    #[test]
    fn disks_that_cannot_overlap_have_an_empty_common_region_and_two_sites() {
        let countries = Countries::shipped().expect("shipped shapes");
        let disks = [
            Disk {
                center: DELHI,
                radius_km: 300.0,
            },
            Disk {
                center: SINGAPORE,
                radius_km: 300.0,
            },
            Disk {
                center: CHENNAI,
                radius_km: 2500.0,
            },
        ];
        let common = intersect(countries, &disks);
        assert!(common.empty && !common.proven);
        assert!(common.countries.is_empty());
        assert_eq!(greedy_sites(&disks), vec![0, 1]);
    }

    #[test]
    fn a_region_at_sea_is_not_empty_but_holds_no_country() {
        let countries = Countries::shipped().expect("shipped shapes");
        // Two small disks overlapping in the middle of the Indian Ocean.
        let disks = [
            Disk {
                center: (-20.0, 80.0),
                radius_km: 200.0,
            },
            Disk {
                center: (-20.0, 82.0),
                radius_km: 200.0,
            },
        ];
        let common = intersect(countries, &disks);
        assert!(!common.empty);
        assert!(common.countries.is_empty(), "{:?}", common.countries);
    }

    #[test]
    fn a_lens_across_a_border_keeps_both_sides() {
        let countries = Countries::shipped().expect("shipped shapes");
        // Both disks reach over the India–Pakistan border near Lahore/Amritsar.
        let disks = [
            Disk {
                center: DELHI,
                radius_km: 500.0,
            },
            Disk {
                center: (30.2, 71.5),
                radius_km: 400.0,
            },
        ];
        let common = intersect(countries, &disks);
        let got = codes(&common.countries);
        assert!(
            got.contains(&"IN".to_string()) && got.contains(&"PK".to_string()),
            "{got:?}"
        );
        assert!(!got.contains(&"NP".to_string()), "{got:?}");
    }

    #[test]
    fn disks_that_only_touch_are_not_a_proven_region() {
        let countries = Countries::shipped().expect("shipped shapes");
        let d = great_circle_km(DELHI, CHENNAI);
        // Radii that add up to 0.1 km less than the distance: no common point, but cells at
        // the tangent point cannot be ruled out, so the region is neither empty nor proven.
        let touching = [
            Disk {
                center: DELHI,
                radius_km: d / 2.0,
            },
            Disk {
                center: CHENNAI,
                radius_km: d / 2.0 - 0.1,
            },
        ];
        let common = intersect(countries, &touching);
        assert!(!common.proven, "no point is in both");
        let wide = [
            touching[0],
            Disk {
                center: CHENNAI,
                radius_km: d / 2.0 + 200.0,
            },
        ];
        assert!(intersect(countries, &wide).proven);
    }

    #[test]
    fn an_unbounded_disk_leaves_every_country() {
        let countries = Countries::shipped().expect("shipped shapes");
        let open = Disk {
            center: DELHI,
            radius_km: f64::INFINITY,
        };
        let common = intersect(countries, &[open]);
        assert_eq!(common.countries.len(), countries.codes().count());
        assert!(intersect(countries, &[]).countries.is_empty());
    }
}
