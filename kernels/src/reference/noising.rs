//! Forward noising: `x_t = alpha * x0 + sigma * eps` with the training target in one call.

use burn::tensor::Tensor;

/// The quantity a network is trained to output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The noise `eps`.
    Eps,
    /// The velocity `alpha * eps - sigma * x0`.
    V,
    /// The clean sample `x0`.
    X0,
}

/// Noises clean samples and returns `(x_t, target)`.
///
/// Shapes: `x0`, `eps` and both outputs are `[batch, channels, height, width]`; `alpha` and
/// `sigma` are `[batch]` (one noise level per sample).
pub fn forward_noising(
    x0: Tensor<4>,
    eps: Tensor<4>,
    alpha: Tensor<1>,
    sigma: Tensor<1>,
    target: Target,
) -> (Tensor<4>, Tensor<4>) {
    let [batch] = alpha.dims();
    let alpha = alpha.reshape([batch, 1, 1, 1]);
    let sigma = sigma.reshape([batch, 1, 1, 1]);
    let x_t = x0.clone() * alpha.clone() + eps.clone() * sigma.clone();
    let target = match target {
        Target::Eps => eps,
        Target::X0 => x0,
        Target::V => eps * alpha - x0 * sigma,
    };
    (x_t, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t4(values: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::default())
    }

    fn t1(values: &[f32]) -> Tensor<1> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &Device::default())
    }

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn each_sample_gets_its_own_level() {
        let x0 = t4(&[1.0, 2.0, -1.0, 0.5], [2, 1, 1, 2]);
        let eps = t4(&[0.5, -0.5, 2.0, 1.0], [2, 1, 1, 2]);
        let (alpha, sigma) = (t1(&[0.6, 0.8]), t1(&[0.8, 0.6]));
        let (x_t, v) = forward_noising(x0, eps, alpha, sigma, Target::V);
        // Sample 0: 0.6 x0 + 0.8 eps; sample 1: 0.8 x0 + 0.6 eps.
        let expected_xt = [1.0, 0.8, 0.4, 1.0];
        // v = alpha eps - sigma x0.
        let expected_v = [-0.5, -1.9, 2.2, 0.5];
        for (a, e) in host(x_t).iter().zip(expected_xt) {
            assert!((a - e).abs() < 1e-6, "{a} vs {e}");
        }
        for (a, e) in host(v).iter().zip(expected_v) {
            assert!((a - e).abs() < 1e-6, "{a} vs {e}");
        }
    }
}
