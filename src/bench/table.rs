//! The comparison table: one row per preset, page size, batch and step count, and one
//! column group per device, so that runs merged from several machines read side by side.

use std::collections::HashMap;

use super::{Machine, Row};

/// Width of the row-setting columns on the left.
const SETTING_WIDTH: usize = 47;
/// Width of one device's columns, without the ` | ` before them.
const GROUP_WIDTH: usize = 62;

/// What the columns mean, printed under the table.
const NOTES: [&str; 3] = [
    "ms/eval: one guided UNet evaluation (network batch 2 x batch); pages/s: a whole guided",
    "DPM-Solver++ run; %peak: GFLOP/s over --peak-gflops; peak memory: the rise during the runs,",
    "weights excluded (host RSS: the process's peak resident set; device: Burn's memory pools).",
];

/// Which device a result belongs to: the machine and the device on it.
#[derive(PartialEq)]
struct DeviceKey {
    host: String,
    cpu: String,
    device: String,
    name: String,
}

/// What one line of the table holds fixed.
#[derive(PartialEq)]
struct Setting {
    preset: String,
    width: usize,
    height: usize,
    batch: usize,
    steps: usize,
    parameters: usize,
}

/// A readable table of rows, each with the machine it ran on: one line per preset, size,
/// batch and steps, one column group per device in the order first seen.
pub fn table(rows: &[(Machine, Row)]) -> String {
    // 1. The devices (column groups) and settings (lines), in order of appearance.
    let mut devices: Vec<DeviceKey> = Vec::new();
    let mut settings: Vec<(Setting, f64)> = Vec::new();
    let mut cells: HashMap<(usize, usize), &Row> = HashMap::new();
    for (machine, row) in rows {
        let name = if row.device_name.is_empty() && row.device == "cpu" {
            machine.cpu.clone()
        } else {
            row.device_name.clone()
        };
        let device = DeviceKey {
            host: machine.host.clone(),
            cpu: machine.cpu.clone(),
            device: row.device.clone(),
            name,
        };
        let setting = Setting {
            preset: row.preset.clone(),
            width: row.width,
            height: row.height,
            batch: row.batch,
            steps: row.steps,
            parameters: row.parameters,
        };
        let column = position_or_push(&mut devices, device);
        let line = match settings.iter().position(|(s, _)| *s == setting) {
            Some(line) => line,
            None => {
                settings.push((setting, row.gflop_per_eval));
                settings.len() - 1
            }
        };
        cells.insert((line, column), row);
    }

    // 2. Headers: the device names, then the column names.
    let mut out = format!("{:SETTING_WIDTH$}", "");
    for device in &devices {
        let shared = devices.iter().filter(|d| d.name == device.name).count() > 1;
        let label = match shared {
            false => format!("{} [{}]", device.name, device.device),
            true => format!("{} [{} on {}]", device.name, device.device, device.host),
        };
        let label: String = label.chars().take(GROUP_WIDTH).collect();
        out.push_str(&format!(" | {label:<GROUP_WIDTH$}"));
    }
    out = out.trim_end().to_string() + "\n";
    out.push_str(&format!(
        "{:<6} {:>9} {:>5} {:>5} {:>8} {:>9}",
        "preset", "size", "batch", "steps", "params", "GFLOP/ev"
    ));
    for _ in &devices {
        out.push_str(&format!(
            " | {:>15} {:>8} {:>6} {:>8} {:>18}",
            "ms/eval med/min", "GFLOP/s", "%peak", "pages/s", "peak memory"
        ));
    }
    out.push('\n');

    // 3. One line per setting.
    for (line, (setting, gflop_per_eval)) in settings.iter().enumerate() {
        out.push_str(&format!(
            "{:<6} {:>9} {:>5} {:>5} {:>7.2}M {:>9.2}",
            setting.preset,
            format!("{}x{}", setting.width, setting.height),
            setting.batch,
            setting.steps,
            setting.parameters as f64 / 1e6,
            gflop_per_eval
        ));
        for column in 0..devices.len() {
            out.push_str(" | ");
            out.push_str(&match cells.get(&(line, column)) {
                Some(row) => cell(row),
                None => format!("{:>15} {:>8} {:>6} {:>8} {:>18}", "-", "-", "-", "-", "-"),
            });
        }
        out.push('\n');
    }

    // 4. What the columns mean.
    for note in NOTES {
        out.push_str(note);
        out.push('\n');
    }
    out
}

/// One device's figures for one setting.
fn cell(row: &Row) -> String {
    let percent = match row.fraction_of_peak() {
        Some(fraction) => format!("{:.1}%", 100.0 * fraction),
        None => "-".to_string(),
    };
    let memory = match row.peak_memory {
        Some(peak) => {
            format!("{:.1} MiB {}", peak.bytes as f64 / (1u64 << 20) as f64, peak.kind.label())
        }
        None => "-".to_string(),
    };
    format!(
        "{:>15} {:>8.1} {:>6} {:>8.3} {:>18}",
        format!("{:.1}/{:.1}", row.eval_ms_median, row.eval_ms_min),
        row.gflops,
        percent,
        row.pages_per_second,
        memory
    )
}

fn position_or_push(devices: &mut Vec<DeviceKey>, device: DeviceKey) -> usize {
    match devices.iter().position(|d| *d == device) {
        Some(index) => index,
        None => {
            devices.push(device);
            devices.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{MemoryKind, PeakMemory};

    fn machine(host: &str, cpu: &str) -> Machine {
        Machine {
            host: host.into(),
            cpu: cpu.into(),
            threads: 2,
            scoregen: "0.1.0".into(),
            burn: "0.22.1".into(),
        }
    }

    fn row(device: &str, name: &str, batch: usize, eval_ms: f64) -> Row {
        Row {
            device: device.into(),
            device_name: name.into(),
            backend: "flex".into(),
            dtype: "f32".into(),
            preset: "tiny".into(),
            width: 32,
            height: 48,
            batch,
            parameters: 1_250_000,
            gflop_per_eval: 0.5 * batch as f64,
            eval_ms_median: eval_ms,
            eval_ms_min: eval_ms - 1.0,
            gflops: 0.5 * batch as f64 / (eval_ms / 1e3),
            steps: 20,
            pages_per_second: 2.0,
            peak_memory: None,
            peak_gflops: None,
        }
    }

    #[test]
    fn devices_sit_side_by_side_one_line_per_setting() {
        let cpu = machine("box", "Xeon");
        let gpu_host = machine("gpu-box", "EPYC");
        let mut gpu = row("cuda:0", "NVIDIA H200", 1, 2.0);
        gpu.peak_gflops = Some(1000.0);
        gpu.peak_memory = Some(PeakMemory { bytes: 3 << 29, kind: MemoryKind::DeviceReserved });
        let mut host = row("cpu", "Xeon", 1, 40.0);
        host.peak_memory = Some(PeakMemory { bytes: 5 << 20, kind: MemoryKind::HostPeakRss });
        let rows = vec![
            (cpu.clone(), host),
            (cpu.clone(), row("cpu", "Xeon", 2, 80.0)),
            (gpu_host.clone(), gpu),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Xeon [cpu]") && lines[0].contains("NVIDIA H200 [cuda:0]"));
        let body: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("tiny")).collect();
        assert_eq!(body.len(), 2, "one line per batch:\n{text}");
        for line in &body {
            assert_eq!(line.matches(" | ").count(), 2, "two device groups: {line}");
        }
        // Batch 1: 0.5 GFLOP in 2 ms is 250 GFLOP/s, a quarter of the given peak.
        assert!(body[0].contains("2.0/1.0") && body[0].contains("250.0"), "{}", body[0]);
        assert!(body[0].contains("25.0%") && body[0].contains("1536.0 MiB device"));
        assert!(body[0].contains("5.0 MiB host RSS"), "{}", body[0]);
        // Batch 2 ran on the CPU only: the GPU's cells are empty.
        assert!(body[1].trim_end().ends_with("-"), "{}", body[1]);
        assert!(body[1].contains("80.0/79.0") && body[1].contains("1.25M"), "{}", body[1]);

        // Two hosts with the same device name are told apart by host.
        let twins =
            vec![(cpu, row("cpu", "Xeon", 1, 40.0)), (gpu_host, row("cpu", "Xeon", 1, 30.0))];
        let text = table(&twins);
        assert!(text.contains("Xeon [cpu on box]") && text.contains("Xeon [cpu on gpu-box]"));
    }
}
