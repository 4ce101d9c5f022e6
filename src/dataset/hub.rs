//! Fetching MusicScore subsets from the Hugging Face hub with `hf-hub`, through its cache
//! (`$HF_HOME/hub`, laid out as `datasets--ZheqiDAI--MusicScore/{refs,snapshots}`), so a
//! subset fetched once works offline. `HF_HUB_OFFLINE=1` or `--offline` uses the cache
//! alone and names what is missing.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use super::archive::{self, COMPLETE_MARKER};
use super::layout::Split;
use crate::error::{Error, Result};

/// The data set's repository on the hub.
pub const REPOSITORY: &str = "ZheqiDAI/MusicScore";

/// Archives are refused past this many unpacked bytes (the 200k training split is 46 GB).
pub const MAX_UNPACKED_BYTES: u64 = 128 << 30;

/// The published subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Subset {
    /// 403 pages, plain image folders.
    #[value(name = "400")]
    S400,
    /// 14,656 pages, one archive per split.
    #[value(name = "14k")]
    S14k,
    /// 204,800 pages, one archive per split.
    #[value(name = "200k")]
    S200k,
}

impl Subset {
    /// The subset's folder in the repository (the 400 one is spelled so there).
    pub fn folder(self) -> &'static str {
        match self {
            Self::S400 => "MisicScore-400",
            Self::S14k => "MusicScore-14K",
            Self::S200k => "MusicScore-200k",
        }
    }
}

/// What to fetch and where.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The subset.
    pub subset: Subset,
    /// The splits wanted.
    pub splits: Vec<Split>,
    /// The hub cache folder (`$HF_HOME/hub` by default).
    pub cache: PathBuf,
    /// Use the cache only.
    pub offline: bool,
    /// Where the subset is laid out for training (archives unpacked there).
    pub out: PathBuf,
}

impl FetchOptions {
    /// Whether the environment asks for offline mode (`HF_HUB_OFFLINE` set to 1 or true).
    pub fn offline_from_env() -> bool {
        std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }

    /// The hub cache `hf-hub` itself would use.
    pub fn default_cache() -> PathBuf {
        Cache::from_env().path().clone()
    }
}

/// Progress of a fetch, for the command line to draw.
pub trait FetchProgress {
    /// A file is being taken from the cache or downloaded.
    fn file(&mut self, _name: &str, _index: usize, _total: usize) {}
    /// An archive is being unpacked; `bytes` written so far.
    fn unpacking(&mut self, _name: &str, _bytes: u64) {}
}

/// What a fetch produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The data set root in MusicScore layout, ready for [`super::DataSet::open`].
    pub root: PathBuf,
    /// Files taken from the repository.
    pub files: usize,
    /// Splits unpacked from archives by this call.
    pub unpacked: Vec<Split>,
}

/// Where the repository's files come from.
enum Source {
    Online(hf_hub::api::sync::ApiRepo),
    Offline(hf_hub::CacheRepo),
}

impl Source {
    /// The cached path of a repository file, downloading it if online.
    fn get(&self, name: &str) -> Result<Option<PathBuf>> {
        match self {
            Self::Online(api) => api.get(name).map(Some).map_err(|e| {
                Error::runtime(format!("{REPOSITORY}: could not fetch `{name}`: {e}"))
            }),
            Self::Offline(cache) => Ok(cache.get(name)),
        }
    }
}

/// The repository's file names under `folder/`, from the hub or from the cached snapshot.
fn list_files(options: &FetchOptions, source: &Source) -> Result<Vec<String>> {
    let prefix = format!("{}/", options.subset.folder());
    let names: Vec<String> = match source {
        Source::Online(api) => api
            .info()
            .map_err(|e| Error::runtime(format!("{REPOSITORY}: could not list files: {e}")))?
            .siblings
            .into_iter()
            .map(|s| s.rfilename)
            .collect(),
        Source::Offline(_) => cached_names(&options.cache, &prefix)?,
    };
    let mut names: Vec<String> = names.into_iter().filter(|n| n.starts_with(&prefix)).collect();
    names.sort();
    Ok(names)
}

/// File names in the cached snapshot of the `main` revision.
fn cached_names(cache: &Path, prefix: &str) -> Result<Vec<String>> {
    let repo = cache.join(Repo::new(REPOSITORY.to_string(), RepoType::Dataset).folder_name());
    let reference = repo.join("refs").join("main");
    let Ok(sha) = std::fs::read_to_string(&reference) else {
        return Err(Error::input(format!(
            "offline: {REPOSITORY} is not in the hub cache at {} (no {}); fetch it once online",
            cache.display(),
            reference.display()
        )));
    };
    let snapshot = repo.join("snapshots").join(sha.trim());
    let mut names = Vec::new();
    let mut stack = vec![snapshot.join(prefix.trim_end_matches('/'))];
    while let Some(folder) = stack.pop() {
        let Ok(items) = std::fs::read_dir(&folder) else { continue };
        for item in items {
            let path = item.map_err(|e| Error::io(&folder, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(&snapshot) {
                names.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(names)
}

/// Fetches a subset's metadata and splits and lays them out under `options.out`.
pub fn fetch(options: &FetchOptions, progress: &mut dyn FetchProgress) -> Result<Fetched> {
    let source = if options.offline {
        Source::Offline(Cache::new(options.cache.clone()).dataset(REPOSITORY.to_string()))
    } else {
        let api = hf_hub::api::sync::ApiBuilder::new()
            .with_cache_dir(options.cache.clone())
            .with_progress(false)
            .build()
            .map_err(|e| Error::runtime(format!("could not start the hub client: {e}")))?;
        Source::Online(api.dataset(REPOSITORY.to_string()))
    };
    let folder = options.subset.folder();
    let all = list_files(options, &source)?;
    let wanted: Vec<&String> = all
        .iter()
        .filter(|name| {
            let rest = &name[folder.len() + 1..];
            rest == "metadata.json"
                || options.splits.iter().any(|s| {
                    rest.starts_with(&format!("{}/", s.name()))
                        || rest == format!("{}.tar.gz", s.name())
                })
        })
        .collect();

    let root = options.out.join(folder);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let mut missing = Vec::new();
    let mut unpacked = Vec::new();
    for (i, name) in wanted.iter().enumerate() {
        progress.file(name, i, wanted.len());
        let Some(cached) = source.get(name)? else {
            missing.push(name.to_string());
            continue;
        };
        let relative = &name[folder.len() + 1..];
        if let Some(split) = relative.strip_suffix(".tar.gz") {
            let target = root.join(split);
            if target.join(COMPLETE_MARKER).exists() {
                continue;
            }
            archive::unpack(&cached, &target, MAX_UNPACKED_BYTES, &mut |bytes| {
                progress.unpacking(name, bytes)
            })?;
            unpacked.extend(Split::ALL.into_iter().find(|s| s.name() == split));
        } else {
            place(&cached, &root.join(relative))?;
        }
    }
    if !missing.is_empty() {
        return Err(Error::input(format!(
            "offline: {} of {} files of {folder} are not in the hub cache at {} (first: {}); fetch once without --offline",
            missing.len(),
            wanted.len(),
            options.cache.display(),
            missing[0]
        )));
    }
    if !wanted.iter().any(|n| n.ends_with("/metadata.json")) {
        tracing::warn!("{folder} has no metadata.json in {REPOSITORY}");
    }
    Ok(Fetched { root, files: wanted.len(), unpacked })
}

/// Puts a cached file at `target` (a copy; the hub cache keeps its own).
fn place(cached: &Path, target: &Path) -> Result<()> {
    if target.exists()
        && std::fs::metadata(target).map(|m| m.len()).ok()
            == std::fs::metadata(cached).map(|m| m.len()).ok()
    {
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let bytes = std::fs::read(cached).map_err(|e| Error::io(cached, e))?;
    crate::fsutil::write_atomic(target, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DataSet;
    use tar::EntryType;

    /// A hub cache laid out as `hf-hub` lays it out, holding two subsets.
    fn mirror() -> tempfile::TempDir {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("datasets--ZheqiDAI--MusicScore");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "abc123").unwrap();
        let snapshot = repo.join("snapshots").join("abc123");
        let small = snapshot.join("MisicScore-400");
        std::fs::create_dir_all(small.join("train")).unwrap();
        std::fs::create_dir_all(small.join("test")).unwrap();
        std::fs::write(
            small.join("metadata.json"),
            r#"{"IMSLP1": {"Key": "A major", "Instrumentation": "Piano"}}"#,
        )
        .unwrap();
        let page = crate::dataset::bundled_mini().join("train").join("M21W0001_1.png");
        std::fs::copy(&page, small.join("train").join("IMSLP1_1.png")).unwrap();
        std::fs::copy(&page, small.join("test").join("IMSLP2_1.png")).unwrap();
        let large = snapshot.join("MusicScore-14K");
        std::fs::create_dir_all(&large).unwrap();
        std::fs::write(large.join("metadata.json"), "{}").unwrap();
        let png = std::fs::read(&page).unwrap();
        archive::tests::archive(
            &large.join("train.tar.gz"),
            &[("IMSLP9_2.png", EntryType::Regular, &png)],
        );
        cache
    }

    fn options(cache: &Path, out: &Path, subset: Subset, splits: Vec<Split>) -> FetchOptions {
        FetchOptions {
            subset,
            splits,
            cache: cache.to_path_buf(),
            offline: true,
            out: out.to_path_buf(),
        }
    }

    #[test]
    fn offline_fetch_lays_out_plain_folders_from_the_cache() {
        let cache = mirror();
        let out = tempfile::tempdir().unwrap();
        let fetched = fetch(
            &options(cache.path(), out.path(), Subset::S400, vec![Split::Train]),
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!(
            fetched.files, 2,
            "metadata and one training page; the test split was not asked for"
        );
        let set = DataSet::open(&fetched.root, Split::Train).unwrap();
        assert_eq!(set.entries.len(), 1);
        assert_eq!(
            set.entries[0].caption,
            "a music score, instrumentation is piano, key is A major"
        );
        assert!(DataSet::open(&fetched.root, Split::Test).is_err());
    }

    #[test]
    fn archives_are_unpacked_once() {
        let cache = mirror();
        let out = tempfile::tempdir().unwrap();
        let options = options(cache.path(), out.path(), Subset::S14k, vec![Split::Train]);
        let first = fetch(&options, &mut NoProgress).unwrap();
        assert_eq!(first.unpacked, [Split::Train]);
        assert_eq!(DataSet::open(&first.root, Split::Train).unwrap().entries.len(), 1);
        let again = fetch(&options, &mut NoProgress).unwrap();
        assert!(again.unpacked.is_empty(), "a complete split is not unpacked again");
    }

    #[test]
    fn offline_without_the_files_names_what_is_missing() {
        let empty = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = fetch(
            &options(empty.path(), out.path(), Subset::S400, vec![Split::Train]),
            &mut NoProgress,
        )
        .unwrap_err();
        assert!(err.is_input() && err.to_string().contains("not in the hub cache"), "{err}");
    }

    struct NoProgress;

    impl FetchProgress for NoProgress {}
}
