//! The fused path: CubeCL kernels behind a Burn backend extension.
//!
//! `kernel.rs` is the device code, `launch.rs` the launch code (`impl ScoreKernels for
//! CubeBackend`, which covers every CubeCL runtime: wgpu, CUDA, ROCm), and `autodiff.rs` the
//! `Autodiff` implementation with the loss's backward. The `#[backend_extension]` macro writes the
//! `Dispatch` implementation that routes a tensor on a cube device to them.
//!
//! With the crate's `fusion` feature (Burn's fusion on), `burn::backend::Cube` is
//! `Fusion<CubeBackend>`: the macro then also writes a lazy implementation for `Fusion<B>` that
//! records each kernel in the fusion stream as an opaque custom operation, from the output shapes
//! given by the `#[fusion(...)]` attributes, and runs the `CubeBackend` launch when the stream
//! executes. Burn's fusion fuses the plain-tensor operations around them.

mod autodiff;
mod kernel;
mod launch;

use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::tensor::{Device, Tensor};

use crate::reference::{SamplerStep, Target, Update};
use kernel::{Prediction, StepFlags, StepKind};

/// The host values of a sampler step: scalars for the kernel's launch arguments and the flags it
/// is compiled for.
#[derive(Clone, Copy, Debug)]
pub struct StepParams {
    flags: StepFlags,
    scale: f32,
    rescale: f32,
    alpha: f32,
    sigma: f32,
    c_state: f32,
    c_update: f32,
    half_inv_r: f32,
}

/// The fused operations, per backend.
#[backend_extension(Cube, Autodiff, Fusion: cfg(feature = "fusion"))]
pub trait ScoreKernels: Backend {
    /// `(x_t, target)`. Shapes: `x0`, `eps` and both outputs `[batch, channels, height,
    /// width]`; `alpha`, `sigma` `[batch]`.
    #[fusion(meta = |x0, _eps, _alpha, _sigma, _target| (x0.clone(), x0.clone()))]
    fn fused_noising(
        x0: FloatTensor<Self>,
        eps: FloatTensor<Self>,
        alpha: FloatTensor<Self>,
        sigma: FloatTensor<Self>,
        target: Target,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The loss, `[1]`. Shapes: `output`, `target` `[batch, channels, height, width]`; `weight`
    /// `[batch]`.
    #[fusion(dtype = output, shape = burn::tensor::Shape::new([1]))]
    fn fused_weighted_mse(
        output: FloatTensor<Self>,
        target: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The loss's gradient with respect to `output`, given the upstream gradient `grad` (`[1]`).
    #[fusion(dtype = output, shape = output)]
    fn fused_weighted_mse_grad(
        output: FloatTensor<Self>,
        target: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `(x_next, x0)` of one sampler step. `uncond` and `x0_prev` are read only when `params`
    /// says so; all tensors are `[batch, channels, height, width]`.
    #[fusion(meta = |x_t, _cond, _uncond, _x0_prev, _params| (x_t.clone(), x_t.clone()))]
    fn fused_sampler_step(
        x_t: FloatTensor<Self>,
        cond: FloatTensor<Self>,
        uncond: FloatTensor<Self>,
        x0_prev: FloatTensor<Self>,
        params: StepParams,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether tensors on `device` reach the fused kernels.
pub(crate) fn runs_on(device: &Device) -> bool {
    matches!(device.clone().without_autodiff().as_dispatch(), DispatchDevice::Cube(_))
}

pub(crate) fn forward_noising(
    x0: Tensor<4>,
    eps: Tensor<4>,
    alpha: Tensor<1>,
    sigma: Tensor<1>,
    target: Target,
) -> (Tensor<4>, Tensor<4>) {
    let (x_t, target) = <Dispatch as ScoreKernels>::fused_noising(
        x0.into_dispatch(),
        eps.into_dispatch(),
        alpha.into_dispatch(),
        sigma.into_dispatch(),
        target,
    );
    (Tensor::from_dispatch(x_t), Tensor::from_dispatch(target))
}

pub(crate) fn weighted_mse(output: Tensor<4>, target: Tensor<4>, weight: Tensor<1>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as ScoreKernels>::fused_weighted_mse(
        output.into_dispatch(),
        target.into_dispatch(),
        weight.into_dispatch(),
    ))
}

pub(crate) fn sampler_step(
    step: SamplerStep,
    x_t: Tensor<4>,
    cond: Tensor<4>,
    uncond: Option<Tensor<4>>,
) -> (Tensor<4>, Tensor<4>) {
    // 1. The compile-time shape of the step and its scalars.
    let guided = uncond.is_some();
    let (kind, c_state, c_update, previous) = match step.update {
        Update::Ddim { alpha_next, eps_scale } => (StepKind::Ddim, alpha_next, eps_scale, None),
        Update::DpmSolver2M { sigma_ratio, coef, previous: None } => {
            (StepKind::DpmFirst, sigma_ratio, coef, None)
        }
        Update::DpmSolver2M { sigma_ratio, coef, previous: Some(previous) } => {
            (StepKind::DpmSecond, sigma_ratio, coef, Some(previous))
        }
    };
    let flags = StepFlags {
        prediction: match step.prediction {
            Target::Eps => Prediction::Eps,
            Target::V => Prediction::V,
            Target::X0 => Prediction::X0,
        },
        kind,
        guided,
        rescaled: guided && step.guidance.rescale != 0.0,
        clip_x0: step.clip_x0,
    };
    let params = StepParams {
        flags,
        scale: step.guidance.scale,
        rescale: step.guidance.rescale,
        alpha: step.alpha,
        sigma: step.sigma,
        c_state,
        c_update,
        half_inv_r: previous.as_ref().map_or(0.0, |(_, r)| 0.5 / r),
    };

    // 2. Inputs the step does not read are stood in for by `cond`.
    let uncond = uncond.unwrap_or_else(|| cond.clone());
    let x0_prev = previous.map_or_else(|| cond.clone(), |(x0_prev, _)| x0_prev);
    let (x_next, x0) = <Dispatch as ScoreKernels>::fused_sampler_step(
        x_t.into_dispatch(),
        cond.into_dispatch(),
        uncond.into_dispatch(),
        x0_prev.into_dispatch(),
        params,
    );
    (Tensor::from_dispatch(x_next), Tensor::from_dispatch(x0))
}
