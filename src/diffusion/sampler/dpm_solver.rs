//! DPM-Solver++(2M) (arXiv 2211.01095, Algorithm 2): a second-order multistep solver of the
//! diffusion ODE in data-prediction form, in the half-log-SNR `lambda = log(alpha / sigma)`.
//! The first step, and the final jump to the clean level, are first order. It runs on the
//! Karras sigma grid (arXiv 2206.00364), which ends at the schedule's smallest noise.

use burn::tensor::Tensor;

use super::euler::karras_levels;
use super::{Denoiser, Level, Sampler, StepHook, denoise, next_level};
use crate::diffusion::noise::HostNoise;
use crate::diffusion::objective::Prediction;
use crate::diffusion::schedule::Schedule;

/// DPM-Solver++ 2M.
pub struct DpmSolver2M;

fn lambda(level: Level) -> f64 {
    (level.alpha() / level.sigma()).ln()
}

impl Sampler for DpmSolver2M {
    /// The Karras grid: steps concentrate at low noise, where a page's thin lines form.
    fn levels(&self, schedule: &Schedule, steps: usize) -> Vec<Level> {
        karras_levels(schedule, steps)
    }

    fn run(
        &self,
        levels: &[Level],
        prediction: Prediction,
        mut x: Tensor<4>,
        model: &mut dyn Denoiser,
        _noise: &mut HostNoise,
        hook: &mut dyn StepHook,
    ) -> Tensor<4> {
        let mut previous: Option<(Tensor<4>, f64)> = None;
        for (i, &level) in levels.iter().enumerate() {
            let next = next_level(levels, i);

            // 1. The data prediction at this level.
            let (x0, _) = denoise(model, prediction, x.clone(), level);
            if next.is_clean() {
                // sigma_next = 0 turns the update into x = x0.
                x = hook.after_step(i, levels.len(), next, x0);
                break;
            }

            // 2. Step size in lambda.
            let h = lambda(next) - lambda(level);

            // 3. Second-order correction from the previous data prediction.
            let d = match previous.take() {
                Some((x0_prev, h_prev)) => {
                    let r = h_prev / h;
                    x0.clone().mul_scalar(1.0 + 0.5 / r) - x0_prev.mul_scalar(0.5 / r)
                }
                None => x0.clone(),
            };

            // 4. The exponential-integrator update.
            let ratio = next.sigma() / level.sigma();
            let coef = -next.alpha() * (-h).exp_m1();
            x = x.mul_scalar(ratio) + d.mul_scalar(coef);
            previous = Some((x0, h));
            x = hook.after_step(i, levels.len(), next, x);
        }
        x
    }
}
