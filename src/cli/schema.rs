//! The JSON Schemas of every document tattle emits, generated from the typed structs with
//! `schemars` (draft 2020-12) and checked in as `schema/<document>.schema.json`
//! (docs/json-schema.md). A test regenerates them and compares, so they cannot drift from the code;
//! `TATTLE_BLESS_SCHEMA=1 cargo test --lib schema` rewrites them after an intended change.
//!
//! It sits with the CLI because it names documents from every module, the CLI's own (`devices`)
//! included.
//!
//! Must not touch: how documents are built or printed.

use schemars::Schema;

use crate::diff::model::DiffDocument;
use crate::evidence::Manifest;
use crate::policy::PolicyReport;
use crate::report::capture::Report as AnalyzeReport;
use crate::report::json::{
    DifferentialReport, EvidenceRecord, MultiRunReport, RunRecord, RunReport,
};

/// Where the schemas live in the repository.
#[cfg(test)]
const DIR: &str = "schema";

/// `(file name, schema)` of each document, in the order docs/json-schema.md lists them.
pub(crate) fn documents() -> Vec<(&'static str, Schema)> {
    vec![
        (
            "run.schema.json",
            titled::<RunReport<'static>>("tattle run --format json"),
        ),
        (
            "run-many.schema.json",
            titled::<MultiRunReport<'static>>(
                "tattle run --format json with several devices (--device A --device B, --all-devices)",
            ),
        ),
        (
            "run-record.schema.json",
            titled::<RunRecord<'static>>("run.json in a run directory"),
        ),
        (
            "evidence.schema.json",
            titled::<EvidenceRecord<'static>>("evidence.json in a run directory"),
        ),
        (
            "manifest.schema.json",
            titled::<Manifest>("manifest.json in a run directory"),
        ),
        (
            "policy.schema.json",
            titled::<PolicyReport>("tattle check --format json; policy.json in a run directory"),
        ),
        (
            "differential.schema.json",
            titled::<DifferentialReport<'static>>(
                "tattle run --differential N --format json; differential.json",
            ),
        ),
        (
            "diff.schema.json",
            titled::<DiffDocument>("tattle diff --format json"),
        ),
        (
            "analyze.schema.json",
            titled::<AnalyzeReport>("tattle analyze --format json"),
        ),
        (
            "devices.schema.json",
            titled::<super::devices::DevicesDocument<'static>>("tattle devices --format json"),
        ),
    ]
}

fn titled<T: schemars::JsonSchema>(what: &str) -> Schema {
    let mut schema = schemars::schema_for!(T);
    schema.insert("title".into(), format!("tattle: {what}").into());
    schema
}

/// `tattle schema [DOCUMENT]`: the list of documents, or one's schema.
pub(crate) fn print(document: Option<&str>) -> anyhow::Result<super::Exit> {
    let documents = documents();
    let name_of = |file: &str| file.trim_end_matches(".schema.json").to_string();
    let Some(wanted) = document else {
        for (file, _) in &documents {
            println!("{}", name_of(file));
        }
        return Ok(super::Exit::Clean);
    };
    match documents.iter().find(|(file, _)| name_of(file) == wanted) {
        Some((_, schema)) => {
            print!("{}", render(schema));
            Ok(super::Exit::Clean)
        }
        None => {
            let names: Vec<String> = documents.iter().map(|(f, _)| name_of(f)).collect();
            eprintln!(
                "error: no document `{}`\n  help: one of: {}",
                tattle_analysis::sanitize(wanted),
                names.join(", ")
            );
            Ok(super::Exit::Environment)
        }
    }
}

/// A schema as the checked-in file holds it.
pub(crate) fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in schemas are exactly what the structs generate.
    #[test]
    fn checked_in_schemas_match_the_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
        let bless = std::env::var_os("TATTLE_BLESS_SCHEMA").is_some();
        let mut stale = Vec::new();
        for (name, schema) in documents() {
            let path = dir.join(name);
            let generated = render(&schema);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &generated).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) if text == generated => {}
                _ => stale.push(name),
            }
        }
        assert!(
            stale.is_empty(),
            "{stale:?} differ from the code: if the change is intended, run \
             `TATTLE_BLESS_SCHEMA=1 cargo test --lib schema`, bump the document's format_version \
             when it is incompatible, and commit schema/"
        );
        // Every schema file is one of the documents (none left behind by a rename).
        let names: Vec<&str> = documents().iter().map(|(n, _)| *n).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(&name.as_str()),
                "schema/{name} is no document's"
            );
        }
    }

    #[test]
    fn each_schema_names_its_format_version() {
        for (name, schema) in documents() {
            let props = schema.get("properties").and_then(|p| p.as_object());
            assert!(
                props.is_some_and(|p| p.contains_key("format_version")),
                "{name} has no format_version"
            );
        }
    }
}
