//! toybox `date`: the current time in UTC, by default as `%a %b %e %H:%M:%S %Z %Y`, or in a `+FORMAT` of
//! the strftime specifiers scripts write; setting the clock is refused as on a production build. Also the
//! strftime that `ls -l` formats its times with.
//!
//! Must not touch: the handset's state (the time is the host's clock; the handset's zone is UTC).

use super::CmdResult;

/// Days since 1970-01-01 → (year, month 1-12, day 1-31). Proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// strftime for UTC, the specifiers toybox's date users write.
pub fn strftime(fmt: &str, secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
    let wday = (days + 4).rem_euclid(7) as usize;
    let yday = days - {
        // days since epoch of Jan 1st of `y`
        let mut lo = days - 366;
        while civil_from_days(lo + 1).0 < y {
            lo += 1;
        }
        lo + 1
    } + 1;
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('a') => out.push_str(&DAYS[wday][..3]),
            Some('A') => out.push_str(DAYS[wday]),
            Some('b' | 'h') => out.push_str(&MONTHS[m as usize - 1][..3]),
            Some('B') => out.push_str(MONTHS[m as usize - 1]),
            Some('C') => out.push_str(&format!("{:02}", y / 100)),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('D') => out.push_str(&format!("{m:02}/{d:02}/{:02}", y % 100)),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hh + 11) % 12 + 1)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('k') => out.push_str(&format!("{hh:2}")),
            Some('l') => out.push_str(&format!("{:2}", (hh + 11) % 12 + 1)),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('n') => out.push('\n'),
            Some('N') => out.push_str(&format!("{nanos:09}")),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('R') => out.push_str(&format!("{hh:02}:{mm:02}")),
            Some('s') => out.push_str(&secs.to_string()),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('t') => out.push('\t'),
            Some('T') => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            Some('u') => out.push_str(&(if wday == 0 { 7 } else { wday }).to_string()),
            Some('w') => out.push_str(&wday.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('Y') => out.push_str(&y.to_string()),
            Some('z') => out.push_str("+0000"),
            Some('Z') => out.push_str("UTC"),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

pub(super) fn date(args: &[String]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut fmt = "%a %b %e %H:%M:%S %Z %Y".to_string();
    for a in args {
        if let Some(f) = a.strip_prefix('+') {
            fmt = f.to_string();
        } else if a == "-u" {
        } else {
            // Setting the clock needs root.
            return CmdResult::fail("date: cannot set date: Operation not permitted\n", 1);
        }
    }
    CmdResult::ok(format!(
        "{}\n",
        strftime(&fmt, now.as_secs() as i64, now.subsec_nanos())
    ))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_known_instants() {
        // 2026-11-25 07:00:00 UTC was a Wednesday.
        let t = 1_795_590_000;
        assert_eq!(
            strftime("%a %b %e %H:%M:%S %Z %Y", t, 0),
            "Wed Nov 25 07:00:00 UTC 2026"
        );
        assert_eq!(
            strftime("%Y-%m-%d %s %N %j", t, 5),
            "2026-11-25 1795590000 000000005 329"
        );
        assert_eq!(strftime("%a %e", 0, 0), "Thu  1");
        assert_eq!(strftime("%F", 951_782_400, 0), "2000-02-29");
    }
}
