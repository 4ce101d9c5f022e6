//! Structural evaluation of score pages: staff detection, page readability, prompt adherence
//! and distances between sets of pages.
//!
//! The measures are classical image analysis rather than a learned network, so they can judge
//! generated pages without a reference model and explain their verdicts:
//! - [`StaffDetector`] finds staff lines, five-line staves and systems on a grayscale page
//!   ([`staff`]);
//! - [`PageScore`], [`expected_staves`], [`adherence`], [`page_features`] and [`SetSummary`]
//!   turn detections into page and set measures ([`measures`]);
//! - [`frechet_distance`] compares two sets of page feature vectors ([`frechet`]);
//! - [`label_accuracy`] holds the detector to labelled pages ([`labels`]);
//! - [`overlay()`] draws what was detected over the page for reports ([`overlay`](mod@overlay)).

pub mod frechet;
pub mod labels;
pub mod measures;
pub mod overlay;
pub mod report;
pub mod staff;

pub use frechet::frechet_distance;
pub use labels::{LabelAccuracy, PageLabel, label_accuracy};
pub use measures::{
    FEATURE_NAMES, FEATURES, PageScore, READABLE_REGULARITY, SetSummary, adherence,
    expected_staves, page_features,
};
pub use overlay::overlay;
pub use staff::{PageStructure, Staff, StaffDetector, StaffLine, System};

/// The median of `values` (the mean of the two middle ones for an even count); `None` when
/// empty. NaNs sort last, so they only matter when they are most of the values.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        Some(values[mid])
    } else {
        Some(0.5 * (values[mid - 1] + values[mid]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }
}
