//! `tattle review`, `tattle accept`, `tattle reject`, `tattle pending`: the snapshot workflow on
//! the `.snap.new` files `tattle run` leaves, in the manner of `cargo insta review`.
//!
//! `review` shows each pending change — what accepting it would mean in sentences (or the whole
//! outcome, for a first snapshot), then a coloured line diff of the files — and reads one key:
//! `a` accept, `r` reject, `s` skip, `q` quit. `accept` and `reject` do the same without asking,
//! for scripts. Every command ends by reporting stale snapshots (their scenario no longer exists)
//! and orphaned pending ones (no kept run directory produced them). docs/snapshots.md.
//!
//! Must not touch: snapshot files directly (`snapshot::pending` does), the device.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use console::{Key, Term, style};
use tattle_analysis::sanitize;

use super::Exit;
use crate::diff::{self, OutcomeSet};
use crate::outcome::Outcome;
use crate::report;
use crate::scenario::{self, Scenario};
use crate::snapshot::{self, pending::Pending};

/// Where the snapshot workflow looks.
#[derive(clap::Args, Debug)]
pub(crate) struct Places {
    /// Where accepted snapshots and their pending `.snap.new` files live.
    #[arg(long, default_value = "snapshots")]
    snapshots: PathBuf,
    /// Where run directories are kept (a pending snapshot no run there produced is reported as
    /// orphaned).
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Folders of scenario files (besides the built-in scenarios); a snapshot of a scenario found
    /// in none of them is reported as stale. Repeatable.
    #[arg(long, default_value = "scenarios")]
    scenarios: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SelectArgs {
    /// Pending snapshots to act on: a `.snap.new`, its `.snap`, or a name (`send-sms@FIRMWARE`).
    /// None: every pending snapshot.
    #[arg(value_name = "SNAPSHOT")]
    names: Vec<String>,
    #[command(flatten)]
    places: Places,
}

/// The names of every scenario that exists: the built-in ones and those of `*.yaml` files in
/// the given folders (a file that does not load counts by its file name).
fn known_scenarios(folders: &[PathBuf]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = scenario::builtin_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()).take(10_000) {
            if path.extension().is_none_or(|e| e != "yaml" && e != "yml") {
                continue;
            }
            match Scenario::load(&path) {
                Ok(s) => names.insert(s.name),
                Err(_) => names.insert(
                    path.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
            };
        }
    }
    names
}

/// Stale snapshots and orphaned pending ones, one line each, as notes after a command.
fn report_leftovers(places: &Places) -> anyhow::Result<()> {
    let stale = snapshot::pending::stale(&places.snapshots, &known_scenarios(&places.scenarios))?;
    for path in &stale {
        println!(
            "stale: {} (its scenario no longer exists; delete it, or pass the scenario's folder with --scenarios)",
            path.display()
        );
    }
    let pending = snapshot::pending::find(&places.snapshots)?;
    for path in snapshot::pending::orphaned(&pending, &places.runs) {
        println!(
            "orphaned: {} (no run directory under {} produced it: its capture is gone; re-run the scenario, or reject it)",
            path.display(),
            places.runs.display()
        );
    }
    Ok(())
}

/// The pending snapshots `names` select (all when empty); an unknown name is a usage error.
fn select(args: &SelectArgs) -> anyhow::Result<Vec<Pending>> {
    if args.names.is_empty() {
        return Ok(snapshot::pending::find(&args.places.snapshots)?);
    }
    args.names
        .iter()
        .map(|name| {
            Pending::named(&args.places.snapshots, name).ok_or_else(|| {
                anyhow!(
                    "`{name}` is no pending snapshot in {} (`tattle pending` lists them)",
                    args.places.snapshots.display()
                )
            })
        })
        .collect()
}

/// `tattle accept` / `tattle reject`.
pub(crate) fn accept_or_reject(args: SelectArgs, accept: bool) -> anyhow::Result<Exit> {
    let chosen = select(&args)?;
    if chosen.is_empty() {
        println!(
            "no pending snapshots in {}",
            args.places.snapshots.display()
        );
    }
    for p in &chosen {
        if accept {
            p.accept()
                .with_context(|| format!("accepting {}", p.new.display()))?;
            println!("accepted {} (now {})", p.new.display(), p.snap.display());
        } else {
            p.reject()
                .with_context(|| format!("rejecting {}", p.new.display()))?;
            println!(
                "rejected {} ({} unchanged)",
                p.new.display(),
                p.snap.display()
            );
        }
    }
    report_leftovers(&args.places)?;
    Ok(Exit::Clean)
}

/// `tattle pending`: each pending snapshot (new or changed, and the run that produced it), then
/// stale and orphaned ones. 1 when something is pending.
pub(crate) fn list(places: Places) -> anyhow::Result<Exit> {
    let pending = snapshot::pending::find(&places.snapshots)?;
    if pending.is_empty() {
        println!("no pending snapshots in {}", places.snapshots.display());
    }
    for p in &pending {
        let what = if p.snap.exists() { "changed" } else { "new" };
        let run = snapshot::pending::run_of(p, &places.runs)
            .map(|r| format!(", from {}", r.display()))
            .unwrap_or_default();
        println!("pending ({what}{run}): {}", p.new.display());
    }
    report_leftovers(&places)?;
    Ok(if pending.is_empty() {
        Exit::Clean
    } else {
        Exit::Findings
    })
}

/// What the reviewer decided for one pending snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accept,
    Reject,
    Skip,
    Quit,
}

/// `tattle review`: asks for each pending snapshot on the terminal. 0 when none is left pending,
/// 1 when some were skipped.
pub(crate) fn review(places: Places) -> anyhow::Result<Exit> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(anyhow!(
            "`tattle review` asks on a terminal; in a script use `tattle accept` or `tattle reject` \
             (`tattle pending` lists what is pending)"
        ));
    }
    let pending = snapshot::pending::find(&places.snapshots)?;
    if pending.is_empty() {
        println!("no pending snapshots in {}", places.snapshots.display());
        report_leftovers(&places)?;
        return Ok(Exit::Clean);
    }
    let term = Term::stdout();
    let (mut accepted, mut rejected, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let total = pending.len();
    let mut quit = false;
    for (i, p) in pending.iter().enumerate() {
        if quit {
            skipped.push(p.new.clone());
            continue;
        }
        show(p, i + 1, total, &places.runs);
        match ask(&term)? {
            Decision::Accept => {
                p.accept()
                    .with_context(|| format!("accepting {}", p.new.display()))?;
                accepted.push(p.snap.clone());
            }
            Decision::Reject => {
                p.reject()
                    .with_context(|| format!("rejecting {}", p.new.display()))?;
                rejected.push(p.snap.clone());
            }
            Decision::Skip => skipped.push(p.new.clone()),
            Decision::Quit => {
                skipped.push(p.new.clone());
                quit = true;
            }
        }
        println!();
    }
    println!("{}", style("tattle review finished").bold());
    for (label, paths) in [
        ("accepted", &accepted),
        ("rejected", &rejected),
        ("skipped (still pending)", &skipped),
    ] {
        if !paths.is_empty() {
            println!("{}:", style(label).bold());
            for path in paths {
                println!("  {}", path.display());
            }
        }
    }
    report_leftovers(&places)?;
    Ok(if skipped.is_empty() {
        Exit::Clean
    } else {
        Exit::Findings
    })
}

/// Reads one decision key; anything else asks again.
fn ask(term: &Term) -> anyhow::Result<Decision> {
    loop {
        println!(
            "  {} accept   keep the new outcome as the snapshot\n  {} reject   keep the accepted snapshot, delete the .snap.new\n  {} skip     keep both for now\n  {} quit     stop; the rest stay pending",
            style("a").green().bold(),
            style("r").red().bold(),
            style("s").yellow().bold(),
            style("q").bold()
        );
        let key = term
            .read_key_raw()
            .context("reading a key from the terminal")?;
        match key {
            Key::Char('a' | 'A') => return Ok(Decision::Accept),
            Key::Char('r' | 'R') => return Ok(Decision::Reject),
            Key::Char('s' | 'S') | Key::Char(' ') => return Ok(Decision::Skip),
            Key::Char('q' | 'Q') | Key::Escape | Key::CtrlC => return Ok(Decision::Quit),
            _ => println!("  (press a, r, s or q)"),
        }
    }
}

/// One pending snapshot: what it is, what accepting it means, the line diff.
fn show(p: &Pending, n: usize, total: usize, runs: &Path) {
    println!(
        "{}",
        style(format!("Reviewing [{n}/{total}]: {}", p.new.display())).bold()
    );
    let new = match snapshot::load_outcome(&p.new) {
        Ok(o) => o,
        Err(e) => {
            println!(
                "  {} {e}\n  (accepting it will fail; reject it)",
                style("not an outcome:").red()
            );
            return;
        }
    };
    let old = p
        .snap
        .exists()
        .then(|| snapshot::load_outcome(&p.snap))
        .transpose();
    // Snapshot files can come from anyone: what they say is shown through `sanitize`.
    let heading = report::render_outcome(&new, &[]);
    println!(
        "  Scenario: {}",
        sanitize(heading.lines().next().unwrap_or_default())
    );
    match snapshot::pending::run_of(p, runs) {
        Some(dir) => println!(
            "  From run: {} (capture.pcap and evidence.json are there)",
            dir.display()
        ),
        None => println!(
            "  From run: {} (no run directory under {} produced it)",
            style("orphaned").yellow(),
            runs.display()
        ),
    }
    match old {
        Ok(None) => {
            println!(
                "  {} no accepted snapshot yet; accepting records this outcome:",
                style("New:").green().bold()
            );
            // Line by line: `sanitize` also cuts what it is given at a length.
            for line in heading.lines().skip(1) {
                println!("  {}", sanitize(line));
            }
        }
        Ok(Some(old)) => {
            println!(
                "  {} accepting it means (A = {}, B = this run):",
                style("Changed:").yellow().bold(),
                p.snap.display()
            );
            // `diff::render::text` sanitises each line itself.
            for line in meaning(&old, &new, p).lines().skip(2) {
                println!("  {line}");
            }
            line_diff(&p.snap, &p.new);
        }
        Err(e) => println!(
            "  {} {e}",
            style("the accepted snapshot is unreadable:").red()
        ),
    }
}

/// The diff's sentences, old outcome as A and the pending one as B.
fn meaning(old: &Outcome, new: &Outcome, p: &Pending) -> String {
    let set = |path: &Path, o: &Outcome| OutcomeSet {
        path: path.to_path_buf(),
        outcomes: vec![(path.to_path_buf(), o.clone())],
        single: true,
    };
    diff::render::text(&diff::compare(&set(&p.snap, old), &set(&p.new, new)))
}

/// A coloured line diff of the two files, with line numbers, as insta shows one.
fn line_diff(old: &Path, new: &Path) {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (old_text, new_text) = (read(old), read(new));
    let diff = similar::TextDiff::from_lines(&old_text, &new_text);
    println!(
        "  {}\n  {}",
        style(format!("-{} (accepted)", old.display())).red(),
        style(format!("+{} (new)", new.display())).green()
    );
    let rule = "─".repeat(12);
    println!("  {rule}┬{}", "─".repeat(40));
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            println!("  {:^12}┆", style("⋮").dim());
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let number = |n: Option<usize>| n.map_or(String::new(), |n| (n + 1).to_string());
                let text = sanitize(change.value().trim_end_matches('\n'));
                let numbers = format!(
                    "{:>5} {:>5} ",
                    number(change.old_index()),
                    number(change.new_index())
                );
                let line = match change.tag() {
                    similar::ChangeTag::Delete => style(format!("-{text}")).red().to_string(),
                    similar::ChangeTag::Insert => style(format!("+{text}")).green().to_string(),
                    similar::ChangeTag::Equal => style(format!(" {text}")).dim().to_string(),
                };
                println!("  {}│{line}", style(numbers).dim());
            }
        }
    }
    println!("  {rule}┴{}", "─".repeat(40));
}
