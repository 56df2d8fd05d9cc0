//! `report.md`: a run in GitHub-flavoured Markdown, short enough for a pull-request comment: the
//! verdict, the leak table (with frames), the destinations (first/third party, trackers), and the
//! bytes per step with the opaque share.
//!
//! Owns the Markdown; every cell is escaped (`|`, newlines, Markdown's punctuation is left as
//! text by wrapping names in backticks).
//!
//! Must not touch: files, the terminal.

use std::fmt::Write as _;

use super::kb;
use super::run_dir::RunView;

/// A table cell: one line, no `|`, in backticks when it is a name from the network.
fn code(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '|' => '¦',
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{clean}`")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The Markdown report of a run.
pub fn render(view: &RunView) -> String {
    let mut out = String::new();
    let o = &view.outcome;
    let _ = writeln!(
        out,
        "## tattle: `{}` on {} ({}, Android {})\n",
        cell(&o.scenario),
        code(&o.firmware),
        cell(&super::device_name(&o.device)),
        cell(&o.device.android)
    );
    let leaks = o.leak_count();
    if leaks == 0 {
        let _ = writeln!(out, "✅ **No identifier left the handset.**\n");
    } else {
        let mut ids: Vec<&str> = o
            .steps
            .iter()
            .flat_map(|s| s.leaks.iter().map(|l| l.identifier.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let _ = writeln!(
            out,
            "❌ **{leaks} finding(s):** {} left the handset.\n",
            ids.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(why) = &view.run.interrupted {
        let _ = writeln!(out, "⚠️ The run was interrupted: {}\n", cell(why));
    }
    if !view.evidence.is_empty() {
        let _ = writeln!(out, "### Leaks\n");
        let _ = writeln!(
            out,
            "| step | identifier | to | party | over | where | as | frame |\n|---|---|---|---|---|---|---|---:|"
        );
        for e in &view.evidence {
            let party = view
                .destination(&e.host)
                .map_or("third party", |d| d.party.as_str());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {party} | {} | {} | {} | {} |",
                cell(&e.step),
                code(&e.identifier),
                code(&e.host),
                cell(&e.carried_over()),
                code(&e.location),
                cell(&e.encoding),
                e.frame
            );
        }
        let _ = writeln!(out);
    }
    let correlations = o.size_correlations();
    if !correlations.is_empty() {
        let _ = writeln!(out, "### Size correlations\n");
        let _ = writeln!(
            out,
            "TLS traffic whose size grew with a planted value over the differential series: it very likely carries it.\n"
        );
        let _ = writeln!(out, "| step | identifier | to | slope |\n|---|---|---|---|");
        for (step, c) in correlations {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(step),
                code(&c.identifier),
                code(&c.host),
                cell(&c.slope)
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "### Destinations\n");
    let _ = writeln!(out, "| host | party | tracker | steps |\n|---|---|---|---|");
    for d in &view.destinations {
        let steps: Vec<&str> = o
            .steps
            .iter()
            .filter(|s| s.hosts.iter().any(|h| h.host == d.host))
            .map(|s| s.step.as_str())
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            code(&d.host),
            d.party.as_str(),
            d.tracker.map(cell).unwrap_or_default(),
            cell(&steps.join(", "))
        );
    }
    if !view.maker_known {
        let _ = writeln!(
            out,
            "\nThe maker ({}) is not in tattle's vendor list: every host is counted as third party.",
            cell(&view.run.device.manufacturer)
        );
    }
    let _ = writeln!(out, "\n### Traffic\n");
    let _ = writeln!(
        out,
        "| step | sent | received | opaque | opaque with |\n|---|---:|---:|---:|---|"
    );
    let (mut all, mut opaque) = (0u64, 0u64);
    for t in &view.traffic {
        let total = t.sent_bytes + t.received_bytes;
        all += total;
        opaque += t.opaque_bytes;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} |",
            cell(&t.step),
            kb(t.sent_bytes),
            kb(t.received_bytes),
            kb(t.opaque_bytes),
            percent(t.opaque_bytes, total),
            t.opaque_hosts
                .iter()
                .map(|h| code(h))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\n{} of {} could not be inspected (opaque: TLS, QUIC, undecodable).",
        percent(opaque, all),
        kb(all)
    );
    let _ = writeln!(
        out,
        "\n<sub>Run directory `{}`: `report.html`, `flows.har`, `junit.xml`, `capture.pcapng` (findings as packet comments). Tracker list and vendor domains: see tattle's docs/reports.md.</sub>",
        cell(
            &view
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    );
    out
}

pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_the_table_whole() {
        let md = render(&super::super::run_dir::tests::view());
        let row = md
            .lines()
            .find(|l| l.starts_with("| 1 send-sms"))
            .expect("a leak row");
        // Eight cells: the host's `|` did not add one.
        assert_eq!(row.matches(" | ").count() + 2, 9, "{row}");
        assert!(md.contains("| 7 |"), "{md}");
        assert!(md.contains("first party"));
        assert!(!md.contains("Size correlations"), "only for a series");
    }

    #[test]
    fn size_correlations_have_their_table() {
        let mut view = super::super::run_dir::tests::view();
        view.outcome.steps[0]
            .size_correlations
            .push(crate::outcome::SizeCorrelation {
                identifier: "<sms_body>".into(),
                host: "sms|difflab.net".into(),
                slope: "base64".into(),
            });
        let md = render(&view);
        assert!(md.contains("### Size correlations"), "{md}");
        assert!(
            md.contains("| 1 send-sms | `<sms_body>` | `sms¦difflab.net` | base64 |"),
            "{md}"
        );
    }
}
