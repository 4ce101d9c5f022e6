//! `scoregen train`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::DeviceSpec;
use crate::train::held_out::HeldOutLoss;
use crate::train::{LogRecord, Observer, TrainConfig, Trainer};
use crate::unet::Preset;

/// Arguments of `scoregen train`; each flag overrides the config file.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A JSON training config (fields left out keep their defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model size.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Data set root (MusicScore layout).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run folder for checkpoints and logs.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Optimiser steps in total.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Pages or crops per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Patch training: crop width in pixels (0: whole pages).
    #[arg(long)]
    pub crop: Option<usize>,
    /// Crop height in pixels (default: the crop width, a square).
    #[arg(long)]
    pub crop_height: Option<usize>,
    /// Seed of every random choice.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Steps between checkpoints.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Devices for data-parallel training, comma separated (default: the global --device).
    #[arg(long, value_delimiter = ',', value_parser = DeviceSpec::parse)]
    pub devices: Option<Vec<DeviceSpec>>,
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long)]
    pub resume: bool,
    /// Fine-tune: start a fresh run from this checkpoint folder's weights and vocabulary.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
}

impl TrainArgs {
    /// The config file with the flags applied. The devices are `--devices`, else the global
    /// `--device` where one was given, else the config file's, else the CPU.
    pub fn resolve(&self, device: Option<DeviceSpec>) -> crate::Result<TrainConfig> {
        let mut config = match &self.config {
            Some(path) => TrainConfig::load(path)?,
            None => TrainConfig::default(),
        };
        if let Some(folder) = &self.init_from {
            config.init_from = Some(folder.clone());
        }
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(value) = &self.$field { config.$field = value.clone(); })* };
        }
        set!(preset, data, out, steps, batch_size, learning_rate, crop, seed, checkpoint_every);
        if let Some(height) = self.crop_height {
            config.crop_height = Some(height);
        }
        match (&self.devices, device) {
            (Some(devices), _) => {
                config.devices = devices.iter().map(ToString::to_string).collect();
            }
            (None, Some(device)) => config.devices = vec![device.to_string()],
            (None, None) => {}
        }
        Ok(config)
    }
}

/// Draws the run as a progress bar with loss, rate and ETA. Where standard error is not a
/// terminal (a run under `nohup`, output sent to a file), the bar draws nothing, so its lines
/// and one line per logged step are written plainly instead.
struct Bar {
    bar: ProgressBar,
    plain: bool,
    log_every: usize,
}

impl Bar {
    fn line(&self, message: String) {
        if self.plain {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }
}

impl Observer for Bar {
    fn preparing(&mut self, done: usize, total: usize) {
        if done == 1 {
            self.bar.set_length(total as u64);
            self.bar.set_style(style("preparing pages {bar:30} {pos}/{len} [{elapsed} < {eta}]"));
        }
        self.bar.set_position(done as u64);
    }

    fn started(&mut self, step: usize, total: usize) {
        self.bar.set_style(style(
            "step {pos}/{len} {bar:30} loss {msg} [{elapsed} < {eta}, {per_sec}]",
        ));
        self.bar.set_length(total as u64);
        self.bar.set_position(step as u64);
        self.bar.reset_eta();
    }

    fn step(&mut self, record: &LogRecord) {
        let summary = format!(
            "{:.4} lr {:.2e} {:.2} img/s",
            record.loss, record.learning_rate, record.images_per_second
        );
        let total = self.bar.length().unwrap_or(0);
        if self.plain && (record.step.is_multiple_of(self.log_every) || record.step as u64 == total)
        {
            eprintln!(
                "step {}/{total} loss {summary} [{:.0} s]",
                record.step, record.elapsed_seconds
            );
        }
        self.bar.set_position(record.step as u64);
        self.bar.set_message(summary);
        if let Some(held_out) = &record.held_out {
            self.line(format!(
                "step {}: held-out loss {:.4} over {} pages ({})",
                record.step,
                held_out.mean,
                held_out.pages,
                by_timestep(held_out)
            ));
        }
    }

    fn checkpoint(&mut self, path: &std::path::Path) {
        self.line(format!("checkpoint {}", path.display()));
    }

    fn report(&mut self, path: &std::path::Path) {
        self.line(format!("samples {}", path.display()));
    }
}

/// "t 50: 0.0123, t 250: ..." for a held-out loss.
pub(super) fn by_timestep(loss: &HeldOutLoss) -> String {
    let parts: Vec<String> =
        loss.by_timestep.iter().map(|l| format!("t {}: {:.4}", l.t, l.loss)).collect();
    parts.join(", ")
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid progress template")
}

/// Runs `scoregen train`.
pub fn run(args: &TrainArgs, device: Option<DeviceSpec>, quiet: bool) -> anyhow::Result<()> {
    let config = args.resolve(device)?;
    let json = serde_json::to_string_pretty(&config).expect("a train config serialises");
    let seed = config.seed;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.enable_steady_tick(Duration::from_millis(500));
    let plain = !quiet && bar.is_hidden();
    let mut observer = Bar { bar, plain, log_every: config.log_every };
    let mut trainer = Trainer::new(config, args.resume, &mut observer)?;
    if !quiet {
        observer.line(format!(
            "training from step {} with seed {seed} and config:\n{json}",
            trainer.step()
        ));
    }
    let last = trainer.run(&mut observer)?;
    observer.bar.finish();
    println!("trained to step {}; checkpoint {}", trainer.step(), last.display());
    let (loss, sheet) = trainer.write_report()?;
    println!("loss curve {}; samples {}", loss.display(), sheet.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn devices(args: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Train(train) = &cli.command else { panic!("not a train command") };
        train.resolve(cli.global.device).unwrap().devices
    }

    #[test]
    fn device_flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("train.json");
        std::fs::write(&config, r#"{"devices": ["cpu", "cpu"]}"#).unwrap();
        let config = config.to_str().unwrap();
        assert_eq!(devices(&["scoregen", "train", "--config", config]), ["cpu", "cpu"]);
        assert_eq!(devices(&["scoregen", "--device", "cpu", "train", "--config", config]), ["cpu"]);
        assert_eq!(
            devices(&["scoregen", "train", "--config", config, "--devices", "cpu"]),
            ["cpu"]
        );
        assert_eq!(devices(&["scoregen", "train"]), ["cpu"]);
    }
}
