//! `scoregen bench`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::backend::DeviceSpec;
use crate::bench::forward::{self as forward_bench, ForwardConfig};
use crate::bench::{self, BenchConfig, Report, quality};
use crate::checkpoint::{self, Weights};
use crate::diffusion::SamplerKind;
use crate::error::Error;
use crate::fsutil::write_atomic;
use crate::unet::Preset;

/// Arguments of `scoregen bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Devices to measure, comma separated (default: the global --device).
    #[arg(long, value_delimiter = ',', value_parser = DeviceSpec::parse)]
    pub devices: Option<Vec<DeviceSpec>>,
    /// Presets, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "tiny,small")]
    pub presets: Vec<Preset>,
    /// Page size WIDTHxHEIGHT for every preset (default: each preset's own).
    #[arg(long, value_parser = super::generate::parse_size)]
    pub size: Option<(usize, usize)>,
    /// Pages per call, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub batch: Vec<usize>,
    /// Sampler steps of the full sampling run.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Timed runs per figure.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Each device's peak f32 GFLOP/s, comma separated in --devices order, to show the
    /// fraction reached. CPU: physical cores x clock in GHz x f32 FLOP per cycle and core
    /// (32 with AVX2 and two FMA units, 64 with AVX-512 and two; `lscpu` shows cores, clock
    /// and flags). GPU: the vendor's FP32 figure without tensor cores (67000 for an H100 SXM).
    #[arg(long, value_delimiter = ',', value_name = "GFLOPS")]
    pub peak_gflops: Vec<f64>,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Print one table from earlier JSON results instead of measuring.
    #[arg(long, num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Also score pages from this checkpoint at each sampler and step count.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Samplers for the quality table, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = SamplerKind::parse, default_value = "ddim,dpmpp-2m")]
    pub samplers: Vec<SamplerKind>,
    /// Step counts for the quality table, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "10,20,50")]
    pub step_counts: Vec<usize>,
    /// Pages per setting in the quality table.
    #[arg(long, default_value_t = 2)]
    pub pages: usize,
    /// Time the UNet alone, as configured in this JSON file (a UNet config or a checkpoint's
    /// config.json), at --size (default 64x64) and each --batch, instead of the presets.
    #[arg(long, value_name = "FILE")]
    pub unet_config: Option<PathBuf>,
}

/// Runs `scoregen bench`.
pub fn run(args: &BenchArgs, device: DeviceSpec, quiet: bool) -> anyhow::Result<()> {
    if !args.merge.is_empty() {
        let mut reports = Vec::new();
        for path in &args.merge {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let report: Report = serde_json::from_str(&text).map_err(|e| {
                Error::input(format!("{}: not a scoregen bench report: {e}", path.display()))
            })?;
            reports.push(report);
        }
        print!("{}", bench::table(&bench::merge(&reports)));
        return Ok(());
    }
    if let Some(path) = &args.unet_config {
        return forward(args, path, device, quiet);
    }
    let config = BenchConfig {
        devices: args.devices.clone().unwrap_or_else(|| vec![device]),
        presets: args.presets.clone(),
        size: args.size,
        batches: args.batch.clone(),
        steps: args.steps,
        runs: args.runs,
        warmup: args.warmup,
        peak_gflops: args.peak_gflops.clone(),
    };
    let report = bench::run(&config, &mut |what| {
        if !quiet {
            eprintln!("measuring {what}");
        }
    })?;
    println!(
        "{} on {} ({} threads), guided batches, f32",
        report.machine.host, report.machine.cpu, report.machine.threads
    );
    print!("{}", bench::table(&bench::merge(std::slice::from_ref(&report))));
    if let Some(path) = &args.json {
        write_atomic(
            path,
            serde_json::to_string_pretty(&report).expect("a report serialises").as_bytes(),
        )?;
    }
    if let Some(folder) = &args.checkpoint {
        let burn_device = device.device()?;
        let loaded = checkpoint::load(folder, Weights::Ema, &burn_device)?;
        let size = args.size.unwrap_or((loaded.config.page_width, loaded.config.page_height));
        let prompts =
            vec!["a music score, instrumentation is piano".to_string(); args.pages.max(1)];
        let rows = quality::sampler_table(
            &loaded,
            &burn_device,
            &args.samplers,
            &args.step_counts,
            &prompts,
            size,
        )?;
        println!("\n{:<10} {:>6} {:>12} {:>10}", "sampler", "steps", "readability", "s/page");
        for row in rows {
            println!(
                "{:<10} {:>6} {:>12.3} {:>10.2}",
                row.sampler, row.steps, row.readability, row.seconds_per_page
            );
        }
    }
    Ok(())
}

/// `scoregen bench --unet-config FILE`: forward passes of one UNet configuration.
fn forward(args: &BenchArgs, path: &Path, device: DeviceSpec, quiet: bool) -> anyhow::Result<()> {
    let unet = forward_bench::load_unet_config(path)?;
    let (width, height) = args.size.unwrap_or((64, 64));
    let config = ForwardConfig {
        unet,
        width,
        height,
        batches: args.batch.clone(),
        tokens: 24,
        runs: args.runs,
        warmup: args.warmup,
    };
    let mut rows = Vec::new();
    for spec in args.devices.clone().unwrap_or_else(|| vec![device]) {
        if !quiet {
            eprintln!("measuring {spec} {}", path.display());
        }
        rows.extend(forward_bench::run(&config, spec, &spec.device()?)?);
    }
    print!("{}", forward_bench::table(&rows));
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&rows).expect("rows serialise");
        write_atomic(json, text.as_bytes())?;
    }
    Ok(())
}
