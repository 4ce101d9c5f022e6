//! `metadata.json`, read by both readers: the data set's (`dataset::Metadata`) and the
//! ingest one (`imslp::parse_metadata_json`). Neither may panic; what the data set reader
//! accepts must read back the same after being written out in the object form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scoregen::dataset::Metadata;

fuzz_target!(|text: &str| {
    if let Err(err) = scoregen::imslp::parse_metadata_json(text) {
        assert!(err.is_input(), "a parse failure must be the input's fault: {err}");
    }
    let Ok(metadata) = Metadata::parse(text) else { return };
    let object: serde_json::Map<String, serde_json::Value> =
        metadata.iter().map(|(id, fields)| (id.to_string(), serde_json::json!(fields))).collect();
    let again = Metadata::parse(&serde_json::Value::Object(object).to_string())
        .expect("metadata written out reads back");
    assert_eq!(again, metadata);
});
