//! `tattle check RUN_DIR --policy FILE` (a policy's verdict on a stored run) and `tattle verify
//! RUN_DIR` (the run directory against its manifest and signature): their arguments, what they
//! print and their exit codes.
//!
//! Must not touch: what a rule means (`policy`), how files are hashed or signatures made
//! (`evidence`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use super::{Exit, Format, print_json};
use crate::evidence::{self, EvidenceError, SignatureState};
use crate::outcome::{ContactItem, EvidenceItem};
use crate::policy::Policy;

#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// A run directory (`runs/<scenario>@<firmware>-<time>-<n>`).
    run_dir: PathBuf,
    /// The policy to judge the run by (docs/policy.md).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// A run directory with a `manifest.json`.
    run_dir: PathBuf,
    /// The minisign public key (`.pub`) to check `manifest.json.minisig` with.
    #[arg(long, value_name = "KEY.pub")]
    key: Option<PathBuf>,
}

/// What `check` reads of `evidence.json`; `contacts` is absent in runs made before it existed.
#[derive(Debug, Deserialize)]
struct StoredEvidence {
    findings: Vec<EvidenceItem>,
    #[serde(default)]
    contacts: Option<Vec<ContactItem>>,
}

/// evidence.json holds a run's findings; far below this.
const MAX_EVIDENCE_BYTES: u64 = 256 * 1024 * 1024;

pub(crate) fn check(args: CheckArgs) -> anyhow::Result<Exit> {
    let policy = match Policy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Exit::Environment);
        }
    };
    // A run whose files were changed is no evidence: say so before judging it.
    match evidence::verify(&args.run_dir, None) {
        Ok(v) if !v.problems.is_empty() => {
            for p in &v.problems {
                eprintln!("tampered: {}: {p}", args.run_dir.display());
            }
            eprintln!(
                "error: the run directory does not match its manifest; `tattle verify {}` says more",
                args.run_dir.display()
            );
            return Ok(Exit::Findings);
        }
        Ok(_) => {}
        Err(EvidenceError::NoManifest { .. }) => {
            tracing::warn!(
                "{}: no manifest: the run's files are not verified",
                args.run_dir.display()
            );
        }
        Err(e) => return Err(e.into()),
    }
    let stored = read_evidence(&args.run_dir)?;
    let Some(contacts) = stored.contacts else {
        eprintln!(
            "error: {}: evidence.json has no `contacts` (the run was made by an older tattle): \
             host rules cannot name frames\n  help: re-run the scenario with this tattle",
            args.run_dir.display()
        );
        return Ok(Exit::Environment);
    };
    let verdict = policy.evaluate(&stored.findings, &contacts);
    match args.format {
        Format::Text => print!("{}", verdict.render()),
        Format::Json => print_json(&verdict)?,
    }
    Ok(if verdict.passed {
        Exit::Clean
    } else {
        Exit::Findings
    })
}

fn read_evidence(dir: &Path) -> anyhow::Result<StoredEvidence> {
    use std::io::Read as _;
    let path = dir.join("evidence.json");
    let file = std::fs::File::open(&path).with_context(|| {
        format!(
            "{}: cannot open it (is {} a run directory?)",
            path.display(),
            dir.display()
        )
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_EVIDENCE_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: not a tattle evidence.json (docs/run-json.md)",
            path.display()
        )
    })
}

pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<Exit> {
    let v = match evidence::verify(&args.run_dir, args.key.as_deref()) {
        Ok(v) => v,
        Err(e @ (EvidenceError::NoManifest { .. } | EvidenceError::Key { .. })) => {
            eprintln!("error: {e}");
            return Ok(Exit::Environment);
        }
        Err(e) => return Err(e.into()),
    };
    let dir = args.run_dir.display();
    for p in &v.problems {
        println!("TAMPERED {dir}: {p}");
    }
    match &v.signature {
        Some(SignatureState::Verified { trusted_comment }) => {
            println!("signature: good ({trusted_comment})")
        }
        Some(SignatureState::Unchecked) => println!(
            "signature: present, not checked (give --key KEY.pub, or run `minisign -Vm {dir}/{} -p KEY.pub`)",
            evidence::MANIFEST_FILE
        ),
        None => {}
    }
    if v.problems.is_empty() {
        println!("{dir}: {} file(s) match the manifest", v.files_ok);
        Ok(Exit::Clean)
    } else {
        println!("{dir}: {} problem(s)", v.problems.len());
        Ok(Exit::Findings)
    }
}
