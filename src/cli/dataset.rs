//! `scoregen dataset`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::dataset::hub::{self, FetchOptions, FetchProgress, Subset};
use crate::dataset::parallel::map_ordered;
use crate::dataset::{
    DataSet, PageCache, Split, SplitStats, archive, default_cache_root, page::decode,
};
use crate::error::Error;
use crate::unet::Preset;

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
    /// Unpack `<split>.tar.gz` archives in a data set root into split folders and, with
    /// `--pages`, decode and fit every page into the page cache that `train` reads.
    Prepare {
        /// The data set root.
        root: PathBuf,
        /// Prepare pages at this preset's page size (the size `train --preset` uses).
        #[arg(long, value_enum)]
        pages: Option<Preset>,
        /// Splits whose pages are prepared, comma separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "train")]
        split: Vec<Split>,
        /// The page cache (default: $SCOREGEN_CACHE or ~/.cache/scoregen).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Decoding threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
    },
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
        DatasetAction::Prepare { root, pages, split, cache, threads } => {
            unpack(root)?;
            if let Some(preset) = pages {
                let cache = cache.clone().unwrap_or_else(default_cache_root);
                prepare_pages(root, *preset, split, &cache, *threads, quiet)?;
            }
        }
    }
    Ok(())
}

fn unpack(root: &Path) -> anyhow::Result<()> {
    for split in Split::ALL {
        let archive_path = root.join(format!("{}.tar.gz", split.name()));
        let target = root.join(split.name());
        if archive_path.is_file() && !target.join(archive::COMPLETE_MARKER).exists() {
            let done =
                archive::unpack(&archive_path, &target, hub::MAX_UNPACKED_BYTES, &mut |_| {})?;
            println!("{split}: unpacked {} files ({:.1} MB)", done.files, done.bytes as f64 / 1e6);
        }
    }
    Ok(())
}

fn prepare_pages(
    root: &Path,
    preset: Preset,
    splits: &[Split],
    cache_root: &Path,
    threads: Option<usize>,
    quiet: bool,
) -> anyhow::Result<()> {
    let (width, height) = preset.page_size();
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = threads {
        pool = pool.num_threads(threads);
    }
    let pool = pool.build().map_err(|e| Error::runtime(format!("worker threads: {e}")))?;
    let threads = pool.current_num_threads();
    let mut bad = 0;
    for &split in splits {
        let set = DataSet::open(root, split)?;
        let cache = PageCache::new(cache_root, &set, width, height);
        let bar = progress_bar(set.entries.len(), quiet);
        let mut unusable = 0;
        let start = Instant::now();
        let decoded = pool.install(|| {
            cache.load_each(&set.entries, |_, page| {
                if let Err(err) = page {
                    bar.suspend(|| println!("unusable {err}"));
                    unusable += 1;
                }
                bar.inc(1);
            })
        });
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        println!(
            "{split}: {} pages at {width}x{height} in {seconds:.2} s ({:.1} pages/s, {threads} \
             thread{}): {decoded} decoded, {} from the cache, {unusable} unusable",
            set.entries.len(),
            set.entries.len() as f64 / seconds.max(1e-9),
            if threads == 1 { "" } else { "s" },
            set.entries.len() - decoded - unusable,
        );
        bad += unusable;
    }
    if bad > 0 {
        return Err(Error::input(format!(
            "{bad} pages in {} cannot be used (listed above)",
            root.display()
        ))
        .into());
    }
    Ok(())
}

fn progress_bar(length: usize, quiet: bool) -> ProgressBar {
    if quiet { ProgressBar::hidden() } else { ProgressBar::new(length as u64) }
}

fn info(root: &Path) -> anyhow::Result<()> {
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

fn check(root: &Path, splits: &[Split], quiet: bool) -> anyhow::Result<()> {
    let mut bad = 0;
    let mut total = 0;
    for &split in splits {
        let set = DataSet::open(root, split)?;
        let bar = progress_bar(set.entries.len(), quiet);
        // Decoded on worker threads; each image is dropped there, only errors come back.
        map_ordered(
            &set.entries,
            |entry| decode(&entry.path).err(),
            |_, err| {
                total += 1;
                if let Some(err) = err {
                    // The list is what `check` is for: printed even with --quiet.
                    bar.suspend(|| println!("unusable {err}"));
                    bad += 1;
                }
                bar.inc(1);
            },
        );
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
