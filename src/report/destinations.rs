//! Destinations: each host a run contacted, as first party (the phone's maker) or third party, and
//! whether it is a known tracker.
//!
//! Owns the two shipped lists, compiled into the binary: `data/vendor-domains.txt` (maker → its
//! domains, written by us, sources in the file) and `data/trackers.txt` (host suffix → tracker
//! name, written by us from the trackers' SDK documentation, credited in docs/reports.md). A host
//! is first party when it is, or is under, a domain of the maker named by the device's brand or
//! manufacturer; everything else is third party. Tracker is a separate label: a maker's own
//! analytics host is first party *and* a tracker.
//!
//! Must not touch: files, the terminal (callers render what this returns).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;

static VENDOR_DOMAINS: &str = include_str!("../../data/vendor-domains.txt");
static TRACKERS: &str = include_str!("../../data/trackers.txt");

/// Who a host belongs to, as far as the shipped lists tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The phone's maker (its brand's domains).
    First,
    /// Anyone else (the OS vendor on another maker's phone, app backends, trackers, bare IPs).
    Third,
}

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Party::First => "first party",
            Party::Third => "third party",
        }
    }
}

/// One host and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    pub host: String,
    pub party: Party,
    /// The tracker's name from the shipped list (`AppsFlyer`); `null` when it is not listed.
    pub tracker: Option<&'static str>,
}

struct Lists {
    /// brand (lower case) → domains.
    vendors: BTreeMap<&'static str, Vec<&'static str>>,
    /// host suffix → tracker name.
    trackers: Vec<(&'static str, &'static str)>,
}

fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| {
        let mut vendors: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for line in data_lines(VENDOR_DOMAINS) {
            let Some((brands, domains)) = line.split_once(':') else {
                continue;
            };
            let domains: Vec<&str> = domains.split_whitespace().collect();
            for brand in brands.split_whitespace() {
                vendors
                    .entry(brand)
                    .or_default()
                    .extend(domains.iter().copied());
            }
        }
        let trackers = data_lines(TRACKERS)
            .filter_map(|line| line.split_once('\t'))
            .map(|(host, name)| (host.trim(), name.trim()))
            .collect();
        Lists { vendors, trackers }
    })
}

fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// `host` is `suffix` or a name under it (`a.b.example` under `b.example`, not `xb.example`).
fn under(host: &str, suffix: &str) -> bool {
    host == suffix
        || host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Classifies hosts for the phone whose `ro.product.brand` and `ro.product.manufacturer` are given.
#[derive(Debug, Clone)]
pub struct Classifier {
    maker_domains: Vec<&'static str>,
}

impl Classifier {
    pub fn new(brand: &str, manufacturer: &str) -> Self {
        let lists = lists();
        let mut maker_domains: Vec<&'static str> = [brand, manufacturer]
            .iter()
            .filter_map(|b| lists.vendors.get(b.trim().to_ascii_lowercase().as_str()))
            .flatten()
            .copied()
            .collect();
        maker_domains.sort_unstable();
        maker_domains.dedup();
        Classifier { maker_domains }
    }

    /// Whether the shipped list knows this phone's maker (else every host is third party).
    pub fn knows_maker(&self) -> bool {
        !self.maker_domains.is_empty()
    }

    pub fn classify(&self, host: &str) -> Destination {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let party = if self.maker_domains.iter().any(|d| under(&name, d)) {
            Party::First
        } else {
            Party::Third
        };
        let tracker = lists()
            .trackers
            .iter()
            .find(|(suffix, _)| under(&name, suffix))
            .map(|(_, tracker)| *tracker);
        Destination {
            host: host.to_string(),
            party,
            tracker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_parse() {
        let lists = lists();
        assert!(lists.vendors.len() >= 20, "{}", lists.vendors.len());
        assert!(lists.trackers.len() >= 30, "{}", lists.trackers.len());
        for (suffix, name) in &lists.trackers {
            assert!(suffix.contains('.') && !name.is_empty(), "{suffix}");
        }
    }

    #[test]
    fn makers_domains_are_first_party() {
        let xiaomi = Classifier::new("Redmi", "Xiaomi");
        assert!(xiaomi.knows_maker());
        assert_eq!(xiaomi.classify("api.miui.com").party, Party::First);
        assert_eq!(xiaomi.classify("xiaomi.com").party, Party::First);
        // Suffix on a label boundary only.
        assert_eq!(xiaomi.classify("notxiaomi.com").party, Party::Third);
        assert_eq!(
            xiaomi.classify("connectivitycheck.gstatic.com").party,
            Party::Third
        );
        let pixel = Classifier::new("google", "Google");
        assert_eq!(
            pixel.classify("connectivitycheck.gstatic.com").party,
            Party::First
        );
        let kestrel = Classifier::new("kestrel", "Kestrel");
        assert_eq!(kestrel.classify("msg.kestrelcloud.net").party, Party::First);
        let unknown = Classifier::new("acme", "Acme");
        assert!(!unknown.knows_maker());
        assert_eq!(unknown.classify("10.0.0.1").party, Party::Third);
    }

    #[test]
    fn trackers_are_labelled_whoever_owns_them() {
        let xiaomi = Classifier::new("xiaomi", "Xiaomi");
        let mistat = xiaomi.classify("data.mistat.xiaomi.com");
        assert_eq!(mistat.party, Party::First);
        assert_eq!(mistat.tracker, Some("Xiaomi Mistat"));
        let af = xiaomi.classify("t.appsflyer.com");
        assert_eq!((af.party, af.tracker), (Party::Third, Some("AppsFlyer")));
        assert_eq!(xiaomi.classify("example.org").tracker, None);
    }
}
