//! Helpers shared by the unit tests.

use burn::tensor::{Device, Tensor, TensorData};

/// The default CPU device.
pub fn cpu() -> Device {
    crate::backend::DeviceSpec::Cpu.device().expect("the test build has a CPU backend")
}

/// A rank-4 tensor from values.
pub fn tensor4(values: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// The values of a tensor on the host.
pub fn values<const D: usize>(tensor: &Tensor<D>) -> Vec<f32> {
    tensor.to_data().convert::<f32>().try_to_vec::<f32>().expect("float tensor")
}

/// Asserts that two tensors agree elementwise within `tol` (absolute).
pub fn assert_close<const D: usize>(
    actual: &Tensor<D>,
    expected: &Tensor<D>,
    tol: f32,
    what: &str,
) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shapes differ");
    for (i, (a, e)) in values(actual).iter().zip(values(expected)).enumerate() {
        assert!((a - e).abs() <= tol, "{what}: element {i} is {a}, expected {e} (tol {tol})");
    }
}
