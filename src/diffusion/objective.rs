//! What the network predicts, and how its loss is weighted over noise levels.
//!
//! With `x_t = alpha * x0 + sigma * eps` (`alpha^2 + sigma^2 = 1`), a network can predict
//! the noise `eps` (DDPM), the clean page `x0`, or the velocity `v = alpha * eps - sigma * x0`
//! (arXiv 2202.00512). Min-SNR-gamma weighting (arXiv 2303.09556) caps the weight of easy,
//! low-noise timesteps so that training converges faster.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The quantity a denoising network outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prediction {
    /// The noise that was added.
    Eps,
    /// The velocity `alpha * eps - sigma * x0`: well-posed at every noise level.
    #[default]
    V,
    /// The clean sample.
    X0,
}

impl Prediction {
    /// The same quantity as the kernels crate names it.
    pub fn kernel_target(self) -> scoregen_kernels::Target {
        match self {
            Self::Eps => scoregen_kernels::Target::Eps,
            Self::V => scoregen_kernels::Target::V,
            Self::X0 => scoregen_kernels::Target::X0,
        }
    }

    /// The training target for clean samples `x0` and noise `eps` at `(alpha, sigma)`.
    ///
    /// Shapes: `x0`, `eps` and the result are `[batch, channels, height, width]`; `alpha` and
    /// `sigma` are scalars shared by the batch.
    pub fn target(self, x0: Tensor<4>, eps: Tensor<4>, alpha: f64, sigma: f64) -> Tensor<4> {
        match self {
            Self::Eps => eps,
            Self::X0 => x0,
            Self::V => eps.mul_scalar(alpha) - x0.mul_scalar(sigma),
        }
    }

    /// Recovers `(x0, eps)` from the noisy input `x_t` and a network `output` at
    /// `(alpha, sigma)`.
    ///
    /// Shapes: `x_t`, `output` and both results are `[batch, channels, height, width]`.
    pub fn x0_and_eps(
        self,
        x_t: Tensor<4>,
        output: Tensor<4>,
        alpha: f64,
        sigma: f64,
    ) -> (Tensor<4>, Tensor<4>) {
        match self {
            Self::Eps => {
                let x0 = (x_t - output.clone().mul_scalar(sigma)).div_scalar(alpha);
                (x0, output)
            }
            Self::X0 => {
                let eps = (x_t - output.clone().mul_scalar(alpha)).div_scalar(sigma);
                (output, eps)
            }
            Self::V => {
                let x0 = x_t.clone().mul_scalar(alpha) - output.clone().mul_scalar(sigma);
                let eps = x_t.mul_scalar(sigma) + output.mul_scalar(alpha);
                (x0, eps)
            }
        }
    }
}

/// How the squared error of each sample is weighted by its noise level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LossWeighting {
    /// Every timestep counts the same in the predicted quantity's own units.
    Plain,
    /// Min-SNR-gamma: the weight equivalent to `min(SNR, gamma)` on the `x0` error.
    MinSnr {
        /// The cap on the signal-to-noise ratio (5 in the paper).
        gamma: f64,
    },
    /// Min-SNR with gamma = 5, the paper's recommendation.
    #[default]
    MinSnr5,
}

impl LossWeighting {
    /// The weight of a sample with `alpha_bar` under a given prediction type.
    pub fn weight(self, alpha_bar: f64, prediction: Prediction) -> f64 {
        let gamma = match self {
            Self::Plain => return 1.0,
            Self::MinSnr { gamma } => gamma,
            Self::MinSnr5 => 5.0,
        };
        let snr = alpha_bar / (1.0 - alpha_bar).max(1e-12);
        let capped = snr.min(gamma);
        match prediction {
            // ||eps - eps_hat||^2 = SNR * ||x0 - x0_hat||^2.
            Prediction::Eps => capped / snr.max(1e-12),
            // ||v - v_hat||^2 = (SNR + 1) * ||x0 - x0_hat||^2.
            Prediction::V => capped / (snr + 1.0),
            Prediction::X0 => capped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, cpu, tensor4};

    #[test]
    fn every_prediction_round_trips_through_x0_and_eps() {
        let device = cpu();
        let x0 = tensor4(&[0.3, -0.8, 1.0, 0.0], [1, 1, 2, 2], &device);
        let eps = tensor4(&[-1.2, 0.5, 0.1, 2.0], [1, 1, 2, 2], &device);
        let alpha_bar: f64 = 0.37;
        let (alpha, sigma) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
        let x_t = x0.clone().mul_scalar(alpha) + eps.clone().mul_scalar(sigma);
        for prediction in [Prediction::Eps, Prediction::V, Prediction::X0] {
            let output = prediction.target(x0.clone(), eps.clone(), alpha, sigma);
            let (x0_back, eps_back) = prediction.x0_and_eps(x_t.clone(), output, alpha, sigma);
            assert_close(&x0_back, &x0, 1e-5, &format!("{prediction:?} x0"));
            assert_close(&eps_back, &eps, 1e-5, &format!("{prediction:?} eps"));
        }
    }

    #[test]
    fn v_target_matches_its_definition() {
        let device = cpu();
        let x0 = tensor4(&[1.0], [1, 1, 1, 1], &device);
        let eps = tensor4(&[2.0], [1, 1, 1, 1], &device);
        let v = Prediction::V.target(x0, eps, 0.6, 0.8);
        // v = 0.6 * 2 - 0.8 * 1 = 0.4.
        assert_close(&v, &tensor4(&[0.4], [1, 1, 1, 1], &device), 1e-6, "v");
    }

    #[test]
    fn min_snr_weights_equal_min_snr_on_the_x0_error() {
        // SNR 9 (alpha_bar 0.9) is capped at 5; SNR 1/3 (alpha_bar 0.25) is not.
        let w = LossWeighting::MinSnr { gamma: 5.0 };
        assert!((w.weight(0.9, Prediction::Eps) - 5.0 / 9.0).abs() < 1e-9);
        assert!((w.weight(0.9, Prediction::V) - 5.0 / 10.0).abs() < 1e-9);
        assert!((w.weight(0.9, Prediction::X0) - 5.0).abs() < 1e-9);
        assert!((w.weight(0.25, Prediction::Eps) - 1.0).abs() < 1e-9);
        assert!((w.weight(0.25, Prediction::V) - (1.0 / 3.0) / (4.0 / 3.0)).abs() < 1e-9);
        assert_eq!(LossWeighting::Plain.weight(0.9, Prediction::V), 1.0);
    }
}
