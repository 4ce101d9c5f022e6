//! Samplers driven by the exact denoiser of a known data distribution must reproduce it.

use super::*;
use crate::diffusion::schedule::{BetaSchedule, ScheduleConfig, TimestepSpacing};
use crate::testing::{cpu, values};
use burn::tensor::TensorData;

/// A one-dimensional Gaussian mixture: weights, means and standard deviations.
struct Mixture {
    components: Vec<(f64, f64, f64)>,
}

impl Mixture {
    fn two_modes() -> Self {
        Self { components: vec![(0.3, -0.6, 0.15), (0.7, 0.5, 0.25)] }
    }

    fn mean(&self) -> f64 {
        self.components.iter().map(|(w, m, _)| w * m).sum()
    }

    fn variance(&self) -> f64 {
        let mean = self.mean();
        self.components.iter().map(|(w, m, s)| w * (s * s + (m - mean).powi(2))).sum()
    }

    /// `P(X <= x)`: the weighted normal CDFs.
    fn cdf(&self, x: f64) -> f64 {
        let phi = |z: f64| 0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2));
        self.components.iter().map(|(w, m, s)| w * phi((x - m) / s)).sum()
    }

    /// `n` independent draws: a component by its weight, then its normal.
    fn draw(&self, n: usize, noise: &mut HostNoise) -> Vec<f64> {
        let normals = noise.normal_vec(n);
        normals
            .into_iter()
            .map(|z| {
                let mut u = noise.uniform();
                let &(_, m, s) = self
                    .components
                    .iter()
                    .find(|(w, _, _)| {
                        u -= w;
                        u < 0.0
                    })
                    .unwrap_or(self.components.last().expect("a component"));
                m + s * z as f64
            })
            .collect()
    }

    /// `E[x0 | x_t]` for `x_t = alpha x0 + sigma eps`, computed on the host in f64:
    /// component posteriors times each component's Gaussian posterior mean.
    fn posterior_mean(&self, x_t: f64, alpha: f64, sigma: f64) -> f64 {
        let mut total_weight = 0.0;
        let mut total = 0.0;
        let log_likelihoods: Vec<f64> = self
            .components
            .iter()
            .map(|&(w, m, s)| {
                let var = alpha * alpha * s * s + sigma * sigma;
                w.ln() - 0.5 * var.ln() - 0.5 * (x_t - alpha * m).powi(2) / var
            })
            .collect();
        let max = log_likelihoods.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        for (&(_, m, s), ll) in self.components.iter().zip(&log_likelihoods) {
            let var = alpha * alpha * s * s + sigma * sigma;
            let weight = (ll - max).exp();
            total_weight += weight;
            total += weight * (m + alpha * s * s / var * (x_t - alpha * m));
        }
        total / total_weight
    }
}

/// The error function, by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

/// The Kolmogorov-Smirnov distance between the samples' empirical CDF and the mixture's.
fn ks_distance(samples: &[f64]) -> f64 {
    let mixture = Mixture::two_modes();
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = mixture.cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// The exact network for `mixture` in `prediction` units.
fn exact_model<'a>(
    mixture: &'a Mixture,
    schedule: &'a Schedule,
    prediction: Prediction,
) -> impl FnMut(Tensor<4>, f64) -> Tensor<4> + 'a {
    move |x_t: Tensor<4>, t: f64| {
        let alpha_bar = schedule.alpha_bar_at(t);
        let (alpha, sigma) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
        let shape = x_t.dims();
        let out: Vec<f32> = values(&x_t)
            .into_iter()
            .map(|x| {
                let x = x as f64;
                let x0 = mixture.posterior_mean(x, alpha, sigma);
                let eps = (x - alpha * x0) / sigma;
                (match prediction {
                    Prediction::Eps => eps,
                    Prediction::X0 => x0,
                    Prediction::V => alpha * eps - sigma * x0,
                }) as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(out, shape), &x_t.device())
    }
}

/// Stable Diffusion's schedule, as most tests use it.
fn scaled_linear(zero_terminal_snr: bool) -> ScheduleConfig {
    ScheduleConfig {
        betas: BetaSchedule::ScaledLinear { start: 0.00085, end: 0.012 },
        timesteps: 1000,
        zero_terminal_snr,
    }
}

/// 16384 samples from `kind` driven by the exact denoiser of the two-mode mixture.
fn mixture_samples(
    config: &ScheduleConfig,
    kind: SamplerKind,
    steps: usize,
    prediction: Prediction,
) -> Vec<f64> {
    let device = cpu();
    let schedule = Schedule::new(config);
    let mixture = Mixture::two_modes();
    let mut noise = HostNoise::new(11);
    let x_t = noise.normal([1, 1, 128, 128], &device);
    let mut model = exact_model(&mixture, &schedule, prediction);
    let sampler = kind.build();
    let x0 = sample(
        &*sampler,
        &schedule,
        prediction,
        steps,
        x_t,
        None,
        &mut model,
        &mut noise,
        &mut NoHook,
    );
    values(&x0).into_iter().map(f64::from).collect()
}

/// Absolute errors of the mean and variance of `samples` against the mixture's.
fn errors_of(samples: &[f64]) -> (f64, f64) {
    let mixture = Mixture::two_modes();
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    ((mean - mixture.mean()).abs(), (var - mixture.variance()).abs())
}

/// Absolute errors of the sample mean and variance against the mixture's, on Stable
/// Diffusion's schedule.
fn moment_errors(kind: SamplerKind, steps: usize, prediction: Prediction) -> (f64, f64) {
    errors_of(&mixture_samples(&scaled_linear(false), kind, steps, prediction))
}

// With 16384 samples the sampling error alone is about 0.004 on the mean and 0.002 on the
// variance (true variance 0.3046); the bounds allow that plus a small discretisation error.
const MEAN_TOL: f64 = 0.02;
const VAR_TOL: f64 = 0.025;
// The KS distance of 16384 exact draws is about 0.007 (its median is 0.83 / sqrt(n)); the
// bound allows that plus the discretisation error of 100 DDPM steps (about 0.027).
const KS_TOL: f64 = 0.04;

#[test]
fn every_sampler_reproduces_the_mixture() {
    let cases = [
        (SamplerKind::DDPM, 100),
        (SamplerKind::DDIM, 100),
        (SamplerKind::DpmSolver2M, 20),
        (SamplerKind::Euler, 50),
        (SamplerKind::Heun, 20),
    ];
    for (kind, steps) in cases {
        let (mean_err, var_err) = moment_errors(kind, steps, Prediction::Eps);
        assert!(mean_err < MEAN_TOL, "{} at {steps} steps: mean error {mean_err}", kind.name());
        assert!(var_err < VAR_TOL, "{} at {steps} steps: variance error {var_err}", kind.name());
    }
}

#[test]
fn dpm_solver_at_20_steps_is_as_close_as_ddim_at_100() {
    let (_, ddim) = moment_errors(SamplerKind::DDIM, 100, Prediction::V);
    let (_, dpm) = moment_errors(SamplerKind::DpmSolver2M, 20, Prediction::V);
    // Same noise, same seed: the difference is discretisation error alone.
    assert!(dpm <= ddim + 0.005, "DPM-Solver++ 20 steps {dpm} vs DDIM 100 steps {ddim}");
    // And both beat a 10-step DDIM, whose discretisation error is visible.
    let (_, ddim10) = moment_errors(SamplerKind::DDIM, 10, Prediction::V);
    assert!(ddim10 > dpm, "DDIM 10 steps {ddim10} should be worse than DPM-Solver++ 20 {dpm}");
}

#[test]
fn predictions_agree_for_the_same_sampler() {
    let (_, eps) = moment_errors(SamplerKind::DpmSolver2M, 20, Prediction::Eps);
    let (_, v) = moment_errors(SamplerKind::DpmSolver2M, 20, Prediction::V);
    let (_, x0) = moment_errors(SamplerKind::DpmSolver2M, 20, Prediction::X0);
    assert!((eps - v).abs() < 1e-3 && (v - x0).abs() < 1e-3, "{eps} {v} {x0}");
}

#[test]
fn seeded_sampling_repeats_exactly() {
    let device = cpu();
    let schedule = Schedule::new(&ScheduleConfig::default());
    let mixture = Mixture::two_modes();
    let run = || {
        let mut noise = HostNoise::new(5);
        let x = noise.normal([1, 1, 4, 4], &device);
        let mut model = exact_model(&mixture, &schedule, Prediction::V);
        let sampler = SamplerKind::DDPM.build();
        values(&sample(
            &*sampler,
            &schedule,
            Prediction::V,
            10,
            x,
            None,
            &mut model,
            &mut noise,
            &mut NoHook,
        ))
    };
    assert_eq!(run(), run());
}

/// Prints the error of each sampler against the true distribution, for the closing note:
/// `cargo test --release --lib error_table -- --ignored --nocapture`.
#[test]
#[ignore]
fn error_table() {
    let ddim_eta1 = SamplerKind::DDIM.with_eta(1.0).unwrap();
    let cases = [
        (SamplerKind::DDPM, 100),
        (SamplerKind::DDPM, 1000),
        (SamplerKind::DDIM, 20),
        (SamplerKind::DDIM, 50),
        (SamplerKind::DDIM, 100),
        (ddim_eta1, 100),
        (SamplerKind::DpmSolver2M, 10),
        (SamplerKind::DpmSolver2M, 20),
        (SamplerKind::Euler, 20),
        (SamplerKind::Euler, 50),
        (SamplerKind::Heun, 10),
        (SamplerKind::Heun, 20),
    ];
    let mixture = Mixture::two_modes();
    println!(
        "Two-mode Gaussian mixture (mean {:.4}, variance {:.4}), 16384 samples, exact denoiser",
        mixture.mean(),
        mixture.variance()
    );
    let setups = [
        ("scaled-linear, eps-prediction", scaled_linear(false), Prediction::Eps),
        (
            "scaled-linear rescaled to zero terminal SNR, v-prediction",
            scaled_linear(true),
            Prediction::V,
        ),
    ];
    for (name, config, prediction) in setups {
        println!("\n{name}\n");
        println!("| sampler | steps | evaluations | mean error | variance error | KS distance |");
        println!("|---|---:|---:|---:|---:|---:|");
        let exact = mixture.draw(128 * 128, &mut HostNoise::new(3));
        let (m, v) = errors_of(&exact);
        let ks = ks_distance(&exact);
        println!("| exact draws (sampling noise alone) | - | - | {m:.4} | {v:.4} | {ks:.4} |");
        for (kind, steps) in cases {
            let samples = mixture_samples(&config, kind, steps, prediction);
            let (m, v) = errors_of(&samples);
            let ks = ks_distance(&samples);
            let evaluations = if kind == SamplerKind::Heun { 2 * steps - 1 } else { steps };
            println!("| {kind} | {steps} | {evaluations} | {m:.4} | {v:.4} | {ks:.4} |");
        }
    }
}

#[test]
fn mixture_helpers_match_known_values() {
    // erf(0.5) = 0.5204998778, erf(1) = 0.8427007929 (tables).
    assert!((erf(0.5) - 0.5204998778).abs() < 2e-7);
    assert!((erf(-1.0) + 0.8427007929).abs() < 2e-7);
    let mixture = Mixture::two_modes();
    // At each mode's mean that component contributes half its weight; the other, by hand:
    // Phi((0.5 + 0.6) / 0.15) = Phi(7.33) = 1 - 1.1e-13.
    assert!((mixture.cdf(0.5) - (0.3 + 0.35)).abs() < 1e-6);
    // Exact draws sit within sampling noise of the truth.
    let draws = mixture.draw(128 * 128, &mut HostNoise::new(3));
    let (mean_err, var_err) = errors_of(&draws);
    assert!(mean_err < 0.012 && var_err < 0.012, "{mean_err} {var_err}");
    assert!(ks_distance(&draws) < 0.015, "{}", ks_distance(&draws));
}

#[test]
fn ddim_with_eta_reproduces_the_mixture() {
    for eta in [0.5, 1.0] {
        let kind = SamplerKind::DDIM.with_eta(eta).unwrap();
        let (mean_err, var_err) = moment_errors(kind, 100, Prediction::Eps);
        assert!(mean_err < MEAN_TOL, "eta {eta}: mean error {mean_err}");
        assert!(var_err < VAR_TOL, "eta {eta}: variance error {var_err}");
    }
}

#[test]
fn ddim_at_eta_one_takes_the_ddpm_posterior_step() {
    // DDIM's eta = 1 noise is the DDPM posterior's standard deviation, and its mean, written
    // through eps, is the posterior mean written through x0 and x_t: with the same noise
    // stream the two samplers must agree step for step.
    let config = scaled_linear(false);
    let ddim = SamplerKind::DDIM.with_eta(1.0).unwrap();
    for steps in [7, 50] {
        let a = mixture_samples(&config, ddim, steps, Prediction::Eps);
        let b = mixture_samples(&config, SamplerKind::DDPM, steps, Prediction::Eps);
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "{steps} steps: DDIM eta 1 and DDPM differ by {worst}");
    }
    // And eta = 0 draws no noise at all: a different result from the same start.
    let a = mixture_samples(&config, SamplerKind::DDIM, 7, Prediction::Eps);
    let b = mixture_samples(&config, SamplerKind::DDPM, 7, Prediction::Eps);
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 0.05));
}

#[test]
fn zero_terminal_snr_with_v_prediction_reproduces_the_mixture() {
    // Trailing spacing starts at t = T - 1, where alpha_bar is 0: the starting noise is
    // exactly the marginal there, and only v (or x0) prediction can say anything about x0.
    // The Karras-grid samplers are left out: see `karras_levels` for why they need more
    // steps on this schedule (their errors are in `error_table`).
    let config = scaled_linear(true);
    let cases = [
        (SamplerKind::DDPM, 100),
        (SamplerKind::DDIM, 100),
        (SamplerKind::DDIM.with_eta(1.0).unwrap(), 100),
    ];
    for (kind, steps) in cases {
        let samples = mixture_samples(&config, kind, steps, Prediction::V);
        let (mean_err, var_err) = errors_of(&samples);
        assert!(mean_err < MEAN_TOL, "{kind} at {steps} steps: mean error {mean_err}");
        assert!(var_err < VAR_TOL, "{kind} at {steps} steps: variance error {var_err}");
        let ks = ks_distance(&samples);
        assert!(ks < KS_TOL, "{kind} at {steps} steps: KS distance {ks}");
    }
}

#[test]
fn spacing_sets_the_discrete_grid() {
    let schedule = Schedule::new(&ScheduleConfig::default());
    let ts = |kind: SamplerKind| -> Vec<f64> {
        kind.build().levels(&schedule, 10).iter().map(|l| l.t).collect()
    };
    // T = 1000, 10 steps: leading is 1 + 100 i, linspace rounds 999 i / 9, trailing is
    // 100 i - 1, each read from the noisy end.
    for kind in [SamplerKind::DDPM, SamplerKind::DDIM.with_eta(0.3).unwrap()] {
        let leading = ts(kind.with_spacing(TimestepSpacing::Leading).unwrap());
        assert_eq!((leading[0], leading[9]), (901.0, 1.0), "{kind}");
        let linspace = ts(kind.with_spacing(TimestepSpacing::Linspace).unwrap());
        assert_eq!((linspace[0], linspace[1], linspace[9]), (999.0, 888.0, 0.0), "{kind}");
        let trailing = ts(kind.with_spacing(TimestepSpacing::Trailing).unwrap());
        assert_eq!((trailing[0], trailing[9]), (999.0, 99.0), "{kind}");
        assert_eq!(kind.with_spacing(TimestepSpacing::Leading).unwrap().eta(), kind.eta());
    }
    assert_eq!(ts(SamplerKind::DDIM), ts(SamplerKind::DDPM));
    let err = SamplerKind::DpmSolver2M.with_spacing(TimestepSpacing::Leading).unwrap_err();
    assert!(err.contains("dpmpp-2m") && err.contains("Karras"), "{err}");
    let err = SamplerKind::DDPM.with_eta(0.5).unwrap_err();
    assert!(err.contains("ddim only") && err.contains("ddpm"), "{err}");
    let kind = SamplerKind::DDIM.with_eta(0.5).unwrap();
    assert_eq!(kind.to_string(), "ddim (eta 0.5, trailing spacing)");
    assert_eq!(SamplerKind::parse("ddim"), Ok(SamplerKind::DDIM));
    assert_eq!(SamplerKind::default().to_string(), "dpmpp-2m");
    assert_eq!(TimestepSpacing::parse("linspace"), Ok(TimestepSpacing::Linspace));
    assert!(TimestepSpacing::parse("even").unwrap_err().contains("`even`"));
}

#[test]
fn init_strength_cuts_the_grid_by_timestep() {
    let device = cpu();
    let schedule = Schedule::new(&ScheduleConfig::default());
    let x0 = Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 4], [1, 1, 2, 2]), &device);
    for kind in [SamplerKind::DpmSolver2M, SamplerKind::DDIM] {
        for strength in [0.3, 1.0] {
            let mut seen = Vec::new();
            // A model that knows the page: it predicts x0 exactly from any noise level.
            let mut model = |x_t: Tensor<4>, t: f64| {
                seen.push(t);
                let level = Level { t, alpha_bar: schedule.alpha_bar_at(t) };
                let eps = (x_t - x0.clone().mul_scalar(level.alpha())).div_scalar(level.sigma());
                Prediction::Eps.target(x0.clone(), eps, level.alpha(), level.sigma())
            };
            let mut noise = HostNoise::new(1);
            let x_noise = noise.normal([1, 1, 2, 2], &device);
            let out = sample(
                &*kind.build(),
                &schedule,
                Prediction::Eps,
                20,
                x_noise,
                Some((x0.clone(), strength)),
                &mut model,
                &mut noise,
                &mut NoHook,
            );
            let first = seen[0];
            assert!(first <= strength * 999.0 + 1e-9, "{kind:?} {strength}: starts at t = {first}");
            if strength == 1.0 {
                assert!(
                    first > 990.0,
                    "{kind:?}: the full grid starts at the noisiest level, not {first}"
                );
            } else {
                assert!(
                    first > 0.5 * strength * 999.0,
                    "{kind:?}: {first} is far below the asked start"
                );
            }
            for v in values(&out) {
                assert!((v - 0.5).abs() < 1e-3, "{kind:?} {strength}: {v}");
            }
        }
    }
}

/// A network whose outputs imply a fixed clean page, with clipping on.
struct ClippedNet {
    x0: Vec<f32>,
    prediction: Prediction,
    schedule: Schedule,
}

impl Denoiser for ClippedNet {
    fn predict(&mut self, x_t: Tensor<4>, t: f64) -> Outputs {
        let alpha_bar = self.schedule.alpha_bar_at(t);
        let (alpha, sigma) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
        let x0 = Tensor::from_data(TensorData::new(self.x0.clone(), x_t.dims()), &x_t.device());
        let eps = (x_t - x0.clone().mul_scalar(alpha)).div_scalar(sigma);
        let output = self.prediction.target(x0, eps, alpha, sigma);
        Outputs { cond: output, uncond: None, clip_x0: true }
    }
}

#[test]
fn clipping_bounds_the_implied_page_and_keeps_valid_ones() {
    let schedule = Schedule::new(&scaled_linear(false));
    let device = cpu();
    let x0 = vec![2.0, -3.0, 0.5, -0.25];
    for prediction in [Prediction::Eps, Prediction::V, Prediction::X0] {
        // One DDIM step from t = 300 straight to the clean level returns the step's x0.
        let level = Level::discrete(&schedule, 300);
        let x_t = HostNoise::new(1).normal([1, 1, 2, 2], &device);
        let mut net = ClippedNet { x0: x0.clone(), prediction, schedule: schedule.clone() };
        let page = SamplerKind::DDIM.build().run(
            &[level],
            prediction,
            x_t,
            &mut net,
            &mut HostNoise::new(2),
            &mut NoHook,
        );
        let page = values(&page);
        for (got, want) in page.iter().zip([1.0, -1.0, 0.5, -0.25]) {
            assert!((got - want).abs() < 1e-4, "{prediction:?}: {page:?}");
        }
    }
}
