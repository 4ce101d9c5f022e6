//! What `scoregen dataset info` reports about a split beyond its counts: page sizes, read
//! from the image headers alone (no pixel is decoded), and metadata coverage.

use std::path::PathBuf;

use super::layout::DataSet;
use super::page::dimensions;
use super::parallel::map_ordered;

/// The smallest, middle and largest of a list of pixel lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    /// The smallest value, in pixels.
    pub min: u32,
    /// The middle value, in pixels; of an even count, the lower of the two middle values,
    /// so that it is always a size some page has.
    pub median: u32,
    /// The largest value, in pixels.
    pub max: u32,
}

impl Spread {
    /// The spread of `values`, or `None` when there are none.
    pub fn of(mut values: Vec<u32>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let median = values[(values.len() - 1) / 2];
        Some(Self { min: values[0], median, max: values[values.len() - 1] })
    }
}

/// Page sizes and metadata coverage of one split.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitStats {
    /// Pages in the split.
    pub pages: usize,
    /// Pages whose work has a metadata record.
    pub with_metadata: usize,
    /// Page widths, over the pages whose header could be read.
    pub width: Option<Spread>,
    /// Page heights, over the same pages.
    pub height: Option<Spread>,
    /// Pages whose header could not be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl SplitStats {
    /// Reads the header of every page of `set`, on the current rayon pool.
    pub fn measure(set: &DataSet) -> Self {
        let mut widths = Vec::with_capacity(set.entries.len());
        let mut heights = Vec::with_capacity(set.entries.len());
        let mut unreadable = Vec::new();
        map_ordered(
            &set.entries,
            |entry| dimensions(&entry.path),
            |i, size| match size {
                Ok((width, height)) => {
                    widths.push(width);
                    heights.push(height);
                }
                Err(err) => unreadable.push((set.entries[i].path.clone(), err.to_string())),
            },
        );
        Self {
            pages: set.entries.len(),
            with_metadata: set.entries.len() - set.without_metadata(),
            width: Spread::of(widths),
            height: Spread::of(heights),
            unreadable,
        }
    }

    /// The share of pages with a metadata record, in percent (`None` for an empty split).
    pub fn metadata_coverage(&self) -> Option<f64> {
        (self.pages > 0).then(|| 100.0 * self.with_metadata as f64 / self.pages as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Split;
    use image::{GrayImage, Luma};

    #[test]
    fn spread_takes_the_lower_middle_of_an_even_count() {
        assert_eq!(Spread::of(vec![30, 10, 20]), Some(Spread { min: 10, median: 20, max: 30 }));
        assert_eq!(Spread::of(vec![4, 1, 10, 2]), Some(Spread { min: 1, median: 2, max: 10 }));
        assert_eq!(Spread::of(vec![]), None);
    }

    #[test]
    fn sizes_come_from_headers_and_coverage_from_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train");
        std::fs::create_dir(&train).unwrap();
        std::fs::write(dir.path().join("metadata.json"), r#"{"W1": {"Key": "C major"}}"#).unwrap();
        for (name, width, height) in [("W1_1", 40, 90), ("W1_2", 60, 70), ("W2_1", 50, 80)] {
            GrayImage::from_pixel(width, height, Luma([255]))
                .save(train.join(format!("{name}.png")))
                .unwrap();
        }
        std::fs::write(train.join("W3_1.png"), b"").unwrap();
        let stats = SplitStats::measure(&DataSet::open(dir.path(), Split::Train).unwrap());
        assert_eq!(stats.pages, 4);
        assert_eq!(stats.width, Some(Spread { min: 40, median: 50, max: 60 }));
        assert_eq!(stats.height, Some(Spread { min: 70, median: 80, max: 90 }));
        assert_eq!(stats.unreadable.len(), 1);
        assert!(stats.unreadable[0].1.contains("W3_1.png: empty file"), "{:?}", stats.unreadable);
        assert_eq!(stats.metadata_coverage(), Some(50.0));
    }
}
