//! Training the score model: AdamW with warm-up and cosine decay, gradient clipping and
//! accumulation, an EMA of the weights, caption dropout for guidance, min-SNR weighting
//! (arXiv 2303.09556) and patch training (arXiv 2304.12526), data-parallel over several
//! devices through Burn's multi-device optimiser step.
//!
//! A run is reproducible: all randomness derives from the seed and the step (see
//! [`batch`]), so `--resume` from a checkpoint continues with the very losses an
//! uninterrupted run would have produced.

pub mod batch;
pub mod checkpoints;
pub mod config;
pub mod ema;
pub mod held_out;
mod log;
pub mod plot;

use std::path::PathBuf;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{
    AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer, MultiGradientsParams,
};
use burn::tensor::{Device, Tensor, TensorData};

use crate::backend::DeviceSpec;
use crate::dataset::{DataSet, PageCache, Split, default_cache_root};
use crate::diffusion::{LossWeighting, Schedule};
use crate::error::{Error, Result};
use crate::text::{Tokenizer, ids_tensor};
use crate::unet::score_model::coordinate_channels;
use crate::unet::{ModelConfig, ScoreModel};
use batch::{Batcher, Sample};
pub use config::TrainConfig;
use held_out::{HeldOut, HeldOutLoss};
pub use log::{LogRecord, StepLog, read as read_log};

/// The prompts of every sample sheet, one page each (seeds 0 to 3).
const SHEET_PROMPTS: [&str; 4] = [
    "a music score, instrumentation is piano",
    "a music score, instrumentation is violin",
    "a music score, instrumentation is mixed chorus (satb)",
    "a music score, instrumentation is 2 violins, viola, cello",
];

/// What a run reports as it goes; the command line draws it, tests record it.
pub trait Observer {
    /// Pages prepared so far while the data set is read.
    fn preparing(&mut self, _done: usize, _total: usize) {}
    /// Training is about to start at `step` of `total`.
    fn started(&mut self, _step: usize, _total: usize) {}
    /// A step finished.
    fn step(&mut self, _record: &LogRecord) {}
    /// A checkpoint was written.
    fn checkpoint(&mut self, _path: &std::path::Path) {}
    /// A sample sheet was written.
    fn report(&mut self, _path: &std::path::Path) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// A training run in progress.
pub struct Trainer {
    config: TrainConfig,
    model_config: ModelConfig,
    tokenizer: Tokenizer,
    schedule: Schedule,
    devices: Vec<Device>,
    model: ScoreModel,
    ema: ScoreModel,
    optimizer: ModuleOptimizer,
    batcher: Batcher,
    step: usize,
    log: StepLog,
    /// The validation pages, when the run measures the held-out loss.
    held_out: Option<HeldOut>,
}

/// Parses the configured device names into autodiff devices.
fn devices(config: &TrainConfig) -> Result<Vec<Device>> {
    config
        .devices
        .iter()
        .map(|name| {
            let spec = DeviceSpec::parse(name)
                .map_err(|e| Error::input(format!("train config `devices`: {e}")))?;
            Ok(spec.device()?.autodiff())
        })
        .collect()
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    // Burn clips each parameter's gradient by its own norm, not the global norm.
    let clip =
        (config.grad_clip > 0.0).then_some(GradientClippingConfig::Norm(config.grad_clip as f32));
    AdamWConfig::new().with_weight_decay(config.weight_decay as f32).with_grad_clipping(clip).init()
}

impl Trainer {
    /// Prepares a run: reads the data, then builds a fresh model or, with `resume`, restores
    /// the newest checkpoint in the run folder.
    pub fn new(config: TrainConfig, resume: bool, observer: &mut dyn Observer) -> Result<Self> {
        config.validate()?;
        let devices = devices(&config)?;
        let set = DataSet::open(&config.data, Split::Train)?;
        let (width, height) = config.page_size();
        let cache_root = config.cache_dir.clone().unwrap_or_else(default_cache_root);
        let cache = PageCache::new(&cache_root, &set, width, height);
        let (batcher, preparation) =
            Batcher::new(&set, cache, &config, |done, total| observer.preparing(done, total))?;
        if !preparation.skipped.is_empty() {
            tracing::warn!("{} pages skipped while preparing the data", preparation.skipped.len());
        }

        let held_out = if config.held_out_every > 0 {
            let pages = config.held_out_pages;
            Some(HeldOut::load(&config.data, Split::Val, (width, height), &cache_root, pages)?)
        } else {
            None
        };

        let latest = if resume { checkpoints::list(&config.out)?.pop() } else { None };
        let mut trainer = match latest {
            Some((_, path)) => Self::restored(config, devices, batcher, &path)?,
            None => Self::fresh(config, devices, batcher)?,
        };
        trainer.held_out = held_out;
        Ok(trainer)
    }

    fn fresh(config: TrainConfig, devices: Vec<Device>, batcher: Batcher) -> Result<Self> {
        if !checkpoints::list(&config.out)?.is_empty() {
            return Err(Error::input(format!(
                "{} already holds checkpoints: pass --resume to continue, or choose another --out",
                config.out.display()
            )));
        }
        let (tokenizer, model_config, model, ema) = match &config.init_from {
            None => {
                let tokenizer = Tokenizer::from_captions(
                    batcher.captions(),
                    config.min_word_count,
                    config.max_tokens,
                );
                let model_config = model_config(&config, &tokenizer);
                let model = model_config.init_seeded(init_seed(&config), &devices[0]);
                let ema = model.valid();
                (tokenizer, model_config, model, ema)
            }
            Some(folder) => initialised_from(&config, folder, &devices[0])?,
        };
        let log = StepLog::create(&config.out, 0)?;
        Ok(Self {
            schedule: Schedule::new(&model_config.schedule),
            optimizer: optimizer(&config),
            config,
            model_config,
            tokenizer,
            devices,
            model,
            ema,
            batcher,
            step: 0,
            log,
            held_out: None,
        })
    }

    fn restored(
        config: TrainConfig,
        devices: Vec<Device>,
        batcher: Batcher,
        path: &std::path::Path,
    ) -> Result<Self> {
        let restored = checkpoints::restore(path, optimizer(&config), &devices[0])?;
        let mut saved = restored.state.config.clone();
        // Only the length of the run may change on resume; anything else is another run.
        saved.steps = config.steps;
        if saved != config {
            return Err(Error::input(format!(
                "{}: the checkpoint was made with a different configuration (only `steps` may \
                 change on --resume)",
                path.display()
            )));
        }
        let step = restored.state.step;
        let log = StepLog::create(&config.out, step)?;
        Ok(Self {
            schedule: Schedule::new(&restored.model_config.schedule),
            config,
            model_config: restored.model_config,
            tokenizer: restored.tokenizer,
            devices,
            model: restored.model,
            ema: restored.ema,
            optimizer: restored.optimizer,
            batcher,
            step,
            log,
            held_out: None,
        })
    }

    /// Steps completed.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The model configuration.
    pub fn model_config(&self) -> &ModelConfig {
        &self.model_config
    }

    /// The vocabulary.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The EMA weights.
    pub fn ema(&self) -> &ScoreModel {
        &self.ema
    }

    /// The trained weights.
    pub fn model(&self) -> &ScoreModel {
        &self.model
    }

    /// Trains until the configured number of steps, writing checkpoints on the way and
    /// at the end. Returns the last checkpoint's folder.
    pub fn run(&mut self, observer: &mut dyn Observer) -> Result<PathBuf> {
        self.run_until(self.config.steps, observer)
    }

    /// Trains until step `stop` (at most the configured total), with the checkpoints and
    /// log lines of [`Trainer::run`].
    pub fn run_until(&mut self, stop: usize, observer: &mut dyn Observer) -> Result<PathBuf> {
        let stop = stop.min(self.config.steps);
        observer.started(self.step, self.config.steps);
        let start = Instant::now();
        let first = self.step;
        let mut last = None;
        while self.step < stop {
            let loss = self.train_step()?;
            let elapsed = start.elapsed().as_secs_f64();
            let done = (self.step - first) as f64;
            let final_step = self.step == self.config.steps;
            let every = self.config.held_out_every;
            let held_out = (every > 0 && (self.step.is_multiple_of(every) || final_step))
                .then(|| self.held_out_loss())
                .transpose()?;
            let record = LogRecord {
                step: self.step,
                loss,
                learning_rate: self.config.learning_rate_at(self.step - 1),
                images_per_second: done * self.config.batch_size as f64 / elapsed.max(1e-9),
                elapsed_seconds: elapsed,
                held_out,
            };
            if self.step.is_multiple_of(self.config.log_every)
                || final_step
                || record.held_out.is_some()
            {
                self.log.append(&record)?;
            }
            observer.step(&record);
            if self.config.sample_every > 0 && self.step.is_multiple_of(self.config.sample_every) {
                let (_, sheet) = self.write_report()?;
                observer.report(&sheet);
            }
            if self.step.is_multiple_of(self.config.checkpoint_every)
                || self.step == self.config.steps
            {
                let path = self.save()?;
                observer.checkpoint(&path);
                last = Some(path);
            }
        }
        match last {
            Some(path) => Ok(path),
            None => self.save(),
        }
    }

    /// Writes the loss curve (`loss.png`) and a sheet of pages from fixed prompts and seeds
    /// made with the EMA weights at the model's guidance scale (`samples-step-N.png`); returns
    /// both paths.
    pub fn write_report(&self) -> Result<(PathBuf, PathBuf)> {
        let out = &self.config.out;
        let loss = out.join("loss.png");
        plot::loss_curve(&log::read(&out.join("log.jsonl"))?, &loss, 800, 480)?;
        let ema = self.ema_model();
        let generator = crate::sample::Generator::new(&ema, self.devices[0].clone().inner());
        let options = crate::sample::Options {
            sampler: crate::diffusion::SamplerKind::DpmSolver2M,
            steps: self.config.sample_steps,
            guidance: crate::diffusion::Guidance {
                scale: self.model_config.guidance_scale(),
                ..Default::default()
            },
            width: self.model_config.page_width,
            height: self.model_config.page_height,
            seed: 0,
            clip_x0: true,
        };
        let prompts: Vec<String> = SHEET_PROMPTS.iter().map(|p| p.to_string()).collect();
        let pages = generator.generate(&prompts, "", &options, None, &mut |_, _| {})?;
        let captioned: Vec<_> = pages.into_iter().zip(prompts).collect();
        let sheet = out.join(format!("samples-step-{:08}.png", self.step));
        crate::sample::output::write_png(
            &sheet,
            &crate::sample::output::contact_sheet(&captioned, 4),
            &[],
        )?;
        Ok((loss, sheet))
    }

    /// The EMA weights as a model to sample or measure with.
    fn ema_model(&self) -> crate::checkpoint::LoadedModel {
        crate::checkpoint::LoadedModel {
            model: self.ema.clone(),
            config: self.model_config.clone(),
            tokenizer: self.tokenizer.clone(),
            folder: self.config.out.clone(),
        }
    }

    /// The held-out loss of the EMA weights on the validation pages; an error when the run
    /// was not configured to measure it (`held_out_every`).
    pub fn held_out_loss(&self) -> Result<HeldOutLoss> {
        let held_out = self.held_out.as_ref().ok_or_else(|| {
            Error::input("train config `held_out_every`: the run measures no held-out loss")
        })?;
        held_out.loss(&self.ema_model(), self.config.batch_size, &self.devices[0].clone().inner())
    }

    /// Writes a checkpoint of the current step.
    pub fn save(&self) -> Result<PathBuf> {
        let snapshot = checkpoints::Snapshot {
            model_config: &self.model_config,
            tokenizer: &self.tokenizer,
            model: &self.model,
            ema: &self.ema,
            optimizer: &self.optimizer,
            state: checkpoints::TrainState { step: self.step, config: self.config.clone() },
        };
        checkpoints::save(&self.config.out, &snapshot, self.config.keep_checkpoints)
    }

    /// One optimiser step over the whole batch; returns its loss. A non-finite loss stops
    /// the run before the weights are touched, so the last checkpoint stays good.
    pub fn train_step(&mut self) -> Result<f64> {
        let shards = self.devices.len() * self.config.grad_accumulation;
        let shard = self.config.batch_size / shards;
        let mut accumulators: Vec<GradientsAccumulator<ScoreModel>> =
            self.devices.iter().map(|_| GradientsAccumulator::new()).collect();
        let mut total_loss = 0.0;
        for round in 0..self.config.grad_accumulation {
            for (d, device) in self.devices.clone().iter().enumerate() {
                let first = (round * self.devices.len() + d) * shard;
                let samples = (first..first + shard)
                    .map(|j| self.batcher.sample(self.step, j, self.schedule.len()))
                    .collect::<Result<Vec<_>>>()?;
                let model =
                    if d == 0 { self.model.clone() } else { self.model.clone().fork(device) };
                // Each shard's mean loss is scaled by its share, so the summed gradients are
                // the gradient of the whole batch's mean loss.
                let loss = self
                    .loss(&model, &samples, device)
                    .mul_scalar(shard as f64 / self.config.batch_size as f64);
                let value = loss.clone().into_scalar::<f32>() as f64;
                if !value.is_finite() {
                    return Err(Error::runtime(format!(
                        "the loss became {value} at step {}: stopping; the last checkpoint in {} is intact",
                        self.step + 1,
                        checkpoints::folder(&self.config.out).display()
                    )));
                }
                total_loss += value;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                accumulators[d].accumulate(&model, grads);
            }
        }

        let learning_rate = self.config.learning_rate_at(self.step);
        let model = self.model.clone();
        self.model = if self.devices.len() == 1 {
            self.optimizer.step(learning_rate, model, accumulators[0].grads())
        } else {
            let grads = accumulators
                .iter_mut()
                .zip(&self.devices)
                .map(|(a, device)| (a.grads(), device.clone()))
                .collect();
            self.optimizer.step_multi(learning_rate, model, MultiGradientsParams { grads })
        };

        // Early in a run the average forgets faster, so it is not stuck near the
        // random initialisation (the warm-up of arXiv 1806.04498's EMA schedule).
        let decay = self.config.ema_decay.min((1.0 + self.step as f64) / (10.0 + self.step as f64));
        self.ema = ema::update(self.ema.clone(), &self.model, decay);
        self.step += 1;
        Ok(total_loss)
    }

    /// The weighted score-matching loss of a batch of samples.
    fn loss(&self, model: &ScoreModel, samples: &[Sample], device: &Device) -> Tensor<1> {
        let setup = LossSetup {
            model_config: &self.model_config,
            tokenizer: &self.tokenizer,
            schedule: &self.schedule,
            weighting: self.config.weighting,
        };
        setup.loss(model, samples, self.batcher.crop_size(), device)
    }
}

/// What the score-matching loss needs besides the network and the samples.
pub(crate) struct LossSetup<'a> {
    /// The model's page size, prediction type and input channels.
    pub model_config: &'a ModelConfig,
    /// Encodes the captions.
    pub tokenizer: &'a Tokenizer,
    /// Noise levels of the timesteps.
    pub schedule: &'a Schedule,
    /// Loss weight per noise level.
    pub weighting: LossWeighting,
}

impl LossSetup<'_> {
    /// The weighted loss of `samples`, each a `crop` = `(width, height)` of a page.
    pub fn loss(
        &self,
        model: &ScoreModel,
        samples: &[Sample],
        crop: (usize, usize),
        device: &Device,
    ) -> Tensor<1> {
        let n = samples.len();
        let (width, height) = crop;
        let (page_width, page_height) =
            (self.model_config.page_width, self.model_config.page_height);
        let prediction = self.model_config.prediction;

        // 1. Clean pages, noise and per-sample noise levels.
        let flat = |f: fn(&Sample) -> &Vec<f32>| {
            samples.iter().flat_map(|s| f(s).iter().copied()).collect::<Vec<f32>>()
        };
        let x0 =
            Tensor::<4>::from_data(TensorData::new(flat(|s| &s.x0), [n, 1, height, width]), device);
        let eps = Tensor::<4>::from_data(
            TensorData::new(flat(|s| &s.eps), [n, 1, height, width]),
            device,
        );
        let alpha_bars: Vec<f64> = samples.iter().map(|s| self.schedule.alpha_bar(s.t)).collect();
        let column =
            |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [n]), device);
        let alpha = column(alpha_bars.iter().map(|a| a.sqrt() as f32).collect());
        let sigma = column(alpha_bars.iter().map(|a| (1.0 - a).sqrt() as f32).collect());
        let weight = column(
            alpha_bars.iter().map(|&a| self.weighting.weight(a, prediction) as f32).collect(),
        );

        // 2. Forward noising with the training target in one pass.
        let (x_t, target) =
            scoregen_kernels::forward_noising(x0, eps, alpha, sigma, prediction.kernel_target());

        // 3. The network sees the noisy crop, where it lies on the page, and the caption.
        let input = if self.model_config.unet.coord_channels > 0 {
            let origins: Vec<(usize, usize)> = samples.iter().map(|s| s.origin).collect();
            let coords =
                coordinate_channels(&origins, height, width, page_width, page_height, device);
            Tensor::cat(vec![x_t, coords], 1)
        } else {
            x_t
        };
        let ids: Vec<Vec<u32>> =
            samples.iter().map(|s| self.tokenizer.encode(&s.caption).ids).collect();
        let context = model.encode(ids_tensor(&ids, device));
        let t = column(samples.iter().map(|s| s.t as f32).collect());
        let output = model.denoise(input, t, context);

        // 4. Weighted mean squared error.
        scoregen_kernels::weighted_mse(output, target, weight)
    }
}

/// The seed of a fresh model's initial weights.
fn init_seed(config: &TrainConfig) -> u64 {
    batch::mix(&[config.seed, u64::MAX - 1])
}

/// Vocabulary, model configuration, weights and EMA weights of a checkpoint that a
/// fine-tuning run starts from (the raw weights from the EMA ones where a folder, such as a
/// shipped model, has no others). The checkpoint's network and vocabulary are kept; the run's
/// schedule, prediction and page size apply from here on.
fn initialised_from(
    config: &TrainConfig,
    folder: &std::path::Path,
    device: &Device,
) -> Result<(Tokenizer, ModelConfig, ScoreModel, ScoreModel)> {
    let mut model_config = crate::checkpoint::load_config(folder)?;
    if model_config.preset != config.preset.name() {
        return Err(Error::input(format!(
            "train config `init_from`: {} holds a `{}` model but this run trains `{}`",
            folder.display(),
            model_config.preset,
            config.preset.name()
        )));
    }
    let tokenizer = Tokenizer::load(&folder.join(crate::checkpoint::files::TOKENIZER))?;
    let (page_width, page_height) = config.page_size();
    model_config.schedule = config.schedule.clone();
    model_config.prediction = config.prediction;
    model_config.page_width = page_width;
    model_config.page_height = page_height;
    model_config.validate()?;

    // A shipped model folder holds only the EMA weights: training then continues from them.
    let raw = folder.join(crate::checkpoint::files::RAW);
    let ema_file = folder.join(crate::checkpoint::files::EMA);
    let mut model = model_config.init_seeded(init_seed(config), device);
    let start = if raw.exists() { &raw } else { &ema_file };
    crate::checkpoint::load_weights(&mut model, start)?;
    let mut ema = model.valid();
    crate::checkpoint::load_weights(&mut ema, &ema_file)?;
    Ok((tokenizer, model_config, model, ema))
}

/// The model configuration a run trains: the preset with the run's vocabulary, schedule,
/// prediction and page size.
fn model_config(config: &TrainConfig, tokenizer: &Tokenizer) -> ModelConfig {
    let mut model =
        ModelConfig::from_preset(config.preset, tokenizer.vocab_size(), tokenizer.max_tokens());
    let (page_width, page_height) = config.page_size();
    model.schedule = config.schedule.clone();
    model.prediction = config.prediction;
    model.page_width = page_width;
    model.page_height = page_height;
    model
}

#[cfg(test)]
mod tests;
