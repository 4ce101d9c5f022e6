//! Captions in MusicScore's prompt template, e.g.
//! "a music score, instrumentation is piano, key is A major".
//!
//! A caption opens with "a music score" and then gives, only where the record knows them and
//! always in this order:
//! 1. the instrumentation as written, lower-cased: "instrumentation is 2 violins, viola, cello";
//! 2. the key: "key is A major";
//! 3. the piece style: "style is Baroque";
//! 4. the composer in reading order: "composer is Johann Sebastian Bach";
//! 5. the first genre category, lower-cased: "genre is suites".
//!
//! Parts are joined by ", ". A value written over several lines joins its lines with "; ",
//! so a caption is always one line. The caption depends on the record alone, so one record
//! always gives the same text.

use super::WorkMetadata;

impl WorkMetadata {
    /// This work's caption in MusicScore's template (order and wording in the module docs of
    /// `imslp::caption`).
    pub fn caption(&self) -> String {
        let mut parts = vec!["a music score".to_string()];
        if let Some(instrumentation) = one_line(self.instrumentation.as_deref()) {
            parts.push(format!("instrumentation is {}", instrumentation.to_lowercase()));
        }
        if let Some(key) = one_line(self.key.as_deref()) {
            parts.push(format!("key is {key}"));
        }
        if let Some(style) = one_line(self.piece_style.as_deref()) {
            parts.push(format!("style is {style}"));
        }
        if let Some(composer) = one_line(self.composer_display().as_deref()) {
            parts.push(format!("composer is {composer}"));
        }
        if let Some(genre) = one_line(self.genre_categories.first().map(String::as_str)) {
            parts.push(format!("genre is {}", genre.to_lowercase()));
        }
        parts.join(", ")
    }
}

/// A value on one line with single spaces; `None` when nothing is left.
fn one_line(value: Option<&str>) -> Option<String> {
    let lines = value?.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "));
    let text = lines.filter(|line| !line.is_empty()).collect::<Vec<_>>().join("; ");
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::tests::HTML;

    #[test]
    fn follows_the_musicscore_template() {
        let piano = WorkMetadata::from_fields([("Instrumentation", "Piano"), ("Key", "A major")]);
        assert_eq!(piano.caption(), "a music score, instrumentation is piano, key is A major");
        assert_eq!(WorkMetadata::default().caption(), "a music score");
    }

    #[test]
    fn gives_every_known_part_in_order() {
        let work = WorkMetadata::from_fields([
            ("Genre Categories", "Suites; For cello; Scores featuring the cello"),
            ("Piece Style", "Baroque"),
            ("Key", "G major"),
            ("Instrumentation", "Cello"),
            ("Composer", "Bach, Johann Sebastian"),
        ]);
        assert_eq!(
            work.caption(),
            "a music score, instrumentation is cello, key is G major, style is Baroque, \
             composer is Johann Sebastian Bach, genre is suites"
        );
        assert_eq!(work.caption(), work.clone().caption());
    }

    #[test]
    fn multi_line_values_stay_on_one_line() {
        let work = WorkMetadata::from_fields([("Instrumentation", "Voice\n  Piano\n")]);
        assert_eq!(work.caption(), "a music score, instrumentation is voice; piano");
        let page = crate::imslp::parse_html(HTML).unwrap();
        assert_eq!(
            page.caption(),
            "a music score, instrumentation is 2 violins, viola, cello, key is C major, \
             style is Classical, composer is Joseph Haydn, genre is quartets"
        );
        assert!(!page.caption().contains('\n'));
    }
}
