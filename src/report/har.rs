//! `flows.har`: the run's HTTP exchanges as HAR 1.2 (the HTTP Archive format browsers' developer
//! tools and proxies read), one page per step.
//!
//! Owns the mapping from `flows.json`'s exchanges to HAR entries. A HAR wants values; tattle keeps
//! none: header values read `<redacted>`, bodies are absent (`content.size` only), query values are
//! `<value>`, the host and path went through the run's redactor. Timings are what a capture can
//! tell: `wait` is request frame to response frame.
//!
//! Must not touch: files, the terminal.

use serde_json::{Value, json};

use super::run_dir::RunView;

/// The HAR document of a run.
pub fn render(view: &RunView) -> String {
    let pages: Vec<Value> = view
        .run
        .steps
        .iter()
        .map(|w| {
            json!({
                "startedDateTime": iso8601(w.start),
                "id": w.label(),
                "title": format!("step {}", w.label()),
                "pageTimings": {"onContentLoad": -1, "onLoad": -1},
            })
        })
        .collect();
    let entries: Vec<Value> = view
        .http
        .iter()
        .map(|e| {
            let headers = |names: &[String]| -> Vec<Value> {
                names
                    .iter()
                    .map(|n| json!({"name": n, "value": "<redacted>"}))
                    .collect()
            };
            let query: Vec<Value> = e
                .path
                .split_once('?')
                .map(|(_, q)| {
                    q.split('&')
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (name, value) = p.split_once('=').unwrap_or((p, ""));
                            json!({"name": name, "value": value})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let wait = e.wait_seconds.map_or(-1.0, |s| s * 1000.0);
            let server = view
                .flows
                .iter()
                .flatten()
                .find(|f| f.first_frame == e.flow);
            json!({
                "pageref": e.step,
                "startedDateTime": iso8601(e.started),
                "time": wait.max(0.0),
                "request": {
                    "method": e.method,
                    "url": format!("{}://{}{}", e.scheme, e.host, e.path),
                    "httpVersion": e.http_version,
                    "cookies": [],
                    "headers": headers(&e.request_headers),
                    "queryString": query,
                    "headersSize": -1,
                    "bodySize": e.request_body_bytes.map_or(-1, |b| b as i64),
                },
                "response": {
                    "status": e.status.unwrap_or(0),
                    "statusText": e.status_text.clone().unwrap_or_default(),
                    "httpVersion": e.http_version,
                    "cookies": [],
                    "headers": headers(&e.response_headers),
                    "content": {
                        "size": e.response_body_bytes.map_or(0, |b| b as i64),
                        "mimeType": e.response_content_type.clone().unwrap_or_default(),
                        "comment": "body not kept: tattle reports never hold payloads",
                    },
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": e.response_body_bytes.map_or(-1, |b| b as i64),
                },
                "cache": {},
                "timings": {"send": 0, "wait": wait, "receive": 0},
                "serverIPAddress": server.map(|f| server_ip(&f.server)).unwrap_or_default(),
                "connection": e.flow.to_string(),
                "comment": format!(
                    "frames {}{} of capture.pcap",
                    e.request_frame,
                    e.response_frame.map(|f| format!(" and {f}")).unwrap_or_default()
                ),
            })
        })
        .collect();
    let doc = json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "tattle", "version": env!("CARGO_PKG_VERSION")},
            "pages": pages,
            "entries": entries,
            "comment": view.http_note.clone().unwrap_or_else(|| format!(
                "{} on {}: header values, query values and bodies redacted",
                view.run.scenario, view.run.firmware
            )),
        }
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn server_ip(endpoint: &str) -> String {
    endpoint
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// `2026-11-25T08:32:00.123Z` from Unix seconds.
pub fn iso8601(secs: f64) -> String {
    let whole = secs.floor();
    let t = time::OffsetDateTime::from_unix_timestamp(whole as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        (((secs - whole) * 1000.0).round() as u32).min(999)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_590_000.25), "2026-11-25T07:00:00.250Z");
    }
}
