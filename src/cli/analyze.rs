//! `tattle analyze CAPTURE`: offline analysis of any pcap/pcapng (a file, or `-` for stdin), printed
//! as a readable summary or as versioned JSON (docs/analysis-json.md).
//!
//! Owns: reading the identifiers (`--id`, `--identifiers FILE`) and the TLS key logs
//! (`--keylog FILE`, NSS format; a malformed line is skipped and counted), running `analysis`, printing the
//! report built by `report::capture`, and the exit code (0 no findings, 1 findings, 2 usage or
//! environment error). Must not touch: the analysis itself, devices, snapshots.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow};

use super::{Exit, Format, parse_ids};
use crate::report::capture::{Analysed, KeylogFileOut, KeylogOut, Report};
use tattle_analysis::identifier::Identifier;
use tattle_analysis::keylog::KeyLog;
use tattle_analysis::{Keys, Redactor, Summary};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A pcap or pcapng file, or `-` to read one from stdin (e.g. `tcpdump -w - | tattle analyze -`).
    capture: PathBuf,
    /// An identifier to look for: KIND=VALUE (kinds: imei, imsi, iccid, phone_number, android_id,
    /// serial, wifi_mac, email, advertising_id, location, contact_name, contact_phone, sms_body, or
    /// any snake_case name). Repeatable.
    #[arg(long = "id", value_name = "KIND=VALUE")]
    ids: Vec<String>,
    /// A YAML map of identifiers, `kind: value` or `kind: [value, …]`.
    #[arg(long, value_name = "FILE")]
    identifiers: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Threads that follow flows (flows are sharded by their addresses); default: every core.
    /// `--threads 1` analyses on one thread.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// A TLS key log (NSS format, as SSLKEYLOGFILE or `openssl s_client -keylogfile` write it):
    /// TLS 1.2/1.3 flows it has secrets for are decrypted and searched. Repeatable. A pcapng's
    /// own Decryption Secrets Blocks are always used.
    #[arg(long = "keylog", value_name = "FILE")]
    keylogs: Vec<PathBuf>,
}

/// Reads every `--keylog` file into one key log; what each held is reported (counts only).
fn load_keylogs(files: &[PathBuf]) -> anyhow::Result<(Keys, Vec<KeylogFileOut>)> {
    let mut log = KeyLog::new();
    let mut out = Vec::new();
    for file in files {
        if file.as_os_str() == "-" {
            return Err(anyhow!(
                "--keylog -: a key log must be a file (stdin may be the capture)"
            ));
        }
        let text = std::fs::read(file).with_context(|| {
            format!(
                "cannot read key log {} (give the file SSLKEYLOGFILE or -keylogfile wrote)",
                file.display()
            )
        })?;
        let stats = log.add_text(&text);
        if stats.malformed > 0 {
            tracing::warn!(
                "{}: {} malformed key log line(s) skipped (first: line {})",
                file.display(),
                stats.malformed,
                stats.first_malformed_line.unwrap_or(0)
            );
        }
        out.push(KeylogFileOut {
            file: tattle_analysis::sanitize(&file.display().to_string()),
            lines: stats.lines,
            secrets: stats.secrets,
            other_labels: stats.other_labels,
            malformed: stats.malformed,
            first_malformed_line: stats.first_malformed_line,
        });
    }
    Ok((Keys::new(log), out))
}

/// A YAML identifier value: a scalar (an IMEI may be written unquoted, as a number) or a list.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum YamlValue {
    Text(String),
    Int(u64),
    Float(f64),
    List(Vec<YamlValue>),
}

impl YamlValue {
    fn flatten(self, out: &mut Vec<String>) {
        match self {
            YamlValue::Text(s) => out.push(s),
            YamlValue::Int(i) => out.push(i.to_string()),
            YamlValue::Float(f) => out.push(f.to_string()),
            YamlValue::List(l) => l.into_iter().for_each(|v| v.flatten(out)),
        }
    }
}

fn load_identifiers(args: &AnalyzeArgs) -> anyhow::Result<Vec<Identifier>> {
    let mut ids = parse_ids(&args.ids)?;
    if let Some(file) = &args.identifiers {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading identifiers from {}", file.display()))?;
        let map: BTreeMap<String, YamlValue> = serde_saphyr::from_str(&text).map_err(|e| {
            anyhow!(
                "{}: expected a YAML map of kind: value, e.g. `imei: \"356938035643809\"` ({e})",
                file.display()
            )
        })?;
        for (kind, value) in map {
            let mut values = Vec::new();
            value.flatten(&mut values);
            for v in values {
                ids.extend(
                    parse_ids(&[format!("{kind}={v}")])
                        .with_context(|| format!("{}: identifier `{kind}`", file.display()))?,
                );
            }
        }
    }
    if ids.is_empty() {
        tracing::warn!("no identifiers given (--id KIND=VALUE): only hosts will be reported");
    }
    Ok(ids)
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<Exit> {
    let ids = load_identifiers(&args)?;
    let (keys, keylog_files) = load_keylogs(&args.keylogs)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // One thread: everything inline. More: that many shards follow flows while this thread reads.
    let shards = if threads == 1 { 0 } else { threads };
    let done = if args.capture.as_os_str() == "-" {
        tattle_analysis::analyze_parallel_with_keys(
            std::io::stdin().lock(),
            &ids,
            &keys,
            shards,
            Summary::default,
        )?
    } else {
        let file = std::fs::File::open(&args.capture)
            .with_context(|| format!("cannot read capture {}", args.capture.display()))?;
        tattle_analysis::analyze_parallel_with_keys(file, &ids, &keys, shards, Summary::default)?
    };
    let mut summary = Summary::default();
    for shard in done.sink {
        summary.merge(shard);
    }
    let analysed = Analysed {
        summary,
        frames: done.frames,
        damage: done.damage,
        limits: done.limits,
        skipped: done.skipped,
        threads,
        keylog: KeylogOut {
            files: keylog_files,
            capture_blocks: done.secrets.blocks,
            capture_secrets: done.secrets.stats.secrets,
            capture_malformed: done.secrets.stats.malformed,
        },
    };
    let report = Report::build(&analysed, &Redactor::new(&ids));
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => {
            let name = if args.capture.as_os_str() == "-" {
                "(stdin)".to_string()
            } else {
                args.capture.display().to_string()
            };
            out.write_all(report.text(&tattle_analysis::sanitize(&name)).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(if report.findings.is_empty() {
        Exit::Clean
    } else {
        Exit::Findings
    })
}
