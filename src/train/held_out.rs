//! The held-out loss: the score-matching loss of whole pages that training never sees, at
//! fixed noise levels, with fixed noise.
//!
//! A training step's loss is a poor gauge of progress: every step draws its own pages, crops,
//! noise levels and noise, and the loss at a high noise level is many times that at a low
//! one, so the logged curve is mostly the spread of the draws. The held-out loss fixes all
//! of them: every page of a split (the validation split by default), whole, with its
//! caption, at each of a few timesteps spread over the schedule, with noise seeded by the
//! page's position in the split and the timestep alone. Any two checkpoints for the same page
//! size are measured on exactly the same inputs, so a difference between them is the
//! models'. The loss is the unweighted mean squared error of the model's own prediction
//! target, whatever weighting a run trains with, and is also given per timestep: the lowest
//! noise levels are where fine strokes such as staff lines are drawn.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LossSetup;
use super::batch::{Sample, mix};
use crate::checkpoint::LoadedModel;
use crate::dataset::{DataSet, PageCache, PreparedPage, Split};
use crate::diffusion::{HostNoise, LossWeighting, Schedule};
use crate::error::{Error, Result};

/// Where the timesteps sit, as fractions of the schedule's length.
pub const LEVELS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// A stream tag for the held-out noise, apart from every training stream.
const NOISE_STREAM: u64 = u64::MAX - 2;

/// The pages the held-out loss is measured on.
pub struct HeldOut {
    pages: Vec<(PreparedPage, String)>,
    width: usize,
    height: usize,
}

/// The held-out loss of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOutLoss {
    /// Pages measured.
    pub pages: usize,
    /// Mean over pages and timesteps.
    pub mean: f64,
    /// Mean over pages at each timestep, lowest noise first.
    pub by_timestep: Vec<TimestepLoss>,
}

/// The held-out loss at one timestep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimestepLoss {
    /// The timestep.
    pub t: usize,
    /// Mean over pages.
    pub loss: f64,
}

impl HeldOut {
    /// Reads (through the page cache) at most `limit` pages of `split` of the data set at
    /// `data`, fitted to `width` x `height`. Pages that cannot be read are skipped, as in
    /// training; a split with no usable page is an error naming the folder.
    pub fn load(
        data: &Path,
        split: Split,
        (width, height): (usize, usize),
        cache_root: &Path,
        limit: usize,
    ) -> Result<Self> {
        let set = DataSet::open(data, split)?;
        let entries = &set.entries[..set.entries.len().min(limit)];
        let cache = PageCache::new(cache_root, &set, width, height);
        let mut pages = Vec::new();
        cache.load_each(entries, |i, page| match page {
            Ok(page) => pages.push((page, entries[i].caption.clone())),
            Err(err) => tracing::warn!("held-out loss: skipping a page: {err}"),
        });
        if pages.is_empty() {
            return Err(Error::input(format!(
                "{}: no usable page in the {} split to measure the held-out loss on",
                data.display(),
                split.name()
            )));
        }
        Ok(Self { pages, width, height })
    }

    /// Pages measured.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether there are no pages (never, for a loaded set).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The timesteps measured for a schedule of `timesteps` steps.
    pub fn timesteps(timesteps: usize) -> Vec<usize> {
        LEVELS
            .iter()
            .map(|level| ((level * timesteps as f64) as usize).min(timesteps - 1))
            .collect()
    }

    /// Page `index` at timestep `t`, with its fixed noise.
    fn sample(&self, index: usize, t: usize) -> Sample {
        let (page, caption) = &self.pages[index];
        let x0 = page.crop(0, 0, self.width, self.height, 1.0).values;
        let eps = HostNoise::new(mix(&[NOISE_STREAM, index as u64, t as u64]))
            .normal_vec(self.width * self.height);
        Sample { x0, origin: (0, 0), caption: caption.clone(), t, eps }
    }

    /// The held-out loss of `model` (its EMA weights, as sampling uses them), `batch` pages
    /// per network call, on `device` (one without autodiff).
    pub fn loss(
        &self,
        model: &LoadedModel,
        batch: usize,
        device: &burn::tensor::Device,
    ) -> Result<HeldOutLoss> {
        let config = &model.config;
        if (config.page_width, config.page_height) != (self.width, self.height) {
            return Err(Error::input(format!(
                "{}: the model is for {}x{} pages, the held-out pages are {}x{}",
                model.folder.display(),
                config.page_width,
                config.page_height,
                self.width,
                self.height
            )));
        }
        let schedule = Schedule::new(&config.schedule);
        let setup = LossSetup {
            model_config: config,
            tokenizer: &model.tokenizer,
            schedule: &schedule,
            weighting: LossWeighting::Plain,
        };
        let mut by_timestep = Vec::new();
        for t in Self::timesteps(schedule.len()) {
            let mut total = 0.0;
            for first in (0..self.len()).step_by(batch.max(1)) {
                let indices = first..(first + batch.max(1)).min(self.len());
                let samples: Vec<Sample> = indices.map(|i| self.sample(i, t)).collect();
                let mean = setup
                    .loss(&model.model, &samples, (self.width, self.height), device)
                    .into_scalar::<f32>() as f64;
                total += mean * samples.len() as f64;
            }
            by_timestep.push(TimestepLoss { t, loss: total / self.len() as f64 });
        }
        let mean = by_timestep.iter().map(|l| l.loss).sum::<f64>() / by_timestep.len() as f64;
        if !mean.is_finite() {
            return Err(Error::runtime(format!(
                "{}: the held-out loss is {mean}",
                model.folder.display()
            )));
        }
        Ok(HeldOutLoss { pages: self.len(), mean, by_timestep })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::testing::{cpu, values};
    use crate::text::{Tokenizer, ids_tensor};
    use crate::train::TrainConfig;
    use crate::unet::Preset;
    use crate::unet::score_model::coordinate_channels;

    /// Three validation pages of the bundled set at the tiny preset's page size, and a
    /// freshly initialised tiny model for them.
    fn setup(cache: &Path) -> (HeldOut, LoadedModel) {
        let config = TrainConfig { preset: Preset::Tiny, ..TrainConfig::default() };
        let size = config.page_size();
        let pages = HeldOut::load(&crate::dataset::bundled_mini(), Split::Val, size, cache, 3)
            .expect("the bundled validation split");
        let tokenizer =
            Tokenizer::from_captions(pages.pages.iter().map(|(_, c)| c.as_str()), 1, 24);
        let model_config = super::super::model_config(&config, &tokenizer);
        let model = model_config.init_seeded(7, &cpu());
        let loaded =
            LoadedModel { model, config: model_config, tokenizer, folder: cache.to_path_buf() };
        (pages, loaded)
    }

    #[test]
    fn timesteps_spread_over_the_schedule() {
        assert_eq!(HeldOut::timesteps(1000), [50, 250, 500, 750, 950]);
        assert_eq!(HeldOut::timesteps(20), [1, 5, 10, 15, 19]);
    }

    #[test]
    fn matches_a_host_side_mean_squared_error_of_the_v_target() {
        let dir = tempfile::tempdir().unwrap();
        let (pages, model) = setup(dir.path());
        assert_eq!(pages.len(), 3);
        let (width, height) = (pages.width, pages.height);
        let schedule = Schedule::new(&model.config.schedule);
        let device = cpu();

        // Reference: one page at a time, the v target computed on the host in f64.
        let mut expected = Vec::new();
        for t in HeldOut::timesteps(schedule.len()) {
            let alpha_bar = schedule.alpha_bar(t);
            let (alpha, sigma) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
            let mut total = 0.0;
            for i in 0..pages.len() {
                let sample = pages.sample(i, t);
                let x_t: Vec<f32> = sample
                    .x0
                    .iter()
                    .zip(&sample.eps)
                    .map(|(&x, &e)| (alpha * x as f64 + sigma * e as f64) as f32)
                    .collect();
                let x_t =
                    Tensor::<4>::from_data(TensorData::new(x_t, [1, 1, height, width]), &device);
                let input = if model.config.unet.coord_channels > 0 {
                    let coords =
                        coordinate_channels(&[(0, 0)], height, width, width, height, &device);
                    Tensor::cat(vec![x_t, coords], 1)
                } else {
                    x_t
                };
                let ids = vec![model.tokenizer.encode(&sample.caption).ids];
                let context = model.model.encode(ids_tensor(&ids, &device));
                let time = Tensor::<1>::from_data(TensorData::new(vec![t as f32], [1]), &device);
                let output = values(&model.model.denoise(input, time, context));
                let squared: f64 = output
                    .iter()
                    .zip(sample.x0.iter().zip(&sample.eps))
                    .map(|(&o, (&x, &e))| {
                        let v = alpha * e as f64 - sigma * x as f64;
                        (o as f64 - v).powi(2)
                    })
                    .sum();
                total += squared / (width * height) as f64;
            }
            expected.push(total / pages.len() as f64);
        }

        // Batches of 2 leave a last batch of 1: its mean must count once, not as much as two.
        for batch in [1, 2, 3] {
            let loss = pages.loss(&model, batch, &device).unwrap();
            assert_eq!(loss.pages, 3);
            for (measured, want) in loss.by_timestep.iter().zip(&expected) {
                assert!(
                    (measured.loss - want).abs() < 1e-4 * want.max(1.0),
                    "batch {batch}, t {}: {} against {want}",
                    measured.t,
                    measured.loss
                );
            }
            let mean = expected.iter().sum::<f64>() / expected.len() as f64;
            assert!((loss.mean - mean).abs() < 1e-4, "{} against {mean}", loss.mean);
        }
        // Noise is fixed per page and timestep, not drawn anew.
        assert_eq!(pages.sample(1, 50).eps, pages.sample(1, 50).eps);
        assert_ne!(pages.sample(1, 50).eps, pages.sample(2, 50).eps);
    }

    #[test]
    fn a_model_for_another_page_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (pages, mut model) = setup(dir.path());
        model.config.page_width *= 2;
        let err = pages.loss(&model, 2, &cpu()).unwrap_err().to_string();
        assert!(err.contains("64x48") && err.contains("32x48"), "{err}");
    }
}
