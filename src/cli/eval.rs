//! `scoregen eval`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::backend::DeviceSpec;
use crate::checkpoint::Weights;
use crate::dataset::Split;
use crate::error::Error;
use crate::eval::report::{encode_report_png, evaluate_against, extremes_sheet};
use crate::fsutil::write_atomic;
use crate::train::held_out::{HeldOut, HeldOutLoss};

/// Arguments of `scoregen eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder of pages to score.
    #[arg(required_unless_present = "checkpoint")]
    pub pages: Option<PathBuf>,
    /// Folder of real pages to compare with.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// One prompt per page, in file-name order (default: the prompt stored in each PNG).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Where to write the full JSON report: the pages' report, with the held-out loss as
    /// `held_out` when --checkpoint is given too; the held-out loss alone without pages.
    #[arg(long, default_value = "eval.json")]
    pub json: PathBuf,
    /// Where to write a PNG of the worst and best pages with their detected staves.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Measure this checkpoint's held-out loss: the score-matching loss of its EMA weights
    /// on whole pages of --data's --split at fixed noise levels and noise (the same inputs
    /// for every checkpoint, so two can be compared).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint: the data set (default: the bundled mini set).
    #[arg(long, requires = "checkpoint")]
    pub data: Option<PathBuf>,
    /// With --checkpoint: the split measured.
    #[arg(long, value_enum, default_value = "val", requires = "checkpoint")]
    pub split: Split,
    /// With --checkpoint: pages of the split measured, at most.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..), requires = "checkpoint")]
    pub held_out_pages: u32,
    /// With --checkpoint: pages per network call.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..), requires = "checkpoint")]
    pub batch: u32,
}

/// Runs `scoregen eval`.
pub fn run(args: &EvalArgs, device: DeviceSpec) -> anyhow::Result<()> {
    let held_out = match &args.checkpoint {
        Some(checkpoint) => Some(held_out(args, checkpoint, device)?),
        None => None,
    };
    match &args.pages {
        Some(pages) => score_pages(args, pages, held_out.as_ref()),
        None => write_json(&args.json, &held_out.expect("clap requires pages or --checkpoint")),
    }
}

/// Writes `value` as pretty JSON and says where.
fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(value).expect("a report serialises");
    write_atomic(path, json.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The held-out loss of a checkpoint, printed.
fn held_out(args: &EvalArgs, checkpoint: &Path, device: DeviceSpec) -> anyhow::Result<HeldOutLoss> {
    let burn_device = device.device()?;
    let model = crate::checkpoint::load(checkpoint, Weights::Ema, &burn_device)?;
    let data = args.data.clone().unwrap_or_else(crate::dataset::bundled_mini);
    let size = (model.config.page_width, model.config.page_height);
    let pages = HeldOut::load(
        &data,
        args.split,
        size,
        &crate::dataset::default_cache_root(),
        args.held_out_pages as usize,
    )?;
    let loss = pages.loss(&model, args.batch as usize, &burn_device)?;
    println!(
        "held-out loss of {}: {:.5} over {} {} pages ({})",
        checkpoint.display(),
        loss.mean,
        loss.pages,
        args.split.name(),
        super::train::by_timestep(&loss)
    );
    Ok(loss)
}

/// Scores a folder of pages; the JSON report carries the checkpoint's held-out loss too
/// (`held_out`) when one was measured.
fn score_pages(
    args: &EvalArgs,
    pages: &Path,
    held_out: Option<&HeldOutLoss>,
) -> anyhow::Result<()> {
    let prompts = match &args.prompts {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            Some(text.lines().map(str::to_string).collect::<Vec<_>>())
        }
        None => None,
    };
    let report = evaluate_against(pages, args.reference.as_deref(), prompts.as_deref())?;
    let s = &report.summary;
    let t = &report.timing;
    println!(
        "scored {} pages in {:.2} s ({:.1} pages/s, {:.1} ms/page); skipped {} contact sheets \
         or reports",
        s.pages,
        t.seconds,
        t.pages_per_second,
        t.ms_per_page,
        report.skipped.len()
    );
    println!(
        "readability mean {:.3} median {:.3}; {:.0}% of pages have a system",
        s.mean_readability,
        s.median_readability,
        100.0 * s.with_system
    );
    println!("staves per system: {:?}", s.staves_per_system);
    if let Some(adherence) = report.mean_adherence {
        println!("prompt adherence (systems with the expected staff count): {adherence:.3}");
    }
    if let (Some(real), Some(distance)) = (&report.reference, report.frechet_distance) {
        println!(
            "reference: {} pages, readability mean {:.3}; Frechet distance {distance:.3}",
            real.pages, real.mean_readability
        );
    }
    let mut json = serde_json::to_value(&report).expect("a report serialises");
    if let Some(loss) = held_out {
        json["held_out"] = serde_json::to_value(loss).expect("a held-out loss serialises");
    }
    if let Some(path) = &args.report {
        let bytes = encode_report_png(&extremes_sheet(&report, 3)?)?;
        write_atomic(path, &bytes)?;
    }
    write_json(&args.json, &json)
}
