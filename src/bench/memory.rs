//! Peak memory of a measured stretch of work, and the name of the device that did it.
//!
//! On the CPU the figure is host memory: the rise of the process's peak resident set
//! (`VmHWM` in `/proc/self/status`, proc(5)) over its resident set when the stretch
//! began. The peak is reset first through `/proc/self/clear_refs` where the kernel allows
//! it. Known cost: memory the allocator kept from earlier work in the process is reused
//! without raising the resident set, so later configurations can read low (tiny at batch
//! 2 after batch 1: 5 MiB against 15 MiB); one configuration per process gives the whole
//! figure. On a GPU it is the rise of the bytes Burn's device memory pools hold reserved; the
//! pools keep pages for reuse, so the reservation after the work covers its peak.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::backend::DeviceSpec;

/// What a peak-memory figure counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    /// Host memory: the rise of the process's peak resident set. Work on other threads of
    /// the process in the same stretch counts too.
    HostPeakRss,
    /// Device memory: the rise of the bytes Burn's memory pools hold reserved.
    DeviceReserved,
}

impl MemoryKind {
    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::HostPeakRss => "host RSS",
            Self::DeviceReserved => "device",
        }
    }
}

/// A measured peak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeakMemory {
    /// Bytes above the level when measuring began.
    pub bytes: u64,
    /// What was measured.
    pub kind: MemoryKind,
}

/// `(VmRSS, VmHWM)` in bytes from the text of `/proc/self/status`.
fn parse_status(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib = line[name.len()..].trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn resident() -> Option<(u64, u64)> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Watches memory from [`Probe::start`] to [`Probe::finish`].
pub struct Probe {
    start: Start,
}

enum Start {
    Host { rss: u64, peak: u64, reset: bool },
    Device { device: Device, reserved: u64 },
    Unmeasured,
}

impl Probe {
    /// Begins watching the memory that work on `device` uses.
    pub fn start(spec: DeviceSpec, device: &Device) -> Self {
        let start = match spec {
            DeviceSpec::Cpu => {
                // Writing 5 resets VmHWM to the current resident set (Linux 4.0 and later).
                let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
                match resident() {
                    Some((rss, peak)) => Start::Host { rss, peak, reset },
                    None => Start::Unmeasured,
                }
            }
            _ => {
                device.memory_cleanup();
                match device.memory_pool_usage() {
                    Some(usage) => {
                        Start::Device { device: device.clone(), reserved: usage.bytes_reserved }
                    }
                    None => Start::Unmeasured,
                }
            }
        };
        Self { start }
    }

    /// The peak since [`Probe::start`], or `None` where it cannot be known: no `/proc`, no
    /// pool report, or a peak that could not be reset and was not exceeded.
    pub fn finish(self) -> Option<PeakMemory> {
        match self.start {
            Start::Host { rss, peak, reset } => {
                let (_, peak_now) = resident()?;
                // Without a reset, a peak left from earlier work hides any lower one.
                (reset || peak_now > peak).then(|| PeakMemory {
                    bytes: peak_now.saturating_sub(rss),
                    kind: MemoryKind::HostPeakRss,
                })
            }
            Start::Device { device, reserved } => {
                let usage = device.memory_pool_usage()?;
                Some(PeakMemory {
                    bytes: usage.bytes_reserved.saturating_sub(reserved),
                    kind: MemoryKind::DeviceReserved,
                })
            }
            Start::Unmeasured => None,
        }
    }
}

/// The CPU's model name from `/proc/cpuinfo`, or the architecture.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The device's name: the GPU as its runtime names it (from Burn's device identity), or
/// the CPU model.
pub fn device_name(spec: DeviceSpec, device: &Device) -> String {
    if spec == DeviceSpec::Cpu {
        return cpu_model();
    }
    gpu_name(device).unwrap_or_else(|| format!("{spec} (name not reported)"))
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn gpu_name(device: &Device) -> Option<String> {
    device.identity().map(|identity| identity.name)
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn gpu_name(_device: &Device) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status =
            "Name:\tscoregen\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1536 kB\n";
        assert_eq!(parse_status(status), Some((1536 * 1024, 2048 * 1024)));
        assert_eq!(parse_status("VmRSS:\t12 kB\n"), None);
    }
}
