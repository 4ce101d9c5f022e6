//! DDIM (arXiv 2010.02502): the non-Markovian update
//! `x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - s^2) eps + s z`, deterministic at `eta = 0`.

use burn::tensor::Tensor;

use scoregen_kernels::Update;

use super::{Denoiser, Level, Sampler, StepHook, next_level, spaced_levels, step};
use crate::diffusion::noise::HostNoise;
use crate::diffusion::objective::Prediction;
use crate::diffusion::schedule::{Schedule, TimestepSpacing};

/// DDIM with stochasticity `eta` (0: deterministic; 1: DDPM's variance).
pub struct Ddim {
    /// Fraction of the DDPM posterior's standard deviation drawn afresh at each step, in
    /// `[0, 1]`. At 1 a step is a draw from the DDPM posterior `q(x_s | x_t, x0)`.
    pub eta: f64,
    /// Where the timesteps sit.
    pub spacing: TimestepSpacing,
}

impl Sampler for Ddim {
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

            // 1. The noise kept (direction to x_t) and the noise drawn afresh.
            let (ab_t, ab_s) = (level.alpha_bar, next.alpha_bar);
            let fresh = self.eta * ((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s)).sqrt();
            let kept = (1.0 - ab_s - fresh * fresh).max(0.0).sqrt();

            // 2. Guidance, the clean page and noise the network implies, and the update
            //    `sqrt(ab_s) x0 + kept eps`, in one step.
            let outputs = model.predict(x.clone(), level.t);
            let update = Update::Ddim { alpha_next: ab_s.sqrt() as f32, eps_scale: kept as f32 };
            x = step(outputs, prediction, x, level, update).0;

            // 3. Fresh noise (eta > 0).
            if fresh > 0.0 {
                x = x.clone() + noise.normal(x.dims(), &x.device()).mul_scalar(fresh);
            }
            x = hook.after_step(i, levels.len(), next, x);
        }
        x
    }
}
