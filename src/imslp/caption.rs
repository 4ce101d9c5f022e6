//! Captions in MusicScore's prompt template, e.g.
//! "a music score, instrumentation is piano, key is A major".
//!
//! A caption opens with "a music score" and then gives, only where the record knows them and
//! always in this order:
//! 1. the instrumentation as written, lower-cased: "instrumentation is 2 violins, viola, cello";
//! 2. the key: "key is A major";
//! 3. with [`CaptionOptions::period`], the composer time period: "period is Classical";
//! 4. with [`CaptionOptions::style`], the piece style: "style is Baroque";
//! 5. with [`CaptionOptions::composer`], the composer in reading order:
//!    "composer is Johann Sebastian Bach";
//! 6. with [`CaptionOptions::genre`], the first genre category, lower-cased:
//!    "genre is suites".
//!
//! Parts 1 and 2 are the reference template, the [`CaptionOptions::default`]. Parts are
//! joined by ", ". A value written over several lines joins its lines with "; ", so a caption
//! is always one line. The caption depends on the record and the options alone, so one
//! record always gives the same text.

use serde::{Deserialize, Serialize};

use super::WorkMetadata;

/// Which facts a caption gives beyond the reference template's instrumentation and key.
///
/// The default is the reference template. [`CaptionOptions::RICH`] is the caption the
/// training data set is built with (see `dataset::caption`); a model learns its exact
/// wording, so that preset must not change while models trained on it are in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaptionOptions {
    /// Add the composer time period ("period is Classical").
    pub period: bool,
    /// Add the piece style ("style is Baroque").
    pub style: bool,
    /// Add the composer in reading order ("composer is Joseph Haydn").
    pub composer: bool,
    /// Add the first genre category, lower-cased ("genre is quartets").
    pub genre: bool,
}

impl CaptionOptions {
    /// MusicScore's reference template: instrumentation and key only.
    pub const REFERENCE: Self = Self { period: false, style: false, composer: false, genre: false };

    /// Style, composer and genre after the reference parts: the data set's captions.
    pub const RICH: Self = Self { period: false, style: true, composer: true, genre: true };
}

impl WorkMetadata {
    /// This work's caption (parts, order and wording in the module docs of
    /// `imslp::caption`).
    pub fn caption(&self, options: CaptionOptions) -> String {
        let composer = self.composer_display();
        let genre = self.genre_categories.first().map(String::as_str);
        // (whether the part is given, its name, its value, whether it is lower-cased)
        let parts = [
            (true, "instrumentation", self.instrumentation.as_deref(), true),
            (true, "key", self.key.as_deref(), false),
            (options.period, "period", self.composer_time_period.as_deref(), false),
            (options.style, "style", self.piece_style.as_deref(), false),
            (options.composer, "composer", composer.as_deref(), false),
            (options.genre, "genre", genre, true),
        ];
        let mut caption = "a music score".to_string();
        for (given, name, value, lower) in parts {
            let Some(value) = one_line(value.filter(|_| given)) else { continue };
            let value = if lower { value.to_lowercase() } else { value };
            caption.push_str(&format!(", {name} is {value}"));
        }
        caption
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

    fn bach_suite() -> WorkMetadata {
        WorkMetadata::from_fields([
            ("Genre Categories", "Suites; For cello; Scores featuring the cello"),
            ("Composer Time Period", "Baroque"),
            ("Piece Style", "Baroque"),
            ("Key", "G major"),
            ("Instrumentation", "Cello"),
            ("Composer", "Bach, Johann Sebastian"),
        ])
    }

    #[test]
    fn the_default_is_the_reference_template() {
        let piano = WorkMetadata::from_fields([
            ("Instrumentation", "Piano"),
            ("Key", "A major"),
            ("Composer", "Beethoven, Ludwig van"),
            ("Piece Style", "Classical"),
        ]);
        let reference = "a music score, instrumentation is piano, key is A major";
        assert_eq!(CaptionOptions::default(), CaptionOptions::REFERENCE);
        assert_eq!(piano.caption(CaptionOptions::default()), reference);
        assert_eq!(WorkMetadata::default().caption(CaptionOptions::RICH), "a music score");
    }

    #[test]
    fn each_option_adds_its_part_in_order() {
        let work = bach_suite();
        let reference = "a music score, instrumentation is cello, key is G major";
        let cases = [
            (CaptionOptions { period: true, ..CaptionOptions::REFERENCE }, ", period is Baroque"),
            (CaptionOptions { style: true, ..CaptionOptions::REFERENCE }, ", style is Baroque"),
            (
                CaptionOptions { composer: true, ..CaptionOptions::REFERENCE },
                ", composer is Johann Sebastian Bach",
            ),
            (CaptionOptions { genre: true, ..CaptionOptions::REFERENCE }, ", genre is suites"),
            (
                CaptionOptions::RICH,
                ", style is Baroque, composer is Johann Sebastian Bach, genre is suites",
            ),
            (
                CaptionOptions { period: true, ..CaptionOptions::RICH },
                ", period is Baroque, style is Baroque, composer is Johann Sebastian Bach, \
                 genre is suites",
            ),
        ];
        for (options, added) in cases {
            assert_eq!(work.caption(options), format!("{reference}{added}"), "{options:?}");
        }
        assert_eq!(work.caption(CaptionOptions::RICH), work.clone().caption(CaptionOptions::RICH));
    }

    #[test]
    fn multi_line_values_stay_on_one_line() {
        let work = WorkMetadata::from_fields([("Instrumentation", "Voice\n  Piano\n")]);
        let caption = work.caption(CaptionOptions::REFERENCE);
        assert_eq!(caption, "a music score, instrumentation is voice; piano");
        let page = crate::imslp::parse_html(HTML).unwrap();
        assert_eq!(
            page.caption(CaptionOptions::RICH),
            "a music score, instrumentation is 2 violins, viola, cello, key is C major, \
             style is Classical, composer is Joseph Haydn, genre is quartets"
        );
        assert!(!page.caption(CaptionOptions::RICH).contains('\n'));
    }
}
