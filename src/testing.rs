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

/// A data set of the first `pages` training pages of the bundled mini set, in a temporary
/// folder, with the mini set's metadata.
pub fn mini_subset(pages: usize) -> tempfile::TempDir {
    let source = crate::dataset::bundled_mini();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let train = dir.path().join("train");
    std::fs::create_dir(&train).expect("a train folder");
    std::fs::copy(source.join("metadata.json"), dir.path().join("metadata.json"))
        .expect("metadata");
    let mut names: Vec<_> = std::fs::read_dir(source.join("train"))
        .expect("the bundled train split")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    names.sort();
    for name in names.into_iter().take(pages) {
        std::fs::copy(source.join("train").join(&name), train.join(&name)).expect("a page");
    }
    dir
}
