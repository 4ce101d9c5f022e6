//! Compute devices and the backends built into this binary.
//!
//! Burn 0.22 dispatches at run time: one tensor type, with the backend picked by the
//! [`Device`] a tensor lives on. Which backends exist is decided at build time by cargo
//! features: `flex` (Burn's pure-Rust CPU backend, the default), `wgpu` and `cuda`.

use std::fmt;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A device as the user names it on the command line (`cpu`, `wgpu:0`, `cuda:1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU through Burn's `flex` backend.
    Cpu,
    /// A wgpu adapter: `None` is the best one available, `Some(n)` the n-th discrete GPU.
    Wgpu(Option<usize>),
    /// The n-th CUDA device.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `cpu`, `wgpu`, `wgpu:N`, `cuda` or `cuda:N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, index) = match text.split_once(':') {
            Some((name, index)) => {
                let index = index.parse::<usize>().map_err(|_| {
                    format!("device index `{index}` in `{text}` is not a non-negative integer")
                })?;
                (name, Some(index))
            }
            None => (text, None),
        };
        match (name, index) {
            ("cpu", None) => Ok(Self::Cpu),
            ("wgpu", index) => Ok(Self::Wgpu(index)),
            ("cuda", index) => Ok(Self::Cuda(index.unwrap_or(0))),
            _ => Err(format!("unknown device `{text}`: expected cpu, wgpu[:N] or cuda[:N]")),
        }
    }

    /// The Burn device, or an error when its backend is not built into this binary.
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => cpu_device(),
            Self::Wgpu(index) => wgpu_device(index),
            Self::Cuda(index) => cuda_device(index),
        }
    }

    /// The backend's name, as benchmarks and checkpoints record it.
    pub fn backend_name(self) -> &'static str {
        match self {
            Self::Cpu => "flex",
            Self::Wgpu(_) => "wgpu",
            Self::Cuda(_) => "cuda",
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Wgpu(None) => write!(f, "wgpu"),
            Self::Wgpu(Some(index)) => write!(f, "wgpu:{index}"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

/// The backends compiled into this binary, by feature name.
pub fn built_in_backends() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "flex") {
        names.push("flex");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    names
}

fn not_built(device: &str, feature: &str) -> Error {
    Error::input(format!(
        "device `{device}` needs the `{feature}` backend, which this binary was built without \
         (rebuild with `--features {feature}`; built in: {})",
        built_in_backends().join(", ")
    ))
}

#[cfg(feature = "flex")]
fn cpu_device() -> Result<Device> {
    Ok(Device::flex())
}

#[cfg(not(feature = "flex"))]
fn cpu_device() -> Result<Device> {
    Err(not_built("cpu", "flex"))
}

#[cfg(feature = "wgpu")]
fn wgpu_device(index: Option<usize>) -> Result<Device> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        None => DeviceKind::DefaultDevice,
        Some(index) => DeviceKind::DiscreteGpu(index),
    }))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(index: Option<usize>) -> Result<Device> {
    let name = DeviceSpec::Wgpu(index).to_string();
    Err(not_built(&name, "wgpu"))
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<Device> {
    Err(not_built(&DeviceSpec::Cuda(index).to_string(), "cuda"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_device_form() {
        assert_eq!(DeviceSpec::parse("cpu"), Ok(DeviceSpec::Cpu));
        assert_eq!(DeviceSpec::parse("wgpu"), Ok(DeviceSpec::Wgpu(None)));
        assert_eq!(DeviceSpec::parse("wgpu:1"), Ok(DeviceSpec::Wgpu(Some(1))));
        assert_eq!(DeviceSpec::parse("cuda"), Ok(DeviceSpec::Cuda(0)));
        assert_eq!(DeviceSpec::parse("cuda:3"), Ok(DeviceSpec::Cuda(3)));
        assert!(DeviceSpec::parse("tpu").unwrap_err().contains("unknown device `tpu`"));
        assert!(DeviceSpec::parse("cuda:x").unwrap_err().contains("`x`"));
        assert!(DeviceSpec::parse("cpu:0").is_err());
    }

    #[test]
    fn display_round_trips() {
        for spec in [DeviceSpec::Cpu, DeviceSpec::Wgpu(None), DeviceSpec::Wgpu(Some(2))] {
            assert_eq!(DeviceSpec::parse(&spec.to_string()), Ok(spec));
        }
    }
}
