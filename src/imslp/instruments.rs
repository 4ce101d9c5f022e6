//! Normalising IMSLP's free-text "Instrumentation" field into counted instruments.
//!
//! IMSLP writes instrumentation as an English list: "2 violins, viola, cello",
//! "Voice, piano", "Mixed chorus (SATB), orchestra", "Flute or violin, continuo". The rules,
//! applied in this order:
//! 1. the text is lower-cased and anything in brackets is dropped, so "mixed chorus (SATB)"
//!    is read as "mixed chorus";
//! 2. parts are split at `,` `;` `+` `&`, line breaks and the words "and" / "with";
//! 3. of alternatives ("flute or violin", "flute/violin") the first is kept;
//! 4. "for", "solo", "obbligato" and "optional" are dropped ("solo violin" is a violin);
//! 5. a leading count in digits or words up to twelve ("2 violins", "two flutes") gives the
//!    count, otherwise it is 1; a count of 0 drops the part;
//! 6. each word is made singular ("violins" to "violin", "double basses" to "double bass",
//!    "horns in F" to "horn in f"), except collective words such as "strings" and "timpani";
//! 7. synonyms become one name ("violoncello" to "cello", "basso continuo" to "continuo",
//!    "piano 4 hands" to "piano four hands");
//! 8. any chorus or choir (mixed, male, children's, SATB...) becomes one ensemble, "choir",
//!    not four voice parts: IMSLP lists soloists separately ("soprano, alto, mixed chorus"),
//!    a choir's parts are not soloists, and a page caption reads better as "choir";
//! 9. repeated names are summed, in the order first seen ("violin, violin" is violin x2).

use serde::{Deserialize, Serialize};

/// One instrument (or ensemble) of a work and how many of it the instrumentation asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    /// Singular, lower-case name: "violin", "double bass", "choir", "orchestra".
    pub name: String,
    /// How many of the instrument play (at least 1).
    pub count: u32,
}

impl Instrument {
    /// An instrument with its count.
    pub fn new(name: impl Into<String>, count: u32) -> Self {
        Self { name: name.into(), count }
    }
}

const NUMBER_WORDS: &[&str] = &[
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

/// Words that say how a part plays, not what plays it.
const FILLER: &[&str] = &["for", "solo", "obbligato", "optional"];

/// Words whose final "s" is not a plural.
const KEEP_PLURAL: &[&str] = &["strings", "winds", "woodwinds", "timpani", "brass", "percussion"];

/// Synonyms, matched after the words are made singular.
const ALIASES: &[(&str, &str)] = &[
    ("violoncello", "cello"),
    ("contrabass", "double bass"),
    ("double-bass", "double bass"),
    ("pianoforte", "piano"),
    ("basso continuo", "continuo"),
    ("french horn", "horn"),
    ("full orchestra", "orchestra"),
    ("symphony orchestra", "orchestra"),
    ("piano 4 hand", "piano four hands"),
    ("piano four hand", "piano four hands"),
    ("piano 4-hand", "piano four hands"),
];

/// Splits and normalises an instrumentation string by the rules in the module docs.
pub fn normalise_instruments(instrumentation: &str) -> Vec<Instrument> {
    let text = without_brackets(&instrumentation.to_lowercase());
    let mut out: Vec<Instrument> = Vec::new();
    for piece in text.split([',', ';', '+', '&', '\n']) {
        for words in split_words(piece) {
            let Some(Instrument { name, count }) = parse_part(&words) else { continue };
            match out.iter_mut().find(|held| held.name == name) {
                Some(held) => held.count = held.count.saturating_add(count),
                None => out.push(Instrument { name, count }),
            }
        }
    }
    out
}

/// Removes bracketed remarks; an unmatched closing bracket is ignored.
fn without_brackets(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits a piece at the words "and" and "with" (whole words, so "andante" stays).
fn split_words(piece: &str) -> Vec<Vec<&str>> {
    let mut parts = vec![Vec::new()];
    for word in piece.split_whitespace() {
        if matches!(word, "and" | "with") {
            parts.push(Vec::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(word);
        }
    }
    parts
}

/// One part ("2 violins") to an instrument, or `None` when nothing is left of it.
fn parse_part(words: &[&str]) -> Option<Instrument> {
    let mut kept: Vec<&str> = Vec::new();
    for &word in words {
        if word == "or" {
            break;
        }
        if let Some((first, _)) = word.split_once('/') {
            if !first.is_empty() {
                kept.push(first);
            }
            break;
        }
        if !FILLER.contains(&word) {
            kept.push(word);
        }
    }
    let (first, rest) = kept.split_first()?;
    let (count, name_words) = match count_of(first) {
        Some(count) => (count, rest),
        None => (1, kept.as_slice()),
    };
    let name = canonical(name_words);
    (count > 0 && !name.is_empty()).then_some(Instrument { name, count })
}

/// A count written in digits or as a word up to twelve.
fn count_of(word: &str) -> Option<u32> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit runs saturate rather than turn into an instrument name.
        return Some(word.parse().unwrap_or(u32::MAX));
    }
    let position = NUMBER_WORDS.iter().position(|&number| number == word)?;
    u32::try_from(position + 1).ok()
}

/// The normalised name of a part's words (rules 6 to 8).
fn canonical(words: &[&str]) -> String {
    if words.iter().any(|word| is_choir_word(word)) {
        return "choir".to_string();
    }
    let words: Vec<String> = words
        .iter()
        .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-'))
        .filter(|word| !word.is_empty())
        .map(singular)
        .collect();
    let name = words.join(" ");
    ALIASES.iter().find(|&&(from, _)| from == name).map_or(name, |&(_, to)| to.to_string())
}

fn is_choir_word(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    word.starts_with("chorus")
        || word.starts_with("choir")
        || matches!(word, "satb" | "ssa" | "ssaa" | "ttb" | "ttbb")
}

/// English plural to singular for instrument names: "basses" to "bass", "celli" to
/// "cello", a final "s" dropped unless the word ends in "ss", "us" or "is" or is short.
fn singular(word: &str) -> String {
    if KEEP_PLURAL.contains(&word) {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("celli") {
        return format!("{stem}cello");
    }
    if let Some(stem) = word.strip_suffix("sses") {
        return format!("{stem}ss");
    }
    let not_plural = word.len() <= 3 || ["ss", "us", "is"].iter().any(|end| word.ends_with(*end));
    match word.strip_suffix('s') {
        Some(stem) if !not_plural => stem.to_string(),
        _ => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<(String, u32)> {
        normalise_instruments(text).into_iter().map(|i| (i.name, i.count)).collect()
    }

    fn list(items: &[(&str, u32)]) -> Vec<(String, u32)> {
        items.iter().map(|&(name, count)| (name.to_string(), count)).collect()
    }

    #[test]
    fn normalises_common_instrumentations() {
        let cases: &[(&str, &[(&str, u32)])] = &[
            ("2 violins, viola, cello", &[("violin", 2), ("viola", 1), ("cello", 1)]),
            ("piano", &[("piano", 1)]),
            ("Piano", &[("piano", 1)]),
            ("mixed chorus (SATB)", &[("choir", 1)]),
            ("Voice, piano", &[("voice", 1), ("piano", 1)]),
            ("orchestra", &[("orchestra", 1)]),
            ("Violin and Piano", &[("violin", 1), ("piano", 1)]),
            ("two flutes and basso continuo", &[("flute", 2), ("continuo", 1)]),
            ("2 pianos", &[("piano", 2)]),
            ("3 Double Basses", &[("double bass", 3)]),
            ("Violoncello", &[("cello", 1)]),
            ("flute or violin, harpsichord", &[("flute", 1), ("harpsichord", 1)]),
            ("oboe/flute, strings", &[("oboe", 1), ("strings", 1)]),
            ("solo violin", &[("violin", 1)]),
            ("violin, violin", &[("violin", 2)]),
            ("Piano 4 hands", &[("piano four hands", 1)]),
            ("2 Horns in F + timpani", &[("horn in f", 2), ("timpani", 1)]),
            (
                "soprano, alto, tenor, bass, mixed chorus, orchestra",
                &[
                    ("soprano", 1),
                    ("alto", 1),
                    ("tenor", 1),
                    ("bass", 1),
                    ("choir", 1),
                    ("orchestra", 1),
                ],
            ),
            ("Male chorus & string orchestra", &[("choir", 1), ("string orchestra", 1)]),
            ("4 voices (SATB)", &[("voice", 4)]),
            ("voice\npiano", &[("voice", 1), ("piano", 1)]),
        ];
        for (text, expected) in cases {
            assert_eq!(read(text), list(expected), "instrumentation {text:?}");
        }
    }

    #[test]
    fn empty_and_degenerate_parts_give_nothing() {
        assert!(read("").is_empty());
        assert!(read(" , ;  and ").is_empty());
        assert!(read("0 violins").is_empty());
        assert!(read("2").is_empty());
        assert!(read("(unspecified)").is_empty());
        assert_eq!(read("99999999999 kazoos"), list(&[("kazoo", u32::MAX)]));
    }
}
