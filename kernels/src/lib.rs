//! Fused kernels for the score-matching core of a diffusion model, each beside a
//! reference written in plain Burn tensor operations.
//!
//! The crate knows nothing of networks or files: it takes tensors and per-sample
//! coefficients. The library calls one function per operation. With the `wgpu` or `cuda`
//! feature, a tensor on a CubeCL device (wgpu, CUDA) goes through the fused kernels of
//! the private `cube` module; anywhere else (the CPU backend, and every build without those
//! features) the function is the plain-tensor reference in [`reference`], unchanged.
#![warn(missing_docs)]

#[cfg(feature = "cube")]
mod cube;
pub mod reference;

use burn::tensor::{Device, Tensor};

pub use reference::{Guidance, SamplerStep, Target, Update};

/// Whether tensors on `device` run the fused kernels (a CubeCL device in a build with the
/// `wgpu` or `cuda` feature) rather than the reference.
pub fn uses_fused_kernels(device: &Device) -> bool {
    #[cfg(feature = "cube")]
    return cube::runs_on(device);
    #[cfg(not(feature = "cube"))]
    {
        let _ = device;
        false
    }
}

/// Noises clean samples and returns `(x_t, target)`: `x_t = alpha x0 + sigma eps`, and the
/// target `eps`, `x0` or `v = alpha eps - sigma x0`; see [`reference::forward_noising`].
///
/// Fused (one pass) on CubeCL devices when no input is tracked by autodiff.
///
/// Shapes: `x0`, `eps` and both outputs are `[batch, channels, height, width]`; `alpha` and
/// `sigma` are `[batch]`.
pub fn forward_noising(
    x0: Tensor<4>,
    eps: Tensor<4>,
    alpha: Tensor<1>,
    sigma: Tensor<1>,
    target: Target,
) -> (Tensor<4>, Tensor<4>) {
    #[cfg(feature = "cube")]
    if cube::runs_on(&x0.device())
        && !(x0.is_tracked() || eps.is_tracked() || alpha.is_tracked() || sigma.is_tracked())
    {
        return cube::forward_noising(x0, eps, alpha, sigma, target);
    }
    reference::forward_noising(x0, eps, alpha, sigma, target)
}

/// `mean_b( weight_b * mean_{c,h,w} (output - target)^2 )`; see [`reference::weighted_mse`].
///
/// Fused (reduced in the kernel, with a fused backward under autodiff) on CubeCL devices.
///
/// Shapes: `output` and `target` are `[batch, channels, height, width]`; `weight` is
/// `[batch]`; the result is `[1]`.
pub fn weighted_mse(output: Tensor<4>, target: Tensor<4>, weight: Tensor<1>) -> Tensor<1> {
    #[cfg(feature = "cube")]
    if cube::runs_on(&output.device()) {
        return cube::weighted_mse(output, target, weight);
    }
    reference::weighted_mse(output, target, weight)
}

/// One sampler step, guidance included, returning `(x_next, x0)`; see
/// [`reference::sampler_step`].
///
/// Fused on CubeCL devices when no input is tracked by autodiff: one pass over the tensors, plus
/// one per-sample reduction when guidance rescale is on.
///
/// Shapes: `x_t`, `cond`, `uncond`, the previous `x0` in `step` and both results are `[batch,
/// channels, height, width]`.
pub fn sampler_step(
    step: SamplerStep,
    x_t: Tensor<4>,
    cond: Tensor<4>,
    uncond: Option<Tensor<4>>,
) -> (Tensor<4>, Tensor<4>) {
    #[cfg(feature = "cube")]
    if cube::runs_on(&x_t.device()) {
        let previous = match &step.update {
            Update::DpmSolver2M { previous: Some((x0_prev, _)), .. } => x0_prev.is_tracked(),
            _ => false,
        };
        let tracked = x_t.is_tracked()
            || cond.is_tracked()
            || uncond.as_ref().is_some_and(Tensor::is_tracked)
            || previous;
        if !tracked {
            return cube::sampler_step(step, x_t, cond, uncond);
        }
    }
    reference::sampler_step(step, x_t, cond, uncond)
}
