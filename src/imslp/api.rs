//! IMSLP's `API.ISCR.php` JSON work list, and the URLs that page through it.
//!
//! A reply is one JSON object. Its keys "0", "1", ... are the works of this page, each
//! `{ "id", "type", "parent", "intvals": { "composer", "worktitle", "icatno", "pageid" },
//! "permlink" }`; the key "metadata" holds `{ "moreresultsavailable": true | false, ... }`.
//! Entries are returned in the order of their numeric keys (JSON objects have none).
//! Numbers sent as strings (`"pageid": "12345"`) are accepted, as are strings where a number
//! is sent. Fields outside this list are kept in [`WorkListEntry::extra`].
//!
//! This module builds request URLs but does no networking.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::WorkMetadata;
use crate::error::{Error, Result};

/// The work-list endpoint.
pub const WORKLIST_ENDPOINT: &str = "https://imslp.org/imslpscripts/API.ISCR.php";

/// One page of the work list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkList {
    /// The works of this page, by their numeric key.
    pub works: Vec<WorkListEntry>,
    /// `metadata.moreresultsavailable`: whether a further page follows (false when the
    /// reply has no `metadata`).
    pub more_results: bool,
}

/// One work of the work list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkListEntry {
    /// The entry's key in the reply ("0", "1", ...), as a number.
    pub index: u64,
    /// `id`: the work page's title, e.g. "Cello Suite No.1, BWV 1007 (Bach, Johann Sebastian)".
    pub id: String,
    /// `type`: IMSLP's record type ("2" is a work).
    pub kind: Option<String>,
    /// `parent`: the composer's category page.
    pub parent: Option<String>,
    /// `intvals.composer`, family name first.
    pub composer: Option<String>,
    /// `intvals.worktitle`.
    pub work_title: Option<String>,
    /// `intvals.icatno`: the I-Catalogue number.
    pub i_catalogue: Option<String>,
    /// `intvals.pageid`: the wiki's page id.
    pub page_id: Option<u64>,
    /// `permlink`: the work page's permanent URL.
    pub permlink: Option<String>,
    /// Other fields: top-level ones under their key, `intvals` ones as "intvals.KEY".
    pub extra: BTreeMap<String, String>,
}

/// The request URL for the page of works starting at `start` (0 for the first page).
pub fn worklist_url(start: u64) -> String {
    format!(
        "{WORKLIST_ENDPOINT}?account=worklist/disclaimer=accepted/sort=id/type=2/start={start}\
         /retformat=json"
    )
}

/// The `start` of the page after one that began at `start` and held `page_len` works.
pub fn next_start(start: u64, page_len: u64) -> u64 {
    start.saturating_add(page_len)
}

impl WorkList {
    /// The `start` of the next page if the reply says one follows, for a page requested at
    /// `start`; `None` at the end, and also for an empty page, so a loop over pages always
    /// ends.
    pub fn next_page(&self, start: u64) -> Option<u64> {
        let len = u64::try_from(self.works.len()).ok()?;
        (self.more_results && len > 0).then(|| next_start(start, len))
    }
}

impl WorkListEntry {
    /// The entry as a work record: title, composer and I-Catalogue number through the shared
    /// label table; `id`, `type`, `parent`, `pageid`, `permlink` and the entry's other fields
    /// in `extra`.
    pub fn to_metadata(&self) -> WorkMetadata {
        let known = [
            ("Work Title", self.work_title.clone()),
            ("Composer", self.composer.clone()),
            ("I-Catalogue Number", self.i_catalogue.clone()),
            ("id", Some(self.id.clone())),
            ("type", self.kind.clone()),
            ("parent", self.parent.clone()),
            ("pageid", self.page_id.map(|id| id.to_string())),
            ("permlink", self.permlink.clone()),
        ];
        let known = known.into_iter().filter_map(|(key, value)| Some((key.to_string(), value?)));
        let others = self.extra.iter().map(|(key, value)| (key.clone(), value.clone()));
        WorkMetadata::from_fields(known.chain(others))
    }
}

/// Parses one reply of the work list.
pub fn parse_worklist(text: &str) -> Result<WorkList> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::input(format!("work list: invalid JSON ({e})")))?;
    worklist_from_value(&value)
}

/// Whether a JSON value looks like a work-list reply: it has the `metadata` paging block
/// or an entry with `intvals`.
pub(crate) fn is_worklist(value: &Value) -> bool {
    let Some(object) = value.as_object() else { return false };
    let paging = object.get("metadata").is_some_and(|m| m.get("moreresultsavailable").is_some());
    paging || object.values().any(|entry| entry.get("intvals").is_some())
}

pub(crate) fn worklist_from_value(value: &Value) -> Result<WorkList> {
    let object = value.as_object().ok_or_else(|| {
        Error::input(
            "work list: expected a JSON object with keys \"0\", \"1\", ... and \"metadata\"",
        )
    })?;
    let mut list = WorkList::default();
    for (key, entry) in object {
        if key.as_str() == "metadata" {
            list.more_results = more_results(entry)?;
            continue;
        }
        let index = key.parse::<u64>().map_err(|_| {
            Error::input(format!(
                "work list: key \"{key}\" is neither an entry number (\"0\", \"1\", ...) nor \
                 \"metadata\""
            ))
        })?;
        list.works.push(entry_from_value(index, entry)?);
    }
    list.works.sort_by_key(|work| work.index);
    Ok(list)
}

fn more_results(metadata: &Value) -> Result<bool> {
    match metadata.get("moreresultsavailable") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(more)) => Ok(*more),
        Some(other) => Err(Error::input(format!(
            "work list: field `metadata.moreresultsavailable` must be true or false, found {other}"
        ))),
    }
}

fn entry_from_value(index: u64, entry: &Value) -> Result<WorkListEntry> {
    let object = entry.as_object().ok_or_else(|| {
        Error::input(format!("work list entry \"{index}\": expected an object, found {entry}"))
    })?;
    let text = |field: &str| text_field(object.get(field), index, field);
    let id = text("id")?.ok_or_else(|| {
        Error::input(format!("work list entry \"{index}\": field `id` is missing"))
    })?;
    let mut work = WorkListEntry {
        index,
        id,
        kind: text("type")?,
        parent: text("parent")?,
        permlink: text("permlink")?,
        ..WorkListEntry::default()
    };
    for (key, value) in object {
        if !matches!(key.as_str(), "id" | "type" | "parent" | "permlink" | "intvals") {
            work.extra.insert(key.clone(), value_text(value));
        }
    }
    match object.get("intvals") {
        None | Some(Value::Null) => {}
        Some(Value::Object(intvals)) => read_intvals(&mut work, intvals)?,
        Some(other) => {
            let why = format!("must be an object, found {other}");
            return Err(entry_error(index, "intvals", &why));
        }
    }
    Ok(work)
}

fn read_intvals(work: &mut WorkListEntry, intvals: &Map<String, Value>) -> Result<()> {
    let index = work.index;
    let text = |field: &str| text_field(intvals.get(field), index, &format!("intvals.{field}"));
    work.composer = text("composer")?;
    work.work_title = text("worktitle")?;
    work.i_catalogue = text("icatno")?;
    work.page_id = match text("pageid")? {
        None => None,
        Some(id) => Some(id.trim().parse().map_err(|_| {
            entry_error(index, "intvals.pageid", &format!("must be a whole number, found `{id}`"))
        })?),
    };
    for (key, value) in intvals {
        if !matches!(key.as_str(), "composer" | "worktitle" | "icatno" | "pageid") {
            work.extra.insert(format!("intvals.{key}"), value_text(value));
        }
    }
    Ok(())
}

/// A string field, also accepting a number; `None` when missing, null or empty.
fn text_field(value: Option<&Value>, index: u64, field: &str) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone()).filter(|t| !t.trim().is_empty())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => {
            Err(entry_error(index, field, &format!("must be a string or number, found {other}")))
        }
    }
}

fn entry_error(index: u64, field: &str, why: &str) -> Error {
    Error::input(format!("work list entry \"{index}\": field `{field}` {why}"))
}

/// A JSON value as text: strings as they are, anything else as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::tests::WORKLIST;

    #[test]
    fn reads_every_field_of_every_entry() {
        let list = parse_worklist(WORKLIST).unwrap();
        assert!(list.more_results);
        assert_eq!(list.works.len(), 3);
        let first = &list.works[0];
        assert_eq!(first.index, 0);
        assert_eq!(first.id, "String Quartet Op.76 No.3 (Haydn, Joseph)");
        assert_eq!(first.kind.as_deref(), Some("2"));
        assert_eq!(first.parent.as_deref(), Some("Category:Haydn, Joseph"));
        assert_eq!(first.composer.as_deref(), Some("Haydn, Joseph"));
        assert_eq!(first.work_title.as_deref(), Some("String Quartet Op.76 No.3"));
        assert_eq!(first.i_catalogue.as_deref(), Some("Hob. III:77"));
        assert_eq!(first.page_id, Some(99001));
        assert_eq!(
            first.permlink.as_deref(),
            Some("https://imslp.org/wiki/String_Quartet_Op.76_No.3_(Haydn,_Joseph)")
        );
        assert!(first.extra.is_empty(), "{:?}", first.extra);

        let song = &list.works[1];
        assert_eq!(song.composer.as_deref(), Some("Traditional"));
        assert_eq!(song.i_catalogue, None, "an empty icatno is no catalogue number");
        assert_eq!(song.page_id, Some(99002), "a page id sent as a string");

        let prelude = &list.works[2];
        assert_eq!(prelude.extra.get("intvals.lastmod").map(String::as_str), Some("2024-03-01"));
        assert_eq!(prelude.extra.get("flags").map(String::as_str), Some("[\"new\"]"));
    }

    #[test]
    fn entries_become_work_records() {
        let list = parse_worklist(WORKLIST).unwrap();
        let work = list.works[0].to_metadata();
        assert_eq!(work.work_title.as_deref(), Some("String Quartet Op.76 No.3"));
        assert_eq!(work.composer_display().as_deref(), Some("Joseph Haydn"));
        assert_eq!(work.i_catalogue.as_deref(), Some("Hob. III:77"));
        assert_eq!(work.extra.get("pageid").map(String::as_str), Some("99001"));
        assert_eq!(work.extra.get("type").map(String::as_str), Some("2"));
        let prelude = list.works[2].to_metadata();
        assert_eq!(prelude.extra.get("intvals.lastmod").map(String::as_str), Some("2024-03-01"));
        assert_eq!(prelude.composer_display().as_deref(), Some("Maja Elisabet Lindqvist"));
    }

    #[test]
    fn entries_follow_numeric_order() {
        let text = r#"{"10": {"id": "c"}, "2": {"id": "b"}, "0": {"id": "a"},
                       "metadata": {"moreresultsavailable": false}}"#;
        let list = parse_worklist(text).unwrap();
        let ids: Vec<_> = list.works.iter().map(|w| (w.index, w.id.as_str())).collect();
        assert_eq!(ids, [(0_u64, "a"), (2, "b"), (10, "c")]);
        assert!(!list.more_results);
        assert_eq!(list.next_page(0), None);
    }

    #[test]
    fn pages_through_the_list() {
        assert_eq!(
            worklist_url(0),
            "https://imslp.org/imslpscripts/API.ISCR.php?account=worklist/disclaimer=accepted/\
             sort=id/type=2/start=0/retformat=json"
        );
        assert!(worklist_url(2000).contains("/start=2000/"));
        assert_eq!(next_start(1000, 1000), 2000);
        assert_eq!(next_start(u64::MAX, 5), u64::MAX);
        let list = parse_worklist(WORKLIST).unwrap();
        assert_eq!(list.next_page(1000), Some(1003));
        let empty = WorkList { works: Vec::new(), more_results: true };
        assert_eq!(empty.next_page(5), None);
    }

    #[test]
    fn malformed_replies_name_the_entry_and_field() {
        let cases = [
            ("[1, 2]", "expected a JSON object"),
            (r#"{"x": {}}"#, "key \"x\""),
            (r#"{"3": {"type": "2"}}"#, "entry \"3\": field `id` is missing"),
            (r#"{"0": "text"}"#, "entry \"0\": expected an object"),
            (r#"{"0": {"id": "a", "intvals": {"pageid": "p12"}}}"#, "`intvals.pageid`"),
            (r#"{"0": {"id": "a", "intvals": {"composer": ["x"]}}}"#, "`intvals.composer`"),
            (r#"{"0": {"id": "a", "intvals": 5}}"#, "`intvals` must be an object"),
            (r#"{"metadata": {"moreresultsavailable": "yes"}}"#, "metadata.moreresultsavailable"),
            ("{\"0\": ", "invalid JSON"),
        ];
        for (text, expected) in cases {
            let err = parse_worklist(text).unwrap_err();
            assert!(err.is_input());
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn recognises_work_lists() {
        let value = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert!(is_worklist(&value(WORKLIST)));
        assert!(is_worklist(&value(r#"{"metadata": {"moreresultsavailable": false}}"#)));
        assert!(!is_worklist(&value(r#"{"Work Title": "x", "Composer": "y"}"#)));
        assert!(!is_worklist(&value("[]")));
    }
}
