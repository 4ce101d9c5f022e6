//! The fused kernels held to their plain-tensor references on a wgpu device (in CI: mesa's
//! lavapipe, a CPU Vulkan driver). Both sides run on the same device, so the comparison sees only
//! the kernels' arithmetic: the references are Burn's own elementwise and reduction kernels.
//!
//! Tolerances, per value, `|fused - reference| <= abs + rel * |reference|`:
//! - noising: 1e-6 + 1e-6 rel (the same products; the driver may fuse a multiply-add);
//! - loss: 1e-6 rel (the kernel sums in another order than `mean_dim` then `mean`);
//! - loss gradients: 1e-9 + 1e-5 rel (values are ~1e-4: the scale is 2 / element count);
//! - sampler step: 2e-5 + 2e-5 rel (divisions by `alpha` or `sigma`, a per-sample standard
//!   deviation under rescale).
#![cfg(feature = "wgpu")]

use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use scoregen_kernels::{Guidance, SamplerStep, Target, Update, reference};

/// Odd sizes, batch 1, a sample larger than one reduction chunk, one value per sample.
const SHAPES: [[usize; 4]; 5] =
    [[3, 1, 17, 29], [1, 1, 64, 64], [2, 3, 40, 41], [1, 1, 1, 1], [5, 1, 1, 7]];

fn wgpu() -> Device {
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    assert!(scoregen_kernels::uses_fused_kernels(&device), "a wgpu device takes the fused path");
    device
}

/// Deterministic values in about [-2, 2] (a 64-bit LCG; no dependence on Burn's generators).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn t4(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), device)
}

fn t1(data: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn assert_close<const D: usize>(
    fused: Tensor<D>,
    reference: Tensor<D>,
    abs: f32,
    rel: f32,
    what: &str,
) {
    assert_eq!(fused.dims(), reference.dims(), "{what}: shapes differ");
    let (fused, reference) = (host(fused), host(reference));
    for (i, (f, r)) in fused.iter().zip(&reference).enumerate() {
        assert!(
            (f - r).abs() <= abs + rel * r.abs(),
            "{what}: element {i} is {f}, the reference {r} (abs {abs}, rel {rel})"
        );
    }
}

/// Per-sample `(alpha, sigma)` on the unit circle, and min-SNR-like weights.
fn levels(batch: usize, device: &Device) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let angles: Vec<f32> = (0..batch).map(|b| 0.1 + 1.3 * b as f32 / batch as f32).collect();
    let alpha = angles.iter().map(|a| a.cos()).collect();
    let sigma = angles.iter().map(|a| a.sin()).collect();
    let weight = angles.iter().map(|a| (a.cos() / a.sin()).powi(2).min(5.0)).collect();
    (t1(alpha, device), t1(sigma, device), t1(weight, device))
}

#[test]
fn noising_matches_the_reference() {
    let device = wgpu();
    for (k, shape) in SHAPES.into_iter().enumerate() {
        let (alpha, sigma, _) = levels(shape[0], &device);
        let x0 = t4(shape, 10 + k as u64, &device);
        let eps = t4(shape, 20 + k as u64, &device);
        for target in [Target::Eps, Target::V, Target::X0] {
            let args = (x0.clone(), eps.clone(), alpha.clone(), sigma.clone());
            let (x_t, t) =
                scoregen_kernels::forward_noising(args.0, args.1, args.2, args.3, target);
            let args = (x0.clone(), eps.clone(), alpha.clone(), sigma.clone());
            let (x_t_ref, t_ref) =
                reference::forward_noising(args.0, args.1, args.2, args.3, target);
            let what = format!("{shape:?} {target:?}");
            assert_close(x_t, x_t_ref, 1e-6, 1e-6, &format!("x_t {what}"));
            assert_close(t, t_ref, 1e-6, 1e-6, &format!("target {what}"));
        }
    }
}

#[test]
fn noising_reads_strided_inputs() {
    let device = wgpu();
    let (alpha, sigma, _) = levels(3, &device);
    let x0 = t4([3, 1, 29, 17], 1, &device).swap_dims(2, 3);
    let eps = t4([3, 1, 17, 29], 2, &device);
    let (x_t, v) = scoregen_kernels::forward_noising(
        x0.clone(),
        eps.clone(),
        alpha.clone(),
        sigma.clone(),
        Target::V,
    );
    let (x_t_ref, v_ref) = reference::forward_noising(x0, eps, alpha, sigma, Target::V);
    assert_close(x_t, x_t_ref, 1e-6, 1e-6, "x_t");
    assert_close(v, v_ref, 1e-6, 1e-6, "v");
}

#[test]
fn loss_matches_the_reference() {
    let device = wgpu();
    // The small shapes run in one cube; the last two in two passes (over 2^16 values), with
    // vectors of 4 and, at an odd sample size, of 1.
    let shapes = SHAPES.into_iter().chain([[4, 1, 136, 128], [3, 1, 129, 199]]);
    for (k, shape) in shapes.enumerate() {
        let (_, _, weight) = levels(shape[0], &device);
        let output = t4(shape, 30 + k as u64, &device);
        let target = t4(shape, 40 + k as u64, &device);
        let fused = scoregen_kernels::weighted_mse(output.clone(), target.clone(), weight.clone());
        let expected = reference::weighted_mse(output, target, weight);
        // Both sum up to 77k f32 terms in different orders: rounding drifts like sqrt(n) ulps,
        // about 2e-5 relative at that size.
        assert_close(fused, expected, 0.0, 3e-5, &format!("loss {shape:?}"));
    }
}

/// Samples longer than 2^18 values, where the loss's first pass gives each unit more than 64
/// values. The reference runs on the CPU here: Burn 0.22.1's `sum_dim`, `mean_dim` and `mean` on
/// wgpu (seen on lavapipe) add only the first 2^18 values of a longer row, so the wgpu reference
/// itself is wrong at this size (3.51 against 8.21 for this case).
#[cfg(feature = "flex")]
#[test]
fn loss_over_long_samples_matches_the_cpu_reference() {
    let (device, cpu) = (wgpu(), Device::flex());
    let shape = [2, 1, 1024, 600];
    let (_, _, weight) = levels(shape[0], &device);
    let output = t4(shape, 80, &device);
    let target = t4(shape, 81, &device);
    let on_cpu = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &cpu);
    let expected = reference::weighted_mse(
        on_cpu(&output),
        on_cpu(&target),
        Tensor::from_data(weight.to_data(), &cpu),
    );
    let fused = scoregen_kernels::weighted_mse(output, target, weight);
    // Another device, another summation order over 1.2 M values.
    assert_close(fused, expected, 0.0, 1e-5, "loss [2, 1, 1024, 600]");
}

#[test]
fn loss_gradients_match_the_reference() {
    let device = wgpu().autodiff();
    for (k, shape) in SHAPES.into_iter().enumerate() {
        let (_, _, weight) = levels(shape[0], &device);
        let output = t4(shape, 50 + k as u64, &device);
        let target = t4(shape, 60 + k as u64, &device);

        // Every input tracked, so that each branch of the backward runs.
        let run = |fused: bool| {
            let output = output.clone().require_grad();
            let target = target.clone().require_grad();
            let weight = weight.clone().require_grad();
            let loss = if fused {
                scoregen_kernels::weighted_mse(output.clone(), target.clone(), weight.clone())
            } else {
                reference::weighted_mse(output.clone(), target.clone(), weight.clone())
            };
            // Scaled, so that the upstream gradient is not 1.
            let grads = loss.clone().mul_scalar(3.0).backward();
            let grad = |t: &Tensor<4>| t.grad(&grads).expect("a gradient");
            (loss, grad(&output), grad(&target), weight.grad(&grads).expect("a gradient"))
        };
        let (loss, d_output, d_target, d_weight) = run(true);
        let (loss_ref, d_output_ref, d_target_ref, d_weight_ref) = run(false);
        let what = format!("{shape:?}");
        assert_close(loss, loss_ref, 0.0, 1e-6, &format!("loss {what}"));
        assert_close(d_output, d_output_ref, 1e-9, 1e-5, &format!("d output {what}"));
        assert_close(d_target, d_target_ref, 1e-9, 1e-5, &format!("d target {what}"));
        assert_close(d_weight, d_weight_ref, 1e-9, 1e-5, &format!("d weight {what}"));
    }
}

#[test]
fn training_step_gradient_matches_the_reference() {
    // The training loop's use: data noised, a differentiable "network" (a scale), the loss.
    let device = wgpu().autodiff();
    let shape = [3, 1, 17, 29];
    let (alpha, sigma, weight) = levels(3, &device);
    let x0 = t4(shape, 70, &device);
    let eps = t4(shape, 71, &device);
    let run = |fused: bool| {
        let scale = t1(vec![0.7], &device).require_grad();
        let args = (x0.clone(), eps.clone(), alpha.clone(), sigma.clone());
        let (x_t, target) = if fused {
            scoregen_kernels::forward_noising(args.0, args.1, args.2, args.3, Target::V)
        } else {
            reference::forward_noising(args.0, args.1, args.2, args.3, Target::V)
        };
        let output = x_t * scale.clone().reshape([1, 1, 1, 1]);
        let loss = if fused {
            scoregen_kernels::weighted_mse(output, target, weight.clone())
        } else {
            reference::weighted_mse(output, target, weight.clone())
        };
        let grads = loss.backward();
        scale.grad(&grads).expect("a gradient")
    };
    assert_close(run(true), run(false), 1e-7, 1e-5, "d scale");
}

/// Every combination of prediction, update, guidance, rescale and clipping; `guided` says
/// whether the step gets an unconditional output.
fn steps(x0_prev: &Tensor<4>) -> Vec<(String, SamplerStep, bool)> {
    let updates = [
        ("ddim", Update::Ddim { alpha_next: 0.8, eps_scale: 0.6 }),
        ("dpm first", Update::DpmSolver2M { sigma_ratio: 0.75, coef: 0.3, previous: None }),
        (
            "dpm second",
            Update::DpmSolver2M {
                sigma_ratio: 0.75,
                coef: 0.3,
                previous: Some((x0_prev.clone(), 0.8)),
            },
        ),
    ];
    let mut steps = Vec::new();
    for prediction in [Target::Eps, Target::V, Target::X0] {
        for (update_name, update) in &updates {
            for (guided, rescale) in [(false, 0.0), (true, 0.0), (true, 0.7)] {
                for clip_x0 in [false, true] {
                    let name = format!(
                        "{prediction:?} {update_name} guided {guided} rescale {rescale} clip \
                         {clip_x0}"
                    );
                    let step = SamplerStep {
                        prediction,
                        alpha: 0.6,
                        sigma: 0.8,
                        guidance: Guidance { scale: 4.5, rescale },
                        clip_x0,
                        update: update.clone(),
                    };
                    steps.push((name, step, guided));
                }
            }
        }
    }
    steps
}

#[test]
fn sampler_step_matches_the_reference() {
    let device = wgpu();
    for (k, shape) in [[3, 1, 17, 29], [1, 2, 33, 31], [1, 1, 1, 1]].into_iter().enumerate() {
        let seed = 100 * k as u64;
        let x_t = t4(shape, seed, &device);
        let cond = t4(shape, seed + 1, &device);
        let uncond = t4(shape, seed + 2, &device);
        let x0_prev = t4(shape, seed + 3, &device);
        for (name, step, guided) in steps(&x0_prev) {
            let uncond = guided.then(|| uncond.clone());
            let (x_next, x0) = scoregen_kernels::sampler_step(
                step.clone(),
                x_t.clone(),
                cond.clone(),
                uncond.clone(),
            );
            let (x_next_ref, x0_ref) =
                reference::sampler_step(step, x_t.clone(), cond.clone(), uncond);
            let what = format!("{shape:?} {name}");
            assert_close(x_next, x_next_ref, 2e-5, 2e-5, &format!("x_next {what}"));
            assert_close(x0, x0_ref, 2e-5, 2e-5, &format!("x0 {what}"));
        }
    }
}
