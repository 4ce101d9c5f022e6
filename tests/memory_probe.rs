//! The host memory probe of `scoregen bench`, alone in its own process: the peak resident
//! set it reads is the whole process's, so tests running beside it (allocating, freeing,
//! resetting the peak) would move it.

use scoregen::backend::DeviceSpec;
use scoregen::bench::memory::{MemoryKind, Probe};

#[cfg(target_os = "linux")]
#[test]
fn host_probe_sees_a_touched_allocation() {
    const SIZE: usize = 64 << 20;
    let device = DeviceSpec::Cpu.device().expect("the CPU device");
    let probe = Probe::start(DeviceSpec::Cpu, &device);
    // Every page written, so all of it becomes resident; then freed before finishing.
    let buffer = std::hint::black_box(vec![1u8; SIZE]);
    drop(buffer);
    // Alone in the process, the allocation rises above any earlier peak even where the
    // peak cannot be reset.
    let peak = probe.finish().expect("Linux reports the peak resident set");
    assert_eq!(peak.kind, MemoryKind::HostPeakRss);
    assert!(peak.bytes >= (SIZE as u64) * 15 / 16, "peak rise {} bytes", peak.bytes);
    assert!(peak.bytes < (SIZE as u64) * 2, "peak rise {} bytes", peak.bytes);
}
