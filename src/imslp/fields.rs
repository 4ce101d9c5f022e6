//! The one table from IMSLP's "General Information" labels to [`WorkMetadata`] fields, and
//! the one table of edition labels, shared by the HTML, wikitext and `metadata.json` readers.
//!
//! Labels are IMSLP's long forms ("Opus/Catalogue Number"). MusicScore's `metadata.json`
//! glues the short form onto the long one ("Opus/Catalogue NumberOp./Cat. No."), so a key
//! matches a label when it starts with it (ignoring ASCII case) and what follows cannot
//! continue the label's last word: nothing, punctuation or a capital letter. The longest
//! matching label wins, so "Composer Time PeriodComp. Period" is not read as "Composer".

use std::collections::BTreeMap;

use super::instruments::normalise_instruments;
use super::{Edition, WorkMetadata};

/// A field of [`WorkMetadata`] that a "General Information" label fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// [`WorkMetadata::work_title`].
    WorkTitle,
    /// [`WorkMetadata::alternative_title`].
    AlternativeTitle,
    /// [`WorkMetadata::composer`].
    Composer,
    /// [`WorkMetadata::opus`].
    Opus,
    /// [`WorkMetadata::i_catalogue`].
    ICatalogue,
    /// [`WorkMetadata::key`].
    Key,
    /// [`WorkMetadata::movements`].
    Movements,
    /// [`WorkMetadata::year_of_composition`].
    YearOfComposition,
    /// [`WorkMetadata::first_publication`].
    FirstPublication,
    /// [`WorkMetadata::composer_time_period`].
    ComposerTimePeriod,
    /// [`WorkMetadata::piece_style`].
    PieceStyle,
    /// [`WorkMetadata::instrumentation`] (and from it [`WorkMetadata::instruments`]).
    Instrumentation,
    /// [`WorkMetadata::genre_categories`].
    GenreCategories,
}

/// Long labels, as the HTML page and `metadata.json` (first) or the wikitext template write
/// them, and the field each fills. Where two labels fill one field, the one listed first is
/// the stronger: the wikitext's "Movements Header" is only a heading above the movement list,
/// so it stands in for "Number of Movements/Sections" only when that is missing.
const LABELS: &[(&str, Field)] = &[
    ("Work Title", Field::WorkTitle),
    ("Alternative Title", Field::AlternativeTitle),
    ("Composer", Field::Composer),
    ("Opus/Catalogue Number", Field::Opus),
    ("I-Catalogue Number", Field::ICatalogue),
    ("Key", Field::Key),
    ("Movements/Sections", Field::Movements),
    ("Number of Movements/Sections", Field::Movements),
    ("Movements Header", Field::Movements),
    ("Year/Date of Composition", Field::YearOfComposition),
    ("First Publication", Field::FirstPublication),
    ("Year of First Publication", Field::FirstPublication),
    ("Composer Time Period", Field::ComposerTimePeriod),
    ("Piece Style", Field::PieceStyle),
    ("Instrumentation", Field::Instrumentation),
    ("Genre Categories", Field::GenreCategories),
];

/// A field of [`Edition`] that an edition label fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EditionField {
    FileName,
    Description,
    Pages,
    Licence,
    Publisher,
    Editor,
}

/// Edition labels of the wikitext file template (`File Name 1` is matched without its
/// number) and of the HTML edition table. They are compared with case, spaces and
/// punctuation removed, so "Publisher. Info." and "Pub. Info." meet.
const EDITION_LABELS: &[(&str, EditionField)] = &[
    ("File Name", EditionField::FileName),
    ("File Description", EditionField::Description),
    ("Page Count", EditionField::Pages),
    ("Copyright", EditionField::Licence),
    ("Licence", EditionField::Licence),
    ("License", EditionField::Licence),
    ("Publisher Information", EditionField::Publisher),
    ("Publisher. Info.", EditionField::Publisher),
    ("Pub. Info.", EditionField::Publisher),
    ("Editor", EditionField::Editor),
];

/// The field a "General Information" label names, by the rules in the module docs; `None`
/// for a label no reader maps (its value goes to [`WorkMetadata::extra`]).
pub fn field_for_label(label: &str) -> Option<Field> {
    label_rank(label).map(|(_, field)| field)
}

/// The matching label's place in [`LABELS`] (lower is stronger) and its field.
fn label_rank(label: &str) -> Option<(usize, Field)> {
    let label = label.trim();
    let mut best: Option<(usize, usize, Field)> = None;
    for (rank, &(long, field)) in LABELS.iter().enumerate() {
        let Some(rest) = strip_prefix_ignore_case(label, long) else { continue };
        if ends_label(rest) && best.is_none_or(|(len, _, _)| long.len() > len) {
            best = Some((long.len(), rank, field));
        }
    }
    best.map(|(_, rank, field)| (rank, field))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Whether `rest`, the text after a matched label, starts something new: a glued short
/// label starts with a capital or a dot, while a space or a lower-case letter means the key
/// is a longer label of its own ("Composer Notes", "Keyboard").
fn ends_label(rest: &str) -> bool {
    rest.chars().next().is_none_or(|c| !c.is_lowercase() && !c.is_whitespace())
}

/// The labels that filled each field so far: their rank and key.
type Filled = BTreeMap<Field, (usize, String)>;

impl WorkMetadata {
    /// Builds a record from `(label, value)` pairs, the common ground of every reader.
    ///
    /// Values are cleaned (each line trimmed, inner runs of spaces collapsed, empty lines
    /// dropped); a pair whose value is then empty carries nothing and is skipped. A label is
    /// mapped by [`field_for_label`]; an unknown label keeps its value in `extra` under the
    /// label as written. When two labels fill one field, the stronger label's value stays and
    /// the other goes to `extra` under its own label, so no value is lost. "Genre Categories"
    /// is split at `;`, and `instruments` is derived from the instrumentation.
    pub fn from_fields<K, V>(fields: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut work = Self::default();
        let mut filled = Filled::new();
        for (key, value) in fields {
            let key = key.as_ref().trim();
            let value = clean_value(value.as_ref());
            if value.is_empty() {
                continue;
            }
            match label_rank(key) {
                Some((rank, field)) => work.fill(&mut filled, field, rank, key, value),
                None => keep(&mut work.extra, key, value),
            }
        }
        work.instruments =
            work.instrumentation.as_deref().map(normalise_instruments).unwrap_or_default();
        work
    }

    fn fill(&mut self, filled: &mut Filled, field: Field, rank: usize, key: &str, value: String) {
        if filled.get(&field).is_some_and(|(held, _)| *held <= rank) {
            keep(&mut self.extra, key, value);
            return;
        }
        if let Some((_, weaker_key)) = filled.insert(field, (rank, key.to_string()))
            && let Some(weaker) = self.take_field(field)
        {
            keep(&mut self.extra, &weaker_key, weaker);
        }
        self.set_field(field, value);
    }

    /// The text slot of a field; `None` for the genre list, which is not one string.
    fn text_slot(&mut self, field: Field) -> Option<&mut Option<String>> {
        Some(match field {
            Field::WorkTitle => &mut self.work_title,
            Field::AlternativeTitle => &mut self.alternative_title,
            Field::Composer => &mut self.composer,
            Field::Opus => &mut self.opus,
            Field::ICatalogue => &mut self.i_catalogue,
            Field::Key => &mut self.key,
            Field::Movements => &mut self.movements,
            Field::YearOfComposition => &mut self.year_of_composition,
            Field::FirstPublication => &mut self.first_publication,
            Field::ComposerTimePeriod => &mut self.composer_time_period,
            Field::PieceStyle => &mut self.piece_style,
            Field::Instrumentation => &mut self.instrumentation,
            Field::GenreCategories => return None,
        })
    }

    fn set_field(&mut self, field: Field, value: String) {
        match self.text_slot(field) {
            Some(slot) => *slot = Some(value),
            None => self.genre_categories = split_categories(&value),
        }
    }

    fn take_field(&mut self, field: Field) -> Option<String> {
        match self.text_slot(field) {
            Some(slot) => slot.take(),
            None => {
                let categories = std::mem::take(&mut self.genre_categories);
                (!categories.is_empty()).then(|| categories.join("; "))
            }
        }
    }
}

impl Edition {
    /// Fills the field an edition label names (see [`EDITION_LABELS`]); an unknown label
    /// keeps its value in `extra`. An empty value is skipped. The error says what was
    /// expected; the caller adds where the value came from.
    pub(crate) fn set_labelled(&mut self, label: &str, value: &str) -> Result<(), String> {
        let value = clean_value(value);
        if value.is_empty() {
            return Ok(());
        }
        let wanted = squash(label);
        let field = EDITION_LABELS.iter().find(|(name, _)| squash(name) == wanted);
        match field.map(|&(_, field)| field) {
            Some(EditionField::Pages) => {
                let pages = parse_pages(&value)
                    .ok_or_else(|| format!("expected a whole number of pages, found `{value}`"))?;
                self.pages = Some(pages);
            }
            Some(EditionField::FileName) => self.file_name = Some(value),
            Some(EditionField::Description) => self.description = Some(value),
            Some(EditionField::Licence) => self.licence = Some(value),
            Some(EditionField::Publisher) => self.publisher = Some(value),
            Some(EditionField::Editor) => self.editor = Some(value),
            None => keep(&mut self.extra, label.trim(), value),
        }
        Ok(())
    }
}

/// A label with case, spaces and punctuation removed.
fn squash(label: &str) -> String {
    label.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// A page count written as "12", "12 pp.", "12pp" or "12 pages"; `None` for anything else.
pub(crate) fn parse_pages(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let unit_ok = matches!(unit.trim(), "" | "p" | "p." | "pp" | "pp." | "page" | "pages");
    if digits.is_empty() || !unit_ok {
        return None;
    }
    digits.parse().ok()
}

/// Stores a value under `key`; a second value for the same key is appended on its own line
/// rather than replacing the first.
pub(crate) fn keep(extra: &mut BTreeMap<String, String>, key: &str, value: String) {
    let key = if key.is_empty() { "(no label)" } else { key };
    match extra.get_mut(key) {
        Some(held) => {
            held.push('\n');
            held.push_str(&value);
        }
        None => {
            extra.insert(key.to_string(), value);
        }
    }
}

/// Trims each line, collapses runs of white space (non-breaking spaces included) to one
/// space and drops empty lines, keeping the line breaks that `<br>` gave.
pub(crate) fn clean_value(raw: &str) -> String {
    let lines = raw.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "));
    lines.filter(|line| !line.is_empty()).collect::<Vec<_>>().join("\n")
}

/// IMSLP separates genre categories with `;`; a line break separates them too.
fn split_categories(value: &str) -> Vec<String> {
    let parts = value.split([';', '\n']).map(str::trim).filter(|part| !part.is_empty());
    parts.map(str::to_string).collect()
}

/// A composer name in reading order. IMSLP files composers family name first, split at
/// the first comma: "Bach, Johann Sebastian" gives "Johann Sebastian Bach" and
/// "Strauss Jr., Johann" gives "Johann Strauss Jr.". A name without a comma ("Josquin",
/// "Traditional", "Anonymous") is returned trimmed.
pub fn display_name(composer: &str) -> String {
    let composer = composer.trim();
    match composer.split_once(',') {
        Some((family, given)) if !family.trim().is_empty() && !given.trim().is_empty() => {
            format!("{} {}", given.trim(), family.trim())
        }
        _ => composer.trim_matches(|c: char| c == ',' || c.is_whitespace()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_long_forms_with_glued_short_forms() {
        let cases = [
            ("Work Title", Some(Field::WorkTitle)),
            ("work title", Some(Field::WorkTitle)),
            ("Opus/Catalogue NumberOp./Cat. No.", Some(Field::Opus)),
            ("I-Catalogue NumberI-Cat. No.", Some(Field::ICatalogue)),
            ("Movements/SectionsMov'ts/Sec's", Some(Field::Movements)),
            ("Composer Time PeriodComp. Period", Some(Field::ComposerTimePeriod)),
            ("Year/Date of CompositionY/D of Comp.", Some(Field::YearOfComposition)),
            ("First Publication.First Pub.", Some(Field::FirstPublication)),
            ("Year of First Publication", Some(Field::FirstPublication)),
            ("Key:", Some(Field::Key)),
            ("Genre Categories", Some(Field::GenreCategories)),
            ("Keyboard", None),
            ("Composer Notes", None),
            ("Dedication", None),
            ("", None),
        ];
        for (label, expected) in cases {
            assert_eq!(field_for_label(label), expected, "label {label:?}");
        }
    }

    #[test]
    fn unknown_and_weaker_fields_are_kept_in_extra() {
        let work = WorkMetadata::from_fields([
            ("Movements Header", "Four movements in all"),
            ("Number of Movements/Sections", "4 movements"),
            ("Dedication", "  Count   Erdődy "),
            ("Librettist", "   "),
            ("Key", "C major"),
            ("Key", "A minor"),
        ]);
        assert_eq!(work.movements.as_deref(), Some("4 movements"));
        assert_eq!(work.extra["Movements Header"], "Four movements in all");
        assert_eq!(work.extra["Dedication"], "Count Erdődy");
        assert!(!work.extra.contains_key("Librettist"));
        assert_eq!(work.key.as_deref(), Some("C major"));
        assert_eq!(work.extra["Key"], "A minor");

        let header_only = WorkMetadata::from_fields([("Movements Header", "3 sections")]);
        assert_eq!(header_only.movements.as_deref(), Some("3 sections"));
    }

    #[test]
    fn genres_split_at_semicolons_and_instruments_follow() {
        let work = WorkMetadata::from_fields([
            ("Genre Categories", "Sonatas ; For violin, piano;;Scores featuring the violin"),
            ("Instrumentation", "Violin, Piano"),
        ]);
        assert_eq!(
            work.genre_categories,
            ["Sonatas", "For violin, piano", "Scores featuring the violin"]
        );
        let names: Vec<_> = work.instruments.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["violin", "piano"]);
    }

    #[test]
    fn composer_names_read_first_name_first() {
        assert_eq!(display_name("Bach, Johann Sebastian"), "Johann Sebastian Bach");
        assert_eq!(display_name("Beethoven, Ludwig van"), "Ludwig van Beethoven");
        assert_eq!(display_name("Strauss Jr., Johann"), "Johann Strauss Jr.");
        assert_eq!(display_name("  Josquin "), "Josquin");
        assert_eq!(display_name("Traditional"), "Traditional");
        assert_eq!(display_name("Anonymous,"), "Anonymous");
        let work = WorkMetadata::from_fields([("Composer", "Haydn, Joseph")]);
        assert_eq!(work.composer_display().as_deref(), Some("Joseph Haydn"));
        assert_eq!(WorkMetadata::default().composer_display(), None);
    }

    #[test]
    fn edition_labels_and_page_counts() {
        let mut edition = Edition::default();
        edition.set_labelled("Publisher. Info.", "Leipzig: Example").unwrap();
        edition.set_labelled("Copyright", "Public Domain").unwrap();
        edition.set_labelled("Page Count", "12 pp.").unwrap();
        edition.set_labelled("Scanner", "").unwrap();
        edition.set_labelled("Image Type", "Normal Scan").unwrap();
        assert_eq!(edition.publisher.as_deref(), Some("Leipzig: Example"));
        assert_eq!(edition.licence.as_deref(), Some("Public Domain"));
        assert_eq!(edition.pages, Some(12));
        assert_eq!(edition.extra.len(), 1);
        let err = edition.set_labelled("Page Count", "twelve").unwrap_err();
        assert!(err.contains("whole number") && err.contains("twelve"), "{err}");
        assert_eq!(parse_pages("7pp"), Some(7));
        assert_eq!(parse_pages("7 bars"), None);
    }
}
