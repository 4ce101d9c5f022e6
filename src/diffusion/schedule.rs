//! Noise schedules of the variance-preserving diffusion process
//! `x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * eps` (DDPM, arXiv 2006.11239).
//!
//! Beta schedules: linear (DDPM), scaled-linear (Stable Diffusion; betas linear in
//! `sqrt(beta)`), and cosine (`squaredcos_cap_v2`, arXiv 2102.09672), with the optional
//! rescale to zero terminal SNR (arXiv 2305.08891). Timestep spacings for sampling follow
//! the three conventions of that paper's Table 2: leading, linspace and trailing.

use serde::{Deserialize, Serialize};

/// How the betas of the training process are laid out over the timesteps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum BetaSchedule {
    /// `beta_t` linear from `start` to `end`.
    Linear {
        /// First beta.
        start: f64,
        /// Last beta.
        end: f64,
    },
    /// `sqrt(beta_t)` linear from `sqrt(start)` to `sqrt(end)` (Stable Diffusion uses
    /// 0.00085..0.012 over 1000 steps).
    ScaledLinear {
        /// First beta.
        start: f64,
        /// Last beta.
        end: f64,
    },
    /// `alpha_bar(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)` with `s = 0.008`, betas
    /// capped at 0.999.
    Cosine,
}

/// Where the sampling timesteps sit among the training timesteps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimestepSpacing {
    /// `1, k + 1, 2k + 1, ...` (Stable Diffusion's offset of one): never reaches `T - 1`.
    Leading,
    /// Evenly spaced from `T - 1` down to 0, rounded.
    Linspace,
    /// `T - 1, T - 1 - k, ...`: always starts at the last timestep (the recommended one).
    #[default]
    Trailing,
}

impl TimestepSpacing {
    /// Every spacing.
    pub const ALL: [TimestepSpacing; 3] = [Self::Leading, Self::Linspace, Self::Trailing];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Leading => "leading",
            Self::Linspace => "linspace",
            Self::Trailing => "trailing",
        }
    }

    /// The spacing of a command-line name.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            format!("unknown timestep spacing `{name}`: expected leading, linspace or trailing")
        })
    }
}

/// A schedule configuration: what is saved with a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The beta layout.
    pub betas: BetaSchedule,
    /// Number of discrete training timesteps `T`.
    pub timesteps: usize,
    /// Rescale so that `alpha_bar_{T-1} = 0` (needs v or x0 prediction to be useful).
    pub zero_terminal_snr: bool,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { betas: BetaSchedule::Cosine, timesteps: 1000, zero_terminal_snr: false }
    }
}

/// The smallest `alpha_bar` a sampler uses: with zero terminal SNR the last `alpha_bar`
/// is exactly 0, where eps-prediction cannot recover `x0`.
const MIN_ALPHA_BAR: f64 = 1.0 / (1 << 24) as f64;

/// A discrete schedule: `alpha_bar` for each training timestep `0..T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    alpha_bars: Vec<f64>,
}

impl Schedule {
    /// Builds the table from a configuration.
    pub fn new(config: &ScheduleConfig) -> Self {
        let steps = config.timesteps;
        assert!(steps >= 2, "a schedule needs at least 2 timesteps, got {steps}");
        let betas: Vec<f64> = match config.betas {
            BetaSchedule::Linear { start, end } => linspace(start, end, steps),
            BetaSchedule::ScaledLinear { start, end } => {
                linspace(start.sqrt(), end.sqrt(), steps).into_iter().map(|b| b * b).collect()
            }
            BetaSchedule::Cosine => {
                let f = |t: f64| {
                    ((t / steps as f64 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2).cos().powi(2)
                };
                (0..steps).map(|i| (1.0 - f((i + 1) as f64) / f(i as f64)).min(0.999)).collect()
            }
        };
        let mut alpha_bars = Vec::with_capacity(steps);
        let mut product = 1.0;
        for beta in betas {
            product *= 1.0 - beta;
            alpha_bars.push(product);
        }
        if config.zero_terminal_snr {
            rescale_zero_terminal_snr(&mut alpha_bars);
        }
        Self { alpha_bars }
    }

    /// Number of training timesteps `T`.
    pub fn len(&self) -> usize {
        self.alpha_bars.len()
    }

    /// Whether the table is empty (never, for a built schedule).
    pub fn is_empty(&self) -> bool {
        self.alpha_bars.is_empty()
    }

    /// `alpha_bar` at each discrete timestep `0..T`.
    pub fn alpha_bars(&self) -> &[f64] {
        &self.alpha_bars
    }

    /// `alpha_bar` at a discrete timestep, floored at 2^-24 so `x0` stays recoverable.
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alpha_bars[t].max(MIN_ALPHA_BAR)
    }

    /// `sigma = sqrt((1 - alpha_bar) / alpha_bar)`, the noise level of the equivalent
    /// variance-exploding process (Karras et al., arXiv 2206.00364), at a continuous `t`:
    /// `log sigma` is interpolated linearly between the discrete timesteps.
    pub fn sigma_at(&self, t: f64) -> f64 {
        let last = (self.len() - 1) as f64;
        let t = t.clamp(0.0, last);
        let low = t.floor() as usize;
        let high = (low + 1).min(self.len() - 1);
        let frac = t - low as f64;
        let (a, b) = (self.log_sigma(low), self.log_sigma(high));
        (a + (b - a) * frac).exp()
    }

    /// `alpha_bar` at a continuous `t`, consistent with [`Schedule::sigma_at`].
    pub fn alpha_bar_at(&self, t: f64) -> f64 {
        let sigma = self.sigma_at(t);
        1.0 / (1.0 + sigma * sigma)
    }

    /// The continuous timestep whose [`Schedule::sigma_at`] is `sigma` (clamped to the
    /// schedule's range).
    pub fn t_for_sigma(&self, sigma: f64) -> f64 {
        let target = sigma.ln();
        let last = self.len() - 1;
        if target <= self.log_sigma(0) {
            return 0.0;
        }
        if target >= self.log_sigma(last) {
            return last as f64;
        }
        // log sigma increases with t: find the bracketing pair.
        let high = (1..=last).find(|&i| self.log_sigma(i) >= target).unwrap_or(last);
        let (a, b) = (self.log_sigma(high - 1), self.log_sigma(high));
        (high - 1) as f64 + (target - a) / (b - a)
    }

    /// The largest and smallest sigma of the table.
    pub fn sigma_range(&self) -> (f64, f64) {
        (self.sigma_at((self.len() - 1) as f64), self.sigma_at(0.0))
    }

    fn log_sigma(&self, t: usize) -> f64 {
        let alpha_bar = self.alpha_bar(t);
        ((1.0 - alpha_bar) / alpha_bar).sqrt().ln()
    }

    /// `steps` sampling timesteps, from noisiest to cleanest, spaced as asked.
    pub fn timesteps(&self, steps: usize, spacing: TimestepSpacing) -> Vec<usize> {
        let total = self.len();
        let steps = steps.clamp(1, total);
        let mut ts: Vec<usize> = match spacing {
            TimestepSpacing::Leading => {
                let ratio = total / steps;
                (0..steps).map(|i| i * ratio + 1).map(|t| t.min(total - 1)).collect()
            }
            TimestepSpacing::Linspace => linspace(0.0, (total - 1) as f64, steps)
                .into_iter()
                .map(|t| t.round() as usize)
                .collect(),
            TimestepSpacing::Trailing => {
                let ratio = total as f64 / steps as f64;
                (1..=steps).map(|i| (i as f64 * ratio).round() as usize - 1).collect()
            }
        };
        ts.reverse();
        ts.dedup();
        ts
    }
}

/// Rescales `alpha_bar` so that `sqrt(alpha_bar)` keeps its first value and reaches 0 at
/// the last timestep, by a linear map of `sqrt(alpha_bar)` (arXiv 2305.08891, Algorithm 1).
fn rescale_zero_terminal_snr(alpha_bars: &mut [f64]) {
    let first = alpha_bars[0].sqrt();
    let last = alpha_bars[alpha_bars.len() - 1].sqrt();
    for alpha_bar in alpha_bars.iter_mut() {
        let shifted = alpha_bar.sqrt() - last;
        let scaled = shifted * first / (first - last);
        *alpha_bar = scaled * scaled;
    }
}

fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    (0..n).map(|i| start + (end - start) * i as f64 / (n - 1) as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(betas: BetaSchedule, zero_terminal_snr: bool) -> Schedule {
        Schedule::new(&ScheduleConfig { betas, timesteps: 1000, zero_terminal_snr })
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn linear_alpha_bar_matches_the_closed_product() {
        // alpha_bar_t = prod_{i<=t} (1 - beta_i) with beta_i = 1e-4 + i * (0.02 - 1e-4) / 999.
        let s = schedule(BetaSchedule::Linear { start: 1e-4, end: 0.02 }, false);
        for t in [0usize, 1, 10, 499, 999] {
            let expected: f64 =
                (0..=t).map(|i| 1.0 - (1e-4 + i as f64 * (0.02 - 1e-4) / 999.0)).product();
            assert!(close(s.alpha_bars()[t], expected, 1e-12), "t={t}");
        }
        // Known value of the DDPM schedule: alpha_bar_999 is about 4.04e-5.
        assert!(close(s.alpha_bars()[999], 4.0358e-5, 1e-3), "{}", s.alpha_bars()[999]);
    }

    #[test]
    fn scaled_linear_matches_stable_diffusion_values() {
        let s = schedule(BetaSchedule::ScaledLinear { start: 0.00085, end: 0.012 }, false);
        assert!(close(s.alpha_bars()[0], 1.0 - 0.00085, 1e-12));
        // Second beta: (sqrt(0.00085) + (sqrt(0.012) - sqrt(0.00085)) / 999)^2.
        let b1 = (0.00085f64.sqrt() + (0.012f64.sqrt() - 0.00085f64.sqrt()) / 999.0).powi(2);
        assert!(close(s.alpha_bars()[1], (1.0 - 0.00085) * (1.0 - b1), 1e-12));
        // Stable Diffusion's final alpha_bar is about 0.0046601.
        assert!(close(s.alpha_bars()[999], 0.0046601, 1e-4), "{}", s.alpha_bars()[999]);
    }

    #[test]
    fn cosine_follows_its_closed_form_and_has_no_zero_betas() {
        let s = schedule(BetaSchedule::Cosine, false);
        let f = |t: f64| ((t / 1000.0 + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos().powi(2);
        for t in [0usize, 100, 500, 900] {
            // Away from the cap, alpha_bar_t = f(t + 1) / f(0).
            assert!(close(s.alpha_bars()[t], f(t as f64 + 1.0) / f(0.0), 1e-9), "t={t}");
        }
        let mut previous = 1.0;
        for &ab in s.alpha_bars() {
            let beta = 1.0 - ab / previous;
            assert!(beta > 0.0 && beta <= 0.999 + 1e-12, "beta {beta}");
            previous = ab;
        }
        // Half way, the cosine schedule keeps about half the signal power.
        assert!((s.alpha_bars()[500] - 0.492285).abs() < 1e-5, "{}", s.alpha_bars()[500]);
    }

    #[test]
    fn zero_terminal_snr_ends_at_zero_and_keeps_the_start() {
        let plain = schedule(BetaSchedule::ScaledLinear { start: 0.00085, end: 0.012 }, false);
        let s = schedule(BetaSchedule::ScaledLinear { start: 0.00085, end: 0.012 }, true);
        assert_eq!(s.alpha_bars()[999], 0.0);
        assert!(close(s.alpha_bars()[0], plain.alpha_bars()[0], 1e-12));
        // sqrt(alpha_bar) is an affine map of the original: check one midpoint.
        let (a0, at) = (plain.alpha_bars()[0].sqrt(), plain.alpha_bars()[999].sqrt());
        let mid = (plain.alpha_bars()[500].sqrt() - at) * a0 / (a0 - at);
        assert!(close(s.alpha_bars()[500], mid * mid, 1e-12));
        // Samplers see a floored value, from which x0 is still recoverable.
        assert!(s.alpha_bar(999) > 0.0);
    }

    #[test]
    fn sigma_interpolation_inverts() {
        let s = schedule(BetaSchedule::Cosine, false);
        for t in [0.0, 0.5, 17.25, 500.0, 998.9] {
            let back = s.t_for_sigma(s.sigma_at(t));
            assert!((back - t).abs() < 1e-6, "{t} -> {back}");
        }
        let ab = s.alpha_bar_at(250.0);
        assert!(close(ab, s.alpha_bars()[250], 1e-12));
    }

    #[test]
    fn spacings_match_their_definitions() {
        let s = schedule(BetaSchedule::Cosine, false);
        assert_eq!(s.timesteps(10, TimestepSpacing::Trailing)[..3], [999, 899, 799]);
        assert_eq!(*s.timesteps(10, TimestepSpacing::Trailing).last().unwrap(), 99);
        assert_eq!(s.timesteps(10, TimestepSpacing::Leading)[..2], [901, 801]);
        assert_eq!(s.timesteps(10, TimestepSpacing::Linspace)[..2], [999, 888]);
        assert_eq!(*s.timesteps(10, TimestepSpacing::Linspace).last().unwrap(), 0);
        assert_eq!(s.timesteps(20, TimestepSpacing::Trailing).len(), 20);
    }
}
