//! The handset's content providers and settings, with the `settings` and `content` commands.
//!
//! Tables: contacts (`raw_contacts`, `data`, and the derived `contacts` and `data/phones` views) and SMS
//! (`content://sms`, `/sent`, `/inbox`). Output formats follow AOSP's `cmds/content` (`Row: N col=val, …`,
//! `No result found.`, `NULL` for nulls) and `SettingsCmd` (`null` when unset, `key=value` lists,
//! `Deleted N rows`). `--where` understands `col = value` terms joined by `AND`, which is what scripts use.
//!
//! Must not touch: the adb transport, the network (events are returned to the caller to emit).

use std::collections::{BTreeMap, BTreeSet};

use crate::vhandset::HandsetEvent;
use crate::vhandset::generation::ContentFlavor;

/// Rows per table, so a script in a loop cannot exhaust memory.
const MAX_ROWS: usize = 10_000;
/// Bytes of text a table may hold (column names + values).
const MAX_TABLE_BYTES: usize = 16 * 1024 * 1024;
/// Keys per settings namespace.
const MAX_SETTINGS: usize = 1000;
/// Longest value stored in a cell or setting.
const MAX_VALUE: usize = 8 * 1024;

pub const MIME_NAME: &str = "vnd.android.cursor.item/name";
pub const MIME_PHONE: &str = "vnd.android.cursor.item/phone_v2";

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    fn show(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Int(i) => i.to_string(),
            Value::Real(f) => {
                // Java's Double.toString keeps a ".0" on whole numbers.
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{f:.1}")
                } else {
                    f.to_string()
                }
            }
            Value::Text(s) => s.clone(),
        }
    }

    fn as_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            v => Some(v.show()),
        }
    }

    /// SQLite-ish equality against a literal from a `--where`.
    fn matches(&self, literal: &str) -> bool {
        match self {
            Value::Null => literal.eq_ignore_ascii_case("null"),
            Value::Int(i) => literal.parse::<i64>().is_ok_and(|l| l == *i),
            Value::Real(f) => literal.parse::<f64>().is_ok_and(|l| l == *f),
            Value::Text(s) => s == literal,
        }
    }
}

/// A row: ordered columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<(String, Value)>);

impl Row {
    pub fn get(&self, col: &str) -> Option<&Value> {
        self.0.iter().find(|(c, _)| c == col).map(|(_, v)| v)
    }
    fn set(&mut self, col: &str, v: Value) {
        match self.0.iter_mut().find(|(c, _)| c == col) {
            Some((_, old)) => *old = v,
            None => self.0.push((col.to_string(), v)),
        }
    }
    fn id(&self) -> i64 {
        match self.get("_id") {
            Some(Value::Int(i)) => *i,
            _ => 0,
        }
    }
    fn text(&self, col: &str) -> Option<String> {
        self.get(col).and_then(Value::as_text)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub rows: Vec<Row>,
    next_id: i64,
}

fn row_size(row: &Row) -> usize {
    row.0
        .iter()
        .map(|(c, v)| c.len() + if let Value::Text(t) = v { t.len() } else { 8 })
        .sum()
}

impl Table {
    fn size(&self) -> usize {
        self.rows.iter().map(row_size).sum()
    }

    fn insert(&mut self, mut row: Row) -> Result<i64, String> {
        if self.rows.len() >= MAX_ROWS || self.size() + row_size(&row) > MAX_TABLE_BYTES {
            return Err(
                "android.database.sqlite.SQLiteFullException: database or disk is full".into(),
            );
        }
        self.next_id += 1;
        let id = self.next_id;
        row.0.retain(|(c, _)| c != "_id");
        row.0.insert(0, ("_id".into(), Value::Int(id)));
        self.rows.push(row);
        Ok(id)
    }
}

/// Settings namespaces.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub system: BTreeMap<String, String>,
    pub secure: BTreeMap<String, String>,
    pub global: BTreeMap<String, String>,
}

impl Settings {
    pub fn defaults(android_id: &str) -> Self {
        let mut s = Settings::default();
        let put = |m: &mut BTreeMap<String, String>, k: &str, v: &str| {
            m.insert(k.to_string(), v.to_string());
        };
        put(&mut s.secure, "android_id", android_id);
        // A fresh handset has not been through the setup wizard.
        put(&mut s.secure, "user_setup_complete", "0");
        put(&mut s.secure, "location_mode", "0");
        put(
            &mut s.secure,
            "default_input_method",
            "com.android.inputmethod.latin/.LatinIME",
        );
        put(&mut s.global, "device_provisioned", "0");
        put(&mut s.global, "adb_enabled", "1");
        put(&mut s.global, "airplane_mode_on", "0");
        put(&mut s.global, "auto_time", "1");
        put(&mut s.global, "development_settings_enabled", "1");
        put(&mut s.global, "wifi_on", "1");
        put(&mut s.global, "mobile_data", "1");
        put(&mut s.system, "screen_off_timeout", "60000");
        put(&mut s.system, "font_scale", "1.0");
        put(&mut s.system, "time_12_24", "24");
        s
    }

    fn ns(&mut self, name: &str) -> Option<&mut BTreeMap<String, String>> {
        match name {
            "system" => Some(&mut self.system),
            "secure" => Some(&mut self.secure),
            "global" => Some(&mut self.global),
            _ => None,
        }
    }
}

/// Contacts and SMS.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    pub raw_contacts: Table,
    pub data: Table,
    pub sms: Table,
    /// Raw contacts already reported as `ContactAdded`.
    announced: BTreeSet<i64>,
}

impl Providers {
    pub fn clear_contacts(&mut self) {
        self.raw_contacts = Table::default();
        self.data = Table::default();
        self.announced.clear();
    }

    pub fn clear_sms(&mut self) {
        self.sms = Table::default();
    }

    /// Stores a sent SMS the way the messaging app does (type 2 = sent).
    pub fn store_sent_sms(&mut self, to: &str, body: &str, now_ms: i64) -> Result<i64, String> {
        let thread = self.thread_id(to);
        self.sms.insert(Row(vec![
            ("thread_id".into(), Value::Int(thread)),
            ("address".into(), Value::Text(to.into())),
            ("date".into(), Value::Int(now_ms)),
            ("date_sent".into(), Value::Int(now_ms)),
            ("read".into(), Value::Int(1)),
            ("status".into(), Value::Int(-1)),
            ("type".into(), Value::Int(2)),
            ("body".into(), Value::Text(body.into())),
        ]))
    }

    /// Saves a contact the way the contacts app's editor does (a raw contact with a name and a mobile
    /// number row); returns the `ContactAdded` event(s) the provider raises.
    pub fn save_contact(&mut self, name: &str, phone: &str) -> Result<Vec<HandsetEvent>, String> {
        let raw = self.raw_contacts.insert(Row(vec![
            ("account_type".into(), Value::Null),
            ("account_name".into(), Value::Null),
            ("deleted".into(), Value::Int(0)),
            ("starred".into(), Value::Int(0)),
        ]))?;
        if !name.is_empty() {
            self.data.insert(Row(vec![
                ("raw_contact_id".into(), Value::Int(raw)),
                ("mimetype".into(), Value::Text(MIME_NAME.into())),
                ("data1".into(), Value::Text(name.into())),
            ]))?;
        }
        if !phone.is_empty() {
            self.data.insert(Row(vec![
                ("raw_contact_id".into(), Value::Int(raw)),
                ("mimetype".into(), Value::Text(MIME_PHONE.into())),
                ("data1".into(), Value::Text(phone.into())),
                ("data2".into(), Value::Int(2)),
            ]))?;
        }
        Ok(self.newly_complete())
    }

    fn thread_id(&self, address: &str) -> i64 {
        let existing = self
            .sms
            .rows
            .iter()
            .find(|r| r.text("address").as_deref() == Some(address));
        match existing.and_then(|r| r.get("thread_id")) {
            Some(Value::Int(t)) => *t,
            _ => {
                let threads: BTreeSet<i64> = self
                    .sms
                    .rows
                    .iter()
                    .filter_map(|r| match r.get("thread_id") {
                        Some(Value::Int(t)) => Some(*t),
                        _ => None,
                    })
                    .collect();
                threads.last().copied().unwrap_or(0) + 1
            }
        }
    }

    fn raw_contact_fields(&self, raw_id: i64, mime: &str) -> Option<String> {
        self.data.rows.iter().find_map(|r| {
            let belongs =
                matches!(r.get("raw_contact_id"), Some(v) if v.matches(&raw_id.to_string()));
            (belongs && r.text("mimetype").as_deref() == Some(mime))
                .then(|| r.text("data1"))
                .flatten()
        })
    }

    /// After a change: raw contacts that now have both a name and a phone, reported once.
    fn newly_complete(&mut self) -> Vec<HandsetEvent> {
        let mut events = Vec::new();
        let ids: Vec<i64> = self.raw_contacts.rows.iter().map(Row::id).collect();
        for id in ids {
            if self.announced.contains(&id) {
                continue;
            }
            if let (Some(name), Some(phone)) = (
                self.raw_contact_fields(id, MIME_NAME),
                self.raw_contact_fields(id, MIME_PHONE),
            ) {
                self.announced.insert(id);
                events.push(HandsetEvent::ContactAdded { name, phone });
            }
        }
        events
    }

    /// The derived `contacts` view.
    fn contacts_view(&self) -> Vec<Row> {
        self.raw_contacts
            .rows
            .iter()
            .filter(|r| !matches!(r.get("deleted"), Some(Value::Int(1))))
            .map(|r| {
                let id = r.id();
                let name = self.raw_contact_fields(id, MIME_NAME);
                let has_phone = self.raw_contact_fields(id, MIME_PHONE).is_some();
                Row(vec![
                    ("_id".into(), Value::Int(id)),
                    ("display_name".into(), name.map_or(Value::Null, Value::Text)),
                    ("has_phone_number".into(), Value::Int(i64::from(has_phone))),
                    ("name_raw_contact_id".into(), Value::Int(id)),
                ])
            })
            .collect()
    }

    /// The derived `data/phones` view.
    fn phones_view(&self) -> Vec<Row> {
        self.data
            .rows
            .iter()
            .filter(|r| r.text("mimetype").as_deref() == Some(MIME_PHONE))
            .map(|r| {
                let raw = match r.get("raw_contact_id") {
                    Some(Value::Int(i)) => *i,
                    Some(Value::Text(t)) => t.parse().unwrap_or(0),
                    _ => 0,
                };
                let name = self.raw_contact_fields(raw, MIME_NAME);
                let number = r.get("data1").cloned().unwrap_or(Value::Null);
                Row(vec![
                    ("_id".into(), Value::Int(r.id())),
                    ("raw_contact_id".into(), Value::Int(raw)),
                    ("contact_id".into(), Value::Int(raw)),
                    ("display_name".into(), name.map_or(Value::Null, Value::Text)),
                    ("mimetype".into(), Value::Text(MIME_PHONE.into())),
                    ("data1".into(), number.clone()),
                    ("number".into(), number),
                    (
                        "data2".into(),
                        r.get("data2").cloned().unwrap_or(Value::Int(2)),
                    ),
                ])
            })
            .collect()
    }
}

/// What a command produced.
#[derive(Debug, Default)]
pub struct Output {
    pub out: String,
    pub err: String,
    pub code: i32,
    pub events: Vec<HandsetEvent>,
}

impl Output {
    fn err(msg: impl Into<String>, code: i32) -> Self {
        Output {
            err: msg.into(),
            code,
            ..Default::default()
        }
    }
}

// ---- settings ----

const SETTINGS_USAGE: &str = "usage:  settings [--user <USER_ID> | current] get namespace key\n        settings [--user <USER_ID> | current] put namespace key value\n        settings [--user <USER_ID> | current] delete namespace key\n        settings [--user <USER_ID> | current] list namespace\n\n'namespace' is one of {system, secure, global}, case-insensitive\n";

/// `settings …`. Returns the output and whether `user_setup_complete` just became 1.
pub fn settings_cmd(settings: &mut Settings, args: &[String]) -> Output {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.first() == Some(&"--user") && args.len() >= 2 {
        args.drain(..2);
    }
    let usage = || Output::err(SETTINGS_USAGE, 1);
    let (Some(verb), Some(ns)) = (
        args.first().copied(),
        args.get(1).map(|s| s.to_ascii_lowercase()),
    ) else {
        return usage();
    };
    let ns_name = ns.clone();
    let Some(map) = settings.ns(&ns) else {
        return usage();
    };
    let mut out = Output::default();
    match (verb, args.len()) {
        ("get", 3) => {
            out.out = format!("{}\n", map.get(args[2]).map_or("null", String::as_str));
        }
        ("put", 4..) => {
            let (key, value) = (args[2], args[3]);
            if key.len() > MAX_VALUE
                || value.len() > MAX_VALUE
                || (map.len() >= MAX_SETTINGS && !map.contains_key(key))
            {
                return Output::err("Error: value too large\n", 1);
            }
            let before = map.insert(key.to_string(), value.to_string());
            if ns_name == "secure"
                && key == "user_setup_complete"
                && value == "1"
                && before.as_deref() != Some("1")
            {
                out.events.push(HandsetEvent::SetupComplete);
            }
        }
        ("delete", 3) => {
            let n = usize::from(map.remove(args[2]).is_some());
            out.out = format!("Deleted {n} rows\n");
        }
        ("list", 2) => {
            for (k, v) in map.iter() {
                out.out.push_str(&format!("{k}={v}\n"));
            }
        }
        _ => return usage(),
    }
    out
}

// ---- content ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uri {
    RawContacts,
    Data,
    Contacts,
    Phones,
    Sms,
    SmsSent,
    SmsInbox,
}

fn parse_uri(uri: &str) -> Option<Uri> {
    let uri = uri.trim_end_matches('/');
    Some(match uri {
        "content://com.android.contacts/raw_contacts" => Uri::RawContacts,
        "content://com.android.contacts/data" => Uri::Data,
        "content://com.android.contacts/contacts" => Uri::Contacts,
        "content://com.android.contacts/data/phones" => Uri::Phones,
        "content://sms" => Uri::Sms,
        "content://sms/sent" => Uri::SmsSent,
        "content://sms/inbox" => Uri::SmsInbox,
        _ => return None,
    })
}

fn authority(uri: &str) -> &str {
    uri.strip_prefix("content://")
        .and_then(|r| r.split('/').next())
        .unwrap_or(uri)
}

/// `--bind name:type:value` (types b, s, i, l, f, d, n as in AOSP's Content.java).
fn parse_bind(spec: &str) -> Result<(String, Value), String> {
    let mut it = spec.splitn(3, ':');
    let (Some(name), Some(ty)) = (it.next(), it.next()) else {
        return Err(format!("Binding not well formed: {spec}"));
    };
    let value = it.next().unwrap_or("");
    if value.len() > MAX_VALUE || name.is_empty() {
        return Err(format!("Binding not well formed: {spec}"));
    }
    let v = match ty {
        "s" => Value::Text(value.to_string()),
        "b" => Value::Int(i64::from(value.eq_ignore_ascii_case("true"))),
        "i" | "l" => Value::Int(
            value
                .parse()
                .map_err(|_| format!("Invalid integer: {value}"))?,
        ),
        "f" | "d" => Value::Real(
            value
                .parse()
                .map_err(|_| format!("Invalid number: {value}"))?,
        ),
        "n" => Value::Null,
        _ => return Err(format!("Unsupported type: {ty}")),
    };
    Ok((name.to_string(), v))
}

/// `a = 1 AND b='x y'` → terms. `None` if it is something this handset does not understand.
fn parse_where(w: &str) -> Option<Vec<(String, String)>> {
    let mut terms = Vec::new();
    let mut rest = w.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let col = rest[..eq].trim();
        if col.is_empty()
            || !col
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return None;
        }
        let after = rest[eq + 1..].trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('\'') {
            let end = q.find('\'')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        terms.push((col.to_string(), value));
        let remaining = remaining.trim_start();
        rest = if remaining.is_empty() {
            ""
        } else if remaining.len() >= 4 && remaining[..4].eq_ignore_ascii_case("and ") {
            &remaining[4..]
        } else {
            return None;
        };
    }
    Some(terms)
}

fn row_matches(row: &Row, terms: &[(String, String)]) -> bool {
    terms
        .iter()
        .all(|(c, v)| row.get(c).is_some_and(|x| x.matches(v)))
}

fn provider_error(uri: &str, msg: &str) -> Output {
    Output::err(
        format!("Error while accessing provider:{}\n{msg}\n", authority(uri)),
        1,
    )
}

/// `content insert|query|delete|update …`, as the `content` tool of `flavor`'s release prints it.
pub fn content_cmd(
    p: &mut Providers,
    args: &[String],
    now_ms: i64,
    flavor: &ContentFlavor,
) -> Output {
    // KitKat's Content.java knows four verbs; anything else prints its usage and the error on stdout
    // (Parser.parseCommand catches the IllegalArgumentException) and exits 0.
    if let (Some(usage), Some(verb)) = (flavor.usage, args.first())
        && !flavor.verbs.contains(&verb.as_str())
    {
        return Output {
            out: format!("{usage}\n[ERROR] Unsupported operation: {verb}\n"),
            ..Default::default()
        };
    }
    let mut out = content_modern(p, args, now_ms);
    if out.out == "No result found.\n" {
        out.out = format!("{}\n", flavor.empty_cursor);
    }
    out
}

fn content_modern(p: &mut Providers, args: &[String], now_ms: i64) -> Output {
    let usage = || {
        Output::err(
            "usage: adb shell content [subcommand] [options]\n\nusage: adb shell content insert --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...]\n  <URI> a content provider URI.\n  <BINDING> binds a typed value to a column and is formatted:\n  <COLUMN_NAME>:<TYPE>:<COLUMN_VALUE> where:\n  <TYPE> specifies data type such as:\n  b - boolean, s - string, i - integer, l - long, f - float, d - double, n - null\n\nusage: adb shell content query --uri <URI> [--user <USER_ID>] [--projection <PROJECTION>] [--where <WHERE>] [--sort <SORT_ORDER>]\n\nusage: adb shell content delete --uri <URI> [--user <USER_ID>] --where <WHERE>\n",
            1,
        )
    };
    let Some(verb) = args.first() else {
        return usage();
    };
    let mut uri = None;
    let mut binds = Vec::new();
    let mut projection: Option<Vec<String>> = None;
    let mut where_ = None;
    let mut i = 1;
    while i < args.len() {
        let val = args.get(i + 1);
        match (args[i].as_str(), val) {
            ("--uri", Some(v)) => uri = Some(v.clone()),
            ("--bind", Some(v)) => match parse_bind(v) {
                Ok(b) => binds.push(b),
                Err(e) => return Output::err(format!("Error: {e}\n"), 1),
            },
            ("--projection", Some(v)) => {
                projection = Some(
                    v.split(':')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            ("--where", Some(v)) => where_ = Some(v.clone()),
            ("--sort" | "--user" | "--extra" | "--method" | "--arg", Some(_)) => {}
            _ => return usage(),
        }
        i += 2;
    }
    let Some(uri_text) = uri else {
        return Output::err("Error: Content provider URI not specified\n", 1);
    };
    let Some(target) = parse_uri(&uri_text) else {
        return Output::err(
            format!(
                "Error while accessing provider:{}\njava.lang.IllegalArgumentException: Unknown URI {uri_text}\n",
                authority(&uri_text)
            ),
            1,
        );
    };
    let terms = match where_.as_deref() {
        None => Vec::new(),
        Some(w) => match parse_where(w) {
            Some(t) => t,
            None => {
                return provider_error(
                    &uri_text,
                    &format!(
                        "android.database.sqlite.SQLiteException: unsupported where clause (code 1 SQLITE_ERROR): {w}"
                    ),
                );
            }
        },
    };
    match verb.as_str() {
        "insert" => insert(p, target, &uri_text, binds, now_ms),
        "query" => query(p, target, projection, &terms),
        "delete" => delete(p, target, &terms),
        "update" => update(p, target, binds, &terms),
        _ => usage(),
    }
}

impl Providers {
    /// An SMS that arrived from the network (the modem), as the telephony stack stores it: a row of
    /// `content://sms/inbox` (type 1, unread) with the sender, the text, the time and its thread.
    pub fn deliver_sms(&mut self, from: &str, body: &str, now_ms: i64) {
        let thread = self.thread_id(from);
        let row = Row(vec![
            ("address".into(), Value::Text(from.to_string())),
            ("body".into(), Value::Text(body.to_string())),
            ("date".into(), Value::Int(now_ms)),
            ("date_sent".into(), Value::Int(now_ms)),
            ("read".into(), Value::Int(0)),
            ("seen".into(), Value::Int(0)),
            ("type".into(), Value::Int(1)),
            ("thread_id".into(), Value::Int(thread)),
        ]);
        let _ = self.sms.insert(row);
    }
}

fn insert(
    p: &mut Providers,
    target: Uri,
    uri: &str,
    binds: Vec<(String, Value)>,
    now_ms: i64,
) -> Output {
    let mut row = Row(binds);
    let result = match target {
        Uri::RawContacts => {
            for (c, v) in [("deleted", Value::Int(0)), ("starred", Value::Int(0))] {
                if row.get(c).is_none() {
                    row.set(c, v);
                }
            }
            p.raw_contacts.insert(row)
        }
        Uri::Data => {
            let raw = row.get("raw_contact_id").cloned();
            let exists = raw.as_ref().is_some_and(|v| {
                p.raw_contacts
                    .rows
                    .iter()
                    .any(|r| v.matches(&r.id().to_string()))
            });
            if !exists {
                return provider_error(
                    uri,
                    "java.lang.IllegalArgumentException: raw_contact_id is required",
                );
            }
            p.data.insert(row)
        }
        Uri::Sms | Uri::SmsSent | Uri::SmsInbox => {
            let ty = match target {
                Uri::SmsSent => Some(2),
                Uri::SmsInbox => Some(1),
                _ => None,
            };
            if let Some(t) = ty {
                row.set("type", Value::Int(t));
            }
            if row.get("date").is_none() {
                row.set("date", Value::Int(now_ms));
            }
            if row.get("thread_id").is_none() {
                let addr = row.text("address").unwrap_or_default();
                row.set("thread_id", Value::Int(p.thread_id(&addr)));
            }
            p.sms.insert(row)
        }
        Uri::Contacts | Uri::Phones => {
            return provider_error(
                uri,
                &format!("java.lang.UnsupportedOperationException: URI: {uri}"),
            );
        }
    };
    match result {
        Ok(_) => Output {
            events: p.newly_complete(),
            ..Default::default()
        },
        Err(e) => provider_error(uri, &e),
    }
}

fn rows_of(p: &Providers, target: Uri) -> Vec<Row> {
    match target {
        Uri::RawContacts => p
            .raw_contacts
            .rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                let name = p.raw_contact_fields(r.id(), MIME_NAME);
                r.set("contact_id", Value::Int(r.id()));
                r.set("display_name", name.map_or(Value::Null, Value::Text));
                r
            })
            .collect(),
        Uri::Data => p.data.rows.clone(),
        Uri::Contacts => p.contacts_view(),
        Uri::Phones => p.phones_view(),
        Uri::Sms => p.sms.rows.clone(),
        Uri::SmsSent => p
            .sms
            .rows
            .iter()
            .filter(|r| r.get("type") == Some(&Value::Int(2)))
            .cloned()
            .collect(),
        Uri::SmsInbox => p
            .sms
            .rows
            .iter()
            .filter(|r| r.get("type") == Some(&Value::Int(1)))
            .cloned()
            .collect(),
    }
}

fn query(
    p: &Providers,
    target: Uri,
    projection: Option<Vec<String>>,
    terms: &[(String, String)],
) -> Output {
    let rows: Vec<Row> = rows_of(p, target)
        .into_iter()
        .filter(|r| row_matches(r, terms))
        .collect();
    let mut out = Output::default();
    if rows.is_empty() {
        out.out = "No result found.\n".into();
        return out;
    }
    for (i, row) in rows.iter().enumerate() {
        let cols: Vec<(String, String)> = match &projection {
            Some(proj) => proj
                .iter()
                .map(|c| (c.clone(), row.get(c).map_or("NULL".into(), Value::show)))
                .collect(),
            None => row.0.iter().map(|(c, v)| (c.clone(), v.show())).collect(),
        };
        let shown: Vec<String> = cols.iter().map(|(c, v)| format!("{c}={v}")).collect();
        out.out
            .push_str(&format!("Row: {i} {}\n", shown.join(", ")));
    }
    out
}

fn delete(p: &mut Providers, target: Uri, terms: &[(String, String)]) -> Output {
    match target {
        Uri::RawContacts => {
            let gone: Vec<i64> = p
                .raw_contacts
                .rows
                .iter()
                .filter(|r| row_matches(r, terms))
                .map(Row::id)
                .collect();
            p.raw_contacts.rows.retain(|r| !gone.contains(&r.id()));
            p.data.rows.retain(|r| {
                !matches!(r.get("raw_contact_id"), Some(v) if gone.iter().any(|g| v.matches(&g.to_string())))
            });
        }
        Uri::Data => p.data.rows.retain(|r| !row_matches(r, terms)),
        Uri::Contacts => {
            let gone: Vec<i64> = p
                .contacts_view()
                .iter()
                .filter(|r| row_matches(r, terms))
                .map(Row::id)
                .collect();
            p.raw_contacts.rows.retain(|r| !gone.contains(&r.id()));
            p.data.rows.retain(|r| {
                !matches!(r.get("raw_contact_id"), Some(v) if gone.iter().any(|g| v.matches(&g.to_string())))
            });
        }
        Uri::Phones => {
            let gone: Vec<i64> = p
                .phones_view()
                .iter()
                .filter(|r| row_matches(r, terms))
                .map(Row::id)
                .collect();
            p.data.rows.retain(|r| !gone.contains(&r.id()));
        }
        Uri::Sms | Uri::SmsSent | Uri::SmsInbox => {
            let gone: Vec<i64> = rows_of(p, target)
                .iter()
                .filter(|r| row_matches(r, terms))
                .map(Row::id)
                .collect();
            p.sms.rows.retain(|r| !gone.contains(&r.id()));
        }
    }
    Output::default()
}

fn update(
    p: &mut Providers,
    target: Uri,
    binds: Vec<(String, Value)>,
    terms: &[(String, String)],
) -> Output {
    let table = match target {
        Uri::RawContacts => &mut p.raw_contacts,
        Uri::Data => &mut p.data,
        Uri::Sms => &mut p.sms,
        _ => return Output::err("Error: update is not supported on this URI\n", 1),
    };
    let matched = table.rows.iter().filter(|r| row_matches(r, terms)).count();
    let growth = row_size(&Row(binds.clone())).saturating_mul(matched);
    if table.size().saturating_add(growth) > MAX_TABLE_BYTES {
        return Output::err(
            "Error while accessing provider\nandroid.database.sqlite.SQLiteFullException: database or disk is full\n",
            1,
        );
    }
    for row in table.rows.iter_mut().filter(|r| row_matches(r, terms)) {
        for (c, v) in &binds {
            if c != "_id" {
                row.set(c, v.clone());
            }
        }
    }
    Output {
        events: p.newly_complete(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `content` tool of Android 13 (what these tests were written against).
    fn content_cmd(p: &mut Providers, args: &[String], now_ms: i64) -> Output {
        let g = crate::vhandset::generation::by_id("android-13").unwrap();
        super::content_cmd(p, args, now_ms, &g.content)
    }

    #[test]
    fn kitkat_content_has_its_typo_and_four_verbs() {
        let g = crate::vhandset::generation::by_id("android-4.4").unwrap();
        let mut p = Providers::default();
        let q = super::content_cmd(
            &mut p,
            &a(&["query", "--uri", "content://sms/sent"]),
            0,
            &g.content,
        );
        assert_eq!(q.out, "No reuslt found.\n");
        let c = super::content_cmd(
            &mut p,
            &a(&["call", "--uri", "content://settings"]),
            0,
            &g.content,
        );
        assert!(
            c.out
                .starts_with("usage: adb shell content [subcommand] [options]\n")
        );
        assert!(
            c.out.ends_with("\n\n[ERROR] Unsupported operation: call\n"),
            "{}",
            c.out
        );
        assert_eq!(c.code, 0);
    }

    fn a(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn settings_get_put_list_and_setup_event() {
        let mut s = Settings::defaults("abcd");
        assert_eq!(
            settings_cmd(&mut s, &a(&["get", "secure", "android_id"])).out,
            "abcd\n"
        );
        assert_eq!(
            settings_cmd(&mut s, &a(&["get", "global", "nope"])).out,
            "null\n"
        );
        let o = settings_cmd(&mut s, &a(&["put", "secure", "user_setup_complete", "1"]));
        assert_eq!(o.events, vec![HandsetEvent::SetupComplete]);
        let o = settings_cmd(&mut s, &a(&["put", "secure", "user_setup_complete", "1"]));
        assert!(o.events.is_empty());
        assert_eq!(
            settings_cmd(&mut s, &a(&["delete", "system", "font_scale"])).out,
            "Deleted 1 rows\n"
        );
        assert!(
            settings_cmd(&mut s, &a(&["list", "global"]))
                .out
                .contains("adb_enabled=1\n")
        );
        assert_eq!(settings_cmd(&mut s, &a(&["get", "bogus", "x"])).code, 1);
        assert_eq!(settings_cmd(&mut s, &a(&[])).code, 1);
    }

    #[test]
    fn contacts_round_trip_and_event_once() {
        let mut p = Providers::default();
        let o = content_cmd(
            &mut p,
            &a(&[
                "insert",
                "--uri",
                "content://com.android.contacts/raw_contacts",
                "--bind",
                "account_type:n:",
                "--bind",
                "account_name:n:",
            ]),
            0,
        );
        assert_eq!(o.code, 0, "{}", o.err);
        let o = content_cmd(
            &mut p,
            &a(&[
                "insert",
                "--uri",
                "content://com.android.contacts/data",
                "--bind",
                "raw_contact_id:i:1",
                "--bind",
                "mimetype:s:vnd.android.cursor.item/name",
                "--bind",
                "data1:s:Wei Ling Tan",
            ]),
            0,
        );
        assert!(o.events.is_empty());
        let o = content_cmd(
            &mut p,
            &a(&[
                "insert",
                "--uri",
                "content://com.android.contacts/data",
                "--bind",
                "raw_contact_id:i:1",
                "--bind",
                "mimetype:s:vnd.android.cursor.item/phone_v2",
                "--bind",
                "data1:s:+6598765432",
            ]),
            0,
        );
        assert_eq!(
            o.events,
            vec![HandsetEvent::ContactAdded {
                name: "Wei Ling Tan".into(),
                phone: "+6598765432".into()
            }]
        );
        let q = content_cmd(
            &mut p,
            &a(&[
                "query",
                "--uri",
                "content://com.android.contacts/contacts",
                "--projection",
                "_id:display_name",
            ]),
            0,
        );
        assert_eq!(q.out, "Row: 0 _id=1, display_name=Wei Ling Tan\n");
        let q = content_cmd(
            &mut p,
            &a(&[
                "query",
                "--uri",
                "content://com.android.contacts/data/phones",
                "--projection",
                "display_name:number",
                "--where",
                "raw_contact_id=1",
            ]),
            0,
        );
        assert_eq!(
            q.out,
            "Row: 0 display_name=Wei Ling Tan, number=+6598765432\n"
        );
        // Another data row on the same contact does not announce it again.
        let o = content_cmd(
            &mut p,
            &a(&[
                "insert",
                "--uri",
                "content://com.android.contacts/data",
                "--bind",
                "raw_contact_id:i:1",
                "--bind",
                "mimetype:s:vnd.android.cursor.item/phone_v2",
                "--bind",
                "data1:s:123",
            ]),
            0,
        );
        assert!(o.events.is_empty());
        content_cmd(
            &mut p,
            &a(&[
                "delete",
                "--uri",
                "content://com.android.contacts/raw_contacts",
                "--where",
                "_id=1",
            ]),
            0,
        );
        let q = content_cmd(
            &mut p,
            &a(&["query", "--uri", "content://com.android.contacts/data"]),
            0,
        );
        assert_eq!(q.out, "No result found.\n");
    }

    #[test]
    fn content_errors() {
        let mut p = Providers::default();
        assert_eq!(
            content_cmd(&mut p, &a(&["insert", "--uri", "content://nope/x"]), 0).code,
            1
        );
        assert_eq!(content_cmd(&mut p, &a(&["query"]), 0).code, 1);
        assert_eq!(
            content_cmd(
                &mut p,
                &a(&["insert", "--uri", "content://sms", "--bind", "x"]),
                0
            )
            .code,
            1
        );
        assert_eq!(
            content_cmd(
                &mut p,
                &a(&[
                    "insert",
                    "--uri",
                    "content://sms",
                    "--bind",
                    "x:i:notanumber"
                ]),
                0
            )
            .code,
            1
        );
        assert_eq!(
            content_cmd(
                &mut p,
                &a(&["query", "--uri", "content://sms", "--where", "a LIKE 'x'"]),
                0
            )
            .code,
            1
        );
        // data row for a raw contact that does not exist
        assert_eq!(
            content_cmd(
                &mut p,
                &a(&[
                    "insert",
                    "--uri",
                    "content://com.android.contacts/data",
                    "--bind",
                    "raw_contact_id:i:9"
                ]),
                0
            )
            .code,
            1
        );
    }

    #[test]
    fn sms_sent_view() {
        let mut p = Providers::default();
        p.store_sent_sms("+65123", "hi there", 1000).unwrap();
        content_cmd(
            &mut p,
            &a(&[
                "insert",
                "--uri",
                "content://sms/inbox",
                "--bind",
                "address:s:+65999",
                "--bind",
                "body:s:yo",
            ]),
            5,
        );
        let q = content_cmd(
            &mut p,
            &a(&[
                "query",
                "--uri",
                "content://sms/sent",
                "--projection",
                "address:body:type",
            ]),
            0,
        );
        assert_eq!(q.out, "Row: 0 address=+65123, body=hi there, type=2\n");
        let q = content_cmd(
            &mut p,
            &a(&[
                "query",
                "--uri",
                "content://sms",
                "--where",
                "address='+65999' AND type=1",
                "--projection",
                "body",
            ]),
            0,
        );
        assert_eq!(q.out, "Row: 0 body=yo\n");
    }
}
