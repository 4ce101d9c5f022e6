//! `scoregen dataset` and `scoregen ingest`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::dataset::hub::{self, FetchOptions, FetchProgress, Subset};
use crate::dataset::{DataSet, Split, SplitStats, archive, page::decode};
use crate::error::Error;
use crate::fsutil::write_atomic;

/// Arguments of `scoregen dataset`.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DatasetAction,
}

/// The `dataset` actions.
#[derive(Debug, Subcommand)]
pub enum DatasetAction {
    /// Download a MusicScore subset through the hub cache and lay it out for training.
    Fetch {
        /// The subset.
        #[arg(long, value_enum, default_value = "400")]
        subset: Subset,
        /// Splits to fetch, comma separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "train,val,test")]
        split: Vec<Split>,
        /// Where the subset is laid out.
        #[arg(long, default_value = "data")]
        out: PathBuf,
        /// The hub cache (default: $HF_HOME/hub or ~/.cache/huggingface/hub).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Use only the cache (also set by HF_HUB_OFFLINE=1).
        #[arg(long)]
        offline: bool,
    },
    /// Count pages per split, with metadata coverage, page sizes and stray files.
    Info {
        /// The data set root.
        root: PathBuf,
    },
    /// Decode every page, list those that cannot be used and why, and fail if any.
    Check {
        /// The data set root.
        root: PathBuf,
        /// Splits to check, comma separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "train,val,test")]
        split: Vec<Split>,
    },
    /// Unpack `<split>.tar.gz` archives in a data set root into split folders.
    Prepare {
        /// The data set root.
        root: PathBuf,
    },
}

/// Arguments of `scoregen ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// IMSLP work pages: HTML, wikitext, API JSON or a MusicScore metadata.json.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: IngestFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// What `ingest` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IngestFormat {
    /// The typed metadata of every work, as a JSON list.
    Json,
    /// One caption per line.
    Captions,
}

struct Bars {
    bar: ProgressBar,
}

impl FetchProgress for Bars {
    fn file(&mut self, name: &str, index: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(index as u64);
        self.bar.set_message(name.to_string());
    }

    fn unpacking(&mut self, name: &str, bytes: u64) {
        self.bar.set_message(format!("unpacking {name}: {:.1} MB", bytes as f64 / 1e6));
    }
}

/// Runs `scoregen dataset`.
pub fn run(args: &DatasetArgs, quiet: bool) -> anyhow::Result<()> {
    match &args.action {
        DatasetAction::Fetch { subset, split, out, cache, offline } => {
            let options = FetchOptions {
                subset: *subset,
                splits: split.clone(),
                cache: cache.clone().unwrap_or_else(FetchOptions::default_cache),
                offline: *offline || FetchOptions::offline_from_env(),
                out: out.clone(),
            };
            let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} files [{elapsed} < {eta}] {msg}",
                )
                .expect("a valid template"),
            );
            let fetched = hub::fetch(&options, &mut Bars { bar: bar.clone() })?;
            bar.finish_and_clear();
            println!(
                "{}: {} files; unpacked {:?}",
                fetched.root.display(),
                fetched.files,
                fetched.unpacked
            );
            for split in &options.splits {
                if let Ok(set) = DataSet::open(&fetched.root, *split) {
                    println!(
                        "{split}: {} pages ({} without metadata)",
                        set.entries.len(),
                        set.without_metadata()
                    );
                }
            }
        }
        DatasetAction::Info { root } => info(root)?,
        DatasetAction::Check { root, split } => check(root, split, quiet)?,
        DatasetAction::Prepare { root } => {
            for split in Split::ALL {
                let archive_path = root.join(format!("{}.tar.gz", split.name()));
                let target = root.join(split.name());
                if archive_path.is_file() && !target.join(archive::COMPLETE_MARKER).exists() {
                    let done = archive::unpack(
                        &archive_path,
                        &target,
                        hub::MAX_UNPACKED_BYTES,
                        &mut |_| {},
                    )?;
                    println!(
                        "{split}: unpacked {} files ({:.1} MB)",
                        done.files,
                        done.bytes as f64 / 1e6
                    );
                }
            }
        }
    }
    Ok(())
}

fn info(root: &std::path::Path) -> anyhow::Result<()> {
    let mut found = false;
    for split in Split::ALL {
        let Ok(set) = DataSet::open(root, split) else { continue };
        found = true;
        let stats = SplitStats::measure(&set);
        let coverage = match stats.metadata_coverage() {
            Some(percent) => format!("{percent:.1}% with metadata"),
            None => "no pages".to_string(),
        };
        println!(
            "{split}: {} pages, {} without metadata ({coverage}), {} other files",
            set.entries.len(),
            set.without_metadata(),
            set.skipped.len()
        );
        if let (Some(width), Some(height)) = (stats.width, stats.height) {
            println!(
                "  width px: min {}, median {}, max {}; height px: min {}, median {}, max {}",
                width.min, width.median, width.max, height.min, height.median, height.max
            );
        }
        if !stats.unreadable.is_empty() {
            println!(
                "  {} pages with an unreadable header (see `scoregen dataset check`)",
                stats.unreadable.len()
            );
        }
        for (path, why) in set.skipped.iter().take(5) {
            println!("  skipped {}: {why}", path.display());
        }
        if let Some(entry) = set.entries.first() {
            println!("  e.g. {}: \"{}\"", entry.path.display(), entry.caption);
        }
    }
    if !found {
        return Err(Error::input(format!(
            "{}: no train, val or test split folder",
            root.display()
        ))
        .into());
    }
    Ok(())
}

fn check(root: &std::path::Path, splits: &[Split], quiet: bool) -> anyhow::Result<()> {
    let mut bad = 0;
    let mut total = 0;
    for &split in splits {
        let set = DataSet::open(root, split)?;
        let bar =
            if quiet { ProgressBar::hidden() } else { ProgressBar::new(set.entries.len() as u64) };
        for entry in &set.entries {
            total += 1;
            if let Err(err) = decode(&entry.path) {
                // The list is what `check` is for: printed even with --quiet.
                bar.suspend(|| println!("unusable {err}"));
                bad += 1;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    println!("{total} pages checked, {bad} unusable");
    if bad > 0 {
        return Err(Error::input(format!(
            "{bad} of {total} pages in {} cannot be decoded",
            root.display()
        ))
        .into());
    }
    Ok(())
}

/// Runs `scoregen ingest`.
pub fn ingest(args: &IngestArgs) -> anyhow::Result<()> {
    let mut works = Vec::new();
    for file in &args.files {
        works.extend(crate::imslp::parse_any(file)?);
    }
    let text = match args.format {
        IngestFormat::Json => {
            serde_json::to_string_pretty(&works).expect("metadata serialises") + "\n"
        }
        IngestFormat::Captions => works.iter().map(|w| w.caption() + "\n").collect(),
    };
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(())
}
