//! `scoregen eval`.

use std::path::PathBuf;

use clap::Args;

use crate::error::Error;
use crate::eval::report::{encode_report_png, evaluate_against, extremes_sheet};
use crate::fsutil::write_atomic;

/// Arguments of `scoregen eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder of pages to score.
    pub pages: PathBuf,
    /// Folder of real pages to compare with.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// One prompt per page, in file-name order (default: the prompt stored in each PNG).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Where to write the full JSON report.
    #[arg(long, default_value = "eval.json")]
    pub json: PathBuf,
    /// Where to write a PNG of the worst and best pages with their detected staves.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Runs `scoregen eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let prompts = match &args.prompts {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            Some(text.lines().map(str::to_string).collect::<Vec<_>>())
        }
        None => None,
    };
    let report = evaluate_against(&args.pages, args.reference.as_deref(), prompts.as_deref())?;
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
    let json = serde_json::to_string_pretty(&report).expect("a report serialises");
    write_atomic(&args.json, json.as_bytes())?;
    if let Some(path) = &args.report {
        let bytes = encode_report_png(&extremes_sheet(&report, 3)?)?;
        write_atomic(path, &bytes)?;
    }
    println!("wrote {}", args.json.display());
    Ok(())
}
