//! Differential canaries: which encrypted flows carry a planted value, told from their sizes alone
//! (docs/differential.md).
//!
//! Owns the planting plan (for each run and each planted kind, a value of letters or digits of a
//! chosen length), the encrypted flows a run contributes (`EncryptedFlow`: step, host, port and the
//! client's bytes after its ClientHello), their grouping across runs by (step, host, port, ordinal),
//! the fit of size against planted length per kind, and the verdicts: flows whose sizes follow a
//! planted value (slope class, confidence) and groups that could not be judged (missing in some
//! runs, noisy baselines, sizes that follow no single value).
//!
//! Must not touch: devices, files, the terminal (`runner` plants the values and repeats the runs,
//! `cli` prints), and raw planted values in anything it returns besides `Plan::values`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Fewer runs cannot both measure noise (two runs with the same lengths) and fit a line (two more
/// lengths).
pub const MIN_RUNS: usize = 4;
/// One more offset per run; more runs add little and cost minutes each.
pub const MAX_RUNS: usize = 16;

/// How much longer than its base each run's value is, in characters. The first is planted twice
/// (the noise baseline); each kind walks the rest from its own starting point, so no two kinds'
/// lengths rise together. 13, 29 and 61 leave different remainders modulo 3 and 16: base64's groups
/// of three and a CBC block of 16 cannot round two of them to the same size (design §10).
const OFFSETS: [usize; MAX_RUNS - 1] = [0, 13, 29, 61, 45, 77, 22, 38, 54, 70, 86, 5, 93, 102, 118];

/// Planted values never get shorter than this, so a canary cannot match random bytes.
const MIN_BASE_LEN: usize = 8;
/// Nor longer than this at their base: a phone's fields and an SMS have limits.
const MAX_BASE_LEN: usize = 64;

/// The smallest and largest slopes (bytes on the wire per planted character) judged as "follows":
/// below, compression or a coincidence; above, no encoding tattle knows.
const MIN_SLOPE: f64 = 0.3;
const MAX_SLOPE: f64 = 3.2;
/// How exactly the sizes must lie on the line.
const MIN_R2: f64 = 0.98;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DifferentialError {
    #[error(
        "--differential {0}: at least {MIN_RUNS} runs are needed (two with the same planted lengths \
         measure the noise, two more lengths make a line); use --differential 4 or more"
    )]
    TooFewRuns(usize),
    #[error("--differential {0}: at most {MAX_RUNS} runs; use --differential {MAX_RUNS} or fewer")]
    TooManyRuns(usize),
    #[error(
        "scenario `{0}` plants no values (its `identifiers:` is empty), so there is nothing to vary \
         between runs; add canaries such as `sms_body: \"tattle canary {{run_id}}\"` \
         (docs/scenarios.md)"
    )]
    NothingPlanted(String),
}

/// Checks the number of runs before anything touches a device.
pub fn check_runs(runs: usize) -> Result<(), DifferentialError> {
    if runs < MIN_RUNS {
        Err(DifferentialError::TooFewRuns(runs))
    } else if runs > MAX_RUNS {
        Err(DifferentialError::TooManyRuns(runs))
    } else {
        Ok(())
    }
}

/// The scenario's planted kinds, each with the length of its own value (a run id in place of
/// `{run_id}`): the base each run's length grows from.
pub fn bases(scenario: &crate::scenario::Scenario) -> Vec<(String, usize)> {
    let (expanded, _) = scenario.expand("00000000");
    expanded
        .identifiers
        .iter()
        .map(|(kind, value)| (kind.clone(), value.chars().count()))
        .collect()
}

/// The characters a planted value is made of. Letters and digits only: URL encoding, JSON and form
/// bodies leave them as they are, so the length on the wire is the planted length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// Contact and phone numbers.
    Digits,
    /// Names.
    Letters,
    /// Anything else (message text).
    LettersAndDigits,
}

impl Alphabet {
    /// Digits for a kind that is a number (`contact_phone`, `*_number`), letters for a name.
    pub fn for_kind(kind: &str) -> Alphabet {
        if kind.ends_with("phone") || kind.ends_with("number") || kind.ends_with("_to") {
            Alphabet::Digits
        } else if kind.ends_with("name") {
            Alphabet::Letters
        } else {
            Alphabet::LettersAndDigits
        }
    }

    fn chars(self) -> &'static [u8] {
        match self {
            Alphabet::Digits => b"0123456789",
            Alphabet::Letters => b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
            Alphabet::LettersAndDigits => {
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            }
        }
    }
}

/// One planted kind: what it is made of and how long it is in each run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlantedKind {
    pub kind: String,
    pub alphabet: Alphabet,
    /// Its length in each run, in run order.
    pub lengths: Vec<usize>,
}

/// What each run plants.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kinds: Vec<PlantedKind>,
    /// Per run, `(kind, value)`: raw values, for the runner only.
    values: Vec<Vec<(String, String)>>,
}

impl Plan {
    /// Plans `runs` runs for `bases` (each kind with the length of the scenario's own value).
    /// `seed` makes the values; the lengths do not depend on it.
    pub fn new(
        scenario: &str,
        bases: &[(String, usize)],
        runs: usize,
        seed: u64,
    ) -> Result<Plan, DifferentialError> {
        check_runs(runs)?;
        if bases.is_empty() {
            return Err(DifferentialError::NothingPlanted(scenario.to_string()));
        }
        let mut rng = SplitMix(seed);
        let kinds: Vec<PlantedKind> = bases
            .iter()
            .enumerate()
            .map(|(k, (kind, base))| {
                let base = (*base).clamp(MIN_BASE_LEN, MAX_BASE_LEN);
                let lengths = (0..runs)
                    .map(|run| base + OFFSETS[offset_index(k, run, runs)])
                    .collect();
                PlantedKind {
                    kind: kind.clone(),
                    alphabet: Alphabet::for_kind(kind),
                    lengths,
                }
            })
            .collect();
        let values = (0..runs)
            .map(|run| {
                kinds
                    .iter()
                    .map(|k| (k.kind.clone(), rng.text(k.alphabet, k.lengths[run])))
                    .collect()
            })
            .collect();
        Ok(Plan { kinds, values })
    }

    pub fn runs(&self) -> usize {
        self.values.len()
    }

    /// The raw values of run `run` (0-based), `(kind, value)`.
    pub fn values(&self, run: usize) -> &[(String, String)] {
        self.values.get(run).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Which offset kind `k` uses in `run`: runs 0 and 1 share one (the baseline); the others walk the
/// `runs - 1` offsets in a rotation that starts at `k`.
fn offset_index(k: usize, run: usize, runs: usize) -> usize {
    let distinct = runs - 1;
    let step = run.saturating_sub(1);
    (step + k) % distinct
}

/// splitmix64: planted values need to differ between runs, not to be secret.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn text(&mut self, alphabet: Alphabet, len: usize) -> String {
        let chars = alphabet.chars();
        (0..len)
            .map(|i| {
                // A number starting with 0 may be rewritten by a dialer (trunk prefix).
                let pool = if i == 0 && alphabet == Alphabet::Digits {
                    &chars[1..]
                } else {
                    chars
                };
                char::from(pool[(self.next() % pool.len() as u64) as usize])
            })
            .collect()
    }
}

/// One encrypted flow of one run, as the differential judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFlow {
    /// `4 send-sms`.
    pub step: String,
    /// Its best name (SNI first), redacted.
    pub host: String,
    pub port: u16,
    /// Orders the flows of one step, host and port.
    pub first_frame: u64,
    /// Bytes the client sent after its ClientHello: its encrypted records. The ClientHello is left
    /// out because it grows when a session is resumed, which a repeated run does.
    pub bytes: u64,
    /// False when the capture lost bytes of the flow: its size says nothing.
    pub complete: bool,
}

/// Where a group of flows is, across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct GroupKey {
    pub step: String,
    pub host: String,
    pub port: u16,
    /// 1 for the first such flow of the step, 2 for the second…
    pub ordinal: usize,
}

/// What a flow's growth per planted character says about how the value was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlopeClass {
    /// ≈1 byte per character, exactly, every run: as typed (or URL/JSON-escaped letters/digits).
    Plain,
    /// ≈4/3: base64.
    Base64,
    /// ≈2: hex.
    Hex,
    /// Below 1, or ≈1 with sizes that vary a little between runs of the same length: compressed.
    Compressed,
    /// A clear line with another slope (an encoding tattle does not name).
    Other,
}

impl SlopeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SlopeClass::Plain => "plain",
            SlopeClass::Base64 => "base64",
            SlopeClass::Hex => "hex",
            SlopeClass::Compressed => "compressed",
            SlopeClass::Other => "other",
        }
    }

    /// `exact`: the baseline runs had equal sizes and every size lies within 1.5 bytes of the line.
    fn of(slope: f64, exact: bool) -> SlopeClass {
        match slope {
            s if (0.95..=1.1).contains(&s) && exact => SlopeClass::Plain,
            s if (1.15..=1.5).contains(&s) => SlopeClass::Base64,
            s if (1.85..=2.2).contains(&s) => SlopeClass::Hex,
            s if s < 1.1 => SlopeClass::Compressed,
            _ => SlopeClass::Other,
        }
    }
}

/// How sure a verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Every pair of runs agrees, over at least four lengths.
    High,
    /// Every pair agrees, over three lengths (`--differential 4`).
    Medium,
    /// Most pairs agree.
    Low,
}

/// A group whose sizes follow a planted value.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Follows {
    #[serde(flatten)]
    pub group: GroupKey,
    /// The planted kind (`sms_body`).
    pub kind: String,
    pub class: SlopeClass,
    /// Bytes per planted character (least squares), two decimals.
    pub slope: f64,
    /// The fit's R², three decimals.
    pub r2: f64,
    /// Pairs of runs with different lengths whose size difference the slope predicts.
    pub agreeing_pairs: usize,
    pub pairs: usize,
    pub confidence: Confidence,
}

/// Why a group was not judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unjudged {
    /// Not in every run (requests batched, reordered, retried, or a step that differs).
    MissingRuns { present: usize, runs: usize },
    /// The capture lost bytes of it in some run.
    Incomplete,
    /// The two runs with equal planted lengths differ more than the planted values could explain.
    NoisyBaseline,
    /// Sizes change with no noise, but along no single planted value (two values in one flow, or
    /// a value and a counter).
    NoSingleFit,
}

impl Unjudged {
    pub fn describe(&self) -> String {
        match self {
            Unjudged::MissingRuns { present, runs } => {
                format!("present in {present} of {runs} runs (batched, reordered or retried)")
            }
            Unjudged::Incomplete => "the capture lost bytes of it in some run".into(),
            Unjudged::NoisyBaseline => {
                "its size changes between the runs with equal planted lengths (noise)".into()
            }
            Unjudged::NoSingleFit => {
                "its size changes, but along no single planted value (several values, or a counter)"
                    .into()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NotJudged {
    #[serde(flatten)]
    pub group: GroupKey,
    #[serde(flatten)]
    pub why: Unjudged,
}

/// The verdicts over all runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Verdicts {
    /// Groups of encrypted flows seen (in any run).
    pub groups: usize,
    /// Groups whose sizes follow a planted value, sorted.
    pub follows: Vec<Follows>,
    /// Groups that could not be judged, sorted.
    pub not_judged: Vec<NotJudged>,
}

/// Groups each run's encrypted flows and fits their sizes against the plan's lengths.
pub fn judge(plan: &Plan, runs: &[Vec<EncryptedFlow>]) -> Verdicts {
    let n = runs.len();
    // key -> per run: (bytes, complete)
    let mut groups: BTreeMap<GroupKey, Vec<Option<(u64, bool)>>> = BTreeMap::new();
    for (run, flows) in runs.iter().enumerate() {
        let mut sorted: Vec<&EncryptedFlow> = flows.iter().collect();
        sorted.sort_by(|a, b| {
            (&a.step, &a.host, a.port, a.first_frame).cmp(&(
                &b.step,
                &b.host,
                b.port,
                b.first_frame,
            ))
        });
        let mut ordinal: BTreeMap<(&str, &str, u16), usize> = BTreeMap::new();
        for f in sorted {
            let o = ordinal
                .entry((f.step.as_str(), f.host.as_str(), f.port))
                .or_default();
            *o += 1;
            let key = GroupKey {
                step: f.step.clone(),
                host: f.host.clone(),
                port: f.port,
                ordinal: *o,
            };
            groups.entry(key).or_insert_with(|| vec![None; n])[run] = Some((f.bytes, f.complete));
        }
    }
    let mut verdicts = Verdicts {
        groups: groups.len(),
        ..Verdicts::default()
    };
    for (group, sizes) in groups {
        match judge_group(plan, &sizes) {
            Judged::Follows(f) => verdicts.follows.push(Follows { group, ..f }),
            Judged::Not(why) => verdicts.not_judged.push(NotJudged { group, why }),
            Judged::Constant => {}
        }
    }
    verdicts
}

enum Judged {
    Follows(Follows),
    Not(Unjudged),
    /// Same size in every run: carries no planted value that sizes could show.
    Constant,
}

fn judge_group(plan: &Plan, sizes: &[Option<(u64, bool)>]) -> Judged {
    let present = sizes.iter().flatten().count();
    if present < sizes.len() {
        return Judged::Not(Unjudged::MissingRuns {
            present,
            runs: sizes.len(),
        });
    }
    if sizes.iter().flatten().any(|(_, complete)| !complete) {
        return Judged::Not(Unjudged::Incomplete);
    }
    let y: Vec<f64> = sizes.iter().flatten().map(|(b, _)| *b as f64).collect();
    let (lo, hi) = y
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if hi - lo < 0.5 {
        return Judged::Constant;
    }
    let noise = (y[0] - y[1]).abs();
    let mut best: Option<Follows> = None;
    for planted in &plan.kinds {
        let x: Vec<f64> = planted.lengths.iter().map(|l| *l as f64).collect();
        let Some(fit) = Fit::of(&x, &y) else { continue };
        if !(MIN_SLOPE..=MAX_SLOPE).contains(&fit.slope) || fit.r2 < MIN_R2 {
            continue;
        }
        let span = fit.slope * fit.x_span;
        // Compression makes sizes of equal lengths differ by a few bytes; anything more is noise
        // the planted value does not explain.
        let tolerance = (0.15 * span).max(4.0);
        if noise > tolerance || fit.max_residual > tolerance {
            continue;
        }
        let (agreeing, pairs) = pairs_agreeing(&x, &y, fit.slope, tolerance);
        let distinct = {
            let mut d = planted.lengths.clone();
            d.sort_unstable();
            d.dedup();
            d.len()
        };
        let confidence = if agreeing < pairs {
            Confidence::Low
        } else if distinct >= 4 {
            Confidence::High
        } else {
            Confidence::Medium
        };
        let exact = noise < 0.5 && fit.max_residual <= 1.5;
        let candidate = Follows {
            group: GroupKey {
                step: String::new(),
                host: String::new(),
                port: 0,
                ordinal: 0,
            },
            kind: planted.kind.clone(),
            class: SlopeClass::of(fit.slope, exact),
            slope: (fit.slope * 100.0).round() / 100.0,
            r2: (fit.r2 * 1000.0).round() / 1000.0,
            agreeing_pairs: agreeing,
            pairs,
            confidence,
        };
        if best.as_ref().is_none_or(|b| candidate.r2 > b.r2) {
            best = Some(candidate);
        }
    }
    match best {
        Some(f) => Judged::Follows(f),
        None if noise > (0.1 * (hi - lo)).max(4.0) => Judged::Not(Unjudged::NoisyBaseline),
        None => Judged::Not(Unjudged::NoSingleFit),
    }
}

/// Pairs of runs with different lengths, and how many of them change size as `slope` predicts.
fn pairs_agreeing(x: &[f64], y: &[f64], slope: f64, tolerance: f64) -> (usize, usize) {
    let mut pairs = 0;
    let mut agreeing = 0;
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            if (x[i] - x[j]).abs() < 0.5 {
                continue;
            }
            pairs += 1;
            if ((y[j] - y[i]) - slope * (x[j] - x[i])).abs() <= tolerance {
                agreeing += 1;
            }
        }
    }
    (agreeing, pairs)
}

/// A least-squares line `y = a + slope·x`.
struct Fit {
    slope: f64,
    r2: f64,
    max_residual: f64,
    x_span: f64,
}

impl Fit {
    fn of(x: &[f64], y: &[f64]) -> Option<Fit> {
        let n = x.len() as f64;
        let mx = x.iter().sum::<f64>() / n;
        let my = y.iter().sum::<f64>() / n;
        let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
        let syy: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
        if sxx < f64::EPSILON || syy < f64::EPSILON {
            return None;
        }
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        let residuals = x.iter().zip(y).map(|(a, b)| b - (intercept + slope * a));
        let (ss_res, max_residual) =
            residuals.fold((0.0, 0.0f64), |(s, m), r| (s + r * r, m.max(r.abs())));
        let (lo, hi) = x
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        Some(Fit {
            slope,
            r2: 1.0 - ss_res / syy,
            max_residual,
            x_span: hi - lo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(runs: usize) -> Plan {
        Plan::new(
            "t",
            &[
                ("contact_name".into(), 12),
                ("contact_phone".into(), 11),
                ("sms_body".into(), 22),
            ],
            runs,
            7,
        )
        .unwrap()
    }

    fn flow(step: &str, host: &str, bytes: u64) -> EncryptedFlow {
        EncryptedFlow {
            step: step.into(),
            host: host.into(),
            port: 443,
            first_frame: 1,
            bytes,
            complete: true,
        }
    }

    /// Runs whose one flow to `host` has `size(run)` bytes.
    fn runs_of(plan: &Plan, size: impl Fn(usize) -> u64) -> Vec<Vec<EncryptedFlow>> {
        (0..plan.runs())
            .map(|r| vec![flow("2 send-sms", "h.example", size(r))])
            .collect()
    }

    #[test]
    fn fewer_than_four_runs_are_refused() {
        assert_eq!(check_runs(3), Err(DifferentialError::TooFewRuns(3)));
        assert!(check_runs(4).is_ok());
        assert_eq!(check_runs(17), Err(DifferentialError::TooManyRuns(17)));
        assert!(matches!(
            Plan::new("s", &[], 4, 1),
            Err(DifferentialError::NothingPlanted(_))
        ));
    }

    #[test]
    fn values_have_the_planned_lengths_and_alphabets() {
        let p = plan(5);
        for run in 0..5 {
            for (k, (kind, value)) in p.values(run).iter().enumerate() {
                assert_eq!(&p.kinds[k].kind, kind);
                assert_eq!(value.len(), p.kinds[k].lengths[run]);
                assert!(value.bytes().all(|b| b.is_ascii_alphanumeric()));
            }
        }
        assert!(p.values(2)[1].1.bytes().all(|b| b.is_ascii_digit()));
        assert!(p.values(2)[0].1.bytes().all(|b| b.is_ascii_alphabetic()));
        // The baseline: runs 0 and 1 plant equal lengths and different values.
        for k in &p.kinds {
            assert_eq!(k.lengths[0], k.lengths[1]);
        }
        assert_ne!(p.values(0)[2].1, p.values(1)[2].1);
    }

    /// Two kinds' lengths must not rise together, or a flow carrying one would fit the other.
    #[test]
    fn kinds_lengths_are_far_from_collinear() {
        for runs in MIN_RUNS..=MAX_RUNS {
            let p = plan(runs);
            for a in &p.kinds {
                for b in &p.kinds {
                    if a.kind == b.kind {
                        continue;
                    }
                    let x: Vec<f64> = a.lengths.iter().map(|v| *v as f64).collect();
                    let y: Vec<f64> = b.lengths.iter().map(|v| *v as f64).collect();
                    let fit = Fit::of(&x, &y).unwrap();
                    assert!(
                        fit.r2 < 0.5,
                        "{runs} runs: {} vs {}: {}",
                        a.kind,
                        b.kind,
                        fit.r2
                    );
                }
            }
        }
    }

    #[test]
    fn encodings_get_their_slope_class() {
        let p = plan(4);
        let len = |r: usize| p.kinds[2].lengths[r] as u64;
        let cases: [(&dyn Fn(usize) -> u64, SlopeClass); 3] = [
            (&|r| 300 + len(r), SlopeClass::Plain),
            (&|r| 300 + len(r).div_ceil(3) * 4, SlopeClass::Base64),
            (&|r| 300 + 2 * len(r), SlopeClass::Hex),
        ];
        for (size, class) in cases {
            let v = judge(&p, &runs_of(&p, size));
            assert_eq!(v.follows.len(), 1, "{v:?}");
            assert_eq!(v.follows[0].kind, "sms_body");
            assert_eq!(v.follows[0].class, class, "{v:?}");
            assert_eq!(v.follows[0].confidence, Confidence::Medium);
        }
        // Compressed: a little under one byte a character, a few bytes of noise.
        let noise = [0u64, 2, 1, 3];
        let v = judge(&p, &runs_of(&p, |r| 200 + len(r) * 9 / 10 + noise[r]));
        assert_eq!(v.follows[0].class, SlopeClass::Compressed, "{v:?}");
        // Five runs: four lengths.
        let p5 = plan(5);
        let v = judge(&p5, &runs_of(&p5, |r| 90 + p5.kinds[0].lengths[r] as u64));
        assert_eq!(v.follows[0].kind, "contact_name");
        assert_eq!(v.follows[0].confidence, Confidence::High);
    }

    #[test]
    fn controls_are_not_flagged() {
        let p = plan(4);
        // Constant (a hash of the value, a fixed request).
        let v = judge(&p, &runs_of(&p, |_| 412));
        assert!(v.follows.is_empty() && v.not_judged.is_empty(), "{v:?}");
        // Random sizes: the baseline differs.
        let random = [120u64, 301, 77, 240];
        let v = judge(&p, &runs_of(&p, |r| random[r]));
        assert!(v.follows.is_empty(), "{v:?}");
        assert_eq!(v.not_judged[0].why, Unjudged::NoisyBaseline);
        // The sum of two kinds: no single fit.
        let v = judge(
            &p,
            &runs_of(&p, |r| {
                100 + p.kinds[0].lengths[r] as u64 + p.kinds[2].lengths[r] as u64
            }),
        );
        assert!(v.follows.is_empty(), "{v:?}");
        assert_eq!(v.not_judged[0].why, Unjudged::NoSingleFit);
    }

    #[test]
    fn groups_missing_in_a_run_are_not_judged() {
        let p = plan(4);
        let mut runs = runs_of(&p, |r| 300 + p.kinds[2].lengths[r] as u64);
        runs[3].clear();
        let v = judge(&p, &runs);
        assert!(v.follows.is_empty());
        assert_eq!(
            v.not_judged[0].why,
            Unjudged::MissingRuns {
                present: 3,
                runs: 4
            }
        );
    }

    #[test]
    fn ordinals_tell_flows_to_one_host_apart() {
        let p = plan(4);
        let runs: Vec<Vec<EncryptedFlow>> = (0..4)
            .map(|r| {
                let mut second = flow("2 send-sms", "h.example", 500);
                second.first_frame = 9;
                vec![
                    second,
                    flow(
                        "2 send-sms",
                        "h.example",
                        100 + p.kinds[2].lengths[r] as u64,
                    ),
                ]
            })
            .collect();
        let v = judge(&p, &runs);
        assert_eq!(v.groups, 2);
        assert_eq!(v.follows.len(), 1);
        assert_eq!(v.follows[0].group.ordinal, 1);
    }
}
