//! The MusicScore layout on disk (and any user folder in the same layout):
//!
//! ```text
//! ROOT/metadata.json        one record of IMSLP fields per work
//! ROOT/{train,val,test}/    page images named WORKID_PAGE.{jpg,png}
//! ```
//!
//! Each image is matched to its work by the id before the last underscore of its file name
//! (`IMSLP913207_11.jpg` is page 11 of `IMSLP913207`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::caption::caption;
use super::metadata::Metadata;
use crate::error::{Error, Result};

/// A split of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training pages.
    Train,
    /// Validation pages.
    Val,
    /// Test pages.
    Test,
}

impl Split {
    /// Every split, in the order MusicScore lists them.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The folder (and archive stem) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One page image with what is known of its work.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The image file.
    pub path: PathBuf,
    /// The work (IMSLP file) id from the file name.
    pub work_id: String,
    /// The page number from the file name, where it has one.
    pub page: Option<u32>,
    /// The caption built from the work's metadata (`"a music score"` where there is none).
    pub caption: String,
    /// Whether the work has a metadata record.
    pub has_metadata: bool,
}

/// One split of a data set, scanned.
#[derive(Clone, Debug)]
pub struct DataSet {
    /// The data set's root folder.
    pub root: PathBuf,
    /// The split.
    pub split: Split,
    /// Its pages, sorted by file name.
    pub entries: Vec<Entry>,
    /// Files in the split folder that are not page images, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Image file extensions a split may hold.
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

impl DataSet {
    /// Scans `root/<split>/` and matches its images against `root/metadata.json`.
    pub fn open(root: &Path, split: Split) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::input(format!("{}: no such data set folder", root.display())));
        }
        let metadata_path = root.join("metadata.json");
        let metadata = if metadata_path.exists() {
            Metadata::load(&metadata_path)?
        } else {
            tracing::warn!("{}: no metadata.json; every caption will be bare", root.display());
            Metadata::default()
        };
        let folder = root.join(split.name());
        if !folder.is_dir() {
            let archive = root.join(format!("{}.tar.gz", split.name()));
            let hint = if archive.exists() {
                format!(" ({} is still packed: run `scoregen dataset prepare`)", archive.display())
            } else {
                String::new()
            };
            return Err(Error::input(format!("{}: no such split folder{hint}", folder.display())));
        }
        let (images, skipped) = list_images(&folder)?;
        let entries = images.into_iter().map(|path| entry(path, &metadata)).collect();
        Ok(Self { root: root.to_path_buf(), split, entries, skipped })
    }

    /// Pages whose work has no metadata record.
    pub fn without_metadata(&self) -> usize {
        self.entries.iter().filter(|e| !e.has_metadata).count()
    }
}

/// Files that are not pages, with the reason.
type Skipped = Vec<(PathBuf, String)>;

fn list_images(folder: &Path) -> Result<(Vec<PathBuf>, Skipped)> {
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for item in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let item = item.map_err(|e| Error::io(folder, e))?;
        let path = item.path();
        let file_type = item.file_type().map_err(|e| Error::io(&path, e))?;
        let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase());
        let is_image = extension.as_deref().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e));
        if !file_type.is_file() {
            if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                skipped.push((path, "not a regular file".to_string()));
            }
        } else if is_image {
            images.push(path);
        } else if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            skipped.push((path, "not a .jpg, .jpeg or .png file".to_string()));
        }
    }
    images.sort();
    skipped.sort();
    Ok((images, skipped))
}

fn entry(path: PathBuf, metadata: &Metadata) -> Entry {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (work_id, page) = match stem.rsplit_once('_') {
        Some((id, page)) if page.parse::<u32>().is_ok() => (id.to_string(), page.parse().ok()),
        _ => (stem.clone(), None),
    };
    let fields = metadata.get(&work_id);
    Entry {
        caption: fields.map(caption).unwrap_or_else(|| "a music score".to_string()),
        has_metadata: fields.is_some(),
        work_id,
        page,
        path,
    }
}

/// The data set bundled with scoregen: real engraved pages with exact staff labels.
pub fn bundled_mini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets").join("musicscore-mini")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_set_matches_every_page_to_its_work() {
        let train = DataSet::open(&bundled_mini(), Split::Train).unwrap();
        assert_eq!(train.entries.len(), 261);
        assert_eq!(train.without_metadata(), 0);
        assert!(train.skipped.is_empty(), "{:?}", train.skipped);
        let first = &train.entries[0];
        assert_eq!((first.work_id.as_str(), first.page), ("M21W0001", Some(1)));
        assert_eq!(
            first.caption,
            "a music score, key is D major, composer is Traditional, genre is folk tunes"
        );
        assert_eq!(DataSet::open(&bundled_mini(), Split::Val).unwrap().entries.len(), 32);
    }

    #[test]
    fn unmatched_images_and_stray_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("train")).unwrap();
        std::fs::write(dir.path().join("metadata.json"), r#"{"W1": {"Key": "C major"}}"#).unwrap();
        for name in ["W1_1.png", "W2_3.jpg", "notes.txt"] {
            std::fs::write(dir.path().join("train").join(name), b"").unwrap();
        }
        let set = DataSet::open(dir.path(), Split::Train).unwrap();
        assert_eq!(set.entries.len(), 2);
        assert_eq!(set.entries[0].caption, "a music score, key is C major");
        assert_eq!(set.entries[1].caption, "a music score");
        assert_eq!(set.without_metadata(), 1);
        assert_eq!(set.skipped.len(), 1);
        assert!(set.skipped[0].0.ends_with("notes.txt"));
    }

    #[test]
    fn a_missing_or_packed_split_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("val.tar.gz"), b"").unwrap();
        let err = DataSet::open(dir.path(), Split::Val).unwrap_err().to_string();
        assert!(err.contains("val") && err.contains("scoregen dataset prepare"), "{err}");
        let err = DataSet::open(&dir.path().join("nope"), Split::Val).unwrap_err();
        assert!(err.is_input() && err.to_string().contains("nope"));
    }
}
