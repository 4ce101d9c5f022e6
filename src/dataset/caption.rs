//! Captions of MusicScore works: the IMSLP fields of a `metadata.json` record read into
//! [`WorkMetadata`] (keys with their glued short labels included) and written in the
//! prompt template, e.g. `"a music score, instrumentation is piano, key is A major"`.
//!
//! The data set's captions are the rich ones, [`CaptionOptions::RICH`]: style, composer and
//! genre after the instrumentation and key. Models are trained on this exact text, so the
//! options are named here rather than taken from a default that may change.

use super::metadata::Fields;
use crate::imslp::{CaptionOptions, WorkMetadata};

/// The options every data set caption is built with.
pub const DATASET_CAPTIONS: CaptionOptions = CaptionOptions::RICH;

/// The caption of a work.
pub fn caption(fields: &Fields) -> String {
    WorkMetadata::from_fields(fields.iter()).caption(DATASET_CAPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glued_musicscore_keys_make_the_template() {
        let fields: Fields = [
            ("Composer", "Bach, Johann Sebastian"),
            ("Key", "A major"),
            ("Instrumentation", "Piano"),
            ("Composer Time PeriodComp. Period", "Baroque"),
            ("Genre Categories", "Chorales; For voices"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            caption(&fields),
            "a music score, instrumentation is piano, key is A major, composer is Johann \
             Sebastian Bach, genre is chorales"
        );
        assert_eq!(caption(&Fields::new()), "a music score");
    }

    /// Pins the captions of the bundled mini set to the text models were trained on: a
    /// change here changes what a trained model is asked for.
    #[test]
    fn bundled_mini_set_captions_keep_their_text() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("datasets/musicscore-mini/metadata.json");
        let metadata = crate::dataset::metadata::Metadata::load(&path).unwrap();
        let cases = [
            (
                "M21W0007",
                "a music score, instrumentation is mixed chorus (satb), style is Baroque, \
                 composer is Johann Sebastian Bach, genre is chorales",
            ),
            (
                "M21W0042",
                "a music score, instrumentation is 2 violins, viola, cello, key is A minor, \
                 style is Classical, composer is Ludwig van Beethoven, genre is string quartets",
            ),
            (
                "M21W0001",
                "a music score, key is D major, composer is Traditional, genre is folk tunes",
            ),
        ];
        for (id, expected) in cases {
            assert_eq!(caption(metadata.get(id).unwrap()), expected, "work {id}");
        }
    }
}
