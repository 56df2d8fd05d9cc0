//! toybox `date`: the current time in UTC, by default as `%a %b %e %H:%M:%S %Z %Y`, or in a `+FORMAT` of
//! the strftime specifiers scripts write; setting the clock is refused as on a production build. Also the
//! strftime that `ls -l` formats its times with.
//!
//! Must not touch: the handset's state (the time is the host's clock; the handset's zone is UTC).

use time::{OffsetDateTime, PrimitiveDateTime};

use super::CmdResult;

/// strftime for UTC, the specifiers toybox's date users write (bionic's strftime prints them so). The
/// calendar is the `time` crate's; an instant beyond its range (years 1–9999 are all `ls` and `date`
/// can meet) is clamped to the nearest one it has.
pub fn strftime(fmt: &str, secs: i64, nanos: u32) -> String {
    let secs = secs.clamp(
        PrimitiveDateTime::MIN.assume_utc().unix_timestamp(),
        PrimitiveDateTime::MAX.assume_utc().unix_timestamp(),
    );
    let t = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let t = t.replace_nanosecond(nanos).unwrap_or(t);
    let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
    let (hh, mm, ss) = (t.hour(), t.minute(), t.second());
    let wday = t.weekday().number_days_from_sunday();
    let day_name = t.weekday().to_string();
    let month_name = t.month().to_string();
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('a') => out.push_str(&day_name[..3]),
            Some('A') => out.push_str(&day_name),
            Some('b' | 'h') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(&month_name),
            Some('C') => out.push_str(&format!("{:02}", y / 100)),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('D') => out.push_str(&format!("{m:02}/{d:02}/{:02}", y % 100)),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hh + 11) % 12 + 1)),
            Some('j') => out.push_str(&format!("{:03}", t.ordinal())),
            Some('k') => out.push_str(&format!("{hh:2}")),
            Some('l') => out.push_str(&format!("{:2}", (hh + 11) % 12 + 1)),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('n') => out.push('\n'),
            Some('N') => out.push_str(&format!("{:09}", t.nanosecond())),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('R') => out.push_str(&format!("{hh:02}:{mm:02}")),
            Some('s') => out.push_str(&t.unix_timestamp().to_string()),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('t') => out.push('\t'),
            Some('T') => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            Some('u') => out.push_str(&t.weekday().number_from_monday().to_string()),
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
    let now = OffsetDateTime::now_utc();
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
        strftime(&fmt, now.unix_timestamp(), now.nanosecond())
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

    /// Every specifier, against what `date -u -d @SECS +FORMAT` prints (libc strftime, as bionic's):
    /// the epoch, a leap day, the last day of a leap year, noon on a Sunday, before the epoch, the last
    /// second the calendar has.
    #[test]
    fn strftime_every_specifier_matches_libc() {
        let fmt = "%a %A %b %h %B %C %d %D %e %F %H %I %j %k %l %m %M %N %p %R %s %S %T %u %w %y %Y %z %Z %%";
        for (secs, want) in [
            (
                0,
                "Thu Thursday Jan Jan January 19 01 01/01/70  1 1970-01-01 00 12 001  0 12 01 00 000000000 AM 00:00 0 00 00:00:00 4 4 70 1970 +0000 UTC %",
            ),
            (
                951_782_400,
                "Tue Tuesday Feb Feb February 20 29 02/29/00 29 2000-02-29 00 12 060  0 12 02 00 000000000 AM 00:00 951782400 00 00:00:00 2 2 00 2000 +0000 UTC %",
            ),
            (
                1_735_603_200,
                "Tue Tuesday Dec Dec December 20 31 12/31/24 31 2024-12-31 00 12 366  0 12 12 00 000000000 AM 00:00 1735603200 00 00:00:00 2 2 24 2024 +0000 UTC %",
            ),
            (
                1_798_675_199,
                "Wed Wednesday Dec Dec December 20 30 12/30/26 30 2026-12-30 23 11 364 23 11 12 59 000000000 PM 23:59 1798675199 59 23:59:59 3 3 26 2026 +0000 UTC %",
            ),
            (
                1_710_072_000,
                "Sun Sunday Mar Mar March 20 10 03/10/24 10 2024-03-10 12 12 070 12 12 03 00 000000000 PM 12:00 1710072000 00 12:00:00 7 0 24 2024 +0000 UTC %",
            ),
            (
                -86_400,
                "Wed Wednesday Dec Dec December 19 31 12/31/69 31 1969-12-31 00 12 365  0 12 12 00 000000000 AM 00:00 -86400 00 00:00:00 3 3 69 1969 +0000 UTC %",
            ),
            (
                253_402_300_799,
                "Fri Friday Dec Dec December 99 31 12/31/99 31 9999-12-31 23 11 365 23 11 12 59 000000000 PM 23:59 253402300799 59 23:59:59 5 5 99 9999 +0000 UTC %",
            ),
        ] {
            assert_eq!(strftime(fmt, secs, 0), want, "@{secs}");
        }
        // Layout characters, unknown specifiers and a trailing `%` are kept as toybox keeps them.
        assert_eq!(strftime("%n%t|%q|%", 0, 0), "\n\t|%q|%");
        assert_eq!(strftime("%N", 0, 123_456_789), "123456789");
        // Beyond the calendar's range: the nearest instant it has, never a panic.
        assert_eq!(strftime("%F %T", i64::MAX, 0), "9999-12-31 23:59:59");
        assert_eq!(strftime("%Y", i64::MIN, 0), "-9999");
    }

    #[test]
    fn date_prints_now_in_the_default_format_and_refuses_to_set_the_clock() {
        let before = OffsetDateTime::now_utc().unix_timestamp();
        let out = date(&["+%s".to_string()]);
        let after = OffsetDateTime::now_utc().unix_timestamp();
        let printed: i64 = String::from_utf8(out.out).unwrap().trim().parse().unwrap();
        assert!((before..=after).contains(&printed), "{printed}");
        let out = String::from_utf8(date(&["-u".to_string()]).out).unwrap();
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields.len(), 6, "{out}");
        assert_eq!(fields[4], "UTC", "{out}");
        assert!(out.ends_with('\n'));
        let refused = date(&["010100002030".to_string()]);
        assert_eq!(
            (refused.code, refused.err.as_slice()),
            (1, &b"date: cannot set date: Operation not permitted\n"[..])
        );
    }
}
