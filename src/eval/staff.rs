//! Staff detection on grayscale score pages: staff lines, five-line staves and systems.
//!
//! The method is a horizontal ink projection computed in narrow vertical bands:
//! 1. pixels are ink when clearly darker than the paper (the page's median grey), so the
//!    faint, anti-aliased 1 px lines of real engravings and grey generated backgrounds both
//!    work;
//! 2. in each band a row is a line candidate when its longest ink run (small gaps bridged)
//!    covers most of the band; adjacent candidate rows form one segment (centre, thickness);
//! 3. segments are chained across bands while their centres stay close, which follows a
//!    slightly skewed line that no single row would hold; chains are extended to the line's
//!    true ends and near-duplicates are merged;
//! 4. long lines with the same horizontal extent and even gaps form runs; a run of exactly
//!    five lines is a staff, a run of three, four or six and more is a malformed group;
//! 5. consecutive staves are one system when a barline, bracket or brace at their left end
//!    runs through the gap between them.
//!
//! On the `musicscore-mini` pages (staff spaces of 2.8-5 px at 512 px width) this finds every
//! labelled staff and system (all 325 pages, see [`super::labels`]); the defaults are tuned for
//! that page size.

use image::GrayImage;
use serde::{Deserialize, Serialize};

use super::median;
use crate::error::{Error, Result};

/// Settings of the staff detector; [`StaffDetector::detect`] does the work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffDetector {
    /// How much darker than the paper a pixel must be to count as ink, in grey levels (0-255).
    /// The paper level is the page's median grey.
    pub ink_contrast: u8,
    /// Width of the vertical bands the row projection is computed in (px). Narrow enough that
    /// a line with a slope of about 1 px per 100 px stays within two rows of a band.
    pub band_width: u32,
    /// Fraction (0-1] of a band's width that a row's longest ink run must cover for the row to
    /// be a line candidate in that band.
    pub band_fill: f64,
    /// Longest gap (px) bridged inside an ink run, along lines and down barlines, so that salt
    /// noise does not cut them.
    pub max_gap: u32,
    /// Thickest run of adjacent candidate rows (px) still taken as a line; thicker runs are
    /// beams or solid blobs.
    pub max_line_thickness: u32,
    /// Largest change of a line's centre (px) from one band to the next when chaining segments;
    /// it bounds the skew that is followed.
    pub link_tolerance: f64,
    /// Lines whose centres are at most this far apart (px) are merged into one (split chains,
    /// one line found twice). Must stay below `min_spacing`.
    pub merge_distance: f64,
    /// Shortest line kept, as a fraction of the page's ink width (the span holding all but the
    /// outer 1% of ink on either side).
    pub min_line_fraction: f64,
    /// Shortest line kept (px), whatever the ink width.
    pub min_line_length: f64,
    /// Smallest staff space accepted: distance between neighbouring lines of a staff (px).
    pub min_spacing: f64,
    /// Largest staff space accepted (px).
    pub max_spacing: f64,
    /// Tolerance on each gap of a staff, as a fraction of the staff space; one extra pixel is
    /// always allowed because line centres are quantised to rows.
    pub spacing_tolerance: f64,
    /// Minimum horizontal overlap of two lines, as a fraction of the longer one, for them to
    /// belong to one staff: a staff's lines start and end together.
    pub min_line_overlap: f64,
    /// Fallback for systems: when set, two staves not joined by a barline still form one system
    /// if the white gap between them is under this many staff spaces. `None` (the default)
    /// trusts barlines alone, because single-staff systems are often closer together than the
    /// staves inside a system with lyrics.
    pub gap_join_spaces: Option<f64>,
}

impl Default for StaffDetector {
    fn default() -> Self {
        Self {
            ink_contrast: 24,
            band_width: 64,
            band_fill: 0.45,
            max_gap: 1,
            max_line_thickness: 3,
            link_tolerance: 1.5,
            merge_distance: 1.5,
            min_line_fraction: 0.1,
            min_line_length: 32.0,
            min_spacing: 2.0,
            max_spacing: 12.0,
            spacing_tolerance: 0.2,
            min_line_overlap: 0.8,
            gap_join_spaces: None,
        }
    }
}

/// One long horizontal line found on the page, part of a staff or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffLine {
    /// Centre row (px, continuous: pixel row `r` spans `r..r + 1`), median along the line.
    pub y: f64,
    /// Thickness (px), median along the line.
    pub thickness: f64,
    /// First column (px).
    pub x0: u32,
    /// One past the last column (px).
    pub x1: u32,
}

impl StaffLine {
    /// Length of the line (px).
    pub fn length(&self) -> u32 {
        self.x1.saturating_sub(self.x0)
    }

    /// Shared horizontal extent of two lines as a fraction of the longer one (negative when
    /// they do not overlap).
    fn overlap(&self, other: &StaffLine) -> f64 {
        let shared = f64::from(self.x1.min(other.x1)) - f64::from(self.x0.max(other.x0));
        shared / f64::from(self.length().max(other.length()).max(1))
    }
}

/// A five-line staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staff {
    /// Centre rows of the five lines, top to bottom (px, continuous like [`StaffLine::y`]).
    pub line_rows: [f64; 5],
    /// Staff space: mean distance between neighbouring lines (px).
    pub spacing: f64,
    /// Evenness of the lines in 0..=1: 1 minus the largest distance of a line from the
    /// least-squares evenly spaced fit, over half a staff space (1 = perfectly even).
    pub regularity: f64,
    /// Row of the top line (px).
    pub top: f64,
    /// Row of the bottom line (px).
    pub bottom: f64,
    /// First column of the lines (px, median over the five lines).
    pub left: u32,
    /// One past the last column of the lines (px, median over the five lines).
    pub right: u32,
    /// Line thickness (px, median over the five lines).
    pub line_thickness: f64,
}

impl Staff {
    /// The staff made of `run` (indices into `lines`), or `None` unless it has five lines.
    fn from_lines(lines: &[StaffLine], run: &[usize]) -> Option<Self> {
        if run.len() != 5 {
            return None;
        }
        let line_rows: [f64; 5] = std::array::from_fn(|i| lines[run[i]].y);
        let of_lines = |value: fn(&StaffLine) -> f64| {
            median(run.iter().map(|&k| value(&lines[k])).collect()).unwrap_or(0.0)
        };
        Some(Self {
            line_rows,
            spacing: (line_rows[4] - line_rows[0]) / 4.0,
            regularity: regularity(&line_rows),
            top: line_rows[0],
            bottom: line_rows[4],
            left: of_lines(|l| f64::from(l.x0)) as u32,
            right: of_lines(|l| f64::from(l.x1)) as u32,
            line_thickness: of_lines(|l| l.thickness),
        })
    }
}

/// Staves that belong together, read as one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct System {
    /// Indices into [`PageStructure::staves`], top to bottom.
    pub staves: Vec<usize>,
    /// Row of the first staff's top line (px).
    pub top: f64,
    /// Row of the last staff's bottom line (px).
    pub bottom: f64,
    /// Leftmost first column of its staves (px).
    pub left: u32,
}

impl System {
    fn new(staves: &[Staff], indices: Vec<usize>) -> Self {
        let first = indices.first().map(|&i| &staves[i]);
        let last = indices.last().map(|&i| &staves[i]);
        Self {
            top: first.map_or(0.0, |s| s.top),
            bottom: last.map_or(0.0, |s| s.bottom),
            left: indices.iter().map(|&i| staves[i].left).min().unwrap_or(0),
            staves: indices,
        }
    }
}

/// What the detector found on one page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PageStructure {
    /// Page width (px).
    pub width: u32,
    /// Page height (px).
    pub height: u32,
    /// Every long horizontal line found, top to bottom, whether or not it is in a staff.
    pub lines: Vec<StaffLine>,
    /// Five-line staves, top to bottom.
    pub staves: Vec<Staff>,
    /// Systems, top to bottom; every staff is in exactly one.
    pub systems: Vec<System>,
    /// Groups of three or more evenly spaced, equally long lines that are not five-line
    /// staves (3, 4, 6 or more lines): candidate staves that failed.
    pub malformed_groups: usize,
    /// Fraction of the page's pixels that are ink (0..=1).
    pub ink_density: f64,
    /// Standard deviation over rows of the fraction of a row that is ink; staff lines make
    /// this row projection spiky.
    pub row_ink_std: f64,
    /// Fraction of rows holding any ink (0..=1).
    pub ink_rows: f64,
    /// Horizontal span of the ink (px), leaving out the outer 1% on either side.
    pub ink_width: u32,
}

impl PageStructure {
    /// Number of staves in each system, top to bottom.
    pub fn staves_per_system(&self) -> Vec<usize> {
        self.systems.iter().map(|system| system.staves.len()).collect()
    }

    /// Median staff space over the staves (px); `None` without staves.
    pub fn staff_space(&self) -> Option<f64> {
        median(self.staves.iter().map(|staff| staff.spacing).collect())
    }

    /// Mean regularity over the staves; `None` without staves.
    pub fn mean_regularity(&self) -> Option<f64> {
        let n = self.staves.len();
        (n > 0).then(|| self.staves.iter().map(|s| s.regularity).sum::<f64>() / n as f64)
    }
}

impl StaffDetector {
    /// Checks that the settings make sense; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        let any = f64::INFINITY;
        // (field, value, lowest, highest allowed)
        let ranges: [(&str, f64, f64, f64); 11] = [
            ("band_width", f64::from(self.band_width), 1.0, any),
            ("band_fill", self.band_fill, 0.01, 1.0),
            ("link_tolerance", self.link_tolerance, 0.0, any),
            ("merge_distance", self.merge_distance, 0.0, any),
            ("min_line_fraction", self.min_line_fraction, 0.0, 1.0),
            ("min_line_length", self.min_line_length, 0.0, any),
            // Lines closer than the merge distance are merged, so no staff could be smaller.
            ("min_spacing", self.min_spacing, self.merge_distance, any),
            ("max_spacing", self.max_spacing, self.min_spacing, any),
            ("spacing_tolerance", self.spacing_tolerance, 0.0, any),
            ("min_line_overlap", self.min_line_overlap, 0.0, 1.0),
            ("gap_join_spaces", self.gap_join_spaces.unwrap_or(0.0), 0.0, any),
        ];
        for (field, value, low, high) in ranges {
            // `contains` is false for NaN, so NaN settings are refused too.
            if !(low..=high).contains(&value) {
                let expected = if high.is_finite() {
                    format!("in [{low}, {high}]")
                } else {
                    format!("at least {low}")
                };
                return Err(Error::input(format!(
                    "staff detector setting `{field}` is {value}, expected {expected}"
                )));
            }
        }
        Ok(())
    }

    /// Finds staff lines, staves and systems on `page` (dark ink on light paper).
    pub fn detect(&self, page: &GrayImage) -> PageStructure {
        let ink = InkMap::new(page, self.ink_contrast);
        let profile = ink.profile();
        let ink_width = ink.ink_width();
        let min_length = self.min_line_length.max(self.min_line_fraction * ink_width as f64);
        let lines: Vec<StaffLine> = self
            .find_lines(&ink)
            .into_iter()
            .filter(|line| f64::from(line.length()) >= min_length)
            .collect();
        let (staves, malformed_groups) = self.group_staves(&lines);
        let systems = self.group_systems(&ink, &staves);
        tracing::debug!(
            lines = lines.len(),
            staves = staves.len(),
            systems = systems.len(),
            malformed_groups,
            "detected page structure"
        );
        PageStructure {
            width: page.width(),
            height: page.height(),
            lines,
            staves,
            systems,
            malformed_groups,
            ink_density: profile.density,
            row_ink_std: profile.row_std,
            ink_rows: profile.ink_rows,
            ink_width: ink_width as u32,
        }
    }

    /// Long horizontal lines, top to bottom, before the length filter.
    fn find_lines(&self, ink: &InkMap) -> Vec<StaffLine> {
        let band = (self.band_width as usize).max(1);
        let bands: Vec<Vec<Segment>> = (0..ink.width)
            .step_by(band)
            .map(|start| self.band_segments(ink, start, (start + band).min(ink.width)))
            .collect();
        let mut lines: Vec<StaffLine> =
            self.chains(&bands).iter().map(|chain| self.chain_to_line(ink, chain)).collect();
        lines.sort_by(|a, b| a.y.total_cmp(&b.y));
        merge_lines(lines, self.merge_distance)
    }

    /// Line segments in the band of columns `start..end`.
    fn band_segments(&self, ink: &InkMap, start: usize, end: usize) -> Vec<Segment> {
        let need = self.band_fill * (end - start) as f64;
        let gap = self.max_gap as usize;
        let runs: Vec<Option<(usize, usize)>> = (0..ink.height)
            .map(|y| {
                let (len, from, to) = longest_run(ink.row(y), start, end, gap);
                (len > 0 && len as f64 >= need).then_some((from, to))
            })
            .collect();
        let mut segments = Vec::new();
        let mut y = 0;
        while y < runs.len() {
            if runs[y].is_none() {
                y += 1;
                continue;
            }
            let first = y;
            let (mut x0, mut x1) = (usize::MAX, 0);
            while let Some(Some((from, to))) = runs.get(y) {
                x0 = x0.min(*from);
                x1 = x1.max(*to);
                y += 1;
            }
            let thickness = y - first;
            if thickness <= self.max_line_thickness as usize {
                let centre = (first + y) as f64 / 2.0;
                segments.push(Segment { y: centre, thickness: thickness as f64, x0, x1 });
            }
        }
        segments
    }

    /// Chains of segments, one per line, each segment used once.
    fn chains(&self, bands: &[Vec<Segment>]) -> Vec<Vec<Segment>> {
        let mut used: Vec<Vec<bool>> = bands.iter().map(|b| vec![false; b.len()]).collect();
        let mut chains = Vec::new();
        for start in 0..bands.len() {
            for i in 0..bands[start].len() {
                if used[start][i] {
                    continue;
                }
                used[start][i] = true;
                let mut chain = vec![bands[start][i]];
                let mut band = start;
                let mut y = bands[start][i].y;
                while let Some((next, j)) = self.next_link(bands, &used, band, y) {
                    used[next][j] = true;
                    chain.push(bands[next][j]);
                    band = next;
                    y = bands[next][j].y;
                }
                chains.push(chain);
            }
        }
        chains
    }

    /// The unused segment nearest to row `y` in one of the next two bands after `band`.
    fn next_link(
        &self,
        bands: &[Vec<Segment>],
        used: &[Vec<bool>],
        band: usize,
        y: f64,
    ) -> Option<(usize, usize)> {
        // Looking two bands ahead keeps a line whole across one band where a dense chord or
        // noise made it too thick or too broken to qualify.
        for next in (band + 1)..(band + 3).min(bands.len()) {
            let best = bands[next]
                .iter()
                .enumerate()
                .filter(|(j, s)| !used[next][*j] && (s.y - y).abs() <= self.link_tolerance)
                .min_by(|(_, a), (_, b)| (a.y - y).abs().total_cmp(&(b.y - y).abs()));
            if let Some((j, _)) = best {
                return Some((next, j));
            }
        }
        None
    }

    /// The line a chain stands for, extended to the ends of its ink.
    fn chain_to_line(&self, ink: &InkMap, chain: &[Segment]) -> StaffLine {
        let y = median(chain.iter().map(|s| s.y).collect()).unwrap_or(0.0);
        let thickness = median(chain.iter().map(|s| s.thickness).collect()).unwrap_or(0.0);
        let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
            return StaffLine { y, thickness, x0: 0, x1: 0 };
        };
        // A band only qualifies when the line covers most of it, so the true ends usually lie
        // in the bands just outside the chain.
        let gap = self.max_gap as usize;
        let x0 = extend(ink, first.y as usize, first.x0, false, gap);
        let x1 = extend(ink, last.y as usize, last.x1.saturating_sub(1), true, gap) + 1;
        StaffLine { y, thickness, x0: x0 as u32, x1: x1 as u32 }
    }

    /// Five-line staves (top to bottom) and the number of malformed groups among `lines`.
    fn group_staves(&self, lines: &[StaffLine]) -> (Vec<Staff>, usize) {
        let mut used = vec![false; lines.len()];
        let mut staves = Vec::new();
        let mut malformed = 0;
        for first in 0..lines.len() {
            if used[first] {
                continue;
            }
            let run = self.run_from(lines, &used, first);
            if run.len() < 3 {
                continue;
            }
            let run = trim_run(lines, run);
            for &k in &run {
                used[k] = true;
            }
            match Staff::from_lines(lines, &run) {
                Some(staff) => staves.push(staff),
                None => malformed += 1,
            }
        }
        (staves, malformed)
    }

    /// The evenly spaced lines that follow line `first` with the same extent.
    fn run_from(&self, lines: &[StaffLine], used: &[bool], first: usize) -> Vec<usize> {
        let mut run = vec![first];
        let mut spacing: Option<f64> = None;
        for m in (first + 1)..lines.len() {
            // Shorter or shifted lines (beams, lyric extenders, voltas) are not part of the
            // staff and must not break its run.
            if used[m] || lines[m].overlap(&lines[first]) < self.min_line_overlap {
                continue;
            }
            let gap = lines[m].y - lines[run[run.len() - 1]].y;
            match spacing {
                None if gap < self.min_spacing => continue,
                None if gap > self.max_spacing => break,
                // The extra pixel absorbs the row quantisation of line centres, which
                // dominates at small staff spaces.
                Some(d) if (gap - d).abs() > self.spacing_tolerance * d + 1.0 => break,
                _ => {}
            }
            run.push(m);
            spacing = Some((lines[m].y - lines[first].y) / (run.len() - 1) as f64);
        }
        run
    }

    /// Systems: runs of consecutive staves joined to the one above.
    fn group_systems(&self, ink: &InkMap, staves: &[Staff]) -> Vec<System> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (s, staff) in staves.iter().enumerate() {
            if s > 0
                && self.same_system(ink, &staves[s - 1], staff)
                && let Some(group) = groups.last_mut()
            {
                group.push(s);
                continue;
            }
            groups.push(vec![s]);
        }
        groups.into_iter().map(|indices| System::new(staves, indices)).collect()
    }

    /// Whether `lower` continues the system of `upper`, the staff just above it.
    fn same_system(&self, ink: &InkMap, upper: &Staff, lower: &Staff) -> bool {
        if barline_joins(ink, upper, lower, self.max_gap as usize) {
            return true;
        }
        match self.gap_join_spaces {
            Some(spaces) => {
                let space = 0.5 * (upper.spacing + lower.spacing);
                lower.top - upper.bottom < spaces * space
            }
            None => false,
        }
    }
}

/// A piece of a line inside one band.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Centre row (px, continuous).
    y: f64,
    /// Rows it spans.
    thickness: f64,
    /// First column of its ink runs.
    x0: usize,
    /// One past the last column of its ink runs.
    x1: usize,
}

/// A binarised page, `true` where a pixel is ink.
struct InkMap {
    width: usize,
    height: usize,
    ink: Vec<bool>,
}

/// Summary of the row projection of a page's ink.
struct Profile {
    density: f64,
    row_std: f64,
    ink_rows: f64,
}

impl InkMap {
    /// Thresholds against the paper level rather than a fixed grey, so a grey or noisy
    /// generated background does not turn into ink while faint anti-aliased lines still do.
    fn new(page: &GrayImage, contrast: u8) -> Self {
        let (width, height) = (page.width() as usize, page.height() as usize);
        let mut histogram = [0usize; 256];
        for pixel in page.pixels() {
            histogram[usize::from(pixel.0[0])] += 1;
        }
        let threshold = median_level(&histogram, width * height).saturating_sub(contrast);
        let ink = page.pixels().map(|pixel| pixel.0[0] < threshold).collect();
        Self { width, height, ink }
    }

    fn at(&self, x: usize, y: usize) -> bool {
        self.ink[y * self.width + x]
    }

    fn row(&self, y: usize) -> &[bool] {
        &self.ink[y * self.width..(y + 1) * self.width]
    }

    fn profile(&self) -> Profile {
        let width = self.width.max(1) as f64;
        let rows: Vec<f64> = (0..self.height)
            .map(|y| self.row(y).iter().filter(|&&ink| ink).count() as f64 / width)
            .collect();
        let n = rows.len().max(1) as f64;
        let density = rows.iter().sum::<f64>() / n;
        let variance = rows.iter().map(|f| (f - density).powi(2)).sum::<f64>() / n;
        let ink_rows = rows.iter().filter(|&&f| f > 0.0).count() as f64 / n;
        Profile { density, row_std: variance.sqrt(), ink_rows }
    }

    /// Span of the ink columns (px) without the outer 1% of ink on either side, so stray
    /// specks and page numbers do not widen it.
    fn ink_width(&self) -> usize {
        let mut columns = vec![0usize; self.width];
        let mut total = 0;
        for y in 0..self.height {
            for (x, &ink) in self.row(y).iter().enumerate() {
                if ink {
                    columns[x] += 1;
                    total += 1;
                }
            }
        }
        if total == 0 {
            return 0;
        }
        column_at_rank(&columns, total * 99 / 100) - column_at_rank(&columns, total / 100) + 1
    }
}

/// The grey level below which half the pixels lie (the paper on a score page).
fn median_level(histogram: &[usize; 256], total: usize) -> u8 {
    let mut seen = 0;
    for (level, &count) in histogram.iter().enumerate() {
        seen += count;
        if 2 * seen > total {
            return level as u8;
        }
    }
    u8::MAX
}

/// The column holding the ink pixel of the given rank, counting left to right.
fn column_at_rank(columns: &[usize], rank: usize) -> usize {
    let mut seen = 0;
    for (x, &count) in columns.iter().enumerate() {
        seen += count;
        if seen > rank {
            return x;
        }
    }
    columns.len().saturating_sub(1)
}

/// Longest ink run in `row[start..end]` with gaps of up to `max_gap` bridged:
/// `(length, first column, one past the last column)`.
fn longest_run(row: &[bool], start: usize, end: usize, max_gap: usize) -> (usize, usize, usize) {
    let mut best = (0, start, start);
    let mut run: Option<(usize, usize)> = None;
    for (x, _) in row.iter().enumerate().take(end).skip(start).filter(|(_, ink)| **ink) {
        let from = match run {
            Some((from, last)) if x - last - 1 <= max_gap => from,
            _ => x,
        };
        run = Some((from, x));
        if x - from + 1 > best.0 {
            best = (x - from + 1, from, x + 1);
        }
    }
    best
}

/// Follows a line from column `x` (rows `y - 1..=y + 1`) until more than `max_gap` columns
/// in a row hold no ink; returns the last inked column.
fn extend(ink: &InkMap, y: usize, x: usize, rightward: bool, max_gap: usize) -> usize {
    let rows = y.saturating_sub(1)..=(y + 1).min(ink.height.saturating_sub(1));
    let (mut x, mut last, mut misses) = (x, x, 0);
    loop {
        let next = if rightward { x + 1 } else { x.wrapping_sub(1) };
        if next >= ink.width {
            return last;
        }
        x = next;
        if rows.clone().any(|row| ink.at(x, row)) {
            last = x;
            misses = 0;
        } else {
            misses += 1;
            if misses > max_gap {
                return last;
            }
        }
    }
}

/// Merges lines (sorted by row) closer than `distance`, keeping the union of their extents.
fn merge_lines(lines: Vec<StaffLine>, distance: f64) -> Vec<StaffLine> {
    let mut merged: Vec<StaffLine> = Vec::with_capacity(lines.len());
    for line in lines {
        let close = merged.last().is_some_and(|prev| line.y - prev.y <= distance);
        if close && let Some(prev) = merged.last_mut() {
            let (wp, wl) = (f64::from(prev.length()), f64::from(line.length()));
            prev.y = (prev.y * wp + line.y * wl) / (wp + wl).max(1.0);
            prev.thickness = prev.thickness.max(line.thickness);
            prev.x0 = prev.x0.min(line.x0);
            prev.x1 = prev.x1.max(line.x1);
            continue;
        }
        merged.push(line);
    }
    merged
}

/// Drops end lines of a run longer than five whose extent differs from the run's, such as a
/// volta bracket or lyric line lying one staff space outside a staff; a run whose lines all
/// agree stays long (a six-line staff is malformed, not a staff plus a stray line).
fn trim_run(lines: &[StaffLine], mut run: Vec<usize>) -> Vec<usize> {
    while run.len() > 5 {
        let left = median(run.iter().map(|&k| f64::from(lines[k].x0)).collect()).unwrap_or(0.0);
        let right = median(run.iter().map(|&k| f64::from(lines[k].x1)).collect()).unwrap_or(0.0);
        let (first, last) = (run[0], run[run.len() - 1]);
        let spacing = (lines[last].y - lines[first].y) / (run.len() - 1) as f64;
        let off = |k: usize| {
            (f64::from(lines[k].x0) - left).abs() + (f64::from(lines[k].x1) - right).abs()
        };
        let (off_first, off_last) = (off(first), off(last));
        if off_first.max(off_last) <= 2.0 * spacing {
            break;
        }
        if off_first >= off_last {
            run.remove(0);
        } else {
            run.pop();
        }
    }
    run
}

/// 1 minus the largest distance of a row from the least-squares evenly spaced fit, over half
/// the fitted spacing, clamped to 0..=1.
fn regularity(rows: &[f64]) -> f64 {
    let n = rows.len();
    let mid = n.saturating_sub(1) as f64 / 2.0;
    let mean = rows.iter().sum::<f64>() / n.max(1) as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (k, &y) in rows.iter().enumerate() {
        let dx = k as f64 - mid;
        sxy += dx * (y - mean);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    if slope.is_nan() || slope <= 0.0 {
        return 0.0;
    }
    let worst = rows
        .iter()
        .enumerate()
        .map(|(k, &y)| (y - (mean + (k as f64 - mid) * slope)).abs())
        .fold(0.0, f64::max);
    (1.0 - worst / (0.5 * slope)).clamp(0.0, 1.0)
}

/// Whether a barline, bracket or brace runs from `upper`'s second line to `lower`'s fourth
/// line near their left ends. Checking between inner lines rather than the outer ones leaves
/// a staff space of slack for skew, as line rows are measured mid-page.
fn barline_joins(ink: &InkMap, upper: &Staff, lower: &Staff, max_gap: usize) -> bool {
    if ink.width < 3 || ink.height == 0 {
        return false;
    }
    let space = 0.5 * (upper.spacing + lower.spacing);
    let left = f64::from(upper.left.min(lower.left));
    let right = f64::from(upper.left.max(lower.left));
    // Brackets and braces sit up to a few spaces left of the lines; the system barline is at
    // the lines' start.
    let x_lo = (left - 3.0 * space).floor().max(1.0) as usize;
    let x_hi = ((right + 2.0 * space).floor().max(0.0) as usize).min(ink.width - 2);
    let y_lo = upper.line_rows[1].max(0.0) as usize;
    let y_hi = (lower.line_rows[3].max(0.0) as usize).min(ink.height - 1);
    (x_lo..=x_hi).any(|x| column_connects(ink, x, y_lo, y_hi, max_gap))
}

/// Whether columns `x - 1..=x + 1` hold ink on every row of `y_lo..=y_hi`, gaps of up to
/// `max_gap` rows allowed. Three columns follow a barline drifting by a pixel with skew but
/// not the diagonal strokes of a system divider.
fn column_connects(ink: &InkMap, x: usize, y_lo: usize, y_hi: usize, max_gap: usize) -> bool {
    let mut gap = 0;
    for y in y_lo..=y_hi {
        if ink.at(x - 1, y) || ink.at(x, y) || ink.at(x + 1, y) {
            gap = 0;
        } else {
            gap += 1;
            if gap > max_gap {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use image::Luma;

    use super::*;

    /// How a synthetic page is drawn: two staves of five lines 4 px apart at rows 60 and 130,
    /// from column 40 to 472 of a 512 x 300 page.
    #[derive(Clone, Copy)]
    struct Sketch {
        thickness: u32,
        /// Rows gained per column along each line.
        slope: f64,
        /// Pepper and salt, each on this many pixels per thousand.
        noise_per_mille: u64,
        barline: bool,
        lower_lines: u32,
    }

    const PLAIN: Sketch =
        Sketch { thickness: 1, slope: 0.0, noise_per_mille: 0, barline: true, lower_lines: 5 };

    fn draw(sketch: Sketch) -> GrayImage {
        let mut page = GrayImage::from_pixel(512, 300, Luma([255]));
        for (top, count) in [(60u32, 5u32), (130, sketch.lower_lines)] {
            for line in 0..count {
                for x in 40..472u32 {
                    let drift = (f64::from(x - 40) * sketch.slope).floor();
                    let y = (f64::from(top + 4 * line) + drift) as u32;
                    for t in 0..sketch.thickness {
                        page.put_pixel(x, y + t, Luma([0]));
                    }
                }
            }
        }
        if sketch.barline {
            for y in 60..130 + 16 + sketch.thickness {
                for t in 0..sketch.thickness {
                    page.put_pixel(40 + t, y, Luma([0]));
                }
            }
        }
        sprinkle(&mut page, sketch.noise_per_mille);
        page
    }

    /// Deterministic salt-and-pepper noise (a fixed 64-bit LCG).
    fn sprinkle(page: &mut GrayImage, per_mille: u64) {
        if per_mille == 0 {
            return;
        }
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for y in 0..page.height() {
            for x in 0..page.width() {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let r = (state >> 33) % 1000;
                if r < per_mille {
                    page.put_pixel(x, y, Luma([0]));
                } else if r < 2 * per_mille {
                    page.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }

    fn assert_two_joined_staves(found: &PageStructure) {
        assert_eq!(found.staves.len(), 2, "{found:#?}");
        assert_eq!(found.staves_per_system(), vec![2], "{found:#?}");
        for staff in &found.staves {
            assert!((staff.spacing - 4.0).abs() <= 0.5, "spacing {}", staff.spacing);
            assert!(staff.regularity > 0.8, "regularity {}", staff.regularity);
        }
        let space = found.staff_space().unwrap();
        assert!((space - 4.0).abs() <= 0.5);
        assert_eq!(found.malformed_groups, 0);
    }

    #[test]
    fn finds_two_staves_joined_by_a_barline() {
        let found = StaffDetector::default().detect(&draw(PLAIN));
        assert_two_joined_staves(&found);
        for (staff, top) in found.staves.iter().zip([60.0, 130.0]) {
            for (k, &row) in staff.line_rows.iter().enumerate() {
                // Row r's centre is r + 0.5.
                assert!((row - (top + 4.0 * k as f64 + 0.5)).abs() <= 0.5, "{row}");
            }
            assert!(staff.left.abs_diff(40) <= 1 && staff.right.abs_diff(472) <= 1);
        }
    }

    #[test]
    fn finds_two_pixel_lines() {
        let found = StaffDetector::default().detect(&draw(Sketch { thickness: 2, ..PLAIN }));
        assert_two_joined_staves(&found);
        assert!((found.staves[0].line_rows[0] - 61.0).abs() <= 0.5);
        assert!((found.staves[0].line_thickness - 2.0).abs() <= 0.5);
    }

    #[test]
    fn follows_a_slight_skew() {
        for slope in [0.01, -0.01] {
            let found = StaffDetector::default().detect(&draw(Sketch { slope, ..PLAIN }));
            assert_two_joined_staves(&found);
        }
    }

    #[test]
    fn survives_salt_and_pepper_noise() {
        let noisy = Sketch { noise_per_mille: 20, ..PLAIN };
        assert_two_joined_staves(&StaffDetector::default().detect(&draw(noisy)));
        let all = Sketch { thickness: 2, slope: 0.01, ..noisy };
        assert_two_joined_staves(&StaffDetector::default().detect(&draw(all)));
    }

    #[test]
    fn staves_without_a_barline_are_separate_systems() {
        let found = StaffDetector::default().detect(&draw(Sketch { barline: false, ..PLAIN }));
        assert_eq!(found.staves_per_system(), vec![1, 1]);
        // The gap between the staves is 54 px, about 13 staff spaces.
        let lenient = StaffDetector { gap_join_spaces: Some(14.0), ..StaffDetector::default() };
        let joined = lenient.detect(&draw(Sketch { barline: false, ..PLAIN }));
        assert_eq!(joined.staves_per_system(), vec![2]);
    }

    #[test]
    fn six_and_four_line_groups_are_malformed() {
        for lower_lines in [6, 4] {
            let sketch = Sketch { barline: false, lower_lines, ..PLAIN };
            let found = StaffDetector::default().detect(&draw(sketch));
            assert_eq!(found.staves.len(), 1, "{lower_lines} lines");
            assert_eq!(found.malformed_groups, 1, "{lower_lines} lines");
            assert!((found.staves[0].top - 60.5).abs() <= 0.5);
        }
    }

    #[test]
    fn blank_page_has_no_structure() {
        let found = StaffDetector::default().detect(&GrayImage::from_pixel(512, 300, Luma([255])));
        assert!(found.staves.is_empty() && found.systems.is_empty() && found.lines.is_empty());
        assert_eq!(found.staff_space(), None);
        assert_eq!(found.ink_density, 0.0);
        let empty = StaffDetector::default().detect(&GrayImage::new(0, 0));
        assert!(empty.staves.is_empty());
    }

    /// Draws `text` in the 8x8 bitmap font, each font pixel `scale` px square, from `(x, y)`.
    fn write(page: &mut GrayImage, text: &str, x: u32, y: u32, scale: u32) {
        for (i, c) in text.chars().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[c as usize & 0x7f];
            for (dy, bits) in glyph.iter().enumerate() {
                for dx in (0..8u32).filter(|dx| bits >> dx & 1 == 1) {
                    for (sx, sy) in (0..scale).flat_map(|sx| (0..scale).map(move |sy| (sx, sy))) {
                        let px = x + (8 * i as u32 + dx) * scale + sx;
                        let py = y + dy as u32 * scale + sy;
                        if px < page.width() && py < page.height() {
                            page.put_pixel(px, py, Luma([0]));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn text_only_page_has_no_staves() {
        const PROSE: &str = "Sonata in E flat major, Op. 31 No. 3. Allegro - Scherzo - Menuetto \
            - Presto con fuoco. The first movement opens with a question; the answer comes \
            in the bass. HIGH TEMPERAMENT EMMEMMEM mmmmmmmm wwwwwwww == -- __ ..";
        let mut page = GrayImage::from_pixel(512, 720, Luma([255]));
        let mut y = 16;
        // Font sizes of 8, 16 and 24 px, each over several lines with tight line spacing, so
        // the rows of letters repeat as evenly as staff lines do.
        for scale in [1u32, 2, 3, 1, 2] {
            let per_line = (496 / (8 * scale)) as usize;
            let chars: Vec<char> = PROSE.chars().collect();
            for line in chars.chunks(per_line).take(4) {
                let text: String = line.iter().collect();
                write(&mut page, &text, 8, y, scale);
                y += 10 * scale;
            }
            y += 12;
        }
        assert!(y <= 720, "the text runs off the page at row {y}");
        let found = StaffDetector::default().detect(&page);
        assert!(found.ink_density > 0.05, "the page holds text: {}", found.ink_density);
        assert!(found.staves.is_empty() && found.systems.is_empty(), "{found:#?}");
        let score = crate::eval::PageScore::from_structure(&found);
        assert_eq!(score.readability, 0.0);
    }

    #[test]
    fn ruled_paper_has_no_staves() {
        // Lines every `pitch` px down the whole page: within the staff-space range (3-10 px)
        // they are evenly spaced like staff lines but never five to a group.
        for pitch in [3u32, 4, 5, 6, 8, 10, 16, 24] {
            for thickness in [1u32, 2] {
                let mut page = GrayImage::from_pixel(512, 720, Luma([255]));
                for top in (20..700).step_by(pitch as usize) {
                    for y in top..top + thickness.min(pitch - 1) {
                        for x in 30..482 {
                            page.put_pixel(x, y, Luma([0]));
                        }
                    }
                }
                let found = StaffDetector::default().detect(&page);
                let score = crate::eval::PageScore::from_structure(&found);
                let what = format!("pitch {pitch}, thickness {thickness}");
                // Where the paper is most of the page, the lines are all found and none is
                // taken into a staff (otherwise the lines are the paper and nothing is ink).
                if 2 * thickness < pitch {
                    let lines = found.lines.len();
                    assert!(lines >= 680 / pitch as usize, "{what}: {lines} lines");
                }
                assert!(found.staves.is_empty(), "{what}: {} staves", found.staves.len());
                assert_eq!(score.readability, 0.0, "{what}");
            }
        }
    }

    #[test]
    fn regularity_is_one_for_even_lines_and_drops_with_a_shifted_line() {
        assert!((regularity(&[10.0, 14.0, 18.0, 22.0, 26.0]) - 1.0).abs() < 1e-12);
        let shifted = regularity(&[10.0, 14.0, 19.0, 22.0, 26.0]);
        assert!(shifted < 0.7 && shifted > 0.3, "{shifted}");
        assert_eq!(regularity(&[10.0, 10.0, 10.0]), 0.0);
    }

    #[test]
    fn longest_run_bridges_small_gaps_only() {
        let row: Vec<bool> = "##.###..##".chars().map(|c| c == '#').collect();
        assert_eq!(longest_run(&row, 0, row.len(), 1), (6, 0, 6));
        assert_eq!(longest_run(&row, 0, row.len(), 2), (10, 0, 10));
        assert_eq!(longest_run(&row, 0, row.len(), 0), (3, 3, 6));
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert!(StaffDetector::default().validate().is_ok());
        let bad = StaffDetector { band_fill: 1.5, ..StaffDetector::default() };
        let message = bad.validate().unwrap_err().to_string();
        assert!(message.contains("band_fill"), "{message}");
        let nan = StaffDetector { spacing_tolerance: f64::NAN, ..StaffDetector::default() };
        assert!(nan.validate().is_err());
    }
}
