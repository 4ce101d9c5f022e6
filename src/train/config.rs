//! The training configuration: read from a JSON file, overridden on the command line,
//! printed at the start of a run and saved with every checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diffusion::{LossWeighting, Prediction, ScheduleConfig};
use crate::error::{Error, Result};
use crate::unet::Preset;

/// Everything a training run depends on. Two runs with equal configs see the same batches,
/// noise and crops, step for step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Model size preset.
    pub preset: Preset,
    /// The data set's root folder (MusicScore layout).
    pub data: PathBuf,
    /// The run's folder: checkpoints, logs, sample sheets.
    pub out: PathBuf,
    /// Optimiser steps in total.
    pub steps: usize,
    /// Pages (or crops) per optimiser step, over all devices and accumulation rounds.
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed before each step.
    pub grad_accumulation: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Steps of linear warm-up from zero to the peak.
    pub warmup_steps: usize,
    /// Learning rate at the end of the cosine decay, as a fraction of the peak.
    pub final_lr_fraction: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Largest global gradient norm; larger gradients are scaled down (0: off).
    pub grad_clip: f64,
    /// EMA decay per step (0.999 averages over about 1000 steps).
    pub ema_decay: f64,
    /// Fraction of captions replaced by the empty prompt, so guidance has an unconditional
    /// model to extrapolate from.
    pub caption_dropout: f64,
    /// What the network predicts.
    pub prediction: Prediction,
    /// Loss weight per noise level.
    pub weighting: LossWeighting,
    /// The noise schedule.
    pub schedule: ScheduleConfig,
    /// Page width the model is trained for, in pixels (default: the preset's).
    pub page_width: Option<usize>,
    /// Page height the model is trained for, in pixels (default: the preset's).
    pub page_height: Option<usize>,
    /// Patch training: crop width in pixels, taken at full resolution with the crop's page
    /// coordinates as input (0: whole pages).
    pub crop: usize,
    /// Crop height in pixels (default: `crop`, a square). Full-width strips (`crop` equal to
    /// the page width) show every staff line from margin to margin.
    pub crop_height: Option<usize>,
    /// Largest fraction by which ink is lightened in augmentation (0: none).
    pub ink_jitter: f64,
    /// Words seen fewer times than this in the captions map to the unknown token.
    pub min_word_count: usize,
    /// Token length of a caption.
    pub max_tokens: usize,
    /// The seed of every random choice in the run.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept (the oldest are removed).
    pub keep_checkpoints: usize,
    /// Steps between log lines.
    pub log_every: usize,
    /// Steps between sample sheets (0: only at the end).
    pub sample_every: usize,
    /// Sampler steps for sample sheets.
    pub sample_steps: usize,
    /// Steps between measurements of the held-out loss of the EMA weights (see
    /// [`super::held_out`]), logged in `log.jsonl` and drawn on the loss curve; 0: never.
    pub held_out_every: usize,
    /// Pages of the validation split the held-out loss is measured on, at most.
    pub held_out_pages: usize,
    /// Compute devices for data-parallel training (`cpu`, `cuda:0`, ...).
    pub devices: Vec<String>,
    /// Where prepared pages are cached (default: `$SCOREGEN_CACHE` or `~/.cache/scoregen`).
    pub cache_dir: Option<PathBuf>,
    /// Fine-tuning: a checkpoint folder whose weights, EMA weights and vocabulary a fresh run
    /// starts from (the optimiser, step count and learning-rate schedule start anew). Its
    /// preset must be this run's.
    pub init_from: Option<PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            preset: Preset::Small,
            data: crate::dataset::bundled_mini(),
            out: PathBuf::from("runs/small"),
            steps: 10_000,
            batch_size: 8,
            grad_accumulation: 1,
            learning_rate: 5e-4,
            warmup_steps: 200,
            final_lr_fraction: 0.1,
            weight_decay: 0.01,
            grad_clip: 1.0,
            ema_decay: 0.999,
            caption_dropout: 0.1,
            prediction: Prediction::V,
            weighting: LossWeighting::MinSnr5,
            schedule: ScheduleConfig::default(),
            page_width: None,
            page_height: None,
            crop: 0,
            crop_height: None,
            ink_jitter: 0.15,
            min_word_count: 1,
            max_tokens: 24,
            seed: 0,
            checkpoint_every: 500,
            keep_checkpoints: 3,
            log_every: 10,
            sample_every: 0,
            sample_steps: 20,
            held_out_every: 0,
            held_out_pages: 32,
            devices: vec!["cpu".to_string()],
            cache_dir: None,
            init_from: None,
        }
    }
}

impl TrainConfig {
    /// Reads a JSON config; fields left out keep their defaults.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::input(format!(
                "{}: line {}, column {}: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })
    }

    /// The page size trained for.
    pub fn page_size(&self) -> (usize, usize) {
        let (w, h) = self.preset.page_size();
        (self.page_width.unwrap_or(w), self.page_height.unwrap_or(h))
    }

    /// Checks every value against its valid range, naming the field.
    pub fn validate(&self) -> Result<()> {
        let fail =
            |field: &str, why: String| Err(Error::input(format!("train config `{field}`: {why}")));
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        if self.steps == 0 {
            return fail("steps", "must be at least 1".into());
        }
        let shards = self.devices.len().max(1) * self.grad_accumulation.max(1);
        if self.batch_size == 0 || !self.batch_size.is_multiple_of(shards) {
            return fail(
                "batch_size",
                format!(
                    "{} must be a positive multiple of devices x grad_accumulation ({shards})",
                    self.batch_size
                ),
            );
        }
        if self.grad_accumulation == 0 {
            return fail("grad_accumulation", "must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return fail("learning_rate", format!("{} is not in (0, 1)", self.learning_rate));
        }
        for (field, value) in [
            ("final_lr_fraction", self.final_lr_fraction),
            ("ema_decay", self.ema_decay),
            ("caption_dropout", self.caption_dropout),
            ("ink_jitter", self.ink_jitter),
        ] {
            if !unit(value) {
                return fail(field, format!("{value} is not in [0, 1]"));
            }
        }
        if self.grad_clip < 0.0 || self.weight_decay < 0.0 {
            return fail("grad_clip", "grad_clip and weight_decay must not be negative".into());
        }
        if self.checkpoint_every == 0 || self.log_every == 0 || self.keep_checkpoints == 0 {
            return fail(
                "checkpoint_every",
                "checkpoint_every, log_every and keep_checkpoints must be at least 1".into(),
            );
        }
        if self.held_out_every > 0 && self.held_out_pages == 0 {
            return fail("held_out_pages", "must be at least 1 when held_out_every is set".into());
        }
        if self.max_tokens == 0 {
            return fail("max_tokens", "must be at least 1".into());
        }
        if self.devices.is_empty() {
            return fail("devices", "needs at least one device".into());
        }
        let unet = self.preset.config();
        let (width, height) = self.page_size();
        unet.check_size(width, height)?;
        if self.crop_height.is_some() && self.crop == 0 {
            return fail("crop_height", "needs `crop` (the crop width) as well".into());
        }
        if let Some((crop_w, crop_h)) = self.crop_size() {
            let m = unet.size_multiple();
            for (field, side, page) in [("crop", crop_w, width), ("crop_height", crop_h, height)] {
                if side == 0 || !side.is_multiple_of(m) || side > page {
                    return fail(
                        field,
                        format!(
                            "{side} must be a multiple of {m} above 0 that fits the page \
                             ({width}x{height})"
                        ),
                    );
                }
            }
            if unet.coord_channels == 0 {
                return fail(
                    "crop",
                    format!("preset `{}` has no page-coordinate inputs", self.preset.name()),
                );
            }
        }
        Ok(())
    }

    /// The crop `(width, height)` of patch training; `None` when training on whole pages.
    pub fn crop_size(&self) -> Option<(usize, usize)> {
        (self.crop > 0).then(|| (self.crop, self.crop_height.unwrap_or(self.crop)))
    }

    /// The learning rate at `step` (0-based): linear warm-up, then cosine decay to
    /// `final_lr_fraction` of the peak at the last step.
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.learning_rate * (self.final_lr_fraction + (1.0 - self.final_lr_fraction) * cosine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_warms_up_then_follows_the_cosine() {
        let config = TrainConfig {
            steps: 1100,
            warmup_steps: 100,
            learning_rate: 1e-3,
            final_lr_fraction: 0.1,
            ..TrainConfig::default()
        };
        assert!((config.learning_rate_at(0) - 1e-5).abs() < 1e-12);
        assert!((config.learning_rate_at(99) - 1e-3).abs() < 1e-12);
        assert!((config.learning_rate_at(100) - 1e-3).abs() < 1e-12);
        // Half way through the decay the cosine term is 1/2: 0.1 + 0.9 / 2 = 0.55 of the peak.
        assert!((config.learning_rate_at(600) - 0.55e-3).abs() < 1e-12);
        assert!((config.learning_rate_at(1100) - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn invalid_values_name_their_field() {
        let bad = TrainConfig {
            batch_size: 3,
            devices: vec!["cpu".into(), "cpu".into()],
            ..TrainConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("`batch_size`"));
        let bad = TrainConfig { crop: 100, ..TrainConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("multiple of 16"));
        // A full-width strip fits a 512x720 page; a strip taller than the page does not.
        let strip = TrainConfig { crop: 512, crop_height: Some(128), ..TrainConfig::default() };
        assert_eq!(strip.validate().map(|()| strip.crop_size()).unwrap(), Some((512, 128)));
        let tall = TrainConfig { crop: 512, crop_height: Some(736), ..TrainConfig::default() };
        assert!(tall.validate().unwrap_err().to_string().contains("`crop_height`"));
        let alone = TrainConfig { crop_height: Some(128), ..TrainConfig::default() };
        assert!(alone.validate().unwrap_err().to_string().contains("`crop_height`"));
        let bad = TrainConfig { ema_decay: 1.5, ..TrainConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("`ema_decay`"));
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn files_override_defaults_and_unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.json");
        std::fs::write(&path, r#"{"steps": 7, "preset": "tiny"}"#).unwrap();
        let config = TrainConfig::load(&path).unwrap();
        assert_eq!((config.steps, config.preset), (7, Preset::Tiny));
        assert_eq!(config.batch_size, TrainConfig::default().batch_size);
        std::fs::write(&path, "{\"steps\": 7,\n \"stpes\": 8}").unwrap();
        let err = TrainConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("train.json") && err.contains("line 2") && err.contains("stpes"),
            "{err}"
        );
    }
}
