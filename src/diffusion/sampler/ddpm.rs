//! DDPM ancestral sampling (arXiv 2006.11239): each step draws from the true Gaussian
//! posterior `q(x_s | x_t, x0)` with the network's `x0`, generalised to skipped timesteps.

use burn::tensor::Tensor;

use super::{Denoiser, Level, Sampler, StepHook, denoise, next_level, spaced_levels};
use crate::diffusion::noise::HostNoise;
use crate::diffusion::objective::Prediction;
use crate::diffusion::schedule::{Schedule, TimestepSpacing};

/// Ancestral DDPM sampling.
pub struct Ddpm {
    /// Where the timesteps sit.
    pub spacing: TimestepSpacing,
}

impl Sampler for Ddpm {
    fn levels(&self, schedule: &Schedule, steps: usize) -> Vec<Level> {
        spaced_levels(schedule, steps, self.spacing)
    }

    fn run(
        &self,
        levels: &[Level],
        prediction: Prediction,
        mut x: Tensor<4>,
        model: &mut dyn Denoiser,
        noise: &mut HostNoise,
        hook: &mut dyn StepHook,
    ) -> Tensor<4> {
        for (i, &level) in levels.iter().enumerate() {
            let next = next_level(levels, i);

            // 1. The network's estimate of the clean page.
            let x0 = denoise(model, prediction, x.clone(), level);

            // 2. Posterior q(x_s | x_t, x0) with alpha_{t|s} = alpha_bar_t / alpha_bar_s.
            x = if next.is_clean() {
                x0
            } else {
                let (ab_t, ab_s) = (level.alpha_bar, next.alpha_bar);
                let alpha_ts = ab_t / ab_s;
                let beta_ts = 1.0 - alpha_ts;
                let coef_x0 = ab_s.sqrt() * beta_ts / (1.0 - ab_t);
                let coef_xt = alpha_ts.sqrt() * (1.0 - ab_s) / (1.0 - ab_t);
                let variance = beta_ts * (1.0 - ab_s) / (1.0 - ab_t);

                // 3. Draw from it.
                let z = noise.normal(x.dims(), &x.device());
                x0.mul_scalar(coef_x0) + x.mul_scalar(coef_xt) + z.mul_scalar(variance.sqrt())
            };
            x = hook.after_step(i, levels.len(), next, x);
        }
        x
    }
}
