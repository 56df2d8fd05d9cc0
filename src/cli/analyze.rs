//! `tattle analyze CAPTURE`: offline analysis of any pcap/pcapng, in text or versioned JSON.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};

use super::{Exit, Format, parse_ids};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    capture: PathBuf,
    /// An identifier to look for: KIND=VALUE.
    #[arg(long = "id", value_name = "KIND=VALUE")]
    ids: Vec<String>,
    /// A YAML map of identifiers: `imei: "…"`.
    #[arg(long)]
    identifiers: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<Exit> {
    let mut ids = parse_ids(&args.ids)?;
    if let Some(file) = &args.identifiers {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading identifiers from {}", file.display()))?;
        let map: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(&text)
            .map_err(|e| {
                anyhow!(
                    "{}: expected a YAML map of kind: value ({e})",
                    file.display()
                )
            })?;
        for (kind, value) in map {
            ids.extend(parse_ids(&[format!("{kind}={value}")])?);
        }
    }
    let analysis = crate::analysis::analyze_file(&args.capture, &ids)?;
    let clean = |s: &str| crate::outcome::sanitize(&crate::identifier::redact(s, &ids));
    match args.format {
        Format::Json => {
            let findings: Vec<_> = analysis
                .findings
                .iter()
                .map(|f| {
                    serde_json::json!({"identifier": f.identifier, "encoding": clean(&f.encoding),
                        "host": clean(&f.host), "protocol": f.protocol, "location": clean(&f.location), "frame": f.frame})
                })
                .collect();
            let hosts: Vec<_> = analysis
                .flows
                .iter()
                .map(|f| serde_json::json!({"host": clean(&f.host), "how": f.host_source, "protocol": f.protocol,
                    "first_frame": f.first_frame, "opaque_bytes": f.opaque_bytes}))
                .collect();
            let damage: Vec<_> = analysis
                .damage
                .iter()
                .map(|d| serde_json::json!({"offset": d.offset, "after_frame": d.after_frame, "what": d.what}))
                .collect();
            let json = serde_json::json!({"format_version": 1, "frames": analysis.frames,
                "dns_queries": analysis.dns_queries.iter().map(|q| clean(&q.name)).collect::<Vec<_>>(),
                "flows": hosts, "findings": findings, "damage": damage});
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => {
            println!(
                "{}: {} frames, {} flows",
                args.capture.display(),
                analysis.frames,
                analysis.flows.len()
            );
            for f in &analysis.flows {
                println!(
                    "  flow from frame {}: {} ({}, named by {:?})",
                    f.first_frame,
                    clean(&f.host),
                    f.protocol.as_str(),
                    f.host_source
                );
            }
            for f in &analysis.findings {
                println!(
                    "  LEAK <{}> → {} over {} in {} as {} (frame {})",
                    f.identifier,
                    clean(&f.host),
                    f.protocol.as_str(),
                    clean(&f.location),
                    clean(&f.encoding),
                    f.frame
                );
            }
            for d in &analysis.damage {
                println!("  damage after frame {}: {}", d.after_frame, d.what);
            }
        }
    }
    Ok(if analysis.findings.is_empty() {
        Exit::Clean
    } else {
        Exit::Findings
    })
}
