//! The score-matching loss: per-sample mean squared error, weighted, averaged over the batch.

use burn::tensor::Tensor;

/// `mean_b( weight_b * mean_{c,h,w} (output - target)^2 )`.
///
/// Shapes: `output` and `target` are `[batch, channels, height, width]`; `weight` is
/// `[batch]`; the result is `[1]`.
pub fn weighted_mse(output: Tensor<4>, target: Tensor<4>, weight: Tensor<1>) -> Tensor<1> {
    let [batch, channels, height, width] = output.dims();
    let squared = (output - target).powi_scalar(2).reshape([batch, channels * height * width]);
    let per_sample = squared.mean_dim(1).reshape([batch]);
    (per_sample * weight).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn weights_scale_each_samples_mean_error() {
        let device = Device::default();
        let output = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 3.0, 0.0, 0.0], [2, 1, 1, 2]),
            &device,
        );
        let target = Tensor::<4>::zeros([2, 1, 1, 2], &device);
        let target = target
            + Tensor::from_data(
                TensorData::new(vec![0.0f32, 1.0, 2.0, 0.0], [2, 1, 1, 2]),
                &device,
            );
        let weight = Tensor::<1>::from_data(TensorData::new(vec![2.0f32, 0.5], [2]), &device);
        // Sample 0: mean(1, 4) = 2.5, times 2 = 5; sample 1: mean(4, 0) = 2, times 0.5 = 1.
        let loss = weighted_mse(output, target, weight).into_data().try_to_vec::<f32>().unwrap();
        assert!((loss[0] - 3.0).abs() < 1e-6, "{}", loss[0]);
    }
}
