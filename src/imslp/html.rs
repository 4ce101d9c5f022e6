//! The rendered IMSLP work page (HTML).
//!
//! The "General Information" box is `div.wi_body table tr`: each row has a `th` label and a
//! `td` value. A label holds its long form in `span.mh555` and its short form in
//! `span.ms555` (only one shows, by screen width); the long form is read, or the whole `th`
//! when it has no such span. In values, `<br>` (and the start of a `p`, `div` or `li`)
//! becomes a line break and all other white space one space, as a browser shows it.
//!
//! Each edition is a `div.we` block. Its downloadable files are `div.we_file_download`
//! entries: the first link that is not the file index names the file ("Complete Score"), and
//! the entry's text carries the file index ("#913207") and page count ("24 pp."). Where a
//! block has no such entries, each link whose text holds a file index is one file. The
//! block's `th`/`td` rows (Editor, Publisher. Info., Copyright, ...) describe every file in
//! it. One [`Edition`] is made per file.

use scraper::{ElementRef, Html, Node, Selector};

use super::{Edition, WorkMetadata};
use crate::error::{Error, Result};

/// Parses an HTML work page: its "General Information" box and its edition blocks.
pub fn parse_html(html: &str) -> Result<WorkMetadata> {
    let document = Html::parse_document(html);
    let selectors = Selectors::new()?;
    let boxes: Vec<ElementRef<'_>> = document.select(&selectors.info_box).collect();
    if boxes.is_empty() {
        return Err(Error::input(
            "HTML work page: no \"General Information\" box (expected a `div.wi_body` \
             holding `table tr` rows of a `th` label and a `td` value)",
        ));
    }
    let fields = boxes.into_iter().flat_map(|info| labelled_rows(info, &selectors));
    let mut work = WorkMetadata::from_fields(fields);
    work.editions = editions(&document, &selectors)?;
    Ok(work)
}

/// The CSS selectors the page is read with, parsed once per page.
struct Selectors {
    info_box: Selector,
    row: Selector,
    long_label: Selector,
    edition: Selector,
    file: Selector,
    link: Selector,
}

impl Selectors {
    fn new() -> Result<Self> {
        Ok(Self {
            info_box: selector("div.wi_body")?,
            row: selector("tr")?,
            long_label: selector("span.mh555")?,
            edition: selector("div.we")?,
            file: selector("div.we_file_download")?,
            link: selector("a")?,
        })
    }
}

/// A built-in selector; failing to parse one is a bug here, not bad input.
fn selector(css: &'static str) -> Result<Selector> {
    Selector::parse(css)
        .map_err(|e| Error::runtime(format!("built-in CSS selector `{css}` does not parse: {e:?}")))
}

/// The `(label, value)` pairs of every table row under `scope` that has a `th` and a `td`.
fn labelled_rows(scope: ElementRef<'_>, selectors: &Selectors) -> Vec<(String, String)> {
    let rows = scope.select(&selectors.row).filter_map(|row| {
        let cells: Vec<ElementRef<'_>> = row.children().filter_map(ElementRef::wrap).collect();
        let th = cells.iter().find(|cell| cell.value().name() == "th")?;
        let td = cells.iter().find(|cell| cell.value().name() == "td")?;
        Some((label_text(*th, selectors), cell_text(*td)))
    });
    rows.collect()
}

/// A label's long form (`span.mh555`), or the whole `th` text when there is none.
fn label_text(th: ElementRef<'_>, selectors: &Selectors) -> String {
    let text: String = match th.select(&selectors.long_label).next() {
        Some(long) => long.text().collect(),
        None => th.text().collect(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A cell's text as a browser lays it out: source line breaks are spaces, `<br>` and block
/// starts are line breaks.
fn cell_text(cell: ElementRef<'_>) -> String {
    let mut out = String::new();
    for node in cell.descendants() {
        match node.value() {
            Node::Text(text) => {
                out.extend(text.chars().map(|c| if c.is_whitespace() { ' ' } else { c }));
            }
            Node::Element(element) if matches!(element.name(), "br" | "p" | "div" | "li") => {
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// One downloadable file of an edition block.
struct FileEntry {
    description: Option<String>,
    /// All text of the entry, where the file index and page count are found.
    text: String,
}

/// One [`Edition`] per file of every `div.we` block, the block's facts on each.
fn editions(document: &Html, selectors: &Selectors) -> Result<Vec<Edition>> {
    let mut out = Vec::new();
    for (number, block) in document.select(&selectors.edition).enumerate() {
        let facts = labelled_rows(block, selectors);
        for entry in file_entries(block, selectors) {
            let mut edition = Edition {
                file_id: file_index(&entry.text),
                pages: page_count(&entry.text),
                description: entry.description,
                ..Edition::default()
            };
            for (label, value) in &facts {
                edition.set_labelled(label, value).map_err(|why| {
                    Error::input(format!(
                        "HTML edition block {} (`div.we`): row `{label}`: {why}",
                        number + 1
                    ))
                })?;
            }
            out.push(edition);
        }
    }
    Ok(out)
}

fn file_entries(block: ElementRef<'_>, selectors: &Selectors) -> Vec<FileEntry> {
    let entries: Vec<FileEntry> = block
        .select(&selectors.file)
        .map(|entry| FileEntry {
            description: entry
                .select(&selectors.link)
                .map(|link| squash_space(&link.text().collect::<String>()))
                .find(|text| !text.is_empty() && file_index(text).is_none()),
            text: entry.text().collect(),
        })
        .collect();
    if !entries.is_empty() {
        return entries;
    }
    // Pages without IMSLP's download classes still show the file index as a link's text;
    // the page count sits beside it, in the link's parent.
    let indexed = block.select(&selectors.link).filter_map(|link| {
        let text: String = link.text().collect();
        file_index(&text)?;
        let parent = link.parent().and_then(ElementRef::wrap);
        let text = parent.map_or(text, |parent| parent.text().collect());
        Some(FileEntry { description: None, text })
    });
    indexed.collect()
}

/// The digits of the first "#913207"-style file index in a text.
fn file_index(text: &str) -> Option<String> {
    let after_hashes = text.split('#').skip(1);
    let digits = after_hashes.map(|after| after.chars().take_while(char::is_ascii_digit));
    digits.map(|digits| digits.collect::<String>()).find(|digits| !digits.is_empty())
}

/// The number before "pp." (or glued to it: "24pp.") in a text.
fn page_count(text: &str) -> Option<u32> {
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    words.iter().enumerate().find_map(|(i, word)| {
        let unit = word.trim_end_matches('.');
        if unit == "pp" || unit == "p" {
            return words.get(i.checked_sub(1)?)?.parse().ok();
        }
        let digits = unit.strip_suffix("pp")?;
        (!digits.is_empty()).then(|| digits.parse().ok()).flatten()
    })
}

fn squash_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::tests::HTML;

    #[test]
    fn reads_every_general_information_field() {
        let work = parse_html(HTML).unwrap();
        crate::imslp::tests::assert_fixture_work(&work);
        assert_eq!(work.composer_time_period.as_deref(), Some("Classical"));
        assert_eq!(
            work.genre_categories,
            [
                "Quartets",
                "For 2 violins, viola, cello",
                "Scores featuring the violin",
                "For strings"
            ]
        );
        assert_eq!(
            work.extra.get("Dedication").map(String::as_str),
            Some("Count Joseph Georg Erdődy")
        );
        assert_eq!(work.extra.get("Average Duration").map(String::as_str), Some("22 minutes"));
        // The short label is never read when a long one is there.
        assert!(work.extra.keys().all(|key| !key.contains("Avg.")), "{:?}", work.extra);
        assert_eq!(work.extra.len(), 2, "{:?}", work.extra);
    }

    #[test]
    fn reads_each_file_of_each_edition() {
        let work = parse_html(HTML).unwrap();
        let summary: Vec<_> = work
            .editions
            .iter()
            .map(|e| {
                (e.file_id.as_deref(), e.description.as_deref(), e.pages, e.licence.as_deref())
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some("913207"), Some("Complete Score"), Some(24_u32), Some("Public Domain")),
                (
                    Some("913208"),
                    Some("Violin 1"),
                    Some(6),
                    Some("Creative Commons Attribution 4.0")
                ),
                (
                    Some("913209"),
                    Some("Violin 2"),
                    Some(5),
                    Some("Creative Commons Attribution 4.0")
                ),
            ]
        );
        let score = &work.editions[0];
        assert_eq!(score.editor.as_deref(), Some("Karl Beispiel"));
        assert_eq!(
            score.publisher.as_deref(),
            Some("Leipzig: Example Musikverlag, n.d. (ca. 1910). Plate E.M. 2077.")
        );
        assert_eq!(
            score.extra.get("Misc. Notes").map(String::as_str),
            Some("Pocket score; bar numbers every ten bars.")
        );
        assert_eq!(work.editions[2].publisher.as_deref(), Some("Example Editions, 2023"));
        assert_eq!(work.editions[2].file_name, None);
    }

    #[test]
    fn labels_without_spans_and_plain_index_links() {
        let page = "<html><body>\
            <div class=\"wi_body\"><table>\
              <tr><th>Opus/Catalogue NumberOp./Cat. No.</th><td>BWV 1007</td></tr>\
              <tr><th>Key</th><td>G\n   major</td></tr>\
              <tr><th colspan=\"2\">A heading row without a value</th></tr>\
            </table></div>\
            <div class=\"we\"><p><a href=\"/f\">#4242</a> - 3 pp.</p>\
              <table><tr><th>Copyright</th><td>Public Domain</td></tr></table></div>\
            </body></html>";
        let work = parse_html(page).unwrap();
        assert_eq!(work.opus.as_deref(), Some("BWV 1007"));
        assert_eq!(work.key.as_deref(), Some("G major"));
        assert!(work.extra.is_empty(), "{:?}", work.extra);
        assert_eq!(work.editions.len(), 1);
        assert_eq!(work.editions[0].file_id.as_deref(), Some("4242"));
        assert_eq!(work.editions[0].pages, Some(3));
        assert_eq!(work.editions[0].licence.as_deref(), Some("Public Domain"));
    }

    #[test]
    fn a_page_without_the_box_is_an_input_error() {
        let err = parse_html("<html><body><p>Nothing here</p></body></html>").unwrap_err();
        assert!(err.is_input());
        assert!(err.to_string().contains("div.wi_body"), "{err}");
    }

    #[test]
    fn finds_file_indexes_and_page_counts_in_text() {
        assert_eq!(file_index("#913207 - 2.41MB").as_deref(), Some("913207"));
        assert_eq!(file_index("No. # here, then #12").as_deref(), Some("12"));
        assert_eq!(file_index("no index"), None);
        assert_eq!(page_count("#1 - 2.41MB, 24 pp. - 1204×"), Some(24));
        assert_eq!(page_count("1 p."), Some(1));
        assert_eq!(page_count("12pp."), Some(12));
        assert_eq!(page_count("pp. only"), None);
    }
}
