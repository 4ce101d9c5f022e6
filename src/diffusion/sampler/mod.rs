//! Samplers: from noise to a page by repeated calls of a denoising network.
//!
//! Every sampler walks a grid of noise levels from the noisiest to a final, clean level
//! (`alpha_bar = 1`, where the state equals the predicted `x0`). It sees the network only
//! through [`Denoiser`], a closure from `(x_t, t)` to the network output, so it can be
//! tested against the exact denoiser of a known distribution.

mod ddim;
mod ddpm;
mod dpm_solver;
mod euler;

use burn::tensor::Tensor;
use scoregen_kernels::{Guidance as KernelGuidance, SamplerStep, Update};
use serde::{Deserialize, Serialize};

pub use ddim::Ddim;
pub use ddpm::Ddpm;
pub use dpm_solver::DpmSolver2M;
pub use euler::{Euler, Heun};

use super::guidance::Guidance;
use super::noise::HostNoise;
use super::objective::Prediction;
use super::schedule::{Schedule, TimestepSpacing};

/// The network's outputs at one level, before guidance: what a sampler step combines.
///
/// Shapes: every tensor is `[batch, channels, height, width]`.
pub struct Outputs {
    /// The output for the prompts (in the model's [`Prediction`] units).
    pub cond: Tensor<4>,
    /// The output for the negative (or empty) prompts and the guidance that combines the two;
    /// `None` when sampling is unguided.
    pub uncond: Option<(Tensor<4>, Guidance)>,
    /// Clamp the clean page each step implies to `[-1, 1]` (static thresholding, arXiv
    /// 2205.11487) and recompute the noise from it.
    pub clip_x0: bool,
}

impl Outputs {
    /// An unguided, unclipped output.
    pub fn plain(output: Tensor<4>) -> Self {
        Self { cond: output, uncond: None, clip_x0: false }
    }
}

/// The network as a sampler sees it: its outputs for a batch `x_t` at continuous timestep
/// `t` (all samples of the batch share `t`).
///
/// Shapes: `x_t` is `[batch, channels, height, width]`.
pub trait Denoiser {
    /// The network outputs at `(x_t, t)`.
    fn predict(&mut self, x_t: Tensor<4>, t: f64) -> Outputs;
}

/// A closure is an unguided network.
impl<F: FnMut(Tensor<4>, f64) -> Tensor<4>> Denoiser for F {
    fn predict(&mut self, x_t: Tensor<4>, t: f64) -> Outputs {
        Outputs::plain(self(x_t, t))
    }
}

/// One noise level of a sampling grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    /// The (continuous) timestep the network is told.
    pub t: f64,
    /// The signal fraction `alpha_bar` at that timestep.
    pub alpha_bar: f64,
}

impl Level {
    /// The clean end of every grid.
    pub const CLEAN: Level = Level { t: 0.0, alpha_bar: 1.0 };

    /// The level of a discrete timestep.
    pub fn discrete(schedule: &Schedule, t: usize) -> Self {
        Self { t: t as f64, alpha_bar: schedule.alpha_bar(t) }
    }

    /// `sqrt(alpha_bar)`: the signal scale.
    pub fn alpha(self) -> f64 {
        self.alpha_bar.sqrt()
    }

    /// `sqrt(1 - alpha_bar)`: the noise scale.
    pub fn sigma(self) -> f64 {
        (1.0 - self.alpha_bar).max(0.0).sqrt()
    }

    /// Whether this is the clean end (no noise left).
    pub fn is_clean(self) -> bool {
        self.alpha_bar >= 1.0
    }
}

/// What a step reports to the caller, which may also replace the state (inpainting
/// re-imposes the known part of the page at each level).
pub trait StepHook {
    /// Called after each step with the new state `x` (variance-preserving scale) at
    /// level `level`; returns the state to continue from.
    fn after_step(&mut self, step: usize, total: usize, level: Level, x: Tensor<4>) -> Tensor<4>;
}

/// A hook that leaves the state alone.
pub struct NoHook;

impl StepHook for NoHook {
    fn after_step(&mut self, _: usize, _: usize, _: Level, x: Tensor<4>) -> Tensor<4> {
        x
    }
}

/// A sampling method.
pub trait Sampler {
    /// The grid of `steps` noise levels, noisiest first; the clean level is implied after
    /// the last one.
    fn levels(&self, schedule: &Schedule, steps: usize) -> Vec<Level>;

    /// Runs the sampler from `x` (at `levels[0]`, variance-preserving scale) to the clean
    /// level.
    ///
    /// Shapes: `x` and the result are `[batch, channels, height, width]`.
    fn run(
        &self,
        levels: &[Level],
        prediction: Prediction,
        x: Tensor<4>,
        model: &mut dyn Denoiser,
        noise: &mut HostNoise,
        hook: &mut dyn StepHook,
    ) -> Tensor<4>;
}

/// The samplers by name, as the command line and configs name them, with the settings
/// that belong to each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Ancestral sampling from the true posterior (DDPM), on discrete timesteps.
    Ddpm {
        /// Where the timesteps sit.
        spacing: TimestepSpacing,
    },
    /// DDIM, on discrete timesteps.
    Ddim {
        /// Stochasticity in `[0, 1]`: 0 is deterministic, 1 adds the DDPM posterior's noise.
        eta: f64,
        /// Where the timesteps sit.
        spacing: TimestepSpacing,
    },
    /// DPM-Solver++ 2M, the default: about 20 steps.
    #[default]
    DpmSolver2M,
    /// Euler on the Karras sigma grid.
    Euler,
    /// Heun (second order, two evaluations per step) on the Karras sigma grid.
    Heun,
}

impl SamplerKind {
    /// DDPM on trailing timesteps.
    pub const DDPM: Self = Self::Ddpm { spacing: TimestepSpacing::Trailing };

    /// Deterministic DDIM (`eta = 0`) on trailing timesteps.
    pub const DDIM: Self = Self::Ddim { eta: 0.0, spacing: TimestepSpacing::Trailing };

    /// Every sampler, with its default settings.
    pub const ALL: [SamplerKind; 5] =
        [Self::DDPM, Self::DDIM, Self::DpmSolver2M, Self::Euler, Self::Heun];

    /// The sampler object.
    pub fn build(self) -> Box<dyn Sampler> {
        match self {
            Self::Ddpm { spacing } => Box::new(Ddpm { spacing }),
            Self::Ddim { eta, spacing } => Box::new(Ddim { eta, spacing }),
            Self::DpmSolver2M => Box::new(DpmSolver2M),
            Self::Euler => Box::new(Euler),
            Self::Heun => Box::new(Heun),
        }
    }

    /// The name used on the command line (settings left out).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ddpm { .. } => "ddpm",
            Self::Ddim { .. } => "ddim",
            Self::DpmSolver2M => "dpmpp-2m",
            Self::Euler => "euler",
            Self::Heun => "heun",
        }
    }

    /// The sampler of a command-line name, with its default settings.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown sampler `{name}`: expected one of {}", names.join(", "))
        })
    }

    /// DDIM's `eta`; `None` for the other samplers.
    pub fn eta(self) -> Option<f64> {
        match self {
            Self::Ddim { eta, .. } => Some(eta),
            _ => None,
        }
    }

    /// The timestep spacing; `None` for the samplers on the Karras sigma grid.
    pub fn spacing(self) -> Option<TimestepSpacing> {
        match self {
            Self::Ddpm { spacing } | Self::Ddim { spacing, .. } => Some(spacing),
            _ => None,
        }
    }

    /// The same sampler with DDIM's `eta` set; an error naming the sampler for any other.
    pub fn with_eta(self, eta: f64) -> Result<Self, String> {
        match self {
            Self::Ddim { spacing, .. } => Ok(Self::Ddim { eta, spacing }),
            other => Err(format!("eta applies to ddim only, not to {}", other.name())),
        }
    }

    /// The same sampler with its timestep spacing set; an error for the samplers on the
    /// Karras sigma grid, which has no spacing to choose.
    pub fn with_spacing(self, spacing: TimestepSpacing) -> Result<Self, String> {
        match self {
            Self::Ddpm { .. } => Ok(Self::Ddpm { spacing }),
            Self::Ddim { eta, .. } => Ok(Self::Ddim { eta, spacing }),
            other => Err(format!(
                "timestep spacing applies to ddpm and ddim only: {} runs on the Karras sigma grid",
                other.name()
            )),
        }
    }
}

/// The name, then the settings that differ by sampler: `ddim (eta 0.5, trailing spacing)`.
impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())?;
        match (self.eta(), self.spacing()) {
            (Some(eta), Some(spacing)) => write!(f, " (eta {eta}, {} spacing)", spacing.name()),
            (None, Some(spacing)) => write!(f, " ({} spacing)", spacing.name()),
            _ => Ok(()),
        }
    }
}

/// `steps` discrete timesteps of `schedule`, noisiest first, spaced as asked.
fn spaced_levels(schedule: &Schedule, steps: usize, spacing: TimestepSpacing) -> Vec<Level> {
    schedule.timesteps(steps, spacing).into_iter().map(|t| Level::discrete(schedule, t)).collect()
}

/// Samples from `x_noise` (standard normal) or, with `init = (x0, strength)`, from a
/// partially noised page: `x0` is noised to timestep `strength * T`, and sampling runs from
/// there through the grid's lower levels.
///
/// Shapes: `x_noise`, `x0` and the result are `[batch, channels, height, width]`.
#[allow(clippy::too_many_arguments)]
pub fn sample(
    sampler: &dyn Sampler,
    schedule: &Schedule,
    prediction: Prediction,
    steps: usize,
    x_noise: Tensor<4>,
    init: Option<(Tensor<4>, f64)>,
    model: &mut dyn Denoiser,
    noise: &mut HostNoise,
    hook: &mut dyn StepHook,
) -> Tensor<4> {
    let mut levels = sampler.levels(schedule, steps);
    let x = match init {
        None => x_noise,
        Some((x0, strength)) => {
            // Strength is a fraction of the training time axis, not of the grid: Karras grids
            // crowd their levels at low noise, so a fraction of levels would start far noisier.
            let start = strength.clamp(0.0, 1.0) * (schedule.len() - 1) as f64;
            let first_kept =
                levels.iter().position(|l| l.t <= start + 1e-9).unwrap_or(levels.len());
            levels.drain(..first_kept);
            // The grid rarely has a level at exactly `start`: begin there all the same.
            if levels.first().is_none_or(|l| l.t < start - 1e-6) {
                levels.insert(0, Level { t: start, alpha_bar: schedule.alpha_bar_at(start) });
            }
            let first = levels[0];
            x0.mul_scalar(first.alpha()) + x_noise.mul_scalar(first.sigma())
        }
    };
    sampler.run(&levels, prediction, x, model, noise, hook)
}

/// One step from `x` at `level`: guidance, the clean page and noise the outputs imply,
/// clipping, and `update`, as one call of [`scoregen_kernels::sampler_step`] (a fused kernel on
/// GPU backends). Returns `(x_next, x0)`.
fn step(
    outputs: Outputs,
    prediction: Prediction,
    x: Tensor<4>,
    level: Level,
    update: Update,
) -> (Tensor<4>, Tensor<4>) {
    let (uncond, guidance) = match outputs.uncond {
        Some((uncond, g)) => {
            (Some(uncond), KernelGuidance { scale: g.scale as f32, rescale: g.rescale as f32 })
        }
        None => (None, KernelGuidance { scale: 1.0, rescale: 0.0 }),
    };
    let step = SamplerStep {
        prediction: prediction.kernel_target(),
        alpha: level.alpha() as f32,
        sigma: level.sigma() as f32,
        guidance,
        clip_x0: outputs.clip_x0,
        update,
    };
    scoregen_kernels::sampler_step(step, x, outputs.cond, uncond)
}

/// The network's clean-page estimate at a level, guidance and clipping applied.
fn denoise(
    model: &mut dyn Denoiser,
    prediction: Prediction,
    x: Tensor<4>,
    level: Level,
) -> Tensor<4> {
    let outputs = model.predict(x.clone(), level.t);
    step(outputs, prediction, x, level, Update::TO_X0).1
}

/// The level after `levels[i]`: the next one, or clean after the last.
fn next_level(levels: &[Level], i: usize) -> Level {
    levels.get(i + 1).copied().unwrap_or(Level::CLEAN)
}

#[cfg(test)]
mod tests;
