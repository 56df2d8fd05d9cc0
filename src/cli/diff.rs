//! `tattle diff A B`: build A's outcomes against build B's, as text, JSON or Markdown
//! (docs/diff-json.md). Exit 0 when nothing changed, 1 when something did, 2 when a side cannot
//! be read.
//!
//! Must not touch: how changes are found or worded (`crate::diff`).

use std::path::PathBuf;

use anyhow::Context as _;

use super::{Exit, print_json};
use crate::diff::{self, OutcomeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiffFormat {
    Text,
    Json,
    Markdown,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DiffArgs {
    /// Build A: a `.snap` file, a run directory, or a folder of either (one outcome per scenario).
    a: PathBuf,
    /// Build B, the same way.
    b: PathBuf,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

pub(crate) fn run(args: DiffArgs) -> anyhow::Result<Exit> {
    let load = |p: &PathBuf, side: &str| {
        OutcomeSet::load(p).with_context(|| format!("reading build {side} ({})", p.display()))
    };
    let a = load(&args.a, "A")?;
    let b = load(&args.b, "B")?;
    let doc = diff::compare(&a, &b);
    match args.format {
        DiffFormat::Text => print!("{}", diff::render::text(&doc)),
        DiffFormat::Markdown => print!("{}", diff::render::markdown(&doc)),
        DiffFormat::Json => print_json(&doc)?,
    }
    Ok(if doc.same {
        Exit::Clean
    } else {
        Exit::Findings
    })
}
