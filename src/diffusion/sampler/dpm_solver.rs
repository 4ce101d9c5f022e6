//! DPM-Solver++(2M) (arXiv 2211.01095, Algorithm 2): a second-order multistep solver of the
//! diffusion ODE in data-prediction form, in the half-log-SNR `lambda = log(alpha / sigma)`.
//! The first step, and the final jump to the clean level, are first order. It runs on the
//! Karras sigma grid (arXiv 2206.00364), which ends at the schedule's smallest noise.

use burn::tensor::Tensor;

use super::euler::karras_levels;
use scoregen_kernels::Update;

use super::{Denoiser, Level, Sampler, StepHook, next_level, step};
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
            let outputs = model.predict(x.clone(), level.t);
            if next.is_clean() {
                // sigma_next = 0 turns the update into x = x0.
                let x0 = step(outputs, prediction, x, level, Update::TO_X0).1;
                x = hook.after_step(i, levels.len(), next, x0);
                break;
            }

            // 1. Step size in lambda, and the second-order correction's step ratio.
            let h = lambda(next) - lambda(level);
            let previous_x0 =
                previous.take().map(|(x0_prev, h_prev)| (x0_prev, (h_prev / h) as f32));

            // 2. Guidance, the data prediction, and the exponential-integrator update
            //    `(sigma_next / sigma) x + coef d`, where `d` extrapolates from the previous
            //    data prediction, in one step.
            let update = Update::DpmSolver2M {
                sigma_ratio: (next.sigma() / level.sigma()) as f32,
                coef: (-next.alpha() * (-h).exp_m1()) as f32,
                previous: previous_x0,
            };
            let (x_next, x0) = step(outputs, prediction, x, level, update);
            previous = Some((x0, h));
            x = hook.after_step(i, levels.len(), next, x_next);
        }
        x
    }
}
