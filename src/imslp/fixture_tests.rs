//! One table of what each hand-written work page in `tests/fixtures/imslp/` must give: a solo
//! piano sonata, a violin and piano sonata, a string quartet, a choral work and a symphony,
//! each as rendered HTML and as wikitext. The pages put links, nested templates, `<br>` and
//! HTML inside values; the expected values are written out by hand from the page text.

use std::path::Path;

use super::{CaptionOptions, Instrument, Licence, LicenceFilter, WorkMetadata, parse_any};

/// What one fixture page must give.
struct Expected {
    file: &'static str,
    title: &'static str,
    /// In reading order ("First Last").
    composer: &'static str,
    opus: &'static str,
    key: &'static str,
    /// Normalised instrumentation: (name, count).
    instruments: &'static [(&'static str, u32)],
    /// Genre categories, as the HTML page lists them.
    genres: &'static [&'static str],
    /// Each file of each edition: (description, pages, licence).
    editions: &'static [(&'static str, u32, &'static str)],
    /// The reference caption.
    caption: &'static str,
}

const PD: &str = "Public Domain";

const PIANO_GENRES: &[&str] = &["Sonatas", "For piano", "Scores featuring the piano"];
const PIANO_EDITIONS: &[(&str, u32, &str)] = &[
    ("Complete Score", 22, PD),
    ("Complete Score", 18, "Creative Commons Attribution-ShareAlike 4.0"),
];
const PIANO_CAPTION: &str = "a music score, instrumentation is piano, key is A major";

const VIOLIN_GENRES: &[&str] =
    &["Sonatas", "For violin, piano", "Scores featuring the violin", "Scores featuring the piano"];
const VIOLIN_EDITIONS: &[(&str, u32, &str)] = &[
    ("Piano Score", 31, PD),
    ("Violin", 9, PD),
    ("Piano Score", 35, "Creative Commons Attribution-NonCommercial 4.0"),
];
const VIOLIN_CAPTION: &str = "a music score, instrumentation is violin, piano, key is G major";

const QUARTET: &[(&str, u32)] = &[("violin", 2), ("viola", 1), ("cello", 1)];
const QUARTET_GENRES: &[&str] =
    &["Quartets", "For 2 violins, viola, cello", "Scores featuring the violin", "For strings"];
const QUARTET_EDITIONS: &[(&str, u32, &str)] = &[
    ("Complete Score", 24, PD),
    ("Violin 1", 6, "Creative Commons Attribution 4.0"),
    ("Violin 2", 5, "Creative Commons Attribution 4.0"),
];
const QUARTET_CAPTION: &str =
    "a music score, instrumentation is 2 violins, viola, cello, key is C major";

const CHORAL_GENRES: &[&str] = &[
    "Sacred choruses",
    "For mixed chorus, organ",
    "Scores featuring mixed chorus",
    "French language",
];
const CHORAL_EDITIONS: &[(&str, u32, &str)] = &[
    ("Complete Score", 8, PD),
    ("Vocal Score (SATB, piano)", 10, "Creative Commons Attribution 4.0"),
];
const CHORAL_CAPTION: &str =
    "a music score, instrumentation is mixed chorus (satb), piano/organ, key is D-flat major";

const ORCHESTRA: &[(&str, u32)] = &[
    ("flute", 2),
    ("oboe", 2),
    ("clarinet", 2),
    ("bassoon", 2),
    ("horn", 4),
    ("trumpet", 2),
    ("trombone", 3),
    ("tuba", 1),
    ("timpani", 1),
    ("triangle", 1),
    ("cymbal", 1),
    ("strings", 1),
];
const SYMPHONY_GENRES: &[&str] = &["Symphonies", "For orchestra", "Scores featuring the orchestra"];
const SYMPHONY_EDITIONS: &[(&str, u32, &str)] = &[
    ("Complete Score", 148, PD),
    ("Complete Score", 164, "Non-PD US"),
    ("Flute 1, 2", 12, PD),
    ("Violin I", 14, PD),
];
const SYMPHONY_CAPTION: &str = "a music score, instrumentation is 2 flutes (2nd doubling \
     piccolo), 2 oboes (2nd doubling english horn), 2 clarinets (a), 2 bassoons; 4 horns, \
     2 trumpets, 3 trombones, tuba; timpani, triangle, cymbals, strings, key is E minor";

const PIANO_SONATA: Expected = Expected {
    file: "piano-sonata.html",
    title: "Piano Sonata No.2",
    composer: "Ludwig van Beethoven",
    opus: "Op.2 No.2",
    key: "A major",
    instruments: &[("piano", 1)],
    genres: PIANO_GENRES,
    editions: PIANO_EDITIONS,
    caption: PIANO_CAPTION,
};

const VIOLIN_SONATA: Expected = Expected {
    file: "violin-sonata.html",
    title: "Violin Sonata No.1",
    composer: "Johannes Brahms",
    opus: "Op.78",
    key: "G major",
    instruments: &[("violin", 1), ("piano", 1)],
    genres: VIOLIN_GENRES,
    editions: VIOLIN_EDITIONS,
    caption: VIOLIN_CAPTION,
};

const STRING_QUARTET: Expected = Expected {
    file: "work.html",
    title: "String Quartet Op.76 No.3",
    composer: "Joseph Haydn",
    opus: "Op.76 No.3",
    key: "C major",
    instruments: QUARTET,
    genres: QUARTET_GENRES,
    editions: QUARTET_EDITIONS,
    caption: QUARTET_CAPTION,
};

const CHORAL: Expected = Expected {
    file: "choral.html",
    title: "Cantique de Jean Racine",
    composer: "Gabriel Fauré",
    opus: "Op.11",
    key: "D-flat major",
    instruments: &[("choir", 1), ("piano", 1)],
    genres: CHORAL_GENRES,
    editions: CHORAL_EDITIONS,
    caption: CHORAL_CAPTION,
};

const SYMPHONY: Expected = Expected {
    file: "symphony.html",
    title: "Symphony No.9",
    composer: "Antonín Dvořák",
    opus: "Op.95 ; B.178",
    key: "E minor",
    instruments: ORCHESTRA,
    genres: SYMPHONY_GENRES,
    editions: SYMPHONY_EDITIONS,
    caption: SYMPHONY_CAPTION,
};

/// Each work as HTML, then as wikitext: the wikitext differs in its file name and has no
/// genre categories (it carries IMSLP's tag codes instead).
const TABLE: &[Expected] = &[
    PIANO_SONATA,
    Expected { file: "piano-sonata.wikitext", genres: &[], ..PIANO_SONATA },
    VIOLIN_SONATA,
    Expected { file: "violin-sonata.wikitext", genres: &[], ..VIOLIN_SONATA },
    STRING_QUARTET,
    Expected { file: "work.wikitext", genres: &[], ..STRING_QUARTET },
    CHORAL,
    Expected { file: "choral.wikitext", genres: &[], ..CHORAL },
    SYMPHONY,
    Expected { file: "symphony.wikitext", genres: &[], ..SYMPHONY },
];

fn read(file: &str) -> WorkMetadata {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imslp").join(file);
    let mut works = parse_any(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(works.len(), 1, "{file}: one page is one work");
    works.remove(0)
}

#[test]
fn every_fixture_page_gives_its_expected_fields() {
    for expected in TABLE {
        let file = expected.file;
        let work = read(file);
        assert_eq!(work.work_title.as_deref(), Some(expected.title), "{file}: title");
        assert_eq!(work.composer_display().as_deref(), Some(expected.composer), "{file}");
        assert_eq!(work.opus.as_deref(), Some(expected.opus), "{file}: opus");
        assert_eq!(work.key.as_deref(), Some(expected.key), "{file}: key");
        let instruments: Vec<Instrument> = expected
            .instruments
            .iter()
            .map(|&(name, count)| Instrument::new(name, count))
            .collect();
        assert_eq!(work.instruments, instruments, "{file}: instruments");
        assert_eq!(work.genre_categories, expected.genres, "{file}: genres");
        let editions: Vec<(&str, u32, &str)> = work
            .editions
            .iter()
            .map(|e| {
                let description = e.description.as_deref().unwrap_or("(none)");
                (description, e.pages.unwrap_or(0), e.licence.as_deref().unwrap_or("(none)"))
            })
            .collect();
        assert_eq!(editions, expected.editions, "{file}: editions");
        assert_eq!(work.caption(CaptionOptions::default()), expected.caption, "{file}");
        // Each HTML file has its index, each wikitext file its name.
        let html = file.ends_with(".html");
        for edition in &work.editions {
            assert_eq!(edition.file_id.is_some(), html, "{file}: {edition:?}");
            assert_eq!(edition.file_name.is_some(), !html, "{file}: {edition:?}");
        }
    }
}

#[test]
fn both_forms_of_each_work_agree_on_the_rest() {
    for pair in TABLE.chunks(2) {
        let (html, wiki) = (read(pair[0].file), read(pair[1].file));
        let rest = |w: &WorkMetadata| {
            let editions: Vec<_> =
                w.editions.iter().map(|e| (e.publisher.clone(), e.editor.clone())).collect();
            (
                w.alternative_title.clone(),
                w.i_catalogue.clone(),
                w.movements.clone(),
                w.year_of_composition.clone(),
                w.first_publication.clone(),
                w.piece_style.clone(),
                w.instrumentation.clone(),
                editions,
            )
        };
        assert_eq!(rest(&html), rest(&wiki), "{} vs {}", pair[0].file, pair[1].file);
    }
}

#[test]
fn markup_inside_values_reads_as_text() {
    let symphony = read("symphony.wikitext");
    assert_eq!(symphony.alternative_title.as_deref(), Some("Z nového světa\nFrom the New World"));
    assert_eq!(symphony.year_of_composition.as_deref(), Some("1893 (January 10 \u{2013} May 24)"));
    let performance = symphony.extra.get("First Performance").map(String::as_str);
    assert_eq!(
        performance,
        Some("1893-12-16, New York, Carnegie Hall\nNew York Philharmonic, Anton Seidl (conductor)")
    );
    assert_eq!(
        symphony.editions[0].publisher.as_deref(),
        Some("Berlin: N. Simrock, 1894. Plate 10050.")
    );

    let sonata = read("violin-sonata.wikitext");
    let performance = sonata.extra.get("First Performance").map(String::as_str);
    assert_eq!(
        performance,
        Some("1879-11-08 in Bonn\nRobert Heckmann (violin), Marie Heckmann-Hertwig (piano)")
    );
    assert_eq!(sonata.editions[2].editor.as_deref(), Some("Example Editor & Ed Second"));
    let html = read("violin-sonata.html");
    assert_eq!(html.editions[2].editor, sonata.editions[2].editor);
    assert_eq!(html.extra.get("First Performance.").map(String::as_str), performance);

    let choral = read("choral.wikitext");
    assert_eq!(choral.extra.get("Librettist").map(String::as_str), Some("Jean Racine"));
    assert_eq!(read("choral.html").extra.get("Librettist"), choral.extra.get("Librettist"));
    assert_eq!(read("piano-sonata.wikitext").extra["Dedication"], "Joseph Haydn");
}

#[test]
fn the_licence_filter_reads_every_fixture_label() {
    let free = LicenceFilter::new(vec![Licence::PublicDomain, "cc-by".parse().unwrap()]);
    let kept = |file: &str| {
        let work = free.apply(read(file)).unwrap();
        work.editions.iter().map(|e| e.pages.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(kept("piano-sonata.html"), [22], "CC BY-SA is not CC BY");
    assert_eq!(kept("violin-sonata.wikitext"), [31, 9], "CC BY-NC is not CC BY");
    assert_eq!(kept("choral.html"), [8, 10]);
    assert_eq!(kept("symphony.wikitext"), [148, 12, 14], "Non-PD US is not public domain");
}
