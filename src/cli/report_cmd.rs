//! `tattle report RUN_DIR [--format F] [-o FILE]`: renders a run directory's reports again, from
//! its files, in any format (old runs too).
//!
//! Owns the command's arguments, where the output goes (stdout, `-o FILE`, or with no `--format`
//! every report file back into the run directory), colour on a terminal (never with `NO_COLOR` or
//! when piped), and its exit code: 0 no finding, 1 findings, 2 the run directory cannot be read.
//!
//! Must not touch: what the reports say (`report`), run directories' other files.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::ValueEnum;

use super::Exit;
use crate::report::{self, RunFormat, run_dir::RunView};
use crate::runner;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
    Markdown,
    Html,
    Junit,
    Har,
    Pcapng,
}

impl From<ReportFormat> for RunFormat {
    fn from(f: ReportFormat) -> RunFormat {
        match f {
            ReportFormat::Text => RunFormat::Text,
            ReportFormat::Json => RunFormat::Json,
            ReportFormat::Markdown => RunFormat::Markdown,
            ReportFormat::Html => RunFormat::Html,
            ReportFormat::Junit => RunFormat::Junit,
            ReportFormat::Har => RunFormat::Har,
            ReportFormat::Pcapng => RunFormat::Pcapng,
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// A run directory (runs/<scenario>@<firmware>-<time>-<n>).
    run_dir: PathBuf,
    /// The format to print (or write with -o). Without it, every report file of the run
    /// directory is written again: report.txt, report.md, report.html, junit.xml, flows.har,
    /// capture.pcapng.
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE", requires = "format")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<Exit> {
    let view = RunView::load(&args.run_dir)?;
    let exit = if view.outcome.has_findings() {
        Exit::Findings
    } else {
        Exit::Clean
    };
    let Some(format) = args.format else {
        for path in runner::write_reports(&args.run_dir)? {
            println!("wrote {}", path.display());
        }
        return Ok(exit);
    };
    let format = RunFormat::from(format);
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    if format == RunFormat::Pcapng {
        if args.output.is_none() && std::io::stdout().is_terminal() {
            bail!("a pcapng is binary: give -o FILE, or pipe it (| wireshark -k -i -)");
        }
        report::pcapng::write_run(&view, &mut out)
            .with_context(|| format!("{}", args.run_dir.display()))?;
        return Ok(exit);
    }
    let text = report::render_run(&view, format);
    let text = if format == RunFormat::Text && args.output.is_none() {
        paint(&text)
    } else {
        text
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(exit)
}

/// `NO_COLOR` is unset or empty (no-color.org): colour is allowed.
pub(crate) fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// An outcome's text for stdout: coloured only on a terminal, and never with `NO_COLOR` set.
pub(crate) fn paint(text: &str) -> String {
    if std::io::stdout().is_terminal() && no_color_unset() {
        colour(text)
    } else {
        text.to_string()
    }
}

/// Leaks in bold red, steps in bold, "no identifier" in green.
fn colour(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("LEAK ") {
                format!("\x1b[1;31m{line}\x1b[0m\n")
            } else if trimmed.starts_with("step ") {
                format!("\x1b[1m{line}\x1b[0m\n")
            } else if trimmed.starts_with("no identifier") {
                format!("\x1b[32m{line}\x1b[0m\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}
