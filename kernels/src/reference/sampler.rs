//! One sampler step: classifier-free guidance (arXiv 2207.12598) with guidance rescale
//! (arXiv 2305.08891), the network output turned into `(x0, eps)`, optional static
//! thresholding of `x0`, and the update of DDIM (arXiv 2010.02502) or DPM-Solver++(2M)
//! (arXiv 2211.01095, Algorithm 2).
//!
//! The maths is the main crate's (`diffusion::guidance`, `diffusion::objective`,
//! `diffusion::sampler`, `sample::clip_to_page`) written as one function, so that the fused
//! kernel has a single definition to be held to.

use burn::tensor::Tensor;

use super::Target;

/// Classifier-free guidance settings of a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guidance {
    /// `w` in `uncond + w * (cond - uncond)`.
    pub scale: f32,
    /// `phi`: the share of the guided output rescaled to the conditional output's per-sample
    /// standard deviation (0 off).
    pub rescale: f32,
}

/// The update that moves the state from the current level to the next.
// A Burn tensor is large (~800 bytes); an `Update` is made once per step and moved, never
// stored in bulk, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Update {
    /// DDIM: `x_next = alpha_next * x0 + eps_scale * eps`. At `eta = 0`, `eps_scale` is
    /// `sigma_next`; with `eta > 0` it is `sqrt(1 - alpha_next^2 - fresh^2)` and the caller adds
    /// `fresh * z` afterwards.
    Ddim {
        /// `sqrt(alpha_bar)` of the next level.
        alpha_next: f32,
        /// The weight of the current noise estimate.
        eps_scale: f32,
    },
    /// DPM-Solver++(2M): `x_next = sigma_ratio * x_t + coef * d`, where `d` is `x0` on the first
    /// step and `(1 + 1/(2r)) x0 - 1/(2r) x0_prev` after it.
    DpmSolver2M {
        /// `sigma_next / sigma`.
        sigma_ratio: f32,
        /// `-alpha_next * expm1(-h)`, with `h` the step in `lambda = log(alpha / sigma)`.
        coef: f32,
        /// The previous step's data prediction and `r = h_prev / h`; `None` on the first step.
        previous: Option<(Tensor<4>, f32)>,
    },
}

impl Update {
    /// The update whose `x_next` is the step's clean sample `x0` (DDIM to the clean level).
    pub const TO_X0: Update = Update::Ddim { alpha_next: 1.0, eps_scale: 0.0 };
}

/// Everything a step needs besides the network outputs.
#[derive(Clone, Debug)]
pub struct SamplerStep {
    /// What the network outputs.
    pub prediction: Target,
    /// `sqrt(alpha_bar)` of the current level.
    pub alpha: f32,
    /// `sqrt(1 - alpha_bar)` of the current level.
    pub sigma: f32,
    /// Guidance; ignored when no unconditional output is given.
    pub guidance: Guidance,
    /// Clamp the implied clean sample to `[-1, 1]` and recompute the noise from it.
    pub clip_x0: bool,
    /// The update rule.
    pub update: Update,
}

/// Runs one step and returns `(x_next, x0)`, the new state and the data prediction the step used
/// (DPM-Solver++(2M) needs it as `previous` on the next step).
///
/// Shapes: `x_t`, `cond`, `uncond` (the network outputs with and without the condition), the
/// previous `x0` and both results are `[batch, channels, height, width]`.
pub fn sampler_step(
    step: SamplerStep,
    x_t: Tensor<4>,
    cond: Tensor<4>,
    uncond: Option<Tensor<4>>,
) -> (Tensor<4>, Tensor<4>) {
    let (alpha, sigma) = (step.alpha, step.sigma);

    // 1. Guidance.
    let output = match uncond {
        Some(uncond) => guide(step.guidance, cond, uncond),
        None => cond,
    };

    // 2. The clean sample and the noise implied by the output.
    let (x0, eps) = match step.prediction {
        Target::Eps => {
            let x0 = (x_t.clone() - output.clone().mul_scalar(sigma)).div_scalar(alpha);
            (x0, output)
        }
        Target::X0 => {
            let eps = (x_t.clone() - output.clone().mul_scalar(alpha)).div_scalar(sigma);
            (output, eps)
        }
        Target::V => {
            let x0 = x_t.clone().mul_scalar(alpha) - output.clone().mul_scalar(sigma);
            let eps = x_t.clone().mul_scalar(sigma) + output.mul_scalar(alpha);
            (x0, eps)
        }
    };

    // 3. Static thresholding: the page's values lie in [-1, 1].
    let (x0, eps) = if step.clip_x0 {
        let x0 = x0.clamp(-1.0, 1.0);
        let eps = (x_t.clone() - x0.clone().mul_scalar(alpha)).div_scalar(sigma.max(1e-6));
        (x0, eps)
    } else {
        (x0, eps)
    };

    // 4. The update.
    let x_next = match step.update {
        Update::Ddim { alpha_next, eps_scale } => {
            x0.clone().mul_scalar(alpha_next) + eps.mul_scalar(eps_scale)
        }
        Update::DpmSolver2M { sigma_ratio, coef, previous } => {
            let d = match previous {
                Some((x0_prev, r)) => {
                    x0.clone().mul_scalar(1.0 + 0.5 / r) - x0_prev.mul_scalar(0.5 / r)
                }
                None => x0.clone(),
            };
            x_t.mul_scalar(sigma_ratio) + d.mul_scalar(coef)
        }
    };
    (x_next, x0)
}

/// `uncond + w (cond - uncond)`, partly rescaled to the conditional output's standard deviation.
fn guide(guidance: Guidance, cond: Tensor<4>, uncond: Tensor<4>) -> Tensor<4> {
    // 1. Extrapolate from the unconditional towards the conditional output.
    let guided = uncond.clone() + (cond.clone() - uncond).mul_scalar(guidance.scale);
    if guidance.rescale == 0.0 {
        return guided;
    }

    // 2. Match each sample's standard deviation to the conditional output's.
    let std_cond = per_sample_std(cond);
    let std_guided = per_sample_std(guided.clone());
    let rescaled = guided.clone() * std_cond / std_guided.add_scalar(1e-12);

    // 3. Blend the rescaled and the plain guided outputs.
    rescaled.mul_scalar(guidance.rescale) + guided.mul_scalar(1.0 - guidance.rescale)
}

/// Population standard deviation over every axis but the batch, as `[batch, 1, 1, 1]`.
fn per_sample_std(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    let flat = x.reshape([batch, channels * height * width]);
    let mean = flat.clone().mean_dim(1);
    let var = (flat - mean).powi_scalar(2).mean_dim(1);
    var.sqrt().reshape([batch, 1, 1, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t4(values: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::default())
    }

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn close(actual: Tensor<4>, expected: &[f32]) {
        for (a, e) in host(actual).iter().zip(expected) {
            assert!((a - e).abs() < 1e-5, "{a} vs {e}");
        }
    }

    #[test]
    fn ddim_from_an_eps_output_without_guidance() {
        // alpha = 0.6, sigma = 0.8; x0 = (x - 0.8 eps) / 0.6.
        let x_t = t4(&[0.6, 1.4], [1, 1, 1, 2]);
        let eps = t4(&[0.0, 1.0], [1, 1, 1, 2]);
        let step = SamplerStep {
            prediction: Target::Eps,
            alpha: 0.6,
            sigma: 0.8,
            guidance: Guidance { scale: 3.0, rescale: 0.0 },
            clip_x0: false,
            update: Update::Ddim { alpha_next: 0.8, eps_scale: 0.6 },
        };
        let (x_next, x0) = sampler_step(step, x_t, eps, None);
        close(x0, &[1.0, 1.0]);
        // 0.8 * x0 + 0.6 * eps.
        close(x_next, &[0.8, 1.4]);
    }

    #[test]
    fn guidance_extrapolates_then_clipping_recomputes_the_noise() {
        // x0 prediction: guided x0 = 0 + 3 (1 - 0) = 3, clipped to 1; eps = (x - 0.6) / 0.8.
        let x_t = t4(&[1.4], [1, 1, 1, 1]);
        let cond = t4(&[1.0], [1, 1, 1, 1]);
        let uncond = t4(&[0.0], [1, 1, 1, 1]);
        let step = SamplerStep {
            prediction: Target::X0,
            alpha: 0.6,
            sigma: 0.8,
            guidance: Guidance { scale: 3.0, rescale: 0.0 },
            clip_x0: true,
            update: Update::Ddim { alpha_next: 1.0, eps_scale: 0.0 },
        };
        let (x_next, x0) = sampler_step(step, x_t, cond, Some(uncond));
        close(x0, &[1.0]);
        close(x_next, &[1.0]);
    }

    #[test]
    fn dpm_solver_second_order_extrapolates_the_data_prediction() {
        // v prediction with alpha = 1, sigma = 0: x0 = x_t.
        let x_t = t4(&[2.0], [1, 1, 1, 1]);
        let out = t4(&[0.0], [1, 1, 1, 1]);
        let previous = Some((t4(&[1.0], [1, 1, 1, 1]), 0.5));
        let step = SamplerStep {
            prediction: Target::V,
            alpha: 1.0,
            sigma: 0.0,
            guidance: Guidance { scale: 1.0, rescale: 0.0 },
            clip_x0: false,
            update: Update::DpmSolver2M { sigma_ratio: 0.5, coef: 2.0, previous },
        };
        // d = (1 + 1) * 2 - 1 * 1 = 3; x_next = 0.5 * 2 + 2 * 3 = 7.
        let (x_next, _) = sampler_step(step, x_t, out, None);
        close(x_next, &[7.0]);
    }

    /// A step whose `x_next` is the guided output itself: x0 prediction, straight to x0.
    fn guided(guidance: Guidance, cond: Tensor<4>, uncond: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = cond.dims();
        let step = SamplerStep {
            prediction: Target::X0,
            alpha: 0.6,
            sigma: 0.8,
            guidance,
            clip_x0: false,
            update: Update::TO_X0,
        };
        sampler_step(step, Tensor::zeros([b, c, h, w], &cond.device()), cond, Some(uncond)).0
    }

    #[test]
    fn guidance_scale_one_is_the_conditional_output() {
        let cond = t4(&[0.5, -1.0, 2.0, 0.25], [1, 1, 2, 2]);
        let uncond = t4(&[3.0, 1.0, -2.0, 0.0], [1, 1, 2, 2]);
        let out = guided(Guidance { scale: 1.0, rescale: 0.0 }, cond, uncond);
        close(out, &[0.5, -1.0, 2.0, 0.25]);
    }

    #[test]
    fn guidance_extrapolates_linearly() {
        let cond = t4(&[1.0, 2.0], [1, 1, 1, 2]);
        let uncond = t4(&[0.0, 4.0], [1, 1, 1, 2]);
        // 0 + 3 (1 - 0) = 3; 4 + 3 (2 - 4) = -2.
        close(guided(Guidance { scale: 3.0, rescale: 0.0 }, cond, uncond), &[3.0, -2.0]);
    }

    #[test]
    fn full_rescale_restores_the_conditional_std_per_sample() {
        // Both samples' conditional outputs have standard deviation 1 (closed form: values
        // +-1 about 0, and 0 or 2 about 1).
        let cond = t4(&[1.0, -1.0, 1.0, -1.0, 0.0, 2.0, 0.0, 2.0], [2, 1, 2, 2]);
        let uncond = t4(&[0.5, 0.0, -0.5, 0.0, 1.0, 1.0, 1.0, 1.0], [2, 1, 2, 2]);
        let out = host(guided(Guidance { scale: 5.0, rescale: 1.0 }, cond, uncond));
        for sample in out.chunks(4) {
            let mean = sample.iter().sum::<f32>() / 4.0;
            let var = sample.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!((var.sqrt() - 1.0).abs() < 1e-5, "{sample:?}");
        }
        // Half rescale blends: the plain guided output is g = 1 + 5 (cond - 1) = (-4, 6, -4, 6)
        // with std 5 against the conditional std 1, so the rescaled one is g / 5.
        let cond = t4(&[0.0, 2.0, 0.0, 2.0], [1, 1, 2, 2]);
        let uncond = t4(&[1.0, 1.0, 1.0, 1.0], [1, 1, 2, 2]);
        let half = guided(Guidance { scale: 5.0, rescale: 0.5 }, cond, uncond);
        // 0.5 g / 5 + 0.5 g = 0.6 g.
        close(half, &[-2.4, 3.6, -2.4, 3.6]);
    }
}
