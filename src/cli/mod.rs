//! The command line: argument parsing (clap), logging set-up (tracing) and exit codes.
//!
//! Exit codes: 0 success, 1 a runtime failure, 2 bad input (a file, field or value that
//! is not what was expected; clap's own usage errors also exit 2).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::backend::DeviceSpec;
use crate::error::Error;

mod bench;
mod dataset;
mod eval;
mod generate;
mod ingest;
mod train;

pub use bench::BenchArgs;
pub use dataset::DatasetArgs;
pub use eval::EvalArgs;
pub use generate::GenerateArgs;
pub use ingest::IngestArgs;
pub use train::TrainArgs;

/// Generate, train and measure diffusion models of sheet-music pages.
#[derive(Debug, Parser)]
#[command(name = "scoregen", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    /// Options every subcommand takes.
    pub global: GlobalArgs,
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  scoregen generate \"a music score, instrumentation is piano, key is A major\"
  scoregen train --preset tiny --data datasets/musicscore-mini --steps 200
  scoregen dataset info datasets/musicscore-mini";

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Compute device: `cpu`, `wgpu`, `wgpu:N`, `cuda` or `cuda:N` (those built in; default:
    /// cpu, or for `train` the config file's `devices`).
    #[arg(long, global = true, value_parser = DeviceSpec::parse)]
    pub device: Option<DeviceSpec>,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write score pages for a text prompt.
    #[command(after_help = "Example:\n  scoregen generate \"a music score, instrumentation is \
                            violin\" --count 4 --steps 20 --out pages/")]
    Generate(GenerateArgs),
    /// Train the text-conditioned UNet on a MusicScore subset or a folder in its layout.
    #[command(after_help = "Example:\n  scoregen train --preset tiny --data \
                            datasets/musicscore-mini --steps 200 --out runs/tiny")]
    Train(TrainArgs),
    /// Fetch, inspect, check and prepare MusicScore data.
    #[command(after_help = "Example:\n  scoregen dataset info datasets/musicscore-mini")]
    Dataset(DatasetArgs),
    /// Turn IMSLP work pages (HTML, wikitext, API JSON) into metadata and captions.
    #[command(after_help = "Exit status: 0 when at least one input gave a work (each other \
                            input is reported as skipped, with the reason); 2 when none did, \
                            and then nothing is written.\n\nExample:\n  scoregen ingest \
                            pages/ work.html --licence public-domain,cc-by --out \
                            metadata.jsonl")]
    Ingest(IngestArgs),
    /// Measure sampling speed per device, backend, preset and batch size.
    #[command(after_help = "Example:\n  scoregen bench --presets tiny,small --batch 1,4")]
    Bench(BenchArgs),
    /// Score how much generated pages read as scores.
    #[command(after_help = "Examples:\n  scoregen eval samples/ --reference \
                            datasets/musicscore-mini/test\n  scoregen eval --checkpoint \
                            checkpoints/small --json held-out.json")]
    Eval(EvalArgs),
}

/// Entry point of the binary: parse, run, map errors to exit codes.
pub fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    init_logging(&cli.global);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let GlobalArgs { device: chosen, quiet, .. } = cli.global;
    let device = chosen.unwrap_or(DeviceSpec::Cpu);
    match &cli.command {
        Command::Generate(args) => generate::run(args, device, quiet),
        Command::Train(args) => train::run(args, chosen, quiet),
        Command::Dataset(args) => dataset::run(args, quiet),
        Command::Ingest(args) => ingest::run(args, quiet),
        Command::Bench(args) => bench::run(args, device, quiet),
        Command::Eval(args) => eval::run(args, device),
    }
}

/// Prints one line for the error chain and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    // Causes already spelled out by the message above them are not repeated.
    let mut message = String::new();
    for cause in err.chain().map(ToString::to_string) {
        if !message.contains(&cause) {
            message = if message.is_empty() { cause } else { format!("{message}: {cause}") };
        }
    }
    eprintln!("error: {message}");
    let input = err.chain().any(|cause| cause.downcast_ref::<Error>().is_some_and(Error::is_input));
    ExitCode::from(if input { 2 } else { 1 })
}

/// A panic is a bug in scoregen: say so in one line instead of a backtrace (unless
/// `RUST_BACKTRACE` asks for one). A closed standard output is not a bug: a reader that stops
/// early (`scoregen eval ... | head`) ends the command quietly, with the status a shell gives a
/// process that SIGPIPE ended.
fn install_panic_hook() {
    let backtrace = std::env::var_os("RUST_BACKTRACE").is_some();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(141);
        }
        if backtrace {
            return default_hook(info);
        }
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!(
            "error: internal error{}: {payload} (please report it; RUST_BACKTRACE=1 shows more)",
            location.unwrap_or_default()
        );
    }));
}

fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCOREGEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("scoregen={level}")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
