//! The staff detector held to structural labels: `labels.json` of the `musicscore-mini` set
//! (systems, staves per system and staff-line rows per page, taken from Verovio's SVG; see the
//! set's README).
//!
//! Every labelled staff counts: one the detector missed, or found too far off to be matched,
//! counts all its line rows as misses rather than being left out of the row accuracy.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::staff::{PageStructure, StaffDetector};
use crate::dataset::page::decode;
use crate::error::{Error, Result};

/// A detected line row counts as right when it lies this close to its labelled row (px).
pub const ROW_TOLERANCE: f64 = 1.0;

/// The labels of one page, as `labels.json` stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageLabel {
    /// Number of systems.
    pub systems: usize,
    /// Staves in each system, top to bottom.
    pub staves_per_system: Vec<usize>,
    /// Per staff, top to bottom, the rows of its lines (px, continuous: row `r` spans
    /// `r..r + 1`).
    pub staff_line_rows: Vec<Vec<f64>>,
}

/// How one page's detection compares with its labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageAccuracy {
    /// The number of systems is right.
    pub systems_right: bool,
    /// Staves per system are right, system by system.
    pub layout_right: bool,
    /// Labelled staves with a detected staff matched to them.
    pub staves_matched: usize,
    /// Detected staves matched to no labelled staff.
    pub staves_extra: usize,
    /// Labelled line rows.
    pub rows: usize,
    /// Labelled line rows with the matched staff's line within [`ROW_TOLERANCE`].
    pub rows_right: usize,
    /// Largest distance of a matched staff's line from its labelled row (px); 0 without
    /// matches.
    pub worst_row_error: f64,
}

/// Compares a detection with its labels. A labelled staff is matched to the unused detected
/// staff whose top line is nearest to its own, if that lies within half a staff space; line
/// `k` of the labelled staff is then compared with line `k` of the detected one.
pub fn page_accuracy(found: &PageStructure, label: &PageLabel) -> PageAccuracy {
    let mut used = vec![false; found.staves.len()];
    let (mut staves_matched, mut rows, mut rows_right) = (0, 0, 0);
    let mut worst_row_error: f64 = 0.0;
    for labelled in &label.staff_line_rows {
        rows += labelled.len();
        let (Some(&top), Some(&bottom)) = (labelled.first(), labelled.last()) else { continue };
        let space = (bottom - top) / labelled.len().saturating_sub(1).max(1) as f64;
        let nearest = found
            .staves
            .iter()
            .enumerate()
            .filter(|(i, staff)| !used[*i] && (staff.top - top).abs() <= 0.5 * space)
            .min_by(|(_, a), (_, b)| (a.top - top).abs().total_cmp(&(b.top - top).abs()));
        let Some((i, staff)) = nearest else { continue };
        used[i] = true;
        staves_matched += 1;
        for (expected, found) in labelled.iter().zip(&staff.line_rows) {
            let error = (found - expected).abs();
            worst_row_error = worst_row_error.max(error);
            rows_right += usize::from(error <= ROW_TOLERANCE);
        }
    }
    PageAccuracy {
        systems_right: found.systems.len() == label.systems,
        layout_right: found.staves_per_system() == label.staves_per_system,
        staves_matched,
        staves_extra: used.iter().filter(|u| !**u).count(),
        rows,
        rows_right,
        worst_row_error,
    }
}

/// Detector accuracy over a labelled set of pages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelAccuracy {
    /// Pages compared.
    pub pages: usize,
    /// Pages with the right number of systems.
    pub systems_right: usize,
    /// Pages with the right staves per system, system by system.
    pub layouts_right: usize,
    /// Labelled staves.
    pub staves: usize,
    /// Labelled staves matched by a detected staff.
    pub staves_matched: usize,
    /// Detected staves matched to no labelled staff.
    pub staves_extra: usize,
    /// Labelled line rows.
    pub rows: usize,
    /// Labelled line rows found within [`ROW_TOLERANCE`].
    pub rows_right: usize,
    /// Largest distance of a matched line from its labelled row (px).
    pub worst_row_error: f64,
    /// Time spent detecting, summed over pages (s); decoding is not included.
    pub detect_seconds: f64,
    /// Pages whose staves per system are wrong: `name: found [..], labelled [..]`.
    pub layout_misses: Vec<String>,
}

impl LabelAccuracy {
    /// Fraction of pages with the right number of systems.
    pub fn systems_rate(&self) -> f64 {
        self.systems_right as f64 / self.pages.max(1) as f64
    }

    /// Fraction of pages with the right staves per system.
    pub fn layouts_rate(&self) -> f64 {
        self.layouts_right as f64 / self.pages.max(1) as f64
    }

    /// Fraction of labelled line rows found within [`ROW_TOLERANCE`].
    pub fn rows_rate(&self) -> f64 {
        self.rows_right as f64 / self.rows.max(1) as f64
    }

    /// Mean detection time per page (ms).
    pub fn ms_per_page(&self) -> f64 {
        1000.0 * self.detect_seconds / self.pages.max(1) as f64
    }
}

/// Runs `detector` on every page of `labels_file` (paths relative to its folder) whose name
/// `keep` accepts, and compares what it finds with the labels.
pub fn label_accuracy(
    labels_file: &Path,
    keep: impl Fn(&str) -> bool,
    detector: &StaffDetector,
) -> Result<LabelAccuracy> {
    let text = std::fs::read_to_string(labels_file).map_err(|e| Error::io(labels_file, e))?;
    let labels: BTreeMap<String, PageLabel> = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("{}: {e}", labels_file.display())))?;
    let root = labels_file.parent().unwrap_or(Path::new("."));
    let mut total = LabelAccuracy::default();
    for (name, label) in labels.iter().filter(|(name, _)| keep(name)) {
        let page = decode(&root.join(name))?;
        let start = Instant::now();
        let found = detector.detect(&page);
        total.detect_seconds += start.elapsed().as_secs_f64();
        let page = page_accuracy(&found, label);
        total.pages += 1;
        total.systems_right += usize::from(page.systems_right);
        total.layouts_right += usize::from(page.layout_right);
        total.staves += label.staff_line_rows.len();
        total.staves_matched += page.staves_matched;
        total.staves_extra += page.staves_extra;
        total.rows += page.rows;
        total.rows_right += page.rows_right;
        total.worst_row_error = total.worst_row_error.max(page.worst_row_error);
        if !page.layout_right {
            total.layout_misses.push(format!(
                "{name}: found {:?}, labelled {:?}",
                found.staves_per_system(),
                label.staves_per_system
            ));
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::staff::{Staff, System};

    fn staff(top: f64, spacing: f64) -> Staff {
        let line_rows = std::array::from_fn(|k| top + spacing * k as f64);
        Staff {
            line_rows,
            spacing,
            regularity: 1.0,
            top,
            bottom: line_rows[4],
            left: 40,
            right: 470,
            line_thickness: 1.0,
        }
    }

    fn structure(staves: Vec<Staff>, systems: &[&[usize]]) -> PageStructure {
        let systems = systems
            .iter()
            .map(|s| System { staves: s.to_vec(), top: 0.0, bottom: 0.0, left: 0 })
            .collect();
        PageStructure { staves, systems, ..PageStructure::default() }
    }

    fn rows(top: f64, spacing: f64) -> Vec<f64> {
        (0..5).map(|k| top + spacing * k as f64).collect()
    }

    #[test]
    fn a_missed_staff_counts_its_rows_as_misses() {
        let label = PageLabel {
            systems: 1,
            staves_per_system: vec![2],
            staff_line_rows: vec![rows(50.0, 4.0), rows(100.0, 4.0)],
        };
        let found = structure(vec![staff(50.4, 4.0)], &[&[0]]);
        let page = page_accuracy(&found, &label);
        assert_eq!((page.systems_right, page.layout_right), (true, false));
        assert_eq!((page.staves_matched, page.staves_extra), (1, 0));
        assert_eq!((page.rows, page.rows_right), (10, 5));
        assert!((page.worst_row_error - 0.4).abs() < 1e-9);
    }

    #[test]
    fn rows_off_by_more_than_a_pixel_and_far_staves_do_not_count() {
        let label = PageLabel {
            systems: 2,
            staves_per_system: vec![1, 1],
            staff_line_rows: vec![rows(50.0, 4.0), rows(100.0, 4.0)],
        };
        // The first staff's spacing is 4.3, so its last line is 1.2 px low; the second staff
        // lies 3 px (over half a space) below its label and is an extra, not a match.
        let found = structure(vec![staff(50.0, 4.3), staff(103.0, 4.0)], &[&[0], &[1]]);
        let page = page_accuracy(&found, &label);
        assert_eq!((page.systems_right, page.layout_right), (true, true));
        assert_eq!((page.staves_matched, page.staves_extra), (1, 1));
        assert_eq!((page.rows, page.rows_right), (10, 4));
        assert!((page.worst_row_error - 1.2).abs() < 1e-9);
    }

    fn mini_labels() -> std::path::PathBuf {
        crate::dataset::bundled_mini().join("labels.json")
    }

    #[test]
    fn detector_matches_the_labels_of_every_split() {
        let found = label_accuracy(&mini_labels(), |_| true, &StaffDetector::default()).unwrap();
        // 261 train, 32 val and 32 test pages with 3210 staves between them (counted from
        // labels.json with python). The measured accuracy is 100% on all three counts, so
        // that is the floor held here; the issue asks for at least 95%.
        assert_eq!((found.pages, found.staves, found.rows), (325, 3210, 5 * 3210));
        let misses = &found.layout_misses;
        assert_eq!(found.systems_right, found.pages, "{misses:#?}");
        assert_eq!(found.layouts_right, found.pages, "{misses:#?}");
        assert_eq!((found.staves_matched, found.staves_extra), (3210, 0));
        assert_eq!(found.rows_right, found.rows, "worst row {} px", found.worst_row_error);
        assert!(found.worst_row_error <= ROW_TOLERANCE);
    }

    /// `cargo test --release --lib eval::labels -- --ignored --nocapture` prints the figures.
    #[test]
    #[ignore = "prints the detector's accuracy and speed on the bundled set"]
    fn print_detector_accuracy() {
        let detector = StaffDetector::default();
        for split in ["train/", "val/", "test/", ""] {
            let found =
                label_accuracy(&mini_labels(), |name| name.starts_with(split), &detector).unwrap();
            println!(
                "{:<6} {:>3} pages: systems {:.1}%, staves per system {:.1}%, line rows within \
                 {ROW_TOLERANCE} px {:.2}% (worst {:.2} px), {}/{} staves matched, {} extra; \
                 {:.2} ms/page",
                if split.is_empty() { "all" } else { split.trim_end_matches('/') },
                found.pages,
                100.0 * found.systems_rate(),
                100.0 * found.layouts_rate(),
                100.0 * found.rows_rate(),
                found.worst_row_error,
                found.staves_matched,
                found.staves,
                found.staves_extra,
                found.ms_per_page()
            );
        }
    }
}
