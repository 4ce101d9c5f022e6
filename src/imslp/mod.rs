//! IMSLP work metadata, read from the forms in which IMSLP (the Petrucci Music Library)
//! publishes a work's "General Information".
//!
//! Four inputs meet in one [`WorkMetadata`]:
//! - the rendered HTML work page ([`html`]),
//! - the page's wikitext source, one `{{#fte:imslppage ...}}` template ([`wikitext`]),
//! - the `API.ISCR.php` JSON work list ([`api`]),
//! - MusicScore's `metadata.json`, which stores the same labels as the HTML page ([`records`]).
//!
//! Every form names its fields by IMSLP's labels. The one label-to-field table lives in
//! [`fields`] and is reached through [`WorkMetadata::from_fields`], so the readers cannot
//! drift apart. [`parse_any`] picks the reader by looking at a file's content, [`read_file`]
//! takes the form from its caller, and [`ingest`] reads whole folders of such files.
//! Captions are built from a record by [`WorkMetadata::caption`]; editions are kept or
//! dropped by their licence with a [`LicenceFilter`].

pub mod api;
mod caption;
pub mod fields;
pub mod html;
pub mod ingest;
pub mod instruments;
pub mod licence;
pub mod records;
pub mod wikitext;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod mutation_tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use api::{WorkList, WorkListEntry, next_start, parse_worklist, worklist_url};
pub use caption::CaptionOptions;
pub use fields::{Field, display_name, field_for_label};
pub use html::parse_html;
pub use ingest::{IngestOptions, InputReport, LeftOut, Outcome, ingest};
pub use instruments::{Instrument, normalise_instruments};
pub use licence::{CcTerms, Licence, LicenceFilter};
pub use records::parse_metadata_json;
pub use wikitext::parse_wikitext;

/// One IMSLP work, as its "General Information" box describes it.
///
/// Text fields hold the value as IMSLP writes it with markup removed, runs of spaces collapsed
/// and line breaks (`<br>`) kept as `\n`. A field the source does not give is `None` (or an
/// empty list); a field no reader knows is kept in [`extra`](Self::extra).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkMetadata {
    /// "Work Title", e.g. "Cello Suite No.1".
    pub work_title: Option<String>,
    /// "Alternative Title": other names of the work, one a line.
    pub alternative_title: Option<String>,
    /// "Composer" as IMSLP writes it, family name first: "Bach, Johann Sebastian".
    /// [`composer_display`](Self::composer_display) gives the reading order.
    pub composer: Option<String>,
    /// "Opus/Catalogue Number", e.g. "Op.76 No.3" or "BWV 1007".
    pub opus: Option<String>,
    /// "I-Catalogue Number", IMSLP's index into the composer's catalogue, e.g. "BWV 1007".
    pub i_catalogue: Option<String>,
    /// "Key", e.g. "A major".
    pub key: Option<String>,
    /// "Movements/Sections" (the wikitext's "Number of Movements/Sections"), e.g.
    /// "4 movements:" followed by the movements, one a line.
    pub movements: Option<String>,
    /// "Year/Date of Composition", as written ("1797", "ca.1720").
    pub year_of_composition: Option<String>,
    /// "First Publication" (the wikitext's "Year of First Publication").
    pub first_publication: Option<String>,
    /// "Composer Time Period", e.g. "Baroque".
    pub composer_time_period: Option<String>,
    /// "Piece Style", e.g. "Classical".
    pub piece_style: Option<String>,
    /// "Instrumentation" exactly as written, e.g. "2 violins, viola, cello".
    pub instrumentation: Option<String>,
    /// [`instrumentation`](Self::instrumentation) normalised into counted instruments (see
    /// [`normalise_instruments`] for the rules).
    pub instruments: Vec<Instrument>,
    /// "Genre Categories", which IMSLP separates with `;`, in the order given.
    pub genre_categories: Vec<String>,
    /// The scanned or typeset files of the work, one entry per file.
    pub editions: Vec<Edition>,
    /// Every field that no reader maps, under its label as the source wrote it; also a value
    /// that lost to a stronger label for the same field (see [`WorkMetadata::from_fields`]).
    pub extra: BTreeMap<String, String>,
}

/// One file of an edition: a score or part that IMSLP offers for download.
///
/// Facts IMSLP gives for the whole edition (publisher, licence, editor) are repeated on
/// each of its files, so every entry stands on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Edition {
    /// IMSLP's file index, the digits of "#913207" (only the HTML page shows it).
    pub file_id: Option<String>,
    /// The uploaded file's name, e.g. "PMLP04473-Bach_BWV1007.pdf" (wikitext only).
    pub file_name: Option<String>,
    /// What the file holds: "Complete Score", "Violin 1", ...
    pub description: Option<String>,
    /// Number of pages.
    pub pages: Option<u32>,
    /// Copyright or licence, e.g. "Public Domain", "Creative Commons Attribution 4.0".
    pub licence: Option<String>,
    /// "Publisher Information": publisher, place, date, plate number.
    pub publisher: Option<String>,
    /// "Editor" of the edition.
    pub editor: Option<String>,
    /// Other edition facts (uploader, image type, notes...) under their labels.
    pub extra: BTreeMap<String, String>,
}

impl WorkMetadata {
    /// The composer in reading order: "Bach, Johann Sebastian" gives "Johann Sebastian Bach";
    /// a single name ("Josquin", "Traditional") is returned as it is.
    pub fn composer_display(&self) -> Option<String> {
        self.composer.as_deref().map(display_name).filter(|name| !name.is_empty())
    }
}

/// The form of an IMSLP metadata text, as [`detect_form`] recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// JSON: the `API.ISCR.php` work list, or MusicScore `metadata.json` records.
    Json,
    /// The rendered HTML work page.
    Html,
    /// The wikitext source of a work page.
    Wikitext,
}

/// Recognises the form of a text by its content.
///
/// JSON starts with `{` (not `{{`) or `[` (not `[[`). A text holding the `wi_body` box is
/// HTML even if it also shows wikitext (IMSLP's edit page does); otherwise a text holding
/// `{{#fte:imslppage` is wikitext, and one holding `<html` is HTML.
pub fn detect_form(text: &str) -> Option<Form> {
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let json_object = start.starts_with('{') && !start.starts_with("{{");
    let json_array = start.starts_with('[') && !start.starts_with("[[");
    if json_object || json_array {
        return Some(Form::Json);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("wi_body") {
        Some(Form::Html)
    } else if lower.contains("{{#fte:imslppage") {
        Some(Form::Wikitext)
    } else if lower.contains("<html") {
        Some(Form::Html)
    } else {
        None
    }
}

/// Parses an IMSLP metadata text of any form into its works (one for a page, one per entry
/// for a work list or a `metadata.json` file).
pub fn parse_str(text: &str) -> Result<Vec<WorkMetadata>> {
    parse_as(text, None)
}

/// Parses a text as `form`, or as the form [`detect_form`] finds when `form` is `None`.
pub fn parse_as(text: &str, form: Option<Form>) -> Result<Vec<WorkMetadata>> {
    match form.or_else(|| detect_form(text)) {
        Some(Form::Json) => parse_json(text),
        Some(Form::Html) => Ok(vec![parse_html(text)?]),
        Some(Form::Wikitext) => Ok(vec![parse_wikitext(text)?]),
        None => Err(Error::input(
            "not IMSLP metadata: expected JSON (an API.ISCR.php work list or metadata.json \
             records), wikitext holding `{{#fte:imslppage`, or an HTML work page holding \
             `div.wi_body`",
        )),
    }
}

/// Parses the bytes of a file as [`parse_as`] does. Bytes that are not UTF-8 are an input
/// error giving the offset of the first invalid byte and its line.
pub fn parse_bytes(bytes: &[u8], form: Option<Form>) -> Result<Vec<WorkMetadata>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        Error::input(format!(
            "not UTF-8 text: invalid byte 0x{:02X} at byte offset {offset} (line {line}); \
             IMSLP pages are UTF-8, so re-save the file as UTF-8",
            bytes[offset]
        ))
    })?;
    parse_as(text, form)
}

/// Reads an IMSLP metadata file of any form (see [`detect_form`]) into its works; errors
/// about the content name the file.
pub fn parse_any(path: &Path) -> Result<Vec<WorkMetadata>> {
    read_file(path, None)
}

/// Reads an IMSLP metadata file as `form` (detected when `None`) into its works; errors
/// about the content, UTF-8 included, name the file.
pub fn read_file(path: &Path, form: Option<Form>) -> Result<Vec<WorkMetadata>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    tracing::debug!(path = %path.display(), ?form, "reading IMSLP metadata");
    parse_bytes(&bytes, form).map_err(|e| match e {
        Error::Input(message) => Error::input(format!("{}: {message}", path.display())),
        other => other,
    })
}

/// JSON is either a work list (it has `intvals` entries or the `metadata` paging block) or
/// MusicScore records; both are told apart after one parse.
fn parse_json(text: &str) -> Result<Vec<WorkMetadata>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "invalid JSON ({e}); expected an IMSLP work list or metadata.json records"
        ))
    })?;
    if api::is_worklist(&value) {
        let list = api::worklist_from_value(&value)?;
        Ok(list.works.iter().map(WorkListEntry::to_metadata).collect())
    } else {
        records::records_from_value(&value)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const HTML: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imslp/work.html"));
    pub(crate) const WIKITEXT: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imslp/work.wikitext"));
    pub(crate) const WORKLIST: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imslp/worklist.json"));
    pub(crate) const METADATA: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imslp/metadata.json"));

    /// The fields every form of the fixture work (Haydn, Op.76 No.3) states alike.
    pub(crate) fn assert_fixture_work(work: &WorkMetadata) {
        assert_eq!(work.work_title.as_deref(), Some("String Quartet Op.76 No.3"));
        assert_eq!(work.alternative_title.as_deref(), Some("Emperor\nKaiserquartett"));
        assert_eq!(work.composer.as_deref(), Some("Haydn, Joseph"));
        assert_eq!(work.opus.as_deref(), Some("Op.76 No.3"));
        assert_eq!(work.i_catalogue.as_deref(), Some("Hob. III:77"));
        assert_eq!(work.key.as_deref(), Some("C major"));
        let movements =
            "4 movements:\nAllegro\nPoco adagio, cantabile\nMenuetto. Allegro\nFinale. Presto";
        assert_eq!(work.movements.as_deref(), Some(movements));
        assert_eq!(work.year_of_composition.as_deref(), Some("1797"));
        assert_eq!(work.first_publication.as_deref(), Some("1799"));
        assert_eq!(work.piece_style.as_deref(), Some("Classical"));
        assert_eq!(work.instrumentation.as_deref(), Some("2 violins, viola, cello"));
        let quartet = [
            Instrument::new("violin", 2),
            Instrument::new("viola", 1),
            Instrument::new("cello", 1),
        ];
        assert_eq!(work.instruments, quartet);
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imslp").join(name)
    }

    /// The fields every form that carries them must agree on, named for legible failures.
    fn core(work: &WorkMetadata) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("work_title", work.work_title.clone()),
            ("alternative_title", work.alternative_title.clone()),
            ("composer", work.composer.clone()),
            ("opus", work.opus.clone()),
            ("i_catalogue", work.i_catalogue.clone()),
            ("key", work.key.clone()),
            ("movements", work.movements.clone()),
            ("year_of_composition", work.year_of_composition.clone()),
            ("first_publication", work.first_publication.clone()),
            ("piece_style", work.piece_style.clone()),
            ("instrumentation", work.instrumentation.clone()),
        ]
    }

    /// Edition facts both page forms carry (only HTML shows the file index, only wikitext
    /// the file name).
    fn edition_core(work: &WorkMetadata) -> Vec<(Option<String>, Option<u32>, Option<String>)> {
        let facts = |e: &Edition| (e.description.clone(), e.pages, e.licence.clone());
        work.editions.iter().map(facts).collect()
    }

    #[test]
    fn the_forms_of_one_work_agree() {
        let html = parse_html(HTML).unwrap();
        let wiki = parse_wikitext(WIKITEXT).unwrap();
        let record = parse_metadata_json(METADATA).unwrap().remove(0);
        let listed = parse_worklist(WORKLIST).unwrap().works[0].to_metadata();

        assert_eq!(core(&html), core(&wiki), "HTML vs wikitext");
        assert_eq!(core(&html), core(&record), "HTML vs metadata.json");
        assert_eq!(html.instruments, wiki.instruments);
        assert_eq!(html.instruments, record.instruments);
        assert_eq!(html.genre_categories, record.genre_categories);
        assert_eq!(html.composer_time_period, record.composer_time_period);
        assert_eq!(edition_core(&html), edition_core(&wiki));
        let publishers = |w: &WorkMetadata| {
            w.editions.iter().map(|e| (e.publisher.clone(), e.editor.clone())).collect::<Vec<_>>()
        };
        assert_eq!(publishers(&html), publishers(&wiki));

        for (name, value) in [
            ("work_title", &listed.work_title),
            ("composer", &listed.composer),
            ("i_catalogue", &listed.i_catalogue),
        ] {
            let expected = core(&html).into_iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(value, &expected, "work list vs HTML: {name}");
        }
        assert_eq!(html.caption(CaptionOptions::RICH), record.caption(CaptionOptions::RICH));
        assert_eq!(listed.composer_display(), html.composer_display());
    }

    #[test]
    fn detects_each_form_by_content() {
        assert_eq!(detect_form(HTML), Some(Form::Html));
        assert_eq!(detect_form(WIKITEXT), Some(Form::Wikitext));
        assert_eq!(detect_form(WORKLIST), Some(Form::Json));
        assert_eq!(detect_form(METADATA), Some(Form::Json));
        assert_eq!(detect_form("\u{feff}  {\"0\": {}}"), Some(Form::Json));
        assert_eq!(detect_form("[[Category:Songs]]"), None);
        assert_eq!(detect_form("just some notes"), None);
        // IMSLP's edit page is HTML that shows the wikitext in a text box.
        let edit_page =
            "<html><div class=\"wi_body\"></div><textarea>{{#fte:imslppage\n}}</textarea>";
        assert_eq!(detect_form(edit_page), Some(Form::Html));
    }

    #[test]
    fn parse_any_reads_every_fixture() {
        let html = parse_any(&fixture("work.html")).unwrap();
        let wiki = parse_any(&fixture("work.wikitext")).unwrap();
        let list = parse_any(&fixture("worklist.json")).unwrap();
        let records = parse_any(&fixture("metadata.json")).unwrap();
        assert_eq!((html.len(), wiki.len(), list.len(), records.len()), (1, 1, 3, 2));
        assert_eq!(html[0].work_title, list[0].work_title);
        assert_eq!(wiki[0].composer, records[0].composer);
        assert_eq!(list[1].composer.as_deref(), Some("Traditional"));
    }

    #[test]
    fn parse_any_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, "a shopping list\n").unwrap();
        let err = parse_any(&notes).unwrap_err();
        assert!(err.is_input());
        assert!(
            err.to_string().contains("notes.txt") && err.to_string().contains("expected"),
            "{err}"
        );

        let broken = dir.path().join("broken.wikitext");
        std::fs::write(&broken, "{{#fte:imslppage\n|Work Title=Unfinished\n").unwrap();
        let err = parse_any(&broken).unwrap_err().to_string();
        assert!(err.contains("broken.wikitext") && err.contains("line 1"), "{err}");

        let json = dir.path().join("list.json");
        std::fs::write(&json, "{\"0\": {\"intvals\": {}},").unwrap();
        let err = parse_any(&json).unwrap_err().to_string();
        assert!(err.contains("list.json") && err.contains("line 1"), "{err}");

        let missing = parse_any(&dir.path().join("missing.html")).unwrap_err();
        assert!(missing.is_input(), "a missing file the user named is bad input");
        assert!(missing.to_string().contains("missing.html"));
    }

    #[test]
    fn bytes_that_are_not_utf8_name_the_file_and_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let latin1 = dir.path().join("latin1.wikitext");
        // "Dvo\xF8\xE1k" is Latin-1; the first bad byte is 0xF8, at offset 30.
        std::fs::write(&latin1, b"{{#fte:imslppage\n|Composer=Dvo\xF8\xE1k\n}}").unwrap();
        let err = parse_any(&latin1).unwrap_err();
        assert!(err.is_input());
        let message = err.to_string();
        for part in ["latin1.wikitext", "not UTF-8", "0xF8", "byte offset 30", "line 2"] {
            assert!(message.contains(part), "`{part}` missing: {message}");
        }
        let err = parse_bytes(b"\xFF", None).unwrap_err().to_string();
        assert!(err.contains("byte offset 0") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_forced_form_overrides_detection() {
        assert_eq!(parse_as(WIKITEXT, Some(Form::Wikitext)).unwrap().len(), 1);
        let err = parse_as(WIKITEXT, Some(Form::Html)).unwrap_err().to_string();
        assert!(err.contains("div.wi_body"), "{err}");
        let err = parse_as(HTML, Some(Form::Json)).unwrap_err().to_string();
        assert!(err.contains("invalid JSON"), "{err}");
        assert!(parse_as("just some notes", None).unwrap_err().is_input());
    }

    #[test]
    fn metadata_round_trips_through_json() {
        let work = parse_html(HTML).unwrap();
        let text = serde_json::to_string(&work).unwrap();
        let back: WorkMetadata = serde_json::from_str(&text).unwrap();
        assert_eq!(back, work);
        let partial: WorkMetadata = serde_json::from_str("{\"key\": \"D minor\"}").unwrap();
        assert_eq!(partial.key.as_deref(), Some("D minor"));
    }
}
