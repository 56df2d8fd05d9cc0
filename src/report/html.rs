//! `report.html`: one self-contained page (inline CSS and a few lines of inline JS, no network:
//! its Content-Security-Policy forbids any load) for a QA team or a regulator: the verdict, a
//! per-step timeline, the leak table with a link from each finding to its frame, the destinations
//! (first/third party, trackers), the opaque share per step, and every flow with its Community ID.
//!
//! Owns the page; every text is HTML-escaped here.
//!
//! Must not touch: files, the terminal.

use std::fmt::Write as _;

use super::markdown::percent;
use super::run_dir::RunView;
use super::{community_id, kb};

pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d232a;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d1d9}header code{background:#2d333b;color:#e6edf3}main{padding:8px 28px 40px;max-width:1200px}
h2{font-size:16px;margin:28px 0 10px}
.verdict{padding:12px 16px;border-radius:6px;font-weight:600;margin-top:18px}
.bad{background:#fde7e9;color:#8b1a24;border:1px solid #f3b6bd}.good{background:#e6f6ea;color:#1f6b35;border:1px solid #b5e0c1}
.warn{background:#fff4d6;color:#6b4e00;border:1px solid #f0d68a}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e6}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eceff2;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f4;padding:1px 4px;border-radius:3px}
.timeline{display:flex;gap:4px;align-items:stretch}
.step{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px;min-width:90px;box-sizing:border-box}
.step.leak{border-color:#d33a4a;background:#fff5f6}.step b{display:block}.step small{color:#57606a}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.first{background:#dbeafe;color:#1e40af}.third{background:#f3e8ff;color:#6b21a8}.tracker{background:#fde7e9;color:#8b1a24}
.bar{display:flex;height:12px;border-radius:3px;overflow:hidden;background:#eceff2;min-width:120px}
.bar .r{background:#3fb950}.bar .o{background:#8b949e}
tr:target{background:#fff4d6}input{padding:5px 8px;margin:0 0 8px;width:280px}
footer{color:#57606a;font-size:12px;margin-top:30px}
"#;

const SCRIPT: &str = r#"
document.getElementById('flow-filter').addEventListener('input', function (e) {
  var q = e.target.value.toLowerCase();
  document.querySelectorAll('#flows tbody tr').forEach(function (row) {
    row.style.display = row.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
});
"#;

fn party_badge(view: &RunView, host: &str) -> String {
    match view.destination(host) {
        Some(d) => {
            let class = match d.party {
                super::destinations::Party::First => "first",
                super::destinations::Party::Third => "third",
            };
            let tracker = d
                .tracker
                .map(|t| format!(r#" <span class="badge tracker">tracker: {}</span>"#, esc(t)))
                .unwrap_or_default();
            format!(
                r#"<span class="badge {class}">{}</span>{tracker}"#,
                d.party.as_str()
            )
        }
        None => String::new(),
    }
}

/// The HTML report of a run.
pub fn render(view: &RunView) -> String {
    let o = &view.outcome;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tattle: {scenario} on {firmware}</title><style>{STYLE}</style></head><body>
<header><h1>tattle: {scenario} on {firmware}</h1><p>{device}, Android {android} · run <code>{dir}</code></p></header><main>
"#,
        scenario = esc(&o.scenario),
        firmware = esc(&o.firmware),
        device = esc(&super::device_name(&o.device)),
        android = esc(&o.device.android),
        dir = esc(&view
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()),
    );
    let leaks = o.leak_count();
    if leaks == 0 {
        let _ = writeln!(
            h,
            r#"<div class="verdict good">No identifier left the handset.</div>"#
        );
    } else {
        let mut ids: Vec<&str> = view
            .evidence
            .iter()
            .map(|e| e.identifier.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let _ = writeln!(
            h,
            r#"<div class="verdict bad">{leaks} finding(s): {} left the handset.</div>"#,
            esc(&ids.join(", "))
        );
    }
    if let Some(why) = &view.run.interrupted {
        let _ = writeln!(
            h,
            r#"<div class="verdict warn">The run was interrupted: {}</div>"#,
            esc(why)
        );
    }

    if let Some(c) = &view.run.capture {
        let _ = writeln!(
            h,
            "<p>Capture <code>{}</code>: {} packets, {} bytes.</p>",
            esc(&c.file),
            c.packets,
            c.bytes
        );
    }
    for line in view.run.damage.iter().chain(&view.run.notes) {
        let _ = writeln!(h, "<p class=\"note\">Note: {}</p>", esc(line));
    }

    // Timeline: one box per step, as wide as its window.
    let _ = writeln!(h, "<h2>Timeline</h2><div class=\"timeline\">");
    let first_start = view.run.steps.first().map_or(0.0, |w| w.start);
    let total: f64 = view
        .run
        .steps
        .iter()
        .map(|w| (w.end - w.start).max(0.0))
        .sum::<f64>()
        .max(0.001);
    for step in &o.steps {
        let window = view.run.steps.iter().find(|w| w.label() == step.step);
        let duration = window.map_or(0.0, |w| (w.end - w.start).max(0.0));
        let flows = view
            .flows
            .iter()
            .flatten()
            .filter(|f| f.step == step.step)
            .count();
        let leak_class = if step.leaks.is_empty() { "" } else { " leak" };
        let _ = writeln!(
            h,
            r#"<div class="step{leak_class}" style="flex:{:.4} 1 0"><b>{}</b><small>{}{:.1} s · {} host(s) · {flows} flow(s){}</small></div>"#,
            duration / total + 0.05,
            esc(&step.step),
            window.map_or(String::new(), |w| format!(
                "+{:.1} s, ",
                w.start - first_start
            )),
            duration,
            step.hosts.len(),
            if step.leaks.is_empty() {
                String::new()
            } else {
                format!(" · <b>{} leak(s)</b>", step.leaks.len())
            }
        );
    }
    let _ = writeln!(h, "</div>");

    // Leaks, each linked to its frame.
    let _ = writeln!(h, "<h2>Leaks</h2>");
    if view.evidence.is_empty() {
        let _ = writeln!(h, "<p>None.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table id=\"leaks\"><thead><tr><th>step</th><th>identifier</th><th>to</th><th>party</th><th>over</th><th>where</th><th>as</th><th>frame</th></tr></thead><tbody>"
        );
        for e in &view.evidence {
            let _ = writeln!(
                h,
                r##"<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class="n"><a href="#frame-{}">{}</a></td></tr>"##,
                esc(&e.step),
                esc(&e.identifier),
                esc(&e.host),
                party_badge(view, &e.host),
                esc(&e.carried_over()),
                esc(&e.location),
                esc(&e.encoding),
                e.frame,
                e.frame
            );
        }
        let _ = writeln!(h, "</tbody></table>");
    }

    // A differential series' verdicts: TLS flows whose size followed a planted value.
    let correlations = o.size_correlations();
    if !correlations.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Size correlations</h2><p>TLS traffic whose size grew with a planted value over the differential series: it very likely carries it.</p><table id=\"size-correlations\"><thead><tr><th>step</th><th>identifier</th><th>to</th><th>party</th><th>slope</th></tr></thead><tbody>"
        );
        for (step, c) in correlations {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(step),
                esc(&c.identifier),
                esc(&c.host),
                party_badge(view, &c.host),
                esc(&c.slope)
            );
        }
        let _ = writeln!(h, "</tbody></table>");
    }

    // Destinations.
    let _ = writeln!(
        h,
        "<h2>Destinations</h2><table id=\"destinations\"><thead><tr><th>host</th><th>party</th><th>steps</th></tr></thead><tbody>"
    );
    for d in &view.destinations {
        let steps: Vec<&str> = o
            .steps
            .iter()
            .filter(|s| s.hosts.iter().any(|x| x.host == d.host))
            .map(|s| s.step.as_str())
            .collect();
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&d.host),
            party_badge(view, &d.host),
            esc(&steps.join(", "))
        );
    }
    let _ = writeln!(h, "</tbody></table>");
    if !view.maker_known {
        let _ = writeln!(
            h,
            "<p>The maker ({}) is not in tattle's vendor list: every host is counted as third party.</p>",
            esc(&view.run.device.manufacturer)
        );
    }

    // Opaque share.
    let _ = writeln!(
        h,
        "<h2>Readable and opaque traffic</h2><table id=\"traffic\"><thead><tr><th>step</th><th>sent</th><th>received</th><th>readable / opaque</th><th>opaque</th><th>opaque with</th></tr></thead><tbody>"
    );
    for t in &view.traffic {
        let total = t.sent_bytes + t.received_bytes;
        let opaque_share = if total == 0 {
            0.0
        } else {
            t.opaque_bytes as f64 * 100.0 / total as f64
        };
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td><div class="bar"><div class="r" style="width:{:.1}%"></div><div class="o" style="width:{:.1}%"></div></div></td><td class="n">{}</td><td>{}</td></tr>"#,
            esc(&t.step),
            kb(t.sent_bytes),
            kb(t.received_bytes),
            if total == 0 {
                0.0
            } else {
                100.0 - opaque_share
            },
            opaque_share,
            percent(t.opaque_bytes, total),
            esc(&t.opaque_hosts.join(", "))
        );
    }
    let _ = writeln!(h, "</tbody></table>");

    // Frames of the findings: what a person opens in Wireshark.
    if !view.evidence.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Frames</h2><p>Each finding's frame in <code>capture.pcap</code>; <code>capture.pcapng</code> carries the same text as the frame's comment.</p><table id=\"frames\"><thead><tr><th>frame</th><th>finding</th><th>flow</th><th>Wireshark filter</th></tr></thead><tbody>"
        );
        let mut seen = std::collections::BTreeSet::new();
        for e in &view.evidence {
            let flow = view
                .flows_of(&e.step, &e.host)
                .into_iter()
                .filter(|f| f.first_frame <= e.frame)
                .max_by_key(|f| f.first_frame);
            let id = if seen.insert(e.frame) {
                format!(r#" id="frame-{}""#, e.frame)
            } else {
                String::new()
            };
            let _ = writeln!(
                h,
                r##"<tr{id}><td class="n">{}</td><td><code>{}</code> → <code>{}</code> ({} as {})</td><td>{}</td><td><code>frame.number == {}</code></td></tr>"##,
                e.frame,
                esc(&e.identifier),
                esc(&e.host),
                esc(&e.location),
                esc(&e.encoding),
                flow.map(|f| format!(
                    r##"<a href="#flow-{}">{} → {}</a>"##,
                    f.first_frame,
                    esc(&f.client),
                    esc(&f.server)
                ))
                .unwrap_or_default(),
                e.frame
            );
        }
        let _ = writeln!(h, "</tbody></table>");
    }

    // Flows.
    let _ = writeln!(h, "<h2>Flows</h2>");
    match &view.flows {
        None => {
            let _ = writeln!(
                h,
                "<p>{}</p>",
                esc(view.http_note.as_deref().unwrap_or("no flows recorded"))
            );
        }
        Some(flows) => {
            let _ = writeln!(
                h,
                "<input id=\"flow-filter\" placeholder=\"filter flows (host, step, Community ID…)\"><table id=\"flows\"><thead><tr><th>first frame</th><th>step</th><th>host</th><th>over</th><th>client → server</th><th>out / in</th><th>Community ID</th></tr></thead><tbody>"
            );
            for f in flows {
                let _ = writeln!(
                    h,
                    r#"<tr id="flow-{}"><td class="n">{}</td><td>{}</td><td><code>{}</code></td><td>{}/{}</td><td><code>{} → {}</code></td><td class="n">{} / {}</td><td><code>{}</code></td></tr>"#,
                    f.first_frame,
                    f.first_frame,
                    esc(&f.step),
                    esc(&f.host),
                    esc(&f.transport),
                    esc(&f.protocol),
                    esc(&f.client),
                    esc(&f.server),
                    kb(f.bytes_out),
                    kb(f.bytes_in),
                    esc(&community_id::of_flow(f).unwrap_or_default())
                );
            }
            let _ = writeln!(h, "</tbody></table>");
        }
    }
    let _ = writeln!(
        h,
        "<footer>Made by tattle {}. No identifier's value appears in this page: each is named by its kind. First party: the maker's domains in tattle's vendor list; trackers: tattle's tracker list (docs/reports.md credits its sources).</footer></main>",
        env!("CARGO_PKG_VERSION")
    );
    if view.flows.is_some() {
        let _ = writeln!(h, "<script>{SCRIPT}</script>");
    }
    let _ = writeln!(h, "</body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_text() {
        let html = render(&super::super::run_dir::tests::view());
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(r##"href="#frame-7""##) && html.contains(r#"id="frame-7""#));
        assert!(html.contains("first party") && html.contains("third party"));
        // The only script is tattle's own, and nothing is loaded from anywhere.
        assert_eq!(html.matches("<script>").count(), 0, "no flows, no script");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn size_correlations_have_their_table() {
        let mut view = super::super::run_dir::tests::view();
        assert!(!render(&view).contains("size-correlations"));
        view.outcome.steps[0]
            .size_correlations
            .push(crate::outcome::SizeCorrelation {
                identifier: "<sms_body>".into(),
                host: "<b>sms.difflab.net".into(),
                slope: "plain".into(),
            });
        let html = render(&view);
        assert!(
            html.contains("<table id=\"size-correlations\">")
                && html.contains("<td>1 send-sms</td><td><code>&lt;sms_body&gt;</code></td><td><code>&lt;b&gt;sms.difflab.net</code></td>"),
            "{html}"
        );
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href='x'>&\"\u{1b}"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;?"
        );
    }
}
