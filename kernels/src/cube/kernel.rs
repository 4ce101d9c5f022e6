//! Device code. Every kernel reads contiguous `[batch, channels, height, width]` buffers as flat
//! arrays of `batch * per_sample` values; `per_sample = channels * height * width` turns a flat
//! index into its sample. The per-sample coefficient tensors are `[batch]`.
//!
//! The elementwise kernels and the loss's first pass read and write vectors of `N` values
//! (`Vector<F, N>`, one 16-byte load for `N = 4` in f32), `N` dividing `per_sample` so that a
//! vector never straddles two samples; their index arithmetic is in vectors (`per_vectors =
//! per_sample / N`). The per-sample coefficients are read as scalars and broadcast.
//!
//! The launch code is in `launch.rs`; the geometry each kernel expects is stated here and there.

use cubecl::prelude::*;

/// How the network output is read (mirrors `Target`, which cannot be a comptime value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Prediction {
    Eps,
    V,
    X0,
}

/// The update a sampler step applies (comptime: each is its own compiled kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum StepKind {
    /// `alpha_next * x0 + eps_scale * eps`.
    Ddim,
    /// `sigma_ratio * x_t + coef * x0`: DPM-Solver++(2M)'s first step.
    DpmFirst,
    /// `sigma_ratio * x_t + coef * ((1 + 1/(2r)) x0 - 1/(2r) x0_prev)`.
    DpmSecond,
}

/// `x_t = alpha[b] x0 + sigma[b] eps`, and with `write_v` also `v = alpha[b] eps - sigma[b] x0`.
///
/// Geometry: one unit per vector, any cube shape (`ABSOLUTE_POS` is the flat vector index).
#[cube(launch_unchecked)]
pub(super) fn noising_kernel<F: Float, N: Size>(
    x0: &Tensor<Vector<F, N>>,
    eps: &Tensor<Vector<F, N>>,
    alpha: &Tensor<F>,
    sigma: &Tensor<F>,
    x_t: &mut Tensor<Vector<F, N>>,
    v: &mut Tensor<Vector<F, N>>,
    per_vectors: usize,
    #[comptime] write_v: bool,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= x_t.len() {
        terminate!();
    }
    let i = ABSOLUTE_POS;
    let b = i / per_vectors;
    let a = Vector::new(alpha[b]);
    let s = Vector::new(sigma[b]);
    let x = x0[i];
    let e = eps[i];
    x_t[i] = x * a + e * s;
    if write_v {
        v[i] = e * a - x * s;
    }
}

/// Pass 1 of the loss: unit `u` of sample `b` (`b = ABSOLUTE_POS / lanes`,
/// `u = ABSOLUTE_POS % lanes`) sums `(output - target)^2` over the sample's vectors
/// `u, u + lanes, u + 2 lanes, ...` and writes `partial[ABSOLUTE_POS] = weight[b] * sum`.
///
/// Geometry: one unit per partial (`batch * lanes` of them), any cube shape. No unit waits on
/// another: neighbouring units read neighbouring vectors (coalesced on a GPU), and there is no
/// barrier, the dear part on a CPU driver such as lavapipe.
#[cube(launch_unchecked)]
pub(super) fn weighted_sq_err_partial_kernel<F: Float, N: Size>(
    output: &Tensor<Vector<F, N>>,
    target: &Tensor<Vector<F, N>>,
    weight: &Tensor<F>,
    partial: &mut Tensor<F>,
    per_vectors: usize,
    lanes: usize,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= partial.len() {
        terminate!();
    }
    let b = ABSOLUTE_POS / lanes;
    let base = b * per_vectors;

    let mut acc = Vector::<F, N>::new(F::new(0.0));
    let mut j = ABSOLUTE_POS % lanes;
    while j < per_vectors {
        let d = output[base + j] - target[base + j];
        acc += d * d;
        j += lanes;
    }
    let mut sum = F::new(0.0);
    #[unroll]
    for k in 0..acc.vector_size() {
        sum += acc.extract(k);
    }
    partial[ABSOLUTE_POS] = sum * weight[b];
}

/// Pass 2 of the loss: `loss[0] = scale * sum(partial)`, with `scale = 1 / (batch * per_sample)`.
///
/// Geometry: a single cube of `units` units, 1-D.
#[cube(launch_unchecked)]
pub(super) fn sum_partials_kernel<F: Float>(
    partial: &Tensor<F>,
    loss: &mut Tensor<F>,
    scale: f32,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let mut acc = F::new(0.0);
    let mut j = UNIT_POS_X as usize;
    while j < partial.len() {
        acc += partial[j];
        j += CUBE_DIM_X as usize;
    }

    let mut shared = Shared::<[F]>::new_slice(units);
    let sum = cube_sum::<F>(acc, &mut shared);
    if UNIT_POS_X == 0 {
        loss[0] = sum * F::cast_from(scale);
    }
}

/// The whole loss in one cube, for inputs small enough that a second launch would cost more than
/// the work: unit `u` sums `weight[b] (output - target)^2` over the vectors `u, u + CUBE_DIM_X,
/// ...` of the whole batch, and the cube's sum is scaled to the mean.
///
/// Geometry: a single cube of `units` units, 1-D.
#[cube(launch_unchecked)]
pub(super) fn weighted_mse_one_cube_kernel<F: Float, N: Size>(
    output: &Tensor<Vector<F, N>>,
    target: &Tensor<Vector<F, N>>,
    weight: &Tensor<F>,
    loss: &mut Tensor<F>,
    per_vectors: usize,
    scale: f32,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let mut acc = F::new(0.0);
    let mut j = UNIT_POS_X as usize;
    while j < output.len() {
        let d = output[j] - target[j];
        let sq = d * d;
        let mut sum = F::new(0.0);
        #[unroll]
        for k in 0..sq.vector_size() {
            sum += sq.extract(k);
        }
        acc += sum * weight[j / per_vectors];
        j += CUBE_DIM_X as usize;
    }

    let mut shared = Shared::<[F]>::new_slice(units);
    let total = cube_sum::<F>(acc, &mut shared);
    if UNIT_POS_X == 0 {
        loss[0] = total * F::cast_from(scale);
    }
}

/// Backward of the loss: `d_output[i] = grad[0] * scale * weight[b] * (output[i] - target[i])`,
/// with `scale = 2 / (batch * per_sample)`.
///
/// Geometry: one unit per vector, any cube shape.
#[cube(launch_unchecked)]
pub(super) fn weighted_mse_grad_kernel<F: Float, N: Size>(
    output: &Tensor<Vector<F, N>>,
    target: &Tensor<Vector<F, N>>,
    weight: &Tensor<F>,
    grad: &Tensor<F>,
    d_output: &mut Tensor<Vector<F, N>>,
    per_vectors: usize,
    scale: f32,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= d_output.len() {
        terminate!();
    }
    let i = ABSOLUTE_POS;
    let g = Vector::new(grad[0] * F::cast_from(scale) * weight[i / per_vectors]);
    d_output[i] = g * (output[i] - target[i]);
}

/// Guidance rescale statistics: `ratio[b] = std(cond_b) / (std(guided_b) + 1e-12)` with
/// `guided = uncond + scale (cond - uncond)`, population standard deviations, two passes (mean,
/// then centred squares) as the reference computes them.
///
/// Geometry: one cube of `units` units per sample, 1-D; `CUBE_POS_X` is the sample.
#[cube(launch_unchecked)]
pub(super) fn guidance_std_ratio_kernel<F: Float>(
    cond: &Tensor<F>,
    uncond: &Tensor<F>,
    ratio: &mut Tensor<F>,
    per_sample: usize,
    scale: f32,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let base = CUBE_POS_X as usize * per_sample;
    let w = F::cast_from(scale);
    let n = F::cast_from(per_sample as u32);
    let mut shared_cond = Shared::<[F]>::new_slice(units);
    let mut shared_guided = Shared::<[F]>::new_slice(units);

    // 1. Means.
    let mut sum_cond = F::new(0.0);
    let mut sum_guided = F::new(0.0);
    let mut j = UNIT_POS_X as usize;
    while j < per_sample {
        let c = cond[base + j];
        let u = uncond[base + j];
        sum_cond += c;
        sum_guided += u + (c - u) * w;
        j += CUBE_DIM_X as usize;
    }
    let mean_cond = cube_sum::<F>(sum_cond, &mut shared_cond) / n;
    let mean_guided = cube_sum::<F>(sum_guided, &mut shared_guided) / n;
    // Every unit has read the sums before the slots are reused.
    sync_cube();

    // 2. Centred squares.
    let mut sq_cond = F::new(0.0);
    let mut sq_guided = F::new(0.0);
    let mut j = UNIT_POS_X as usize;
    while j < per_sample {
        let c = cond[base + j];
        let u = uncond[base + j];
        let dc = c - mean_cond;
        let dg = u + (c - u) * w - mean_guided;
        sq_cond += dc * dc;
        sq_guided += dg * dg;
        j += CUBE_DIM_X as usize;
    }
    let std_cond = (cube_sum::<F>(sq_cond, &mut shared_cond) / n).sqrt();
    let std_guided = (cube_sum::<F>(sq_guided, &mut shared_guided) / n).sqrt();
    if UNIT_POS_X == 0 {
        ratio[CUBE_POS_X as usize] = std_cond / (std_guided + F::new(1e-12));
    }
}

/// One sampler step: guidance, `(x0, eps)` from the output, optional clipping, update. Writes
/// `x_next` and `x0`.
///
/// Scalars: `scale` and `rescale` (guidance `w`, `phi`); `alpha`, `sigma` of the current level;
/// `sigma_clip = max(sigma, 1e-6)`, the divisor when the noise is recomputed from a clipped
/// `x0`; `c_state`, `c_update` (DDIM: `alpha_next`, `eps_scale`; DPM-Solver++: `sigma_ratio`,
/// `coef`); `half_inv_r = 0.5 / r` for DPM-Solver++(2M)'s second-order steps.
///
/// Geometry: one unit per vector, any cube shape. `ratio` (`[batch]`, from
/// `guidance_std_ratio_kernel`) is read only when `rescaled`, `uncond` only when `guided`,
/// `x0_prev` only for `StepKind::DpmSecond`; otherwise any tensor may stand in for them.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
pub(super) fn sampler_step_kernel<F: Float, N: Size>(
    x_t: &Tensor<Vector<F, N>>,
    cond: &Tensor<Vector<F, N>>,
    uncond: &Tensor<Vector<F, N>>,
    ratio: &Tensor<F>,
    x0_prev: &Tensor<Vector<F, N>>,
    x_next: &mut Tensor<Vector<F, N>>,
    x0_out: &mut Tensor<Vector<F, N>>,
    per_vectors: usize,
    scale: f32,
    rescale: f32,
    alpha: f32,
    sigma: f32,
    sigma_clip: f32,
    c_state: f32,
    c_update: f32,
    half_inv_r: f32,
    #[comptime] flags: StepFlags,
    #[define(F)] _dtype: ElemType,
) {
    if ABSOLUTE_POS >= x_next.len() {
        terminate!();
    }
    let i = ABSOLUTE_POS;
    let x = x_t[i];
    let a = Vector::new(F::cast_from(alpha));
    let s = Vector::new(F::cast_from(sigma));
    let one = Vector::new(F::new(1.0));

    // 1. Guidance.
    let mut out = cond[i];
    if comptime!(flags.guided) {
        let u = uncond[i];
        out = u + (out - u) * Vector::new(F::cast_from(scale));
        if comptime!(flags.rescaled) {
            let phi = Vector::new(F::cast_from(rescale));
            out = out * Vector::new(ratio[i / per_vectors]) * phi + out * (one - phi);
        }
    }

    // 2. The clean sample and the noise.
    let mut x0 = out;
    let mut eps = out;
    if comptime!(flags.prediction == Prediction::Eps) {
        x0 = (x - out * s) / a;
    } else if comptime!(flags.prediction == Prediction::X0) {
        eps = (x - out * a) / s;
    } else {
        x0 = x * a - out * s;
        eps = x * s + out * a;
    }

    // 3. Static thresholding.
    if comptime!(flags.clip_x0) {
        x0 = clamp(x0, Vector::new(F::new(-1.0)), one);
        eps = (x - x0 * a) / Vector::new(F::cast_from(sigma_clip));
    }

    // 4. The update.
    let keep = Vector::new(F::cast_from(c_state));
    let step = Vector::new(F::cast_from(c_update));
    if comptime!(flags.kind == StepKind::Ddim) {
        x_next[i] = x0 * keep + eps * step;
    } else if comptime!(flags.kind == StepKind::DpmFirst) {
        x_next[i] = x * keep + x0 * step;
    } else {
        let k = Vector::new(F::cast_from(half_inv_r));
        let d = x0 * (one + k) - x0_prev[i] * k;
        x_next[i] = x * keep + d * step;
    }
    x0_out[i] = x0;
}

/// The compile-time shape of a sampler step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct StepFlags {
    pub prediction: Prediction,
    pub kind: StepKind,
    pub guided: bool,
    pub rescaled: bool,
    pub clip_x0: bool,
}

/// The sum of `value` over the units of a 1-D cube of `CUBE_DIM_X` units (a power of two),
/// returned to every unit; `shared` holds at least `CUBE_DIM_X` values and is overwritten. A
/// pairwise tree: unit `u` adds slot `u + half` while `half` halves.
///
/// Plane (subgroup) sums would save most of the barriers, but lavapipe under wgpu offers no
/// plane operations, so that path could not be tested here; the kernels that use this sum run
/// one cube per launch or per sample, where the tree's cost is small.
#[cube]
fn cube_sum<F: Float>(value: F, shared: &mut Shared<[F]>) -> F {
    shared[UNIT_POS_X as usize] = value;
    sync_cube();
    let mut half = CUBE_DIM_X as usize / 2;
    while half > 0 {
        let u = UNIT_POS_X as usize;
        if u < half {
            let other = shared[u + half];
            shared[u] += other;
        }
        sync_cube();
        half /= 2;
    }
    shared[0]
}
