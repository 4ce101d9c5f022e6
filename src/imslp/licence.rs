//! Edition licences: IMSLP's free-text copyright labels read as public domain, CC0 or a
//! Creative Commons licence, and the filter behind `scoregen ingest --licence`.
//!
//! IMSLP labels an edition "Public Domain", "Creative Commons Attribution 4.0",
//! "Creative Commons Attribution-NonCommercial-ShareAlike 4.0", "Non-PD US" and so on; users
//! write the short codes of <https://creativecommons.org/licenses/> ("cc-by-sa-4.0",
//! "CC BY-SA 3.0"). [`Licence::from_label`] reads both by the same rules:
//! 1. the label is lower-cased and cut into words at anything but letters, digits and dots;
//! 2. a label that says "non-PD" or "not public domain" is none of these licences: IMSLP
//!    uses it for scans that are public domain in some countries only;
//! 3. "cc0", "cc 0" or "Creative Commons Zero" is [`Licence::Cc0`];
//! 4. "cc" or "Creative Commons" with "by"/"Attribution" is [`Licence::CreativeCommons`],
//!    its terms from "nc"/"NonCommercial"/"Non-commercial", "sa"/"ShareAlike"/"Share Alike"
//!    and "nd"/"NoDerivatives"/"NoDerivs"/"No Derivative Works", its version from the first
//!    word such as "4.0" or "3" (read as "3.0");
//! 5. "Public Domain", "pd" or "Public Domain Mark" is [`Licence::PublicDomain`].
//!
//! Anything else ("Copyright", "All rights reserved", a Creative Commons label without
//! "Attribution") is not recognised, and so never passes a [`LicenceFilter`].

use std::fmt;
use std::str::FromStr;

use super::{Edition, WorkMetadata};
use crate::error::{Error, Result};

/// A licence under which an edition may be reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Licence {
    /// No copyright: "Public Domain", the Public Domain Mark.
    PublicDomain,
    /// The CC0 public-domain dedication.
    Cc0,
    /// A Creative Commons licence with attribution (CC BY and its variants).
    CreativeCommons(CcTerms),
}

/// The terms of a Creative Commons licence beyond attribution, which all of them ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CcTerms {
    /// NonCommercial (NC): no commercial reuse.
    pub non_commercial: bool,
    /// ShareAlike (SA): adaptations under the same licence.
    pub share_alike: bool,
    /// NoDerivatives (ND): no adaptations.
    pub no_derivatives: bool,
    /// The licence version, "4.0", "3.0", "2.5"; `None` when the label gives none.
    pub version: Option<String>,
}

impl Licence {
    /// Reads an IMSLP label or a licence code by the rules in the module docs; `None` when it
    /// names none of the licences a filter can keep.
    pub fn from_label(label: &str) -> Option<Self> {
        let lower = label.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric() && c != '.')
            .map(|word| word.trim_matches('.'))
            .filter(|word| !word.is_empty())
            .collect();
        let pair = |first: &str, second: &[&str]| {
            words.windows(2).any(|w| w[0] == first && second.contains(&w[1]))
        };
        let has = |word: &str| words.contains(&word);

        if has("nonpd") || pair("non", &["pd", "public"]) || pair("not", &["pd", "public"]) {
            return None;
        }
        let creative_commons = has("cc") || pair("creative", &["commons"]);
        if has("cc0") || pair("cc", &["0", "zero"]) || (creative_commons && has("zero")) {
            return Some(Self::Cc0);
        }
        if creative_commons && (has("by") || has("attribution")) {
            let terms = CcTerms {
                non_commercial: has("nc") || has("noncommercial") || pair("non", &["commercial"]),
                share_alike: has("sa") || has("sharealike") || pair("share", &["alike"]),
                no_derivatives: has("nd")
                    || has("noderivatives")
                    || has("noderivs")
                    || pair("no", &["derivatives", "derivative", "derivs"]),
                version: words.iter().find_map(|word| version(word)),
            };
            return Some(Self::CreativeCommons(terms));
        }
        let public_domain = has("pd") || has("pdm") || has("publicdomain");
        (public_domain || pair("public", &["domain"])).then_some(Self::PublicDomain)
    }

    /// Whether an edition under `self` is kept by a filter entry `wanted`: the same kind and
    /// the same Creative Commons terms; a `wanted` without a version takes every version.
    pub fn satisfies(&self, wanted: &Licence) -> bool {
        match (self, wanted) {
            (Self::CreativeCommons(have), Self::CreativeCommons(want)) => {
                let same_terms = (have.non_commercial, have.share_alike, have.no_derivatives)
                    == (want.non_commercial, want.share_alike, want.no_derivatives);
                same_terms && (want.version.is_none() || want.version == have.version)
            }
            (have, want) => have == want,
        }
    }
}

/// "4.0" and "3" (as "3.0") are versions; larger numbers are years or plate numbers.
fn version(word: &str) -> Option<String> {
    let (major, minor) = word.split_once('.').unwrap_or((word, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let plausible = digits(major) && digits(minor) && major.len() == 1 && minor.len() == 1;
    (plausible && major != "0").then(|| format!("{major}.{minor}"))
}

/// The short code: "public-domain", "cc0", "cc-by-nc-sa-4.0", "cc-by" (any version).
impl fmt::Display for Licence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let terms = match self {
            Self::PublicDomain => return f.write_str("public-domain"),
            Self::Cc0 => return f.write_str("cc0"),
            Self::CreativeCommons(terms) => terms,
        };
        f.write_str("cc-by")?;
        for (on, code) in [
            (terms.non_commercial, "-nc"),
            (terms.share_alike, "-sa"),
            (terms.no_derivatives, "-nd"),
        ] {
            if on {
                f.write_str(code)?;
            }
        }
        match &terms.version {
            Some(version) => write!(f, "-{version}"),
            None => Ok(()),
        }
    }
}

/// Parses a code or label the user names (`--licence`), as [`Licence::from_label`] does.
impl FromStr for Licence {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::from_label(text).ok_or_else(|| {
            Error::input(format!(
                "licence `{text}`: expected public-domain, cc0 or a Creative Commons licence \
                 such as cc-by, cc-by-4.0 or cc-by-sa-3.0"
            ))
        })
    }
}

/// The licences an edition must be under to be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceFilter {
    allowed: Vec<Licence>,
}

impl LicenceFilter {
    /// A filter keeping editions under any of `allowed` (see [`Licence::satisfies`]).
    pub fn new(allowed: Vec<Licence>) -> Self {
        Self { allowed }
    }

    /// Whether an edition's licence label passes; an edition without a label never does.
    pub fn allows(&self, edition: &Edition) -> bool {
        let Some(licence) = edition.licence.as_deref().and_then(Licence::from_label) else {
            return false;
        };
        self.allowed.iter().any(|wanted| licence.satisfies(wanted))
    }

    /// Keeps the work's editions that pass. A work with none left is given back as `Err`
    /// with the reason, which names the licences asked for and those the editions carry.
    pub fn apply(&self, mut work: WorkMetadata) -> Result<WorkMetadata, String> {
        if work.editions.is_empty() {
            return Err(format!("no edition listed, so none under {self}"));
        }
        let labels = edition_labels(&work.editions);
        work.editions.retain(|edition| self.allows(edition));
        if work.editions.is_empty() {
            return Err(format!("no edition under {self} (editions: {labels})"));
        }
        Ok(work)
    }
}

/// The codes asked for, joined with " or ".
impl fmt::Display for LicenceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<String> = self.allowed.iter().map(Licence::to_string).collect();
        f.write_str(&codes.join(" or "))
    }
}

/// The distinct licence labels of some editions, quoted, in order of first appearance.
fn edition_labels(editions: &[Edition]) -> String {
    let mut labels: Vec<String> = Vec::new();
    for edition in editions {
        let label = match &edition.licence {
            Some(label) => format!("\"{}\"", label.replace('\n', " ")),
            None => "no licence given".to_string(),
        };
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(label: &str) -> Option<String> {
        Licence::from_label(label).map(|licence| licence.to_string())
    }

    #[test]
    fn reads_imslp_labels_and_user_codes_alike() {
        let cases = [
            ("Public Domain", Some("public-domain")),
            ("public-domain", Some("public-domain")),
            ("PD", Some("public-domain")),
            ("Public Domain Mark 1.0", Some("public-domain")),
            ("Creative Commons Attribution 4.0", Some("cc-by-4.0")),
            ("Creative Commons Attribution 3.0 Unported", Some("cc-by-3.0")),
            ("CC BY-SA 3.0", Some("cc-by-sa-3.0")),
            ("cc-by-sa-4", Some("cc-by-sa-4.0")),
            ("Creative Commons Attribution-ShareAlike 4.0", Some("cc-by-sa-4.0")),
            ("Creative Commons Attribution-NonCommercial 4.0", Some("cc-by-nc-4.0")),
            (
                "Creative Commons Attribution Non-commercial Share Alike 3.0",
                Some("cc-by-nc-sa-3.0"),
            ),
            ("Creative Commons Attribution-NoDerivs 2.5", Some("cc-by-nd-2.5")),
            ("Creative Commons Attribution-NonCommercial-No Derivative Works", Some("cc-by-nc-nd")),
            ("cc-by", Some("cc-by")),
            ("Creative Commons Zero 1.0", Some("cc0")),
            ("CC0 1.0 Universal", Some("cc0")),
            ("cc-0", Some("cc0")),
            // Public domain in some countries only is not public domain.
            ("Non-PD US", None),
            ("Public Domain - Non-PD EU", None),
            ("Copyright", None),
            ("All rights reserved", None),
            ("Creative Commons", None),
            ("cc", None),
            ("", None),
        ];
        for (label, expected) in cases {
            assert_eq!(code(label).as_deref(), expected, "label {label:?}");
        }
    }

    #[test]
    fn versions_are_small_numbers_only() {
        assert_eq!(version("4.0").as_deref(), Some("4.0"));
        assert_eq!(version("3").as_deref(), Some("3.0"));
        assert_eq!(version("1910"), None);
        assert_eq!(version("0"), None);
        assert_eq!(version("4.01"), None);
        // A year beside the label does not become the version.
        assert_eq!(code("Creative Commons Attribution, uploaded 2019").as_deref(), Some("cc-by"));
    }

    #[test]
    fn a_code_without_version_takes_every_version_and_terms_must_match() {
        let licence = |text: &str| text.parse::<Licence>().unwrap();
        let by4 = licence("Creative Commons Attribution 4.0");
        assert!(by4.satisfies(&licence("cc-by")));
        assert!(by4.satisfies(&licence("cc-by-4.0")));
        assert!(!by4.satisfies(&licence("cc-by-3.0")));
        assert!(!by4.satisfies(&licence("cc-by-sa")), "ShareAlike is a different licence");
        assert!(!licence("cc-by-sa-4.0").satisfies(&licence("cc-by")));
        assert!(!licence("cc-by").satisfies(&licence("cc-by-4.0")), "an unknown version");
        assert!(!licence("cc0").satisfies(&licence("public-domain")));
        assert!(licence("Public Domain").satisfies(&licence("pd")));

        let err = "copyleft".parse::<Licence>().unwrap_err();
        assert!(err.is_input() && err.to_string().contains("`copyleft`"), "{err}");
    }

    fn edition(licence: Option<&str>) -> Edition {
        Edition { licence: licence.map(str::to_string), ..Edition::default() }
    }

    #[test]
    fn the_filter_keeps_matching_editions_and_says_why_a_work_is_left_out() {
        let filter = LicenceFilter::new(vec![Licence::PublicDomain, "cc-by-4.0".parse().unwrap()]);
        assert_eq!(filter.to_string(), "public-domain or cc-by-4.0");
        let work = WorkMetadata {
            editions: vec![
                edition(Some("Public Domain")),
                edition(Some("Creative Commons Attribution-NonCommercial 4.0")),
                edition(Some("Creative Commons Attribution 4.0")),
                edition(None),
            ],
            ..WorkMetadata::default()
        };
        let kept = filter.apply(work.clone()).unwrap();
        let licences: Vec<_> = kept.editions.iter().map(|e| e.licence.as_deref()).collect();
        assert_eq!(licences, [Some("Public Domain"), Some("Creative Commons Attribution 4.0")]);

        let closed = WorkMetadata { editions: work.editions[1..].to_vec(), ..work.clone() };
        let only_nc = LicenceFilter::new(vec!["cc0".parse().unwrap()]);
        assert_eq!(
            only_nc.apply(closed).unwrap_err(),
            "no edition under cc0 (editions: \"Creative Commons Attribution-NonCommercial 4.0\", \
             \"Creative Commons Attribution 4.0\", no licence given)"
        );
        let bare = filter.apply(WorkMetadata::default()).unwrap_err();
        assert_eq!(bare, "no edition listed, so none under public-domain or cc-by-4.0");
    }
}
