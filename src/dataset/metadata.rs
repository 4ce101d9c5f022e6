//! MusicScore's `metadata.json`: one record of IMSLP fields per work.
//!
//! The top-level shape is not documented, so both forms seen in the wild are accepted: an
//! object keyed by work id, or a list of records that each carry their id. Values are kept
//! as strings; lists (for example genre categories) are joined with `"; "` as IMSLP prints
//! them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// The fields of one work, by the key under which MusicScore stores them.
pub type Fields = BTreeMap<String, String>;

/// Keys a list-form record may carry its work id under, tried in this order.
const ID_KEYS: [&str; 5] = ["id", "ID", "imslp_id", "IMSLP ID", "file_id"];

/// Every work's fields, by work id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    works: BTreeMap<String, Fields>,
}

impl Metadata {
    /// Reads `metadata.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            Error::input(format!("{}: not UTF-8 (byte {}): {e}", path.display(), e.valid_up_to()))
        })?;
        Self::parse(text).map_err(|e| Error::input(format!("{}: {e}", path.display())))
    }

    /// Parses the text of a `metadata.json`; the error names the record and field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column())
        })?;
        let mut works = BTreeMap::new();
        match value {
            Value::Object(map) => {
                for (id, record) in map {
                    let fields =
                        record_fields(&record).map_err(|e| format!("record `{id}`: {e}"))?;
                    works.insert(id, fields);
                }
            }
            Value::Array(records) => {
                for (index, record) in records.iter().enumerate() {
                    let mut fields =
                        record_fields(record).map_err(|e| format!("record {index}: {e}"))?;
                    let id =
                        ID_KEYS.iter().find_map(|key| fields.remove(*key)).ok_or_else(|| {
                            format!("record {index}: no id field (expected one of {ID_KEYS:?})")
                        })?;
                    if works.insert(id.clone(), fields).is_some() {
                        return Err(format!("record {index}: duplicate work id `{id}`"));
                    }
                }
            }
            other => {
                return Err(format!(
                    "expected an object keyed by work id or a list of records, found {}",
                    kind(&other)
                ));
            }
        }
        Ok(Self { works })
    }

    /// The fields of a work.
    pub fn get(&self, id: &str) -> Option<&Fields> {
        self.works.get(id)
    }

    /// Number of works.
    pub fn len(&self) -> usize {
        self.works.len()
    }

    /// Whether there are no works.
    pub fn is_empty(&self) -> bool {
        self.works.is_empty()
    }

    /// Every work id with its fields.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Fields)> {
        self.works.iter().map(|(id, fields)| (id.as_str(), fields))
    }
}

fn record_fields(record: &Value) -> Result<Fields, String> {
    let Value::Object(map) = record else {
        return Err(format!("expected an object of fields, found {}", kind(record)));
    };
    let mut fields = Fields::new();
    for (key, value) in map {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => {
                let parts: Result<Vec<String>, String> = items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.trim().to_string()),
                        Value::Number(n) => Ok(n.to_string()),
                        other => Err(format!("field `{key}`: list of {}", kind(other))),
                    })
                    .collect();
                parts?.join("; ")
            }
            Value::Object(_) => {
                return Err(format!("field `{key}`: expected text, found an object"));
            }
        };
        if !text.is_empty() {
            fields.insert(key.clone(), text);
        }
    }
    Ok(fields)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_and_list_forms_read_the_same() {
        let object =
            r#"{"IMSLP1": {"Key": "A major", "Genre Categories": ["Sonatas", "For piano"]}}"#;
        let list =
            r#"[{"id": "IMSLP1", "Key": "A major", "Genre Categories": "Sonatas; For piano"}]"#;
        let a = Metadata::parse(object).unwrap();
        let b = Metadata::parse(list).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("IMSLP1").unwrap()["Genre Categories"], "Sonatas; For piano");
    }

    #[test]
    fn malformed_records_name_the_record_and_field() {
        let err = Metadata::parse(r#"{"W1": {"Key": {"x": 1}}}"#).unwrap_err();
        assert!(err.contains("record `W1`") && err.contains("field `Key`"), "{err}");
        let err = Metadata::parse(r#"[{"Key": "C major"}]"#).unwrap_err();
        assert!(err.contains("record 0") && err.contains("no id field"), "{err}");
        let err = Metadata::parse(r#"[{"id": "a"}, {"id": "a"}]"#).unwrap_err();
        assert!(err.contains("duplicate work id `a`"), "{err}");
        let err = Metadata::parse("42").unwrap_err();
        assert!(err.contains("found a number"), "{err}");
        let err = Metadata::parse("{\n\"a\": ").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.json");
        std::fs::write(&path, b"{\"a\": \"\xff\"}").unwrap();
        let err = Metadata::load(&path).unwrap_err();
        assert!(err.is_input() && err.to_string().contains("metadata.json"), "{err}");
    }
}
