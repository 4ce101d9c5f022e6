//! Sampling speed per device, backend, preset, page size and batch, measured so that a
//! reviewer can trust it: warm-up runs are excluded, the device is synchronised (the
//! result is read back) before a timer stops, and each figure is the median and minimum
//! of several runs. Results are JSON, so runs on different machines merge into one table.

pub mod forward;
pub mod memory;
pub mod quality;
mod table;

use std::time::Instant;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::backend::DeviceSpec;
use crate::checkpoint::LoadedModel;
use crate::diffusion::{Guidance, HostNoise, SamplerKind};
use crate::error::{Error, Result};
use crate::sample::{Generator, Options};
use crate::text::{Tokenizer, ids_tensor};
use crate::unet::{ModelConfig, Preset};

pub use memory::{MemoryKind, PeakMemory};
pub use table::table;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Devices.
    pub devices: Vec<DeviceSpec>,
    /// Model presets.
    pub presets: Vec<Preset>,
    /// Page size for every preset (default: each preset's own).
    pub size: Option<(usize, usize)>,
    /// Batch sizes (pages per call; guidance doubles the network batch).
    pub batches: Vec<usize>,
    /// Sampler steps of the full sampling run.
    pub steps: usize,
    /// Timed runs per figure.
    pub runs: usize,
    /// Untimed runs before timing.
    pub warmup: usize,
    /// Each device's peak f32 GFLOP/s, in `devices` order, to show the fraction reached;
    /// empty when unknown.
    pub peak_gflops: Vec<f64>,
}

/// The machine a result was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// CPU model.
    pub cpu: String,
    /// Threads available to the process.
    pub threads: usize,
    /// scoregen's version.
    pub scoregen: String,
    /// Burn's version.
    pub burn: String,
}

/// One measured configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Device as named on the command line.
    pub device: String,
    /// The device's name: the GPU as its runtime names it, or the CPU model.
    #[serde(default)]
    pub device_name: String,
    /// Backend.
    pub backend: String,
    /// Element type.
    pub dtype: String,
    /// Preset.
    pub preset: String,
    /// Page width.
    pub width: usize,
    /// Page height.
    pub height: usize,
    /// Pages per call.
    pub batch: usize,
    /// Parameters of the model.
    pub parameters: usize,
    /// GFLOP of one UNet evaluation of the whole (guided, doubled) batch.
    pub gflop_per_eval: f64,
    /// Median milliseconds of one guided UNet evaluation.
    pub eval_ms_median: f64,
    /// Fastest milliseconds of one guided UNet evaluation.
    pub eval_ms_min: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// Sampler steps of the full run.
    pub steps: usize,
    /// Pages per second of a full guided DPM-Solver++ run, median over runs.
    pub pages_per_second: f64,
    /// The rise of memory during the measured runs (weights excluded) and which memory it
    /// is; `None` where it cannot be measured.
    #[serde(default)]
    pub peak_memory: Option<PeakMemory>,
    /// The device's peak f32 GFLOP/s as the user gave it.
    #[serde(default)]
    pub peak_gflops: Option<f64>,
}

impl Row {
    /// The fraction of the device's peak reached at the median, where the peak is known.
    pub fn fraction_of_peak(&self) -> Option<f64> {
        self.peak_gflops.map(|peak| self.gflops / peak)
    }
}

/// A benchmark's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// What it measured.
    pub rows: Vec<Row>,
}

/// The median and minimum of timings.
fn median_min(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) };
    (median, values[0])
}

/// Blocks until the device has computed `x`, by reading one value back.
fn synchronise(x: Tensor<4>) {
    let _ = x.sum().into_scalar::<f32>();
}

fn machine() -> Machine {
    let cpu = memory::cpu_model();
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    Machine {
        host,
        cpu,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        scoregen: env!("CARGO_PKG_VERSION").to_string(),
        burn: "0.22.1".to_string(),
    }
}

/// Runs the benchmark; `progress` is told each configuration as it starts.
pub fn run(config: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    if config.runs == 0 || config.batches.is_empty() || config.batches.contains(&0) {
        return Err(Error::input("bench needs at least one run and batch sizes of at least 1"));
    }
    let peaks = &config.peak_gflops;
    if !peaks.is_empty() && peaks.len() != config.devices.len() {
        return Err(Error::input(format!(
            "{} peak GFLOP/s figures for {} devices: give one per device, in the same order",
            peaks.len(),
            config.devices.len()
        )));
    }
    if let Some(bad) = peaks.iter().find(|p| !(p.is_finite() && **p > 0.0)) {
        return Err(Error::input(format!("peak GFLOP/s {bad} is not a positive number")));
    }
    let mut rows = Vec::new();
    for (index, &spec) in config.devices.iter().enumerate() {
        let device = spec.device()?;
        for &preset in &config.presets {
            for &batch in &config.batches {
                progress(&format!("{spec} {} batch {batch}", preset.name()));
                let mut row = measure(config, spec, &device, preset, batch)?;
                row.peak_gflops = peaks.get(index).copied();
                rows.push(row);
            }
        }
    }
    Ok(Report { machine: machine(), rows })
}

fn measure(
    config: &BenchConfig,
    spec: DeviceSpec,
    device: &Device,
    preset: Preset,
    batch: usize,
) -> Result<Row> {
    let tokenizer = Tokenizer::from_captions(["a music score, instrumentation is piano"], 1, 24);
    let mut model_config =
        ModelConfig::from_preset(preset, tokenizer.vocab_size(), tokenizer.max_tokens());
    let (width, height) = config.size.unwrap_or(preset.page_size());
    model_config.page_width = width;
    model_config.page_height = height;
    model_config.validate()?;
    let model = model_config.init_seeded(0, device);
    let parameters = burn::module::Module::num_params(&model);
    let probe = memory::Probe::start(spec, device);

    // 1. One guided UNet evaluation: a network batch of 2 x batch.
    let passes = 2 * batch;
    let unet = &model_config.unet;
    let channels = unet.image_channels + unet.coord_channels;
    let x = HostNoise::new(1).normal([passes, channels, height, width], device);
    let t = Tensor::<1>::full([passes], 500.0, device);
    let ids = vec![tokenizer.encode("a music score").ids; passes];
    let context = model.encode(ids_tensor(&ids, device));
    let mut timings = Vec::new();
    for run in 0..config.warmup + config.runs {
        let start = Instant::now();
        synchronise(model.denoise(x.clone(), t.clone(), context.clone()));
        if run >= config.warmup {
            timings.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (eval_ms_median, eval_ms_min) = median_min(timings);
    let gflop_per_eval =
        (unet.flops(width, height, tokenizer.max_tokens()) * passes as u64) as f64 / 1e9;

    // 2. A whole guided sampling run.
    let loaded = LoadedModel { model, config: model_config, tokenizer, folder: Default::default() };
    let generator = Generator::new(&loaded, device.clone());
    let options = Options {
        sampler: SamplerKind::DpmSolver2M,
        steps: config.steps,
        guidance: Guidance { scale: 3.0, rescale: 0.0 },
        width,
        height,
        seed: 0,
        clip_x0: true,
    };
    let prompts = vec!["a music score, instrumentation is piano".to_string(); batch];
    let mut rates = Vec::new();
    for run in 0..config.warmup.min(1) + config.runs.min(3) {
        let start = Instant::now();
        generator.generate(&prompts, "", &options, None, &mut |_, _| {})?;
        if run >= config.warmup.min(1) {
            rates.push(batch as f64 / start.elapsed().as_secs_f64());
        }
    }
    let (pages_per_second, _) = median_min(rates);
    let peak_memory = probe.finish();
    Ok(Row {
        device: spec.to_string(),
        device_name: memory::device_name(spec, device),
        backend: spec.backend_name().to_string(),
        dtype: "f32".to_string(),
        preset: preset.name().to_string(),
        width,
        height,
        batch,
        parameters,
        gflop_per_eval,
        eval_ms_median,
        eval_ms_min,
        gflops: gflop_per_eval / (eval_ms_median / 1e3),
        steps: config.steps,
        pages_per_second,
        peak_memory,
        peak_gflops: None,
    })
}

/// Merges reports from several machines into one, each row tagged with its machine.
pub fn merge(reports: &[Report]) -> Vec<(Machine, Row)> {
    reports.iter().flat_map(|r| r.rows.iter().map(|row| (r.machine.clone(), row.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_json_and_merge_keeps_one_row_per_device() {
        let config = BenchConfig {
            devices: vec![DeviceSpec::Cpu],
            presets: vec![Preset::Tiny],
            size: None,
            batches: vec![1, 2],
            steps: 2,
            runs: 2,
            warmup: 1,
            peak_gflops: vec![500.0],
        };
        let report = run(&config, &mut |_| {}).unwrap();
        assert_eq!(report.rows.len(), 2);
        let row = &report.rows[1];
        assert_eq!((row.batch, row.width, row.height), (2, 32, 48));
        assert!(row.eval_ms_min <= row.eval_ms_median && row.eval_ms_min > 0.0);
        assert!(row.pages_per_second > 0.0 && row.gflop_per_eval > 0.0);
        // Twice the batch, twice the operations.
        assert!((row.gflop_per_eval / report.rows[0].gflop_per_eval - 2.0).abs() < 1e-9);
        assert_eq!(row.device_name, memory::cpu_model());
        assert_eq!(row.fraction_of_peak(), Some(row.gflops / 500.0));
        // On the CPU any memory figure is the host's, never called device memory.
        if let Some(peak) = row.peak_memory {
            assert_eq!(peak.kind, MemoryKind::HostPeakRss);
        }

        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);

        // Reports written before device names, memory kinds and peaks were recorded load.
        let mut old = serde_json::to_value(&report).unwrap();
        for row in old["rows"].as_array_mut().unwrap() {
            let row = row.as_object_mut().unwrap();
            for field in ["device_name", "peak_memory", "peak_gflops"] {
                row.remove(field);
            }
            row.insert("peak_memory_bytes".into(), serde_json::Value::Null);
        }
        let old: Report = serde_json::from_value(old).unwrap();
        assert_eq!((old.rows[0].peak_gflops, old.rows[0].peak_memory), (None, None));

        let mut gpu = back.clone();
        gpu.machine.host = "gpu-box".into();
        gpu.machine.cpu = "another machine".into();
        for row in &mut gpu.rows {
            row.device = "cuda:0".into();
            row.device_name = "NVIDIA H200".into();
        }
        let merged = merge(&[report, gpu]);
        assert_eq!(merged.len(), 4);
        let text = table(&merged);
        // One line per preset, size and batch; one column group per device.
        let body: Vec<&str> = text.lines().filter(|l| l.starts_with("tiny")).collect();
        assert_eq!(body.len(), 2, "{text}");
        for line in body {
            assert_eq!(line.matches(" | ").count(), 2, "{line}");
        }
        assert!(text.lines().next().unwrap().contains("NVIDIA H200 [cuda:0]"), "{text}");
        assert_eq!(median_min(vec![3.0, 1.0, 2.0, 10.0]), (2.5, 1.0));
    }

    #[test]
    fn peak_figures_must_match_the_devices() {
        let config = BenchConfig {
            devices: vec![DeviceSpec::Cpu],
            presets: vec![Preset::Tiny],
            size: None,
            batches: vec![1],
            steps: 2,
            runs: 1,
            warmup: 0,
            peak_gflops: vec![100.0, 200.0],
        };
        let err = run(&config, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("2 peak GFLOP/s figures for 1 devices"), "{err}");
        let config = BenchConfig { peak_gflops: vec![0.0], ..config };
        assert!(run(&config, &mut |_| {}).unwrap_err().to_string().contains("peak GFLOP/s 0"));
    }
}
