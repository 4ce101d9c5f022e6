//! Launch code: `ScoreKernels` for `CubeBackend`, the one backend type behind every CubeCL
//! runtime (the runtime is a property of the device).
//!
//! Geometry. Elementwise kernels (noising, the loss's backward, the sampler step) run one unit
//! per vector of `vector_size` values, the largest size the device reads in one go that divides
//! a sample's value count (4 in f32 for every page size the models use; 1 for odd sizes):
//! `CubeDim::new` picks a cube of whole planes, `calculate_cube_count_elemwise` enough cubes
//! (spread over two axes past the per-axis limit), and the kernels bound-check `ABSOLUTE_POS`.
//! The loss of a batch of at most `ONE_CUBE_VALUES` values runs in one cube, its units striding
//! through the batch; a larger one in two passes. In the first, each sample gets `lanes` units (one unit per
//! `VALUES_PER_UNIT` values, fewer when the partials would pass `MAX_PARTIALS`), unit `u`
//! summing the sample's vectors `u, u + lanes, ...`, so neighbouring units read neighbouring
//! vectors; no unit waits on another. The second is one 1-D cube of `REDUCE_UNITS`
//! units (a power of two, lowered to the device's limit) that strides through the partials and
//! sums in shared memory. The
//! guidance-rescale statistics run one such cube per sample. Inputs are made contiguous first, as
//! the kernels index flat.

use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::Shape;
use burn_cubecl::{
    CubeBackend, kernel::into_contiguous, ops::numeric::empty_device_contiguous_dtype,
    tensor::CubeTensor,
};
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use super::kernel::{
    StepKind, guidance_std_ratio_kernel, noising_kernel, sampler_step_kernel, sum_partials_kernel,
    weighted_mse_grad_kernel, weighted_mse_one_cube_kernel, weighted_sq_err_partial_kernel,
};
use super::{ScoreKernels, StepParams};
use crate::reference::Target;

/// Units per cube of the reduction kernels.
const REDUCE_UNITS: u32 = 256;
/// Values summed by one unit in the loss's first pass, at least.
const VALUES_PER_UNIT: usize = 64;
/// Values up to which the loss runs in a single cube and launch: below this a second launch
/// costs more than spreading the work (on lavapipe a launch is ~0.1 ms, the values ~20 us).
const ONE_CUBE_VALUES: usize = 1 << 16;
/// Partial sums the loss's second pass (one cube) adds, at most (about).
const MAX_PARTIALS: usize = 1 << 14;

/// An uninitialised contiguous tensor shaped like `like`. Contiguous on purpose: the default
/// allocation may pitch rows, and the kernels index flat.
fn empty_like(like: &CubeTensor, shape: Shape) -> CubeTensor {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// Values per sample of `x` (`[batch, ...]`), checked against the per-sample tensor `per`
/// (`[batch]`).
fn per_sample(x: &CubeTensor, per: &CubeTensor) -> usize {
    let batch = x.shape()[0];
    assert_eq!(
        per.shape().num_elements(),
        batch,
        "a per-sample tensor of shape {:?} for a batch of {batch}",
        per.shape()
    );
    assert_eq!(x.dtype, per.dtype, "the fused kernels take one float dtype");
    x.shape().num_elements().checked_div(batch).unwrap_or(0)
}

/// The kernels index their inputs with one flat index: the shapes must agree.
fn same_shape(what: &str, a: &CubeTensor, b: &CubeTensor) {
    assert_eq!(
        a.shape(),
        b.shape(),
        "{what}: the shapes {:?} and {:?} differ",
        a.shape(),
        b.shape()
    );
    assert_eq!(a.dtype, b.dtype, "{what}: the fused kernels take one float dtype");
}

/// The largest power of two at most `REDUCE_UNITS` that a cube on this device may hold.
fn reduce_units(x: &CubeTensor) -> u32 {
    let max = x.client.properties().hardware.max_units_per_cube.max(1);
    let cap = REDUCE_UNITS.min(max);
    if cap.is_power_of_two() { cap } else { cap.next_power_of_two() >> 1 }
}

/// The largest vector size this device loads in one go that divides `per_sample`, so that no
/// vector straddles two samples. The tensors are contiguous, so every vector is aligned.
fn vector_size(x: &CubeTensor, per_sample: usize) -> usize {
    x.client
        .io_optimized_vector_sizes(x.dtype.size())
        .filter(|&size| size > 0 && per_sample.is_multiple_of(size))
        .max()
        .unwrap_or(1)
}

/// One unit per vector of `x`.
fn elementwise(x: &CubeTensor, vector_size: usize) -> (CubeCount, CubeDim) {
    let units = x.shape().num_elements() / vector_size;
    let cube_dim = CubeDim::new(&x.client, units);
    (calculate_cube_count_elemwise(&x.client, units, cube_dim), cube_dim)
}

impl ScoreKernels for CubeBackend {
    fn fused_noising(
        x0: CubeTensor,
        eps: CubeTensor,
        alpha: CubeTensor,
        sigma: CubeTensor,
        target: Target,
    ) -> (CubeTensor, CubeTensor) {
        let (x0, eps) = (into_contiguous(x0), into_contiguous(eps));
        let (alpha, sigma) = (into_contiguous(alpha), into_contiguous(sigma));
        same_shape("noising x0, eps", &x0, &eps);
        let per = per_sample(&x0, &alpha);
        assert_eq!(per_sample(&x0, &sigma), per);
        let x_t = empty_like(&x0, x0.shape());
        if x0.shape().num_elements() == 0 {
            return (x_t, if target == Target::X0 { x0 } else { eps });
        }
        let vector = vector_size(&x0, per);
        let (count, dim) = elementwise(&x0, vector);
        let client = x0.client.clone();
        let dtype = dtype_to_storage_type(x0.dtype);
        let write_v = target == Target::V;
        let second = match target {
            Target::V => empty_like(&x0, x0.shape()),
            Target::Eps => eps.clone(),
            Target::X0 => x0.clone(),
        };
        // Without `write_v` the kernel never touches `v`: the target passed there is only read
        // back by the caller.
        // SAFETY: every index the kernel reads or writes is below its own guard (see
        // `kernel.rs`), and the shapes were checked above.
        unsafe {
            noising_kernel::launch_unchecked(
                &client,
                count,
                dim,
                vector,
                x0.into_tensor_arg(),
                eps.into_tensor_arg(),
                alpha.into_tensor_arg(),
                sigma.into_tensor_arg(),
                x_t.clone().into_tensor_arg(),
                second.clone().into_tensor_arg(),
                per / vector,
                write_v,
                dtype,
            );
        }
        (x_t, second)
    }

    fn fused_weighted_mse(
        output: CubeTensor,
        target: CubeTensor,
        weight: CubeTensor,
    ) -> CubeTensor {
        let (output, target) = (into_contiguous(output), into_contiguous(target));
        let weight = into_contiguous(weight);
        same_shape("loss output, target", &output, &target);
        let per = per_sample(&output, &weight);
        let batch = output.shape()[0];
        assert!(batch * per > 0, "the loss of an empty batch {:?} is undefined", output.shape());
        let client = output.client.clone();
        let dtype = dtype_to_storage_type(output.dtype);
        let units = reduce_units(&output);

        let vector = vector_size(&output, per);
        let scale = 1.0 / (batch * per) as f32;
        let loss = empty_like(&output, Shape::new([1]));
        if batch * per <= ONE_CUBE_VALUES {
            // SAFETY: every index the kernel reads or writes is below its own guard (see
            // `kernel.rs`), and the shapes were checked above.
            unsafe {
                weighted_mse_one_cube_kernel::launch_unchecked(
                    &client,
                    CubeCount::new_1d(1),
                    CubeDim::new_1d(units),
                    vector,
                    output.into_tensor_arg(),
                    target.into_tensor_arg(),
                    weight.into_tensor_arg(),
                    loss.clone().into_tensor_arg(),
                    per / vector,
                    scale,
                    units as usize,
                    dtype,
                );
            }
            return loss;
        }

        // 1. Per-unit partial sums: `lanes` units per sample, each over about VALUES_PER_UNIT
        //    values (more when the batch is so large that the partials would pass MAX_PARTIALS).
        let per_unit = VALUES_PER_UNIT.max((batch * per).div_ceil(MAX_PARTIALS));
        let lanes = per.div_ceil(per_unit);
        let partial = empty_like(&output, Shape::new([batch * lanes]));
        let (count, dim) = elementwise(&partial, 1);
        // SAFETY: every index the kernel reads or writes is below its own guard (see
        // `kernel.rs`), and the shapes were checked above.
        unsafe {
            weighted_sq_err_partial_kernel::launch_unchecked(
                &client,
                count,
                dim,
                vector,
                output.into_tensor_arg(),
                target.into_tensor_arg(),
                weight.into_tensor_arg(),
                partial.clone().into_tensor_arg(),
                per / vector,
                lanes,
                dtype,
            );
        }

        // 2. The partials' sum in one cube, scaled to the mean over samples and values.
        // SAFETY: every index the kernel reads or writes is below its own guard (see
        // `kernel.rs`), and the shapes were checked above.
        unsafe {
            sum_partials_kernel::launch_unchecked(
                &client,
                CubeCount::new_1d(1),
                CubeDim::new_1d(units),
                partial.into_tensor_arg(),
                loss.clone().into_tensor_arg(),
                scale,
                units as usize,
                dtype,
            );
        }
        loss
    }

    fn fused_weighted_mse_grad(
        output: CubeTensor,
        target: CubeTensor,
        weight: CubeTensor,
        grad: CubeTensor,
    ) -> CubeTensor {
        let (output, target) = (into_contiguous(output), into_contiguous(target));
        // A broadcast upstream gradient has stride 0: contiguous makes `grad[0]` its value.
        let (weight, grad) = (into_contiguous(weight), into_contiguous(grad));
        same_shape("loss gradient output, target", &output, &target);
        assert_eq!(grad.shape().num_elements(), 1, "the loss's upstream gradient is one value");
        let per = per_sample(&output, &weight);
        let numel = output.shape().num_elements();
        let d_output = empty_like(&output, output.shape());
        if numel == 0 {
            return d_output;
        }
        let vector = vector_size(&output, per);
        let (count, dim) = elementwise(&output, vector);
        let client = output.client.clone();
        let dtype = dtype_to_storage_type(output.dtype);
        // SAFETY: every index the kernel reads or writes is below its own guard (see
        // `kernel.rs`), and the shapes were checked above.
        unsafe {
            weighted_mse_grad_kernel::launch_unchecked(
                &client,
                count,
                dim,
                vector,
                output.into_tensor_arg(),
                target.into_tensor_arg(),
                weight.into_tensor_arg(),
                grad.into_tensor_arg(),
                d_output.clone().into_tensor_arg(),
                per / vector,
                2.0 / numel as f32,
                dtype,
            );
        }
        d_output
    }

    fn fused_sampler_step(
        x_t: CubeTensor,
        cond: CubeTensor,
        uncond: CubeTensor,
        x0_prev: CubeTensor,
        params: StepParams,
    ) -> (CubeTensor, CubeTensor) {
        let (x_t, cond) = (into_contiguous(x_t), into_contiguous(cond));
        let flags = params.flags;
        let uncond = if flags.guided { into_contiguous(uncond) } else { cond.clone() };
        let x0_prev =
            if flags.kind == StepKind::DpmSecond { into_contiguous(x0_prev) } else { cond.clone() };
        same_shape("sampler step x_t, cond", &x_t, &cond);
        same_shape("sampler step x_t, uncond", &x_t, &uncond);
        same_shape("sampler step x_t, previous x0", &x_t, &x0_prev);
        let x_next = empty_like(&x_t, x_t.shape());
        let x0 = empty_like(&x_t, x_t.shape());
        let numel = x_t.shape().num_elements();
        if numel == 0 {
            return (x_next, x0);
        }
        let batch = x_t.shape()[0];
        let per = numel / batch;
        let client = x_t.client.clone();
        let dtype = dtype_to_storage_type(x_t.dtype);

        // 1. Guidance rescale: each sample's std(cond) / std(guided), one cube per sample.
        let ratio = if flags.rescaled {
            let units = reduce_units(&x_t);
            let ratio = empty_like(&x_t, Shape::new([batch]));
            // SAFETY: every index the kernel reads or writes is below its own guard (see
            // `kernel.rs`), and the shapes were checked above.
            unsafe {
                guidance_std_ratio_kernel::launch_unchecked(
                    &client,
                    CubeCount::new_1d(batch as u32),
                    CubeDim::new_1d(units),
                    cond.clone().into_tensor_arg(),
                    uncond.clone().into_tensor_arg(),
                    ratio.clone().into_tensor_arg(),
                    per,
                    params.scale,
                    units as usize,
                    dtype,
                );
            }
            ratio
        } else {
            cond.clone()
        };

        // 2. The step, one unit per vector.
        let vector = vector_size(&x_t, per);
        let (count, dim) = elementwise(&x_t, vector);
        // SAFETY: every index the kernel reads or writes is below its own guard (see
        // `kernel.rs`), and the shapes were checked above.
        unsafe {
            sampler_step_kernel::launch_unchecked(
                &client,
                count,
                dim,
                vector,
                x_t.into_tensor_arg(),
                cond.into_tensor_arg(),
                uncond.into_tensor_arg(),
                ratio.into_tensor_arg(),
                x0_prev.into_tensor_arg(),
                x_next.clone().into_tensor_arg(),
                x0.clone().into_tensor_arg(),
                per / vector,
                params.scale,
                params.rescale,
                params.alpha,
                params.sigma,
                params.sigma.max(1e-6),
                params.c_state,
                params.c_update,
                params.half_inv_r,
                flags,
                dtype,
            );
        }
        (x_next, x0)
    }
}
