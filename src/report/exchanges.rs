//! HTTP exchanges of a capture, for the HAR report: read by tshark's HTTP and HTTP/2 dissectors at
//! the end of a run, while the run's redactor still knows the identifiers' values.
//!
//! Owns running `tshark -T ek` on the capture (one JSON document per packet, read line by line
//! with a cap on lines and exchanges, so memory stays bounded whatever the capture), pairing each
//! response with its request (`http.request_in`), placing each in its flow and step, and what is
//! kept of it: method, host and path through the redactor with query values replaced, header
//! names (never values), status, content type and body sizes (never bodies). tshark rather than
//! tattle's own reader: the analysis keeps findings, not requests, and tshark already reads every
//! HTTP form the HAR may want (HTTP/1.x in clear, and inside TLS when the run kept a key log;
//! HTTP/2 likewise: h2c with prior knowledge, and h2 inside decrypted TLS).
//!
//! HTTP/2 is a second pass (`http2.type == 1`, the HEADERS frames), read as tshark's per-frame tree
//! (`-T ek -J`): one TCP segment can carry the HEADERS of several streams, and only the tree keeps
//! each stream's id with its headers. A request is its `:method` HEADERS, its response the
//! `:status` HEADERS of the same stream on the same connection.
//!
//! Must not touch: files besides reading the capture through tshark, the terminal.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;
use tattle_analysis::{Redactor, sanitize};

use super::json::HttpExchange;
use crate::outcome::FlowItem;

/// Exchanges kept at most (a HAR for a person, not a bulk export).
pub const MAX_EXCHANGES: usize = 5000;
/// A line of tshark's output longer than this is skipped (no body is asked for: lines are small).
const MAX_LINE: u64 = 1024 * 1024;
/// Headers kept per message.
const MAX_HEADERS: usize = 64;

const FIELDS: &[&str] = &[
    "frame.number",
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "http.request.method",
    "http.host",
    "http.request.uri",
    "http.request.version",
    "http.request.line",
    "http.content_length",
    "http.response.code",
    "http.response.phrase",
    "http.response.line",
    "http.request_in",
    "http.content_type",
];

#[derive(Debug, Default, Deserialize)]
struct Layers {
    #[serde(default)]
    layers: BTreeMap<String, Vec<String>>,
}

impl Layers {
    fn one(&self, field: &str) -> Option<&str> {
        self.layers
            .get(&field.replace('.', "_"))
            .and_then(|v| v.first())
            .map(String::as_str)
    }
    fn all(&self, field: &str) -> &[String] {
        self.layers
            .get(&field.replace('.', "_"))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
    fn number<T: std::str::FromStr>(&self, field: &str) -> Option<T> {
        self.one(field).and_then(|v| v.trim().parse().ok())
    }
    fn endpoint(&self, src: bool) -> Option<String> {
        let (v4, v6, port) = if src {
            ("ip.src", "ipv6.src", "tcp.srcport")
        } else {
            ("ip.dst", "ipv6.dst", "tcp.dstport")
        };
        let port: u16 = self.number(port)?;
        let ip: std::net::IpAddr = self.one(v4).or(self.one(v6))?.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, port).to_string())
    }
}

/// The HTTP exchanges in `capture`, redacted; `Err` says in words why there are none (tshark
/// missing or failing), for `flows.json`'s `http_note`.
///
/// With `keylog` (the run's `tls-keys.log`), tshark decrypts TLS first: HTTP inside it comes out
/// too, with the scheme `https`.
pub fn read(
    capture: &Path,
    keylog: Option<&Path>,
    flows: &[FlowItem],
    redactor: &Redactor,
) -> Result<(Vec<HttpExchange>, Option<String>), String> {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(capture);
    if let Some(keys) = keylog {
        command
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keys.display()));
    }
    command.args(["-n", "-Y", "http.request or http.response", "-T", "ek"]);
    for field in FIELDS {
        command.args(["-e", field]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "tshark could not be run ({e}): install it (apt-get install tshark) for the HTTP \
                 exchanges of later runs' flows.har"
            )
        })?;
    let by_endpoints: BTreeMap<(&str, &str), &FlowItem> = flows
        .iter()
        .map(|f| ((f.client.as_str(), f.server.as_str()), f))
        .collect();
    let mut exchanges: Vec<HttpExchange> = Vec::new();
    let mut by_request_frame: BTreeMap<u64, usize> = BTreeMap::new();
    let mut note = None;
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = Vec::new();
    while let Some(whole) = next_line(&mut reader, &mut line) {
        if !whole {
            continue;
        }
        let Ok(packet) = serde_json::from_slice::<Layers>(&line) else {
            continue;
        };
        if packet.layers.is_empty() {
            continue; // the `{"index": …}` lines between packets
        }
        if let Some(method) = packet.one("http.request.method") {
            if exchanges.len() >= MAX_EXCHANGES {
                note = Some(format!(
                    "only the first {MAX_EXCHANGES} HTTP requests are kept"
                ));
                continue;
            }
            let (Some(client), Some(server)) = (packet.endpoint(true), packet.endpoint(false))
            else {
                continue;
            };
            let Some(flow) = by_endpoints.get(&(client.as_str(), server.as_str())) else {
                continue;
            };
            let frame = packet.number("frame.number").unwrap_or(0);
            by_request_frame.insert(frame, exchanges.len());
            exchanges.push(HttpExchange {
                step: flow.step.clone(),
                flow: flow.first_frame,
                request_frame: frame,
                response_frame: None,
                started: packet.number("frame.time_epoch").unwrap_or(0.0),
                wait_seconds: None,
                method: sanitize(method),
                scheme: if flow.protocol == "tls" {
                    "https"
                } else {
                    "http"
                }
                .into(),
                host: packet
                    .one("http.host")
                    .map(|h| redactor.clean(h))
                    .unwrap_or_else(|| flow.host.clone()),
                path: redact_path(packet.one("http.request.uri").unwrap_or("/"), redactor),
                http_version: sanitize(packet.one("http.request.version").unwrap_or("HTTP/1.1")),
                request_headers: header_names(packet.all("http.request.line")),
                request_body_bytes: packet.number("http.content_length"),
                status: None,
                status_text: None,
                response_headers: Vec::new(),
                response_content_type: None,
                response_body_bytes: None,
            });
        } else if let Some(code) = packet.number::<u16>("http.response.code") {
            let Some(&i) = packet
                .number::<u64>("http.request_in")
                .and_then(|f| by_request_frame.get(&f))
            else {
                continue;
            };
            let e = &mut exchanges[i];
            e.status = Some(code);
            e.status_text = packet
                .one("http.response.phrase")
                .map(|p| redactor.clean(p));
            e.response_frame = packet.number("frame.number");
            e.wait_seconds = packet
                .number::<f64>("frame.time_epoch")
                .map(|t| ((t - e.started).max(0.0) * 1000.0).round() / 1000.0);
            e.response_headers = header_names(packet.all("http.response.line"));
            e.response_content_type = packet.one("http.content_type").map(|t| redactor.clean(t));
            e.response_body_bytes = packet.number("http.content_length");
        }
    }
    let status = child.wait().map_err(|e| format!("tshark: {e}"))?;
    if !status.success() && exchanges.is_empty() {
        return Err(format!(
            "tshark could not read {} ({status})",
            capture.display()
        ));
    }
    let room = MAX_EXCHANGES.saturating_sub(exchanges.len());
    let (mut h2, h2_note) = read_http2(capture, keylog, &by_endpoints, redactor, room);
    if !h2.is_empty() {
        exchanges.append(&mut h2);
        exchanges.sort_by_key(|e| e.request_frame);
    }
    Ok((exchanges, note.or(h2_note)))
}

/// One HTTP/2 frame of tshark's tree (`http2` layer entries of `-T ek -J`).
#[derive(Debug, Default, Deserialize)]
struct H2Frame {
    #[serde(default, rename = "http2_http2_type")]
    kind: Option<String>,
    #[serde(default, rename = "http2_http2_streamid")]
    stream: Option<String>,
    #[serde(default, rename = "http2_http2_header_name")]
    names: OneOrMany,
    #[serde(default, rename = "http2_http2_header_value")]
    values: OneOrMany,
}

/// A field tshark writes as a string when it occurs once and as a list when more often.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> &[String] {
        match self {
            OneOrMany::None => &[],
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// The `http2` layer: one frame, a list of them, or a list per TLS record (bounded).
fn h2_frames(layer: &serde_json::Value, out: &mut Vec<H2Frame>) {
    match layer {
        serde_json::Value::Array(items) => {
            for item in items {
                if out.len() >= 1024 {
                    return;
                }
                h2_frames(item, out);
            }
        }
        serde_json::Value::Object(_) => {
            if let Ok(frame) = H2Frame::deserialize(layer) {
                out.push(frame);
            }
        }
        _ => {}
    }
}

/// A packet's first value of `layer`'s `field` (`frame`, `frame_frame_number`) in tshark's tree.
fn tree_field<'v>(
    layers: &'v serde_json::Map<String, serde_json::Value>,
    layer: &str,
    field: &str,
) -> Option<&'v str> {
    match layers.get(layer)?.get(field)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Array(v) => v.first()?.as_str(),
        _ => None,
    }
}

fn tree_endpoint(layers: &serde_json::Map<String, serde_json::Value>, src: bool) -> Option<String> {
    let (v4, v6, port) = if src {
        ("ip_ip_src", "ipv6_ipv6_src", "tcp_tcp_srcport")
    } else {
        ("ip_ip_dst", "ipv6_ipv6_dst", "tcp_tcp_dstport")
    };
    let port: u16 = tree_field(layers, "tcp", port)?.parse().ok()?;
    let ip: std::net::IpAddr = tree_field(layers, "ip", v4)
        .or_else(|| tree_field(layers, "ipv6", v6))?
        .parse()
        .ok()?;
    Some(std::net::SocketAddr::new(ip, port).to_string())
}

/// The HTTP/2 exchanges of `capture` (at most `room`), and a note when some were left out. Never
/// fails: without tshark or HTTP/2 there are none.
fn read_http2(
    capture: &Path,
    keylog: Option<&Path>,
    by_endpoints: &BTreeMap<(&str, &str), &FlowItem>,
    redactor: &Redactor,
    room: usize,
) -> (Vec<HttpExchange>, Option<String>) {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(capture);
    if let Some(keys) = keylog {
        command
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keys.display()));
    }
    command.args([
        "-n",
        "-Y",
        "http2.type == 1",
        "-T",
        "ek",
        "-J",
        "frame ip ipv6 tcp http2",
    ]);
    let Ok(mut child) = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return (Vec::new(), None);
    };
    let mut exchanges: Vec<HttpExchange> = Vec::new();
    // (client, server, stream id) → the exchange its request opened.
    let mut open: BTreeMap<(String, String, u32), usize> = BTreeMap::new();
    let (mut note, mut skipped) = (None, 0usize);
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = Vec::new();
    while let Some(whole) = next_line(&mut reader, &mut line) {
        if !whole {
            // A packet with a large DATA frame beside its HEADERS: left out, and said.
            skipped += 1;
            continue;
        }
        let Ok(packet) = serde_json::from_slice::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(layers) = packet.get("layers").and_then(|l| l.as_object()) else {
            continue; // the `{"index": …}` lines between packets
        };
        let (Some(src), Some(dst)) = (tree_endpoint(layers, true), tree_endpoint(layers, false))
        else {
            continue;
        };
        let frame_number: u64 = tree_field(layers, "frame", "frame_frame_number")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let time: f64 = tree_field(layers, "frame", "frame_frame_time_epoch")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0);
        let mut frames = Vec::new();
        if let Some(layer) = layers.get("http2") {
            h2_frames(layer, &mut frames);
        }
        for frame in frames {
            let (Some("1"), Some(stream)) = (
                frame.kind.as_deref(),
                frame.stream.as_deref().and_then(|s| s.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let headers: Vec<(&str, &str)> = frame
                .names
                .items()
                .iter()
                .zip(frame.values.items())
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let value = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            let regular = || {
                header_names_of(
                    headers
                        .iter()
                        .map(|(n, _)| *n)
                        .filter(|n| !n.starts_with(':')),
                )
            };
            let length = || value("content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(method) = value(":method") {
                if exchanges.len() >= room {
                    note = Some(format!(
                        "only the first {MAX_EXCHANGES} HTTP requests are kept"
                    ));
                    continue;
                }
                let Some(flow) = by_endpoints.get(&(src.as_str(), dst.as_str())) else {
                    continue;
                };
                open.insert((src.clone(), dst.clone(), stream), exchanges.len());
                exchanges.push(HttpExchange {
                    step: flow.step.clone(),
                    flow: flow.first_frame,
                    request_frame: frame_number,
                    response_frame: None,
                    started: time,
                    wait_seconds: None,
                    method: sanitize(method),
                    scheme: if flow.protocol == "tls" {
                        "https"
                    } else {
                        "http"
                    }
                    .into(),
                    host: value(":authority")
                        .map(|h| redactor.clean(h))
                        .unwrap_or_else(|| flow.host.clone()),
                    path: redact_path(value(":path").unwrap_or("/"), redactor),
                    http_version: "HTTP/2".into(),
                    request_headers: regular(),
                    request_body_bytes: length(),
                    status: None,
                    status_text: None,
                    response_headers: Vec::new(),
                    response_content_type: None,
                    response_body_bytes: None,
                });
            } else if let Some(code) = value(":status").and_then(|c| c.trim().parse::<u16>().ok()) {
                // The response travels server → client: its request's key is reversed.
                let Some(&i) = open.get(&(dst.clone(), src.clone(), stream)) else {
                    continue;
                };
                let e = &mut exchanges[i];
                if e.status.is_some_and(|s| s >= 200) || code < 200 && e.status.is_some() {
                    continue; // the first final answer stands
                }
                e.status = Some(code);
                e.response_frame = Some(frame_number);
                e.wait_seconds = Some(((time - e.started).max(0.0) * 1000.0).round() / 1000.0);
                e.response_headers = regular();
                e.response_content_type = value("content-type").map(|t| redactor.clean(t));
                e.response_body_bytes = length();
            }
        }
    }
    let _ = child.wait();
    if skipped > 0 && note.is_none() {
        note = Some(format!(
            "{skipped} packet(s) with HTTP/2 headers left out of the HAR: larger than {} MiB in \
             tshark's tree",
            MAX_LINE >> 20
        ));
    }
    (exchanges, note)
}

/// Header names of `Name: value\r\n` lines, without their values.
/// Reads tshark's next output line into `line`, at most `MAX_LINE` bytes: `None` at the end,
/// `Some(false)` for an overlong line (the rest of it is skipped, unbuffered), `Some(true)` else.
fn next_line(reader: &mut impl std::io::BufRead, line: &mut Vec<u8>) -> Option<bool> {
    line.clear();
    let n = (&mut *reader)
        .take(MAX_LINE)
        .read_until(b'\n', line)
        .unwrap_or(0);
    if n == 0 {
        return None;
    }
    if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
        skip_line(reader);
        return Some(false);
    }
    Some(true)
}

/// Skips to the next newline without holding the skipped bytes.
fn skip_line(reader: &mut impl std::io::BufRead) {
    loop {
        let Ok(buf) = reader.fill_buf() else { return };
        if buf.is_empty() {
            return;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

fn header_names(lines: &[String]) -> Vec<String> {
    header_names_of(
        lines
            .iter()
            .filter_map(|l| l.split_once(':').map(|(name, _)| name)),
    )
}

/// Header names, bounded and sanitised.
fn header_names_of<'n>(names: impl Iterator<Item = &'n str>) -> Vec<String> {
    names
        .take(MAX_HEADERS)
        .map(|n| sanitize(n.trim()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// The path through the redactor, each query value replaced by `<value>` (a query is where apps
/// put what they send; an unknown identifier there must not reach a report either).
pub fn redact_path(uri: &str, redactor: &Redactor) -> String {
    let cleaned = redactor.clean(uri);
    let Some((path, query)) = cleaned.split_once('?') else {
        return cleaned;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=<value>"),
            None if pair.is_empty() => String::new(),
            None => "<value>".to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tattle_analysis::identifier::Identifier;

    #[test]
    fn paths_keep_names_not_values() {
        let r = Redactor::new(&[Identifier::new("imei", "356938035643809")]);
        assert_eq!(
            redact_path("/d/356938035643809/x?a=1&imei=356938035643809&flag", &r),
            "/d/<imei>/x?a=<value>&imei=<value>&<value>"
        );
        assert_eq!(redact_path("/plain", &r), "/plain");
    }

    #[test]
    fn header_values_are_dropped() {
        let names = header_names(&[
            "Host: a.example\r\n".into(),
            "X-Imei: 356938035643809\r\n".into(),
            "garbage".into(),
        ]);
        assert_eq!(names, vec!["Host", "X-Imei"]);
    }
}
