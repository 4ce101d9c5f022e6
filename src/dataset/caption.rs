//! Captions of MusicScore works: the IMSLP fields of a `metadata.json` record read into
//! [`WorkMetadata`] (keys with their glued short labels included) and written in the
//! prompt template, e.g. `"a music score, instrumentation is piano, key is A major"`.

use super::metadata::Fields;
use crate::imslp::WorkMetadata;

/// The caption of a work.
pub fn caption(fields: &Fields) -> String {
    WorkMetadata::from_fields(fields.iter()).caption()
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
}
