//! A word-level tokenizer whose vocabulary is built from the training captions and saved
//! with the checkpoint (`tokenizer.json`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Padding, filling every sequence to the model's length.
pub const PAD: u32 = 0;
/// A word the vocabulary does not know.
pub const UNKNOWN: u32 = 1;
/// The empty prompt: its embedding is the learned unconditional context of guidance.
pub const EMPTY: u32 = 2;
const SPECIAL: [&str; 3] = ["<pad>", "<unk>", "<empty>"];

/// Maps caption words to token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenizer {
    words: Vec<String>,
    index: HashMap<String, u32>,
    max_tokens: usize,
}

/// The tokenizer as saved on disk.
#[derive(Serialize, Deserialize)]
struct TokenizerFile {
    max_tokens: usize,
    words: Vec<String>,
}

/// A tokenized prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// Token ids, padded to the tokenizer's length.
    pub ids: Vec<u32>,
    /// Words that are not in the vocabulary (each encoded as the unknown token).
    pub unknown: Vec<String>,
    /// Whether words were cut off at the tokenizer's length.
    pub truncated: bool,
}

/// Splits a caption into lower-case words: letters, digits and accidentals; the rest
/// (spaces, commas, hyphens) separates.
pub fn words(caption: &str) -> impl Iterator<Item = String> + '_ {
    caption
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '#' | '♭' | '♯')))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl Tokenizer {
    /// Builds the vocabulary from captions: every word seen at least `min_count` times,
    /// most frequent first (ties alphabetical, so the result is deterministic).
    pub fn from_captions<'a>(
        captions: impl IntoIterator<Item = &'a str>,
        min_count: usize,
        max_tokens: usize,
    ) -> Self {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for caption in captions {
            for word in words(caption) {
                *counts.entry(word).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> =
            counts.into_iter().filter(|(_, n)| *n >= min_count).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let words = SPECIAL.iter().map(|s| s.to_string()).chain(ranked.into_iter().map(|(w, _)| w));
        Self::from_words(words.collect(), max_tokens)
    }

    fn from_words(words: Vec<String>, max_tokens: usize) -> Self {
        let index = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        Self { words, index, max_tokens }
    }

    /// Number of token ids (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.words.len()
    }

    /// The fixed sequence length.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Tokenizes a prompt. The empty prompt (no words) is the single [`EMPTY`] token.
    pub fn encode(&self, prompt: &str) -> Tokens {
        let mut ids = Vec::with_capacity(self.max_tokens);
        let mut unknown = Vec::new();
        let mut truncated = false;
        for word in words(prompt) {
            if ids.len() == self.max_tokens {
                truncated = true;
                break;
            }
            match self.index.get(&word) {
                Some(&id) => ids.push(id),
                None => {
                    ids.push(UNKNOWN);
                    if !unknown.contains(&word) {
                        unknown.push(word);
                    }
                }
            }
        }
        if ids.is_empty() {
            ids.push(EMPTY);
        }
        ids.resize(self.max_tokens, PAD);
        Tokens { ids, unknown, truncated }
    }

    /// Writes `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = TokenizerFile { max_tokens: self.max_tokens, words: self.words.clone() };
        let json = serde_json::to_string_pretty(&file).expect("tokenizer serialises");
        crate::fsutil::write_atomic(path, json.as_bytes())
    }

    /// Reads `tokenizer.json`, checking that the special tokens are where they belong.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: TokenizerFile = serde_json::from_str(&text).map_err(|e| {
            Error::input(format!("{}: not a scoregen tokenizer: {e}", path.display()))
        })?;
        if file.words.len() < SPECIAL.len() || file.words[..SPECIAL.len()] != SPECIAL {
            return Err(Error::input(format!(
                "{}: the vocabulary must start with {SPECIAL:?}",
                path.display()
            )));
        }
        if file.max_tokens == 0 {
            return Err(Error::input(format!("{}: `max_tokens` must be positive", path.display())));
        }
        Ok(Self::from_words(file.words, file.max_tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        Tokenizer::from_captions(
            [
                "a music score, instrumentation is piano",
                "a music score, instrumentation is violin, key is A major",
            ],
            1,
            8,
        )
    }

    #[test]
    fn vocabulary_orders_by_frequency_then_alphabet() {
        let t = tokenizer();
        // "a" and "is" appear 3 times; "instrumentation", "music", "score" twice.
        assert_eq!(&t.words[3..8], ["a", "is", "instrumentation", "music", "score"]);
        assert_eq!(&t.words[8..], ["key", "major", "piano", "violin"]);
        assert_eq!(t.vocab_size(), 3 + 9);
    }

    #[test]
    fn encodes_pads_and_reports_unknown_words_once() {
        let t = tokenizer();
        let tokens = t.encode("Piano, harp and harp");
        assert_eq!(tokens.ids.len(), 8);
        assert_eq!(tokens.ids[0], t.index["piano"]);
        assert_eq!(&tokens.ids[1..4], [UNKNOWN, UNKNOWN, UNKNOWN]);
        assert_eq!(&tokens.ids[4..], [PAD; 4]);
        assert_eq!(tokens.unknown, ["harp", "and"]);
        assert!(!tokens.truncated);
    }

    #[test]
    fn empty_and_overlong_prompts() {
        let t = tokenizer();
        assert_eq!(t.encode(" , ").ids, [EMPTY, PAD, PAD, PAD, PAD, PAD, PAD, PAD]);
        let long = t.encode("a music score a music score a music score");
        assert!(long.truncated);
        assert_eq!(long.ids.len(), 8);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let t = tokenizer();
        t.save(&path).unwrap();
        assert_eq!(Tokenizer::load(&path).unwrap(), t);
        std::fs::write(&path, r#"{"max_tokens": 4, "words": ["a"]}"#).unwrap();
        let err = Tokenizer::load(&path).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json") && err.contains("<pad>"), "{err}");
    }
}
