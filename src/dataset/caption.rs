//! Captions in MusicScore's prompt template, built from a work's IMSLP fields:
//! `"a music score, instrumentation is piano, key is A major"`.
//!
//! Fields appear in a fixed order (instrumentation, key, style, composer, genre), each
//! only where the work has it, so the same work always gets the same caption.

use super::metadata::Fields;

/// A field of the caption: the caption's own words and the key prefix it is read from
/// (MusicScore glues the short label onto the long one, so keys are matched by prefix).
const PARTS: [(&str, &str); 5] = [
    ("instrumentation is", "Instrumentation"),
    ("key is", "Key"),
    ("style is", "Piece Style"),
    ("composer is", "Composer"),
    ("genre is", "Genre Categories"),
];

/// The caption of a work.
pub fn caption(fields: &Fields) -> String {
    let mut caption = String::from("a music score");
    for (words, key) in PARTS {
        let Some(value) = field(fields, key) else { continue };
        let value = match key {
            "Instrumentation" => value.to_lowercase(),
            "Composer" => display_name(value),
            // IMSLP lists categories separated by semicolons; the first is the broadest.
            "Genre Categories" => value.split(';').next().unwrap_or(value).trim().to_lowercase(),
            _ => value.to_string(),
        };
        if !value.is_empty() {
            caption.push_str(&format!(", {words} {value}"));
        }
    }
    caption
}

fn field<'a>(fields: &'a Fields, prefix: &str) -> Option<&'a str> {
    fields.iter().find(|(key, _)| key.starts_with(prefix)).map(|(_, value)| value.as_str())
}

/// `"Bach, Johann Sebastian"` as `"Johann Sebastian Bach"`; other names unchanged.
pub fn display_name(name: &str) -> String {
    match name.split_once(',') {
        Some((last, first)) if !first.trim().is_empty() => {
            format!("{} {}", first.trim(), last.trim())
        }
        _ => name.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn follows_the_template_order_and_skips_missing_fields() {
        let f = fields(&[
            ("Composer", "Bach, Johann Sebastian"),
            ("Key", "A major"),
            ("Instrumentation", "Piano"),
            ("Composer Time PeriodComp. Period", "Baroque"),
        ]);
        assert_eq!(
            caption(&f),
            "a music score, instrumentation is piano, key is A major, composer is Johann Sebastian Bach"
        );
        let f = fields(&[("Genre Categories", "Chorales; For voices"), ("Piece Style", "Baroque")]);
        assert_eq!(caption(&f), "a music score, style is Baroque, genre is chorales");
        assert_eq!(caption(&Fields::new()), "a music score");
    }

    #[test]
    fn composer_names_read_first_last() {
        assert_eq!(display_name("Bach, Johann Sebastian"), "Johann Sebastian Bach");
        assert_eq!(display_name("Traditional"), "Traditional");
        assert_eq!(display_name("Anonymous,"), "Anonymous,");
    }
}
