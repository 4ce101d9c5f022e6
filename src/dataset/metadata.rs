//! MusicScore's `metadata.json`: one record of IMSLP fields per work.
//!
//! The top-level shape is not documented, so both forms seen in the wild are accepted: an
//! object keyed by work id, or a list of records that each carry their id. Values are kept
//! as strings; lists (for example genre categories) are joined with `"; "` as IMSLP prints
//! them.
//!
//! A work id that appears twice, or a field that appears twice in one record, is an input
//! error naming the id (or field) and its line, not a skip: both records claim the same
//! pages, and nothing tells which is right. Keeping either quietly (as a plain JSON parser
//! does with repeated keys) would put the wrong caption on every page of that work for the
//! whole of a training run, so the user is asked to fix the file before the run starts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

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

    /// Parses the text of a `metadata.json`; the error names the record and field, and a
    /// repeated work id or field names the id and the line it repeats on.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = parse_unique_keys(text, "work id")?;
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
                let mut first_index = BTreeMap::new();
                for (index, record) in records.iter().enumerate() {
                    let mut fields =
                        record_fields(record).map_err(|e| format!("record {index}: {e}"))?;
                    let id =
                        ID_KEYS.iter().find_map(|key| fields.remove(*key)).ok_or_else(|| {
                            format!("record {index}: no id field (expected one of {ID_KEYS:?})")
                        })?;
                    if let Some(first) = first_index.insert(id.clone(), index) {
                        return Err(format!(
                            "record {index}: duplicate work id `{id}` (first used by record \
                             {first})"
                        ));
                    }
                    works.insert(id, fields);
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

/// Parses JSON text like `serde_json::from_str::<Value>`, but refuses a key repeated within
/// one object instead of keeping the last. A top-level key is named in the error as
/// `top_key` ("work id": a repeated top-level key is a repeated work id); a key one level down
/// as a field of its record. Errors carry the line and column.
pub(crate) fn parse_unique_keys(text: &str, top_key: &'static str) -> Result<Value, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Checked { depth: 0, record: String::new(), top_key }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| match e.classify() {
            // A duplicate found by `Checked`: serde_json has added the line and column.
            serde_json::error::Category::Data => e.to_string(),
            _ => format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column()),
        })
}

/// Reads a JSON value like `serde_json::Value` does, but refuses a key repeated within one
/// object instead of keeping the last: at the top level that is a repeated `top_key`, one
/// level down a field repeated within a record.
struct Checked {
    /// 0 for the whole file, 1 for a record, more inside a record's fields.
    depth: usize,
    /// How a record (depth 1) is named in errors: "record `W1`" or "record 3".
    record: String,
    /// What a top-level key is, for errors.
    top_key: &'static str,
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let record =
                if self.depth == 0 { format!("record {}", items.len()) } else { String::new() };
            let item = Checked { depth: self.depth + 1, record, top_key: self.top_key };
            match seq.next_element_seed(item)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(match self.depth {
                    0 => format!("duplicate {} `{key}`", self.top_key),
                    1 => format!("{}: field `{key}` appears twice", self.record),
                    _ => format!("key `{key}` appears twice"),
                }));
            }
            let record = if self.depth == 0 { format!("record `{key}`") } else { String::new() };
            let item = Checked { depth: self.depth + 1, record, top_key: self.top_key };
            let value = map.next_value_seed(item)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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
        let err = Metadata::parse(r#"[{"id": "a"}, {"id": "b"}, {"id": "a"}]"#).unwrap_err();
        assert!(err.contains("record 2: duplicate work id `a` (first used by record 0)"), "{err}");
        let err = Metadata::parse("42").unwrap_err();
        assert!(err.contains("found a number"), "{err}");
        let err = Metadata::parse("{\n\"a\": ").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_repeated_work_id_or_field_is_an_input_error_naming_it_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.json");
        let cases = [
            // Object form: a plain JSON parser would keep the second record silently.
            (
                "{\"W1\": {\"Key\": \"C major\"},\n \"W2\": {},\n \"W1\": {\"Key\": \"D\"}}",
                "duplicate work id `W1` at line 3",
            ),
            // List form, the id under another of the accepted keys.
            (r#"[{"id": "W1"}, {"imslp_id": "W1"}]"#, "record 1: duplicate work id `W1`"),
            (
                "{\"W1\": {\"Key\": \"C\",\n \"Key\": \"D\"}}",
                "record `W1`: field `Key` appears twice at line 2",
            ),
            (r#"[{"id": "W1", "Key": "C", "Key": "D"}]"#, "record 0: field `Key` appears twice"),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = Metadata::load(&path).unwrap_err();
            let message = err.to_string();
            assert!(err.is_input(), "{message}");
            assert!(message.contains("metadata.json") && message.contains(expected), "{message}");
        }
        // The same ids once each, and a key repeated in a different record, are fine.
        let fine = r#"{"W1": {"Key": "C"}, "W2": {"Key": "D"}}"#;
        assert_eq!(Metadata::parse(fine).unwrap().len(), 2);
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
