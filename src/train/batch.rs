//! Training batches, assembled on the host from prepared pages.
//!
//! Every random choice of sample `j` at step `s` (which page, where to crop, how much to
//! lighten the ink, whether to drop the caption, the timestep and the noise) comes from a
//! generator seeded by `(seed, s, j)` alone. A resumed run therefore sees exactly the
//! batches an uninterrupted one would, and a batch split over devices is the same batch.

use std::sync::Arc;

use super::config::TrainConfig;
use crate::dataset::{DataSet, Entry, PageCache, PreparedPage};
use crate::diffusion::HostNoise;
use crate::error::{Error, Result};

/// Pages kept in memory at most (about 1.5 GB at 512x720); past that they are read from
/// the on-disk cache each time.
const IN_MEMORY_PAGES: usize = 4096;

/// splitmix64 of a combination of stream values: independent seeds from one run seed.
pub fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |state, &part| {
        let mut z = state ^ part.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A stream tag for the epoch permutation, apart from the per-sample streams.
const EPOCH_STREAM: u64 = u64::MAX;

/// One training sample before noising.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Clean values, `[1, height, width]` row-major, in `[-1, 1]`.
    pub x0: Vec<f32>,
    /// The crop's top-left corner on the page, in pixels.
    pub origin: (usize, usize),
    /// The caption, or the empty string when it was dropped.
    pub caption: String,
    /// The discrete timestep.
    pub t: usize,
    /// The noise, `[1, height, width]`.
    pub eps: Vec<f32>,
}

/// Draws training samples from the prepared pages of a data set.
pub struct Batcher {
    entries: Vec<Entry>,
    pages: Vec<Option<Arc<PreparedPage>>>,
    cache: PageCache,
    config: TrainConfig,
    crop: (usize, usize),
    step_multiple: usize,
    permutation: (u64, Vec<usize>),
}

/// What preparing the data set found.
#[derive(Debug, Default)]
pub struct Preparation {
    /// Pages that could not be used, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl Batcher {
    /// Prepares (decodes, fits and caches) every page of `set`; pages that cannot be read
    /// are skipped and reported, not fatal. `progress` is told each page done.
    pub fn new(
        set: &DataSet,
        cache: PageCache,
        config: &TrainConfig,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(Self, Preparation)> {
        let (width, height) = config.page_size();
        let keep_in_memory = set.entries.len() <= IN_MEMORY_PAGES;
        let mut entries = Vec::new();
        let mut pages = Vec::new();
        let mut preparation = Preparation::default();
        // Decoded on worker threads, handed back in the set's order: the usable pages and
        // so the training sample order are those of a one-thread preparation.
        let decoded = cache.load_each(&set.entries, |i, page| {
            let entry = &set.entries[i];
            match page {
                Ok(page) => {
                    entries.push(entry.clone());
                    pages.push(keep_in_memory.then(|| Arc::new(page)));
                }
                Err(err) => {
                    // The error names the file.
                    tracing::warn!("skipping a page: {err}");
                    preparation.skipped.push((entry.path.display().to_string(), err.to_string()));
                }
            }
            progress(i + 1, set.entries.len());
        });
        tracing::debug!("{decoded} of {} pages decoded, the rest cached", set.entries.len());
        if entries.is_empty() {
            return Err(Error::input(format!(
                "{}: no usable page in the {} split ({} skipped)",
                set.root.display(),
                set.split,
                preparation.skipped.len()
            )));
        }
        let crop = config.crop_size().unwrap_or((width, height));
        let step_multiple = config.preset.config().size_multiple();
        let batcher = Self {
            entries,
            pages,
            cache,
            config: config.clone(),
            crop,
            step_multiple,
            permutation: (u64::MAX, Vec::new()),
        };
        Ok((batcher, preparation))
    }

    /// Number of usable pages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no usable pages (never, for a built batcher).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every usable page's caption.
    pub fn captions(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.caption.as_str())
    }

    /// The crop size `(width, height)` of every sample.
    pub fn crop_size(&self) -> (usize, usize) {
        self.crop
    }

    /// Which page the `index`-th sample of the run uses: epochs are seeded permutations.
    fn page_index(&mut self, index: u64) -> usize {
        let n = self.entries.len() as u64;
        let epoch = index / n;
        if self.permutation.0 != epoch {
            let mut order: Vec<usize> = (0..self.entries.len()).collect();
            let mut rng = HostNoise::new(mix(&[self.config.seed, EPOCH_STREAM, epoch]));
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            self.permutation = (epoch, order);
        }
        self.permutation.1[(index % n) as usize]
    }

    fn page(&self, index: usize) -> Result<Arc<PreparedPage>> {
        match &self.pages[index] {
            Some(page) => Ok(page.clone()),
            None => self.cache.load(&self.entries[index]).map(Arc::new),
        }
    }

    /// Sample `j` of step `step`.
    pub fn sample(&mut self, step: usize, j: usize, timesteps: usize) -> Result<Sample> {
        let index = (step * self.config.batch_size + j) as u64;
        let page_index = self.page_index(index);
        let page = self.page(page_index)?;
        let mut rng = HostNoise::new(mix(&[self.config.seed, step as u64, j as u64]));

        // 1. A crop on the grid of the UNet's size multiple.
        let (crop_w, crop_h) = self.crop;
        let (columns, rows) = page.crop_positions(crop_w, crop_h, self.step_multiple);
        let left = rng.below(columns) * self.step_multiple;
        let top = rng.below(rows) * self.step_multiple;

        // 2. Light augmentation that keeps a score a score: ink a little lighter.
        let ink = 1.0 - self.config.ink_jitter * rng.uniform();
        let crop = page.crop(left, top, crop_w, crop_h, ink as f32);

        // 3. Caption dropout for classifier-free guidance.
        let dropped = rng.uniform() < self.config.caption_dropout;
        let caption =
            if dropped { String::new() } else { self.entries[page_index].caption.clone() };

        // 4. Noise level and noise.
        let t = rng.below(timesteps);
        let eps = rng.normal_vec(crop_w * crop_h);
        Ok(Sample { x0: crop.values, origin: (left, top), caption, t, eps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_separates_streams() {
        assert_ne!(mix(&[0, 1, 2]), mix(&[0, 2, 1]));
        assert_ne!(mix(&[1, 0, 0]), mix(&[0, 0, 0]));
        assert_eq!(mix(&[5, 6]), mix(&[5, 6]));
    }
}
