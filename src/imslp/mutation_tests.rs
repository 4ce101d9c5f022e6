//! Property tests of the readers: thousands of random mutations of the fixture pages
//! (truncations, random bytes, inserted markup, dropped and repeated spans) must each parse
//! or fail with an input error that says which form was being read, and never panic.
//!
//! The mutations are drawn from a fixed seed, so a failure repeats; its message gives the
//! round and the mutated text to paste into a unit test.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Form, WorkMetadata, parse_bytes, parse_html, parse_wikitext};
use crate::diffusion::noise::HostNoise;
use crate::error::Result;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imslp/", $name))
    };
}

const HTML_PAGES: &[&str] = &[
    fixture!("work.html"),
    fixture!("piano-sonata.html"),
    fixture!("violin-sonata.html"),
    fixture!("choral.html"),
    fixture!("symphony.html"),
];

const WIKITEXT_PAGES: &[&str] = &[
    fixture!("work.wikitext"),
    fixture!("piano-sonata.wikitext"),
    fixture!("violin-sonata.wikitext"),
    fixture!("choral.wikitext"),
    fixture!("symphony.wikitext"),
];

/// Markup inserted at random places: what the parsers nest, split or skip on.
const MARKS: &[&str] = &[
    "{{",
    "}}",
    "[[",
    "]]",
    "|",
    "=",
    "{{!}}",
    "<br>",
    "<",
    ">",
    "<!--",
    "-->",
    "&#x",
    "'''",
    "{{#fte:imslppage",
    "{{#fte:imslpfile",
    "|*****FILES*****=",
    "|Page Count 1=",
    "<div class=\"wi_body\">",
    "<div class=\"we\">",
    "<tr><th>Copyright</th>",
    "</table>",
    "\u{feff}",
];

/// One to four random edits of `page`.
fn mutate(page: &str, rng: &mut HostNoise) -> Vec<u8> {
    let mut bytes = page.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 => bytes.truncate(at),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let place = rng.below(bytes.len() + 1);
                    bytes.insert(place, rng.below(256) as u8);
                }
            }
            2 => {
                let mark = MARKS[rng.below(MARKS.len())];
                bytes.splice(at..at, mark.bytes());
            }
            3 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                let end = (at + rng.below(256)).min(bytes.len());
                let span = bytes[at..end].to_vec();
                bytes.splice(at..at, span);
            }
        }
    }
    bytes
}

/// Runs one reader on one input: it must return, and any error must be an input error whose
/// message holds `must_name`.
fn check<T>(
    round: usize,
    what: &str,
    bytes: &[u8],
    must_name: &str,
    read: impl FnOnce() -> Result<T>,
) {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            let message = err.to_string();
            assert!(err.is_input(), "round {round}, {what}: not an input error: {message}");
            assert!(
                message.contains(must_name),
                "round {round}, {what}: `{message}` does not say `{must_name}`; input:\n{}",
                shown()
            );
        }
        Err(_) => panic!("round {round}, {what}: the reader panicked; input:\n{}", shown()),
    }
}

/// The form-naming part of every error of a forced reader, or, for bytes that are not
/// UTF-8, the offset of the first bad byte.
fn must_name(bytes: &[u8], form: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(_) => form.to_string(),
        Err(e) => format!("byte offset {}", e.valid_up_to()),
    }
}

fn run(pages: &[&str], rounds: usize, seed: u64, form: Form, name: &str) {
    let mut rng = HostNoise::new(seed);
    for round in 0..rounds {
        let bytes = mutate(pages[round % pages.len()], &mut rng);
        let forced = must_name(&bytes, name);
        check(round, "forced form", &bytes, &forced, || parse_bytes(&bytes, Some(form)));
        // Detection may pick another reader, or none: any input error will do.
        check(round, "detected form", &bytes, "", || parse_bytes(&bytes, None));
        let text = String::from_utf8_lossy(&bytes);
        let direct = || -> Result<WorkMetadata> {
            match form {
                Form::Html => parse_html(&text),
                _ => parse_wikitext(&text),
            }
        };
        check(round, "parser on valid UTF-8", text.as_bytes(), name, direct);
    }
}

#[test]
fn mutated_html_pages_parse_or_give_input_errors() {
    run(HTML_PAGES, 2500, 0x5EED_0001, Form::Html, "HTML");
}

#[test]
fn mutated_wikitext_pages_parse_or_give_input_errors() {
    run(WIKITEXT_PAGES, 5000, 0x5EED_0002, Form::Wikitext, "wikitext");
}

#[test]
fn mutations_change_the_pages_and_reach_the_error_paths() {
    // A property test that never leaves the happy path proves little: count the outcomes.
    let mut rng = HostNoise::new(0x5EED_0002);
    let (mut changed, mut not_utf8, mut refused) = (0, 0, 0);
    for round in 0..1000 {
        let page = WIKITEXT_PAGES[round % WIKITEXT_PAGES.len()];
        let bytes = mutate(page, &mut rng);
        changed += usize::from(bytes != page.as_bytes());
        not_utf8 += usize::from(std::str::from_utf8(&bytes).is_err());
        refused += usize::from(parse_bytes(&bytes, Some(Form::Wikitext)).is_err());
    }
    assert!(changed > 950, "{changed} of 1000 mutations changed the page");
    assert!(not_utf8 > 50, "{not_utf8} of 1000 mutations broke UTF-8");
    assert!(refused > 300, "{refused} of 1000 mutations were refused");
}
