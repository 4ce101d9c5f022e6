//! Page and set measures built on the staff detector: readability, adherence to the caption's
//! instrumentation, per-page feature vectors and set summaries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::median;
use super::staff::PageStructure;

/// Regularity (see [`crate::eval::Staff::regularity`]) a staff needs to count as readable.
/// Real engravings at 512 px width score 0.7-1.0, the spread coming from rounding line
/// centres to pixel rows; below 0.5 a line is off by more than a quarter of a staff space.
pub const READABLE_REGULARITY: f64 = 0.5;

/// Structural measures of one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageScore {
    /// Five-line staves found.
    pub staves: usize,
    /// Systems found.
    pub systems: usize,
    /// Staves in each system, top to bottom.
    pub staves_per_system: Vec<usize>,
    /// Median staff space (px); `None` without staves.
    pub staff_space: Option<f64>,
    /// Mean staff regularity (0..=1); 0 without staves.
    pub regularity: f64,
    /// Candidate staves that are not five-line staves (3, 4, 6 or more even lines).
    pub malformed_groups: usize,
    /// Fraction of the page's pixels that are ink (0..=1).
    pub ink_density: f64,
    /// Fraction of candidate staves (five-line staves plus malformed groups) that are
    /// five-line staves with regularity of at least [`READABLE_REGULARITY`]; 0 when the page
    /// has no system.
    pub readability: f64,
}

impl PageScore {
    /// Scores a detected page structure.
    pub fn from_structure(structure: &PageStructure) -> Self {
        Self {
            staves: structure.staves.len(),
            systems: structure.systems.len(),
            staves_per_system: structure.staves_per_system(),
            staff_space: structure.staff_space(),
            regularity: structure.mean_regularity().unwrap_or(0.0),
            malformed_groups: structure.malformed_groups,
            ink_density: structure.ink_density,
            readability: readability(structure),
        }
    }
}

fn readability(structure: &PageStructure) -> f64 {
    if structure.systems.is_empty() {
        return 0.0;
    }
    let candidates = structure.staves.len() + structure.malformed_groups;
    let readable =
        structure.staves.iter().filter(|staff| staff.regularity >= READABLE_REGULARITY).count();
    readable as f64 / candidates.max(1) as f64
}

/// Fraction of the page's systems whose staff count is one of `expected` (from
/// [`expected_staves`]); 0 for a page without systems, which adheres to nothing.
pub fn adherence(score: &PageScore, expected: &[usize]) -> f64 {
    if score.staves_per_system.is_empty() {
        return 0.0;
    }
    let matching = score.staves_per_system.iter().filter(|n| expected.contains(n)).count();
    matching as f64 / score.staves_per_system.len() as f64
}

/// Staff counts a single instrument (or choir) takes in a system. Keyboards take two staves,
/// an organ two or three, a choir four in open score or two in short score.
const INSTRUMENTS: &[(&str, &[usize])] = &[
    ("piano", &[2]),
    ("pianoforte", &[2]),
    ("fortepiano", &[2]),
    ("harpsichord", &[2]),
    ("clavichord", &[2]),
    ("keyboard", &[2]),
    ("harp", &[2]),
    ("organ", &[2, 3]),
    ("choir", &[4, 2]),
    ("chorus", &[4, 2]),
    ("satb", &[4, 2]),
    ("ssaa", &[4, 2]),
    ("ttbb", &[4, 2]),
    ("voice", &[1]),
    ("singer", &[1]),
    ("soprano", &[1]),
    ("mezzo", &[1]),
    ("alto", &[1]),
    ("contralto", &[1]),
    ("tenor", &[1]),
    ("baritone", &[1]),
    ("bass", &[1]),
    ("violin", &[1]),
    ("viola", &[1]),
    ("cello", &[1]),
    ("violoncello", &[1]),
    ("contrabass", &[1]),
    ("viol", &[1]),
    ("continuo", &[1]),
    ("flute", &[1]),
    ("piccolo", &[1]),
    ("fife", &[1]),
    ("recorder", &[1]),
    ("oboe", &[1]),
    ("clarinet", &[1]),
    ("bassoon", &[1]),
    ("saxophone", &[1]),
    ("horn", &[1]),
    ("trumpet", &[1]),
    ("cornet", &[1]),
    ("trombone", &[1]),
    ("tuba", &[1]),
    ("guitar", &[1]),
    ("lute", &[1]),
    ("mandolin", &[1]),
];

/// Named ensembles (two words) and their staves per system.
const ENSEMBLES: &[(&str, &str, usize)] = &[
    ("string", "quartet", 4),
    ("string", "trio", 3),
    ("string", "quintet", 5),
    ("piano", "trio", 4),
    ("piano", "quartet", 5),
    ("piano", "quintet", 6),
    ("wind", "quintet", 5),
    ("brass", "quintet", 5),
];

/// Forces whose staff count cannot be guessed from the name (checked after the named
/// ensembles, so a brass quintet is still known).
const UNKNOWABLE: &[&str] = &["orchestra", "band", "ensemble", "strings", "winds", "brass"];

const NUMBER_WORDS: &[&str] = &[
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

/// Acceptable staves per system, in increasing order, for an instrumentation ("violin and
/// piano", "2 violins, viola, cello", "mixed chorus (SATB)") or a whole caption.
///
/// Of a caption only the text after "instrumentation is " is read, up to the caption's next
/// part; text without that marker is read whole. Parts are split at `,` `;` `+` `&` `/` and
/// the words "and" / "with"; each part is one instrument (its last known word, so "alto
/// saxophone" is one staff), counted by a number just before it ("2 violins", "four
/// voices"). Keyboards take 2 staves, an organ 2 or 3, a choir 4 or 2, anything else 1, and
/// the counts of the parts add up, so a choir with piano gives 4 or 6. `None` when no
/// instrument is recognised or the forces are an orchestra, band or the like.
pub fn expected_staves(caption_or_instrumentation: &str) -> Option<Vec<usize>> {
    let text = caption_or_instrumentation.to_lowercase();
    let text = instrumentation_part(&text);
    let mut totals = vec![0usize];
    let mut recognised = false;
    for part in split_parts(text) {
        let words: Vec<&str> =
            part.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let (options, count) = match part_staves(&words) {
            Part::Known(options, count) => (options, count),
            Part::Unknowable => return None,
            Part::Unrecognised => continue,
        };
        recognised = true;
        for _ in 0..count {
            totals = totals.iter().flat_map(|t| options.iter().map(move |o| t + o)).collect();
            totals.sort_unstable();
            totals.dedup();
        }
    }
    recognised.then_some(totals)
}

/// The instrumentation inside a MusicScore-style caption ("a music score, instrumentation is
/// piano, key is A major"), or the whole text when it has no "instrumentation is".
fn instrumentation_part(text: &str) -> &str {
    const MARKER: &str = "instrumentation is ";
    let Some(at) = text.find(MARKER) else { return text };
    let rest = &text[at + MARKER.len()..];
    let end = [", key is ", ", style is ", ", genre is ", ", composer is "]
        .iter()
        .filter_map(|next| rest.find(next))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Parts of an instrumentation, each naming one instrument or ensemble; brackets are dropped
/// so that "mixed chorus (SATB)" stays one part.
fn split_parts(text: &str) -> Vec<String> {
    let mut text = format!(" {} ", text.replace(['(', ')', '[', ']'], " "));
    for joiner in [" and ", " with "] {
        text = text.replace(joiner, " , ");
    }
    text.split([',', ';', '+', '&', '/', '\n']).map(str::to_string).collect()
}

/// What one part of an instrumentation says about staves.
enum Part {
    /// Staff counts of the part's instrument, and how many of the instrument there are.
    Known(Vec<usize>, usize),
    /// An orchestra or the like: the page's staff count cannot be predicted.
    Unknowable,
    /// No instrument named (e.g. "sonata").
    Unrecognised,
}

/// Reads one part of an instrumentation, given as lower-case words.
fn part_staves(words: &[&str]) -> Part {
    for pair in words.windows(2).rev() {
        if let Some(&(_, _, staves)) =
            ENSEMBLES.iter().find(|(a, b, _)| singular(pair[0]) == *a && singular(pair[1]) == *b)
        {
            return Part::Known(vec![staves], 1);
        }
    }
    if words.iter().any(|w| UNKNOWABLE.contains(w)) {
        return Part::Unknowable;
    }
    let found = words.iter().enumerate().rev().find_map(|(i, word)| {
        let name = singular(word);
        INSTRUMENTS.iter().find(|(known, _)| *known == name).map(|(_, staves)| (i, staves.to_vec()))
    });
    let Some((at, options)) = found else { return Part::Unrecognised };
    let count = at.checked_sub(1).and_then(|i| number(words[i])).unwrap_or(1);
    if count == 0 {
        return Part::Unrecognised;
    }
    Part::Known(options, count.min(NUMBER_WORDS.len()))
}

/// A known name for a plural ("violins", "basses", "choruses"), else the word itself.
fn singular(word: &str) -> &str {
    let known = |w: &str| {
        INSTRUMENTS.iter().any(|(name, _)| *name == w)
            || ENSEMBLES.iter().any(|(a, b, _)| *a == w || *b == w)
    };
    if known(word) {
        return word;
    }
    for suffix in ["es", "s"] {
        if let Some(stem) = word.strip_suffix(suffix)
            && known(stem)
        {
            return stem;
        }
    }
    word
}

/// A count written in digits or as a word up to twelve.
fn number(word: &str) -> Option<usize> {
    word.parse::<usize>()
        .ok()
        .or_else(|| NUMBER_WORDS.iter().position(|w| *w == word).map(|i| i + 1))
}

/// Number of entries in a page feature vector.
pub const FEATURES: usize = 11;

/// Names of the entries of [`page_features`], in order.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "staves",
    "systems",
    "mean_staves_per_system",
    "staff_space_px",
    "regularity",
    "readability",
    "malformed_groups",
    "staff_width_fraction",
    "ink_density",
    "row_ink_std",
    "ink_rows",
];

/// A page's structure as a fixed-length vector (names in [`FEATURE_NAMES`]) for set-level
/// comparison with [`crate::eval::frechet_distance`]. Missing quantities (no staves) are 0.
/// Entries are in their natural units, so counts and pixel sizes weigh more than fractions.
pub fn page_features(structure: &PageStructure) -> [f64; FEATURES] {
    let score = PageScore::from_structure(structure);
    let systems = score.systems.max(1) as f64;
    let staff_width = if structure.staves.is_empty() || structure.width == 0 {
        0.0
    } else {
        let total: u32 = structure.staves.iter().map(|s| s.right.saturating_sub(s.left)).sum();
        f64::from(total) / (structure.staves.len() as f64 * f64::from(structure.width))
    };
    [
        score.staves as f64,
        score.systems as f64,
        score.staves_per_system.iter().sum::<usize>() as f64 / systems,
        score.staff_space.unwrap_or(0.0),
        score.regularity,
        score.readability,
        score.malformed_groups as f64,
        staff_width,
        structure.ink_density,
        structure.row_ink_std,
        structure.ink_rows,
    ]
}

/// Summary of the page scores of a set of pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetSummary {
    /// Pages summarised.
    pub pages: usize,
    /// Mean page readability; 0 for an empty set.
    pub mean_readability: f64,
    /// Median page readability; 0 for an empty set.
    pub median_readability: f64,
    /// Fraction of pages with at least one system; 0 for an empty set.
    pub with_system: f64,
    /// Histogram over all systems of all pages: staves in a system to number of systems.
    pub staves_per_system: BTreeMap<usize, usize>,
}

impl SetSummary {
    /// Summarises page scores.
    pub fn from_scores(scores: &[PageScore]) -> Self {
        let pages = scores.len();
        let n = pages.max(1) as f64;
        let readability: Vec<f64> = scores.iter().map(|s| s.readability).collect();
        let mut staves_per_system = BTreeMap::new();
        for count in scores.iter().flat_map(|s| &s.staves_per_system) {
            *staves_per_system.entry(*count).or_insert(0) += 1;
        }
        Self {
            pages,
            mean_readability: readability.iter().sum::<f64>() / n,
            median_readability: median(readability).unwrap_or(0.0),
            with_system: scores.iter().filter(|s| s.systems > 0).count() as f64 / n,
            staves_per_system,
        }
    }
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, Luma};

    use super::*;
    use crate::eval::StaffDetector;

    /// A page with two staves (lines 4 px apart) joined by a barline.
    fn piano_page() -> GrayImage {
        let mut page = GrayImage::from_pixel(512, 300, Luma([255]));
        for top in [60u32, 130] {
            for line in 0..5 {
                for x in 40..472 {
                    page.put_pixel(x, top + 4 * line, Luma([0]));
                }
            }
        }
        for y in 60..147 {
            page.put_pixel(40, y, Luma([0]));
        }
        page
    }

    fn score_with(staves_per_system: Vec<usize>) -> PageScore {
        PageScore {
            staves: staves_per_system.iter().sum(),
            systems: staves_per_system.len(),
            staves_per_system,
            staff_space: Some(4.0),
            regularity: 1.0,
            malformed_groups: 0,
            ink_density: 0.05,
            readability: 1.0,
        }
    }

    #[test]
    fn clean_page_is_fully_readable() {
        let score = PageScore::from_structure(&StaffDetector::default().detect(&piano_page()));
        assert_eq!(score.staves_per_system, vec![2]);
        assert_eq!(score.readability, 1.0);
        assert!((score.staff_space.unwrap() - 4.0).abs() < 0.5);
        assert!(score.ink_density > 0.0 && score.ink_density < 0.1);
    }

    #[test]
    fn blank_page_has_zero_readability() {
        let blank = GrayImage::from_pixel(512, 724, Luma([255]));
        let score = PageScore::from_structure(&StaffDetector::default().detect(&blank));
        assert_eq!((score.staves, score.systems, score.readability), (0, 0, 0.0));
        assert_eq!(score.staff_space, None);
    }

    #[test]
    fn malformed_groups_lower_readability() {
        let mut page = piano_page();
        // A sixth line, one staff space under the lower staff.
        for x in 40..472 {
            page.put_pixel(x, 150, Luma([0]));
        }
        let structure = StaffDetector::default().detect(&page);
        let score = PageScore::from_structure(&structure);
        assert_eq!((score.staves, score.malformed_groups), (1, 1));
        assert_eq!(score.readability, 0.5);
    }

    #[test]
    fn expected_staves_of_common_forces() {
        let cases: &[(&str, &[usize])] = &[
            ("piano", &[2]),
            ("Violin", &[1]),
            ("flute", &[1]),
            ("violin and piano", &[3]),
            ("Voice and piano", &[3]),
            ("voice, piano", &[3]),
            ("voice; piano", &[3]),
            ("clarinet, piano", &[3]),
            ("string quartet", &[4]),
            ("2 violins, viola, cello", &[4]),
            ("two violins, viola and violoncello", &[4]),
            ("2 violins, continuo", &[3]),
            ("SATB choir", &[2, 4]),
            ("mixed chorus (SATB)", &[2, 4]),
            ("women's chorus (SSAA), piano", &[4, 6]),
            ("4 voices", &[4]),
            ("alto saxophone", &[1]),
            ("piano trio", &[4]),
            ("brass quintet", &[5]),
            ("sonata for violin and piano", &[3]),
        ];
        for (text, expected) in cases {
            assert_eq!(expected_staves(text).as_deref(), Some(*expected), "{text}");
        }
        assert_eq!(expected_staves("orchestra"), None);
        assert_eq!(expected_staves("a music score, key is A major"), None);
        assert_eq!(expected_staves(""), None);
    }

    #[test]
    fn expected_staves_reads_only_the_caption_instrumentation() {
        let caption = "a music score, composer is Joseph Haydn, instrumentation is 2 violins, \
                       viola, cello, key is C major, style is Classical, genre is For cello";
        assert_eq!(expected_staves(caption), Some(vec![4]));
        let piano = "a music score, instrumentation is piano, key is A major";
        assert_eq!(expected_staves(piano), Some(vec![2]));
    }

    #[test]
    fn adherence_counts_matching_systems() {
        let piano = expected_staves("piano").unwrap();
        assert_eq!(adherence(&score_with(vec![2, 2, 2]), &piano), 1.0);
        assert!((adherence(&score_with(vec![2, 2, 3]), &piano) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(adherence(&score_with(vec![1, 1]), &piano), 0.0);
        let choir = expected_staves("mixed chorus").unwrap();
        assert_eq!(adherence(&score_with(vec![4, 2]), &choir), 1.0);
        assert_eq!(adherence(&score_with(Vec::new()), &choir), 0.0);
    }

    #[test]
    fn features_describe_the_page() {
        let features = page_features(&StaffDetector::default().detect(&piano_page()));
        let named: BTreeMap<&str, f64> = FEATURE_NAMES.iter().copied().zip(features).collect();
        assert_eq!(named["staves"], 2.0);
        assert_eq!(named["systems"], 1.0);
        assert_eq!(named["mean_staves_per_system"], 2.0);
        assert!((named["staff_space_px"] - 4.0).abs() < 0.5);
        assert!((named["staff_width_fraction"] - 432.0 / 512.0).abs() < 0.01);
        assert!(named["row_ink_std"] > 0.0 && named["ink_rows"] > 0.0);
        let white = GrayImage::from_pixel(64, 64, Luma([255]));
        let blank = page_features(&StaffDetector::default().detect(&white));
        assert!(blank.iter().all(|&v| v == 0.0), "{blank:?}");
    }

    #[test]
    fn set_summary_counts_and_round_trips() {
        let mut unreadable = score_with(Vec::new());
        unreadable.readability = 0.0;
        let mut half = score_with(vec![2, 3]);
        half.readability = 0.5;
        let summary = SetSummary::from_scores(&[score_with(vec![2, 2]), half, unreadable]);
        assert_eq!(summary.pages, 3);
        assert!((summary.mean_readability - 0.5).abs() < 1e-12);
        assert_eq!(summary.median_readability, 0.5);
        assert!((summary.with_system - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(summary.staves_per_system, BTreeMap::from([(2, 3), (3, 1)]));
        let json = serde_json::to_string(&summary).unwrap();
        assert_eq!(serde_json::from_str::<SetSummary>(&json).unwrap(), summary);
        assert_eq!(SetSummary::from_scores(&[]).pages, 0);
    }
}
