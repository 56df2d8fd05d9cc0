//! Registrable domains (eTLD+1, from Mozilla's Public Suffix List through the `psl` crate): who a
//! name belongs to. `a.b.telemetry.vendor.co.uk` belongs to `vendor.co.uk`, whatever the labels in
//! front carry.
//!
//! Must not touch: anything but names.

/// The registrable part of `name` (`vendor.co.uk` for `api.vendor.co.uk`); `None` for an address,
/// a bare public suffix, or a name the list does not know the end of.
pub fn registrable_domain(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.');
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let domain = psl::domain_str(&lower)?;
    Some(domain.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_parts() {
        assert_eq!(
            registrable_domain("a.b.telemetry.vendor.co.uk").as_deref(),
            Some("vendor.co.uk")
        );
        assert_eq!(
            registrable_domain("356938035643809.t.tracker.example").as_deref(),
            Some("tracker.example")
        );
        assert_eq!(
            registrable_domain("API.Vendor.COM.").as_deref(),
            Some("vendor.com")
        );
        assert_eq!(registrable_domain("co.uk"), None);
        assert_eq!(registrable_domain("10.0.2.3"), None);
        assert_eq!(registrable_domain("::1"), None);
    }
}
