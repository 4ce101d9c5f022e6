//! MusicScore's `metadata.json`: IMSLP "General Information" records as JSON objects.
//!
//! MusicScore stores each label as scraped from the HTML page, the short label glued onto
//! the long one ("Opus/Catalogue NumberOp./Cat. No."); [`WorkMetadata::from_fields`] maps
//! such keys by their long-label prefix. A file holds one record (an object of label/value
//! pairs), an array of records, or an object of records keyed by score id (the key is kept
//! in `extra` as "record id"). Values are strings; an array of strings is joined with "; "
//! (so "Genre Categories" may be either form), numbers and booleans are written out, and
//! null is no value. Keys no label matches are kept in `extra` as stored.

use serde_json::{Map, Value};

use super::WorkMetadata;
use super::fields::field_for_label;
use crate::error::{Error, Result};

/// Parses a `metadata.json` file into its records.
pub fn parse_metadata_json(text: &str) -> Result<Vec<WorkMetadata>> {
    // Repeated keys are refused, not resolved by keeping the last: a repeated score id would
    // drop a record, a repeated field one of two values, and nothing tells which is right.
    let value = crate::dataset::metadata::parse_unique_keys(text, "score id or field")
        .map_err(|e| Error::input(format!("metadata.json: {e}")))?;
    records_from_value(&value)
}

pub(crate) fn records_from_value(value: &Value) -> Result<Vec<WorkMetadata>> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| record(item, &format!("record {i}"), None))
            .collect(),
        Value::Object(map) if !map.is_empty() && map.values().all(Value::is_object) => map
            .iter()
            .map(|(key, item)| record(item, &format!("record \"{key}\""), Some(key.as_str())))
            .collect(),
        Value::Object(_) => Ok(vec![record(value, "record", None)?]),
        other => Err(Error::input(format!(
            "metadata.json: expected an object (one record, or records keyed by id) or an \
             array of records, found {other}"
        ))),
    }
}

/// One record; `name` says which, for error messages.
fn record(value: &Value, name: &str, id: Option<&str>) -> Result<WorkMetadata> {
    let object: &Map<String, Value> = value.as_object().ok_or_else(|| {
        Error::input(format!(
            "metadata.json {name}: expected an object of label/value pairs, found {value}"
        ))
    })?;
    // A record that names no IMSLP field is some other JSON, not metadata to keep quietly.
    if !object.keys().any(|key| field_for_label(key).is_some()) {
        return Err(Error::input(format!(
            "metadata.json {name}: no IMSLP field (expected keys such as \"Work Title\", \
             \"Composer\" or \"Instrumentation\")"
        )));
    }
    let mut fields: Vec<(String, String)> = object
        .iter()
        .filter_map(|(key, value)| value_text(value).map(|text| (key.clone(), text)))
        .collect();
    if let Some(id) = id {
        fields.push(("record id".to_string(), id.to_string()));
    }
    Ok(WorkMetadata::from_fields(fields))
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(value_text).collect();
            Some(parts.join("; "))
        }
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::Instrument;
    use crate::imslp::tests::METADATA;

    #[test]
    fn reads_every_field_of_a_record() {
        let records = parse_metadata_json(METADATA).unwrap();
        assert_eq!(records.len(), 2);
        let work = &records[0];
        crate::imslp::tests::assert_fixture_work(work);
        assert_eq!(work.composer_time_period.as_deref(), Some("Classical"));
        assert_eq!(work.genre_categories.len(), 4);
        assert_eq!(
            work.extra.get("Dedication").map(String::as_str),
            Some("Count Joseph Georg Erdődy")
        );
        assert_eq!(
            work.extra.get("Average DurationAvg. Duration").map(String::as_str),
            Some("22 minutes")
        );
    }

    #[test]
    fn array_values_single_names_and_unknown_keys() {
        let song = &parse_metadata_json(METADATA).unwrap()[1];
        assert_eq!(song.composer_display().as_deref(), Some("Traditional"));
        assert_eq!(song.genre_categories, ["Songs", "For voice, piano", "Folk songs"]);
        assert_eq!(song.instruments, [Instrument::new("voice", 1), Instrument::new("piano", 1)]);
        assert_eq!(song.extra.get("image_path").map(String::as_str), Some("scores/000123.png"));
        assert_eq!(song.extra.get("pages").map(String::as_str), Some("2"));
        assert_eq!(song.opus, None, "null is no value");
        assert_eq!(
            song.caption(crate::imslp::CaptionOptions::RICH),
            "a music score, instrumentation is voice, piano, key is F major, \
             style is Romantic, composer is Traditional, genre is songs"
        );
    }

    #[test]
    fn accepts_one_record_or_records_keyed_by_id() {
        let one = parse_metadata_json(r#"{"Work Title": "Air", "Key": "D major"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].key.as_deref(), Some("D major"));
        let keyed = r#"{"s1": {"Work Title": "Air"}, "s2": {"Composer": "Purcell, Henry"}}"#;
        let keyed = parse_metadata_json(keyed).unwrap();
        assert_eq!(keyed[1].extra.get("record id").map(String::as_str), Some("s2"));
        assert_eq!(keyed[1].composer_display().as_deref(), Some("Henry Purcell"));
    }

    #[test]
    fn rejects_what_is_not_metadata() {
        let cases = [
            ("[{\"Work Title\": \"Air\"}, 7]", "record 1: expected an object"),
            ("{\"name\": \"config\", \"size\": 3}", "record: no IMSLP field"),
            (
                "{\"a\": {\"Key\": \"C\"}, \"b\": {\"colour\": \"red\"}}",
                "record \"b\": no IMSLP field",
            ),
            ("\"text\"", "expected an object"),
            ("{\"Key\": ", "invalid JSON"),
            (
                "{\"s1\": {\"Key\": \"C\"},\n \"s1\": {\"Key\": \"D\"}}",
                "duplicate score id or field `s1` at line 2",
            ),
            ("[{\"Key\": \"C\", \"Key\": \"D\"}]", "record 0: field `Key` appears twice"),
        ];
        for (text, expected) in cases {
            let err = parse_metadata_json(text).unwrap_err();
            assert!(err.is_input());
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }
}
