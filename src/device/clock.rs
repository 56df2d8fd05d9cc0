//! The device's clock against the host's, and the map from capture timestamps to host time.
//!
//! Owns the reading of the device's clock (`date +%s.%N`, else `date -u`'s default format, each
//! bracketed by host timestamps and taken at the bracket's midpoint), the parsing of what every
//! Android `date` prints, and [`ClockMap`], which turns a capture timestamp on the device's clock
//! into host time with the offsets read at the start and the end of a run (linear in between: a
//! clock that drifts during a long run is followed).
//!
//! What the `date`s print (the sources the parsers' tests quote):
//! - Android 4.4's toolbox `date` (system/core `toolbox/date.c`) takes `+FORMAT` and hands it to
//!   bionic's `strftime` (`libc/tzcode/strftime.c`), which knows `%s` and prints an unknown
//!   specifier's letter alone: `date +%s.%N` prints `1795592561.N`. Without `+FORMAT` it prints
//!   `%a %b %e %H:%M:%S %Z %Y`, with `-u` `… GMT %Y`. Vendor toolboxes without `+FORMAT` exist
//!   (an older `date` takes the argument as a time to set, which the shell user may not): the
//!   default format is read then.
//! - toybox `date` (Android 6+, `toys/posix/date.c`) prints `%N` as nanoseconds, and `-u` as
//!   `… UTC %Y`.
//!
//! The device's output is untrusted: anything that is not one of those forms, or a time the
//! calendar does not have, leaves the reading "unmeasured" with the reason; nothing panics.
//!
//! Must not touch: the capture, the step windows (the runner keeps them, `outcome` places packets).

use std::time::Duration;

use serde::Serialize;

use super::now_unix;
use super::shell::Shell;

/// How long one `date` may take.
const DATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Added to every reading's uncertainty: the host's own scheduling.
const SLACK: f64 = 0.05;

/// One reading of the device's clock.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClockReading {
    /// Device clock minus host clock, in seconds; `null` when unmeasured.
    pub offset_seconds: Option<f64>,
    /// Half the read's round trip, plus the resolution of what `date` printed.
    pub uncertainty_seconds: Option<f64>,
    /// Host time (Unix seconds) the reading is for: the middle of the read.
    pub host_time: Option<f64>,
    /// The command whose output was read: `date +%s.%N` or `date -u`.
    pub command: Option<&'static str>,
    /// Why there is no reading: the device did not answer, or printed what no `date` prints.
    pub unmeasured: Option<String>,
}

impl ClockReading {
    pub fn unmeasured(why: impl Into<String>) -> ClockReading {
        ClockReading {
            offset_seconds: None,
            uncertainty_seconds: None,
            host_time: None,
            command: None,
            unmeasured: Some(why.into()),
        }
    }

    /// The offset to apply: none within the reading's own uncertainty (shifting by noise would
    /// misplace traffic), none when unmeasured.
    pub fn applied(&self) -> f64 {
        match (self.offset_seconds, self.uncertainty_seconds) {
            (Some(o), Some(u)) if o.abs() > u => o,
            _ => 0.0,
        }
    }
}

/// The clock facts of a run.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClockRecord {
    /// Whose clock the capture's timestamps are on: `device` (the `device` source) or `host`
    /// (the `file:` sources: the capturer's, on the host or the network side).
    pub timestamps: &'static str,
    /// The device's clock before the first step.
    pub start: ClockReading,
    /// The device's clock after the capture stopped.
    pub end: ClockReading,
}

/// Reads the device's clock: `date +%s.%N` first, `date -u` when that printed no epoch.
pub async fn read(shell: &impl Shell) -> ClockReading {
    let epoch = match timed(shell, "date +%s.%N").await {
        Ok((out, before, after)) => match parse_epoch(&out) {
            Some((secs, resolution)) => {
                return reading(secs, resolution, before, after, "date +%s.%N");
            }
            None => out,
        },
        Err(why) => return ClockReading::unmeasured(why),
    };
    match timed(shell, "date -u").await {
        Ok((out, before, after)) => match parse_default_date(&out) {
            Some(secs) => reading(secs as f64 + 0.5, 0.5, before, after, "date -u"),
            None => ClockReading::unmeasured(format!(
                "the device's `date` printed neither epoch seconds ({}) nor its default format \
                 ({})",
                shown(&epoch),
                shown(&out)
            )),
        },
        Err(why) => ClockReading::unmeasured(why),
    }
}

fn reading(
    device: f64,
    resolution: f64,
    before: f64,
    after: f64,
    command: &'static str,
) -> ClockReading {
    let host = (before + after) / 2.0;
    ClockReading {
        offset_seconds: Some(round_ms(device - host)),
        uncertainty_seconds: Some(round_ms((after - before) / 2.0 + resolution + SLACK)),
        host_time: Some(host),
        command: Some(command),
        unmeasured: None,
    }
}

fn round_ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `command`'s stdout with the host times before and after it; `Err` in words.
async fn timed(shell: &impl Shell, command: &str) -> Result<(String, f64, f64), String> {
    let before = now_unix();
    let out = shell
        .run(command, DATE_TIMEOUT)
        .await
        .map_err(|e| format!("the device did not answer `{command}`: {e}"))?;
    let after = now_unix();
    Ok((out.stdout_text(), before, after))
}

/// What the device printed, for a reason: bounded and safe for a terminal and for JSON.
fn shown(text: &str) -> String {
    let t: String = text.trim().chars().take(60).collect();
    format!("`{}`", tattle_analysis::sanitize_lines(&t))
}

/// `date +%s.%N`'s output: seconds and the resolution of what was printed. `1795592561.123456789`
/// (toybox), `1795592561.N` (bionic's strftime: an unknown specifier prints its letter),
/// `1795592561.%N`, `1795592561` (whole seconds: the middle of the second is taken).
pub fn parse_epoch(text: &str) -> Option<(f64, f64)> {
    let line = text.trim();
    let (secs, frac) = match line.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (line, None),
    };
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = secs.parse().ok()?;
    match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let nanos: u64 = f.parse().ok()?;
            let scale = 10u64.pow(f.len() as u32);
            Some((whole as f64 + nanos as f64 / scale as f64, 0.0))
        }
        None | Some("N" | "%N") => Some((whole as f64 + 0.5, 0.5)),
        Some(_) => None,
    }
}

/// `date -u`'s default output, `%a %b %e %H:%M:%S %Z %Y` with the zone `UTC` (toybox) or `GMT`
/// (4.4's toolbox): Unix seconds. Any other zone (a `date` that ignored `-u`) is not read: local
/// time would be off by the zone.
pub fn parse_default_date(text: &str) -> Option<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, month, day, hms, zone, year] = words.as_slice() else {
        return None;
    };
    if !matches!(*zone, "UTC" | "GMT") {
        return None;
    }
    let month = match *month {
        "Jan" => time::Month::January,
        "Feb" => time::Month::February,
        "Mar" => time::Month::March,
        "Apr" => time::Month::April,
        "May" => time::Month::May,
        "Jun" => time::Month::June,
        "Jul" => time::Month::July,
        "Aug" => time::Month::August,
        "Sep" => time::Month::September,
        "Oct" => time::Month::October,
        "Nov" => time::Month::November,
        "Dec" => time::Month::December,
        _ => return None,
    };
    let number = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let year = i32::try_from(number(year, 4)?).ok()?;
    let day = u8::try_from(number(day, 2)?).ok()?;
    let mut parts = hms.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(number(h, 2)?).ok()?,
        u8::try_from(number(m, 2)?).ok()?,
        // A leap second (`60`) is the next second's start.
        u8::try_from(number(s, 2)?.min(59)).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Turns a capture timestamp into host time. On the host's clock (a `file:` source) it is the
/// timestamp itself; on the device's, the offsets read at the start and the end are applied,
/// interpolated in between and held beyond.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClockMap {
    /// `(host time, applied offset)` of each reading that was measured.
    points: Vec<(f64, f64)>,
}

impl ClockMap {
    /// Timestamps already on the host's clock.
    pub fn host() -> ClockMap {
        ClockMap::default()
    }

    /// From the readings at the start and the end of a run (either may be unmeasured).
    pub fn from_readings(readings: &[&ClockReading]) -> ClockMap {
        let mut points: Vec<(f64, f64)> = readings
            .iter()
            .filter_map(|r| Some((r.host_time?, r.offset_seconds.map(|_| r.applied())?)))
            .filter(|(h, o)| h.is_finite() && o.is_finite())
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        ClockMap { points }
    }

    /// A constant offset (device minus host).
    pub fn constant(offset: f64) -> ClockMap {
        ClockMap {
            points: vec![(0.0, offset)],
        }
    }

    /// The offset in force at host time `host`.
    pub fn offset_at(&self, host: f64) -> f64 {
        match self.points.as_slice() {
            [] => 0.0,
            [(_, o)] => *o,
            [(h1, o1), .., (h2, o2)] => {
                if host <= *h1 || h2 <= h1 {
                    *o1
                } else if host >= *h2 {
                    *o2
                } else {
                    o1 + (o2 - o1) * (host - h1) / (h2 - h1)
                }
            }
        }
    }

    /// Host time of a timestamp on the device's clock.
    pub fn to_host(&self, device_ts: f64) -> f64 {
        let first = self.points.first().map_or(0.0, |(_, o)| *o);
        // The offset is a function of host time; the device time less the first offset is close
        // enough to find it (offsets change by milliseconds over a run).
        device_ts - self.offset_at(device_ts - first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adb::{AdbError, ShellOutput};

    /// A device whose `date` answers with fixed text for each command.
    struct Dates(Vec<(&'static str, &'static str)>);

    impl Shell for Dates {
        fn run(
            &self,
            command: &str,
            _timeout: Duration,
        ) -> impl std::future::Future<Output = Result<ShellOutput, AdbError>> + Send {
            let out = self
                .0
                .iter()
                .find(|(c, _)| *c == command)
                .map(|(_, o)| o.to_string());
            std::future::ready(match out {
                Some(text) => Ok(ShellOutput {
                    stdout: text.into_bytes(),
                    stderr: Vec::new(),
                    exit_code: Some(0),
                }),
                None => Err(AdbError::DeviceLost {
                    serial: "s".into(),
                    during: command.into(),
                }),
            })
        }
    }

    #[test]
    fn epochs_as_every_date_prints_them() {
        // toybox date (toys/posix/date.c): %N is nanoseconds.
        let (secs, resolution) = parse_epoch("1795592561.123456789\n").unwrap();
        assert!((secs - 1_795_592_561.123_457).abs() < 1e-5, "{secs}");
        assert_eq!(resolution, 0.0);
        // Android 4.4 toolbox date (system/core toolbox/date.c) through bionic's strftime
        // (libc/tzcode/strftime.c): `%s` known, the unknown `%N` prints its letter.
        assert_eq!(
            parse_epoch("1795592561.N\r\n"),
            Some((1_795_592_561.5, 0.5))
        );
        assert_eq!(parse_epoch("1795592561.%N"), Some((1_795_592_561.5, 0.5)));
        assert_eq!(parse_epoch("1795592561"), Some((1_795_592_561.5, 0.5)));
        // What an old toolbox prints when it takes `+%s.%N` for a time to set, and other noise.
        for bad in [
            "time +%s.%N -> 0.0",
            "settimeofday failed Operation not permitted",
            "",
            "inf",
            "NaN.5",
            "1e9.0",
            "-5.0",
            "17955925610000000000000.0",
            "1795592561.12x",
            "1795592561.1234567890",
            "1795592561 1795592562",
        ] {
            assert_eq!(parse_epoch(bad), None, "{bad}");
        }
    }

    #[test]
    fn default_formats_of_toolbox_and_toybox() {
        // toolbox/date.c with -u: "%a %b %e %H:%M:%S GMT %Y" (%e space-padded).
        assert_eq!(
            parse_default_date("Wed Nov 25 07:00:00 GMT 2026\n"),
            Some(1_795_590_000)
        );
        assert_eq!(parse_default_date("Thu Jan  1 00:00:00 GMT 1970"), Some(0));
        // toybox date -u: "%a %b %e %H:%M:%S %Z %Y" with %Z = UTC.
        assert_eq!(
            parse_default_date("Tue Feb 29 00:00:00 UTC 2000"),
            Some(951_782_400)
        );
        for bad in [
            "Wed Nov 25 07:00:00 CET 2026",
            "Wed Nov 31 07:00:00 UTC 2026",
            "Wed Nov 25 25:00:00 UTC 2026",
            "Wed Xyz 25 07:00:00 UTC 2026",
            "Wed Nov 25 07:00 UTC 2026",
            "Wed Nov 25 07:00:00:00 UTC 2026",
            "Wed Nov 25 07:00:00 UTC 99999",
            "Wed Nov 25 07:00:00 UTC",
            "",
        ] {
            assert_eq!(parse_default_date(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn readings_fall_back_to_the_default_format_and_say_why_when_unmeasured() {
        let now = now_unix() as u64;
        let toybox: &'static str = Box::leak(format!("{now}.500000000\n").into_boxed_str());
        let r = read(&Dates(vec![("date +%s.%N", toybox)])).await;
        assert_eq!(r.command, Some("date +%s.%N"));
        let offset = r.offset_seconds.unwrap();
        assert!(offset.abs() < 2.0, "{r:?}");
        assert!(r.uncertainty_seconds.unwrap() < 1.0);
        assert!(r.unmeasured.is_none());

        // A toolbox that took `+%s.%N` for a time to set: `date -u` then, a second's resolution.
        let stamp = time::OffsetDateTime::from_unix_timestamp(now as i64 + 3600).unwrap();
        let default: &'static str = Box::leak(
            format!(
                "{} {} {:2} {:02}:{:02}:{:02} GMT {}\n",
                &stamp.weekday().to_string()[..3],
                &stamp.month().to_string()[..3],
                stamp.day(),
                stamp.hour(),
                stamp.minute(),
                stamp.second(),
                stamp.year()
            )
            .into_boxed_str(),
        );
        let r = read(&Dates(vec![
            (
                "date +%s.%N",
                "time +%s.%N -> 0.0\nsettimeofday failed Operation not permitted\n",
            ),
            ("date -u", default),
        ]))
        .await;
        assert_eq!(r.command, Some("date -u"));
        let offset = r.offset_seconds.unwrap();
        assert!((offset - 3600.0).abs() < 2.0, "{r:?}");
        assert_eq!(r.applied(), offset, "an hour is beyond the uncertainty");

        let r = read(&Dates(vec![
            ("date +%s.%N", "\u{1b}[31mgarbage"),
            ("date -u", "also garbage"),
        ]))
        .await;
        let why = r.unmeasured.as_deref().unwrap();
        assert!(why.contains("neither epoch seconds"), "{why}");
        assert!(!why.contains('\u{1b}'), "{why}");
        assert_eq!((r.offset_seconds, r.applied()), (None, 0.0));

        let r = read(&Dates(vec![])).await;
        assert!(
            r.unmeasured
                .unwrap()
                .starts_with("the device did not answer `date +%s.%N`")
        );
    }

    #[test]
    fn clock_maps_interpolate_between_start_and_end() {
        let at = |host: f64, offset: f64| ClockReading {
            offset_seconds: Some(offset),
            uncertainty_seconds: Some(0.1),
            host_time: Some(host),
            command: Some("date +%s.%N"),
            unmeasured: None,
        };
        let (start, end) = (at(1000.0, 10.0), at(1100.0, 12.0));
        let map = ClockMap::from_readings(&[&start, &end]);
        assert_eq!(map.offset_at(900.0), 10.0);
        assert_eq!(map.offset_at(1050.0), 11.0);
        assert_eq!(map.offset_at(2000.0), 12.0);
        assert!((map.to_host(1060.0) - 1049.0).abs() < 0.05);
        // One side unmeasured: the other holds for the whole run.
        let map = ClockMap::from_readings(&[&start, &ClockReading::unmeasured("gone")]);
        assert_eq!(map.to_host(1500.0), 1490.0);
        // Within the uncertainty: no shift.
        let map = ClockMap::from_readings(&[&at(1000.0, 0.05)]);
        assert_eq!(map.to_host(1234.5), 1234.5);
        assert_eq!(ClockMap::host().to_host(7.0), 7.0);
        assert_eq!(ClockMap::constant(-2.0).to_host(7.0), 9.0);
    }
}
