//! Fused kernels against the plain-tensor reference path, same run, same sizes, same device.
//!
//! Each case runs `--warmup` times, then `--iters` timed times; a timing starts and stops on a
//! synchronised device, and the median is printed with the reference/fused ratio.
//!
//! Built with the `fusion` feature, Burn's fusion is on: the reference path is then what Burn's
//! own fusion makes of the plain-tensor code, and the fused kernels enter its stream as custom
//! operations. One build has one or the other, so `kernels/benches/fusion.sh` runs both builds
//! on the same sizes and prints the three columns side by side.
//!
//! ```text
//! cargo run --release -p scoregen-kernels --features wgpu[,fusion] --example kernel_bench -- \
//!     [--device wgpu|cuda] [--iters N] [--warmup N] [--shape B,C,H,W]... [--tsv]
//! ```

use std::time::{Duration, Instant};

use burn::tensor::{Device, Distribution, Tensor};
use scoregen_kernels::{Guidance, SamplerStep, Target, Update, reference};

struct Args {
    device: Device,
    device_name: String,
    iters: usize,
    warmup: usize,
    shapes: Vec<[usize; 4]>,
    /// One tab-separated line per case (case, shape, fused ms, reference ms), for
    /// `benches/fusion.sh`.
    tsv: bool,
}

fn parse_args() -> Args {
    let mut device_name = if cfg!(feature = "wgpu") { "wgpu" } else { "cuda" }.to_string();
    let (mut iters, mut warmup, mut shapes, mut tsv) = (30, 5, Vec::new(), false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--tsv" {
            tsv = true;
            continue;
        }
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => device_name = value,
            "--iters" => iters = value.parse().expect("--iters takes a count"),
            "--warmup" => warmup = value.parse().expect("--warmup takes a count"),
            "--shape" => {
                let dims: Vec<usize> =
                    value.split(',').map(|d| d.parse().expect("--shape B,C,H,W")).collect();
                shapes.push(dims.try_into().expect("--shape takes four sizes"));
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    if shapes.is_empty() {
        // The training batch of the demo model, and a sampling batch at page scale.
        shapes = vec![[8, 1, 64, 64], [4, 1, 256, 256]];
    }
    let device = match device_name.as_str() {
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        other => panic!("device {other} is not in this build"),
    };
    Args { device, device_name, iters, warmup, shapes, tsv }
}

/// Median wall times of `fused` and `reference`, each timing between two device
/// synchronisations. The two alternate run by run, so that a load on the machine that comes and
/// goes (other processes; lavapipe runs on the CPU) weighs on both alike.
fn compare<T, U>(
    args: &Args,
    mut fused: impl FnMut() -> T,
    mut reference: impl FnMut() -> U,
) -> (Duration, Duration) {
    let sync = || args.device.sync().expect("the device synchronises");
    for _ in 0..args.warmup {
        timed(&sync, &mut fused);
        timed(&sync, &mut reference);
    }
    let (mut fused_times, mut reference_times) = (Vec::new(), Vec::new());
    for i in 0..args.iters {
        if i % 2 == 0 {
            fused_times.push(timed(&sync, &mut fused));
            reference_times.push(timed(&sync, &mut reference));
        } else {
            reference_times.push(timed(&sync, &mut reference));
            fused_times.push(timed(&sync, &mut fused));
        }
    }
    (median(fused_times), median(reference_times))
}

/// The wall time of one `run` between two synchronisations. Its outputs live until after the
/// second: Burn's fusion skips work whose results are dropped unread, which would time nothing.
fn timed<T>(sync: &dyn Fn(), run: &mut impl FnMut() -> T) -> Duration {
    sync();
    let start = Instant::now();
    let outputs = run();
    sync();
    let elapsed = start.elapsed();
    drop(outputs);
    elapsed
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn report(args: &Args, name: &str, shape: [usize; 4], (fused, reference): (Duration, Duration)) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if args.tsv {
        println!("{name}\t{shape:?}\t{:.4}\t{:.4}", ms(fused), ms(reference));
        return;
    }
    println!(
        "{name:<34} {shape:<18} fused {:>9.3} ms   reference {:>9.3} ms   ratio {:>5.2}x",
        ms(fused),
        ms(reference),
        reference.as_secs_f64() / fused.as_secs_f64(),
        shape = format!("{shape:?}"),
    );
}

fn main() {
    let args = parse_args();
    assert!(
        scoregen_kernels::uses_fused_kernels(&args.device),
        "{} does not take the fused path",
        args.device_name
    );
    let reference = if cfg!(feature = "fusion") {
        "plain tensor ops under Burn's fusion"
    } else {
        "plain tensor ops, one Burn kernel each"
    };
    if !args.tsv {
        println!(
            "device {} ({:?}), median of {} after {} warm-up runs; reference: {reference}",
            args.device_name, args.device, args.iters, args.warmup
        );
    }
    for &shape in &args.shapes {
        bench_shape(&args, shape);
    }
}

fn bench_shape(args: &Args, shape: [usize; 4]) {
    let device = &args.device;
    let batch = shape[0];
    let normal = Distribution::Normal(0.0, 1.0);
    let x0 = Tensor::<4>::random(shape, normal, device);
    let eps = Tensor::<4>::random(shape, normal, device);
    let uncond = Tensor::<4>::random(shape, normal, device);
    let alpha = Tensor::<1>::random([batch], Distribution::Uniform(0.1, 0.9), device);
    let sigma = (alpha.clone().powi_scalar(2).neg() + 1.0).sqrt();
    let weight = Tensor::<1>::random([batch], Distribution::Uniform(0.2, 5.0), device);

    // 1. Forward noising with the v target.
    let noise = |fused: bool| {
        let args = (x0.clone(), eps.clone(), alpha.clone(), sigma.clone());
        if fused {
            scoregen_kernels::forward_noising(args.0, args.1, args.2, args.3, Target::V)
        } else {
            reference::forward_noising(args.0, args.1, args.2, args.3, Target::V)
        }
    };
    report(args, "noising (v target)", shape, compare(args, || noise(true), || noise(false)));

    // 2. The loss, forward only.
    let loss = |fused: bool| {
        if fused {
            scoregen_kernels::weighted_mse(x0.clone(), eps.clone(), weight.clone())
        } else {
            reference::weighted_mse(x0.clone(), eps.clone(), weight.clone())
        }
    };
    report(args, "weighted mse", shape, compare(args, || loss(true), || loss(false)));

    // 3. The loss with its backward, on the autodiff device.
    let output = x0.clone().autodiff();
    let target = eps.clone().autodiff();
    let weight_ad = weight.clone().autodiff();
    let loss_grad = |fused: bool| {
        let output = output.clone().require_grad();
        let loss = if fused {
            scoregen_kernels::weighted_mse(output.clone(), target.clone(), weight_ad.clone())
        } else {
            reference::weighted_mse(output.clone(), target.clone(), weight_ad.clone())
        };
        let grads = loss.backward();
        output.grad(&grads)
    };
    report(
        args,
        "weighted mse + backward",
        shape,
        compare(args, || loss_grad(true), || loss_grad(false)),
    );

    // 4. A guided DDIM step with rescale and clipping, v prediction.
    let step = |update: Update, rescale: f32| SamplerStep {
        prediction: Target::V,
        alpha: 0.6,
        sigma: 0.8,
        guidance: Guidance { scale: 4.5, rescale },
        clip_x0: true,
        update,
    };
    let ddim = step(Update::Ddim { alpha_next: 0.8, eps_scale: 0.6 }, 0.7);
    let sample = |step: &SamplerStep, fused: bool| {
        let inputs = (x0.clone(), eps.clone(), Some(uncond.clone()));
        if fused {
            scoregen_kernels::sampler_step(step.clone(), inputs.0, inputs.1, inputs.2)
        } else {
            reference::sampler_step(step.clone(), inputs.0, inputs.1, inputs.2)
        }
    };
    report(
        args,
        "ddim step (cfg, rescale 0.7, clip)",
        shape,
        compare(args, || sample(&ddim, true), || sample(&ddim, false)),
    );

    // 5. A guided second-order DPM-Solver++(2M) step without rescale.
    let previous = Some((eps.clone(), 0.8));
    let dpm = step(Update::DpmSolver2M { sigma_ratio: 0.75, coef: 0.3, previous }, 0.0);
    report(
        args,
        "dpm++2m step (cfg, clip)",
        shape,
        compare(args, || sample(&dpm, true), || sample(&dpm, false)),
    );
}
