//! An on-disk cache of prepared pages, so that only the first epoch decodes and resizes
//! JPEGs. One file per page and size, checked against the source file's length and
//! modification time and rebuilt when either changes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::layout::{DataSet, Entry};
use super::page::{PreparedPage, decode, fit};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

const MAGIC: &[u8; 4] = b"SGP1";
const HEADER: usize = 4 + 4 + 4 + 8 + 8;

/// Where prepared pages live: `$SCOREGEN_CACHE`, else `$HOME/.cache/scoregen`.
pub fn default_cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCOREGEN_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("scoregen")
}

/// Prepared pages of one data set at one size.
#[derive(Clone, Debug)]
pub struct PageCache {
    folder: PathBuf,
    width: usize,
    height: usize,
}

/// The source file's identity as the cache records it.
fn stamp(path: &Path) -> Result<(u64, u64)> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Ok((meta.len(), modified))
}

/// FNV-1a: a hash that is the same in every build, so cache folders stay valid.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl PageCache {
    /// The cache of `set` at `width` x `height` under `root`.
    pub fn new(root: &Path, set: &DataSet, width: usize, height: usize) -> Self {
        let source = fs::canonicalize(&set.root).unwrap_or_else(|_| set.root.clone());
        let key = format!("{:016x}", stable_hash(&source.to_string_lossy()));
        let folder =
            root.join("pages").join(key).join(format!("{width}x{height}")).join(set.split.name());
        Self { folder, width, height }
    }

    fn file(&self, entry: &Entry) -> PathBuf {
        let name =
            entry.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        self.folder.join(format!("{name}.gray"))
    }

    /// The prepared page, from the cache or made (and cached) now.
    pub fn load(&self, entry: &Entry) -> Result<PreparedPage> {
        let (length, modified) = stamp(&entry.path)?;
        let file = self.file(entry);
        if let Some(page) = self.read(&file, length, modified) {
            return Ok(page);
        }
        let image = fit(&decode(&entry.path)?, self.width as u32, self.height as u32);
        let page = PreparedPage::from_image(&image);
        fs::create_dir_all(&self.folder).map_err(|e| Error::io(&self.folder, e))?;
        let mut bytes = Vec::with_capacity(HEADER + page.pixels.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.width as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.height as u32).to_le_bytes());
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(&modified.to_le_bytes());
        bytes.extend_from_slice(&page.pixels);
        write_atomic(&file, &bytes)?;
        Ok(page)
    }

    /// A cached page, or `None` when there is none or it is stale or damaged.
    fn read(&self, file: &Path, length: u64, modified: u64) -> Option<PreparedPage> {
        let mut bytes = Vec::new();
        fs::File::open(file).ok()?.read_to_end(&mut bytes).ok()?;
        let expected = HEADER + self.width * self.height;
        if bytes.len() != expected || &bytes[..4] != MAGIC {
            return None;
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let long = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let fresh = word(4) as usize == self.width
            && word(8) as usize == self.height
            && long(12) == length
            && long(20) == modified;
        fresh.then(|| PreparedPage {
            width: self.width,
            height: self.height,
            pixels: bytes[HEADER..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Split;
    use image::{GrayImage, Luma};

    #[test]
    fn second_load_comes_from_the_cache_and_edits_invalidate_it() {
        let data = tempfile::tempdir().unwrap();
        let cache_root = tempfile::tempdir().unwrap();
        fs::create_dir(data.path().join("train")).unwrap();
        let image_path = data.path().join("train").join("W_1.png");
        GrayImage::from_pixel(32, 32, Luma([0])).save(&image_path).unwrap();
        let set = DataSet::open(data.path(), Split::Train).unwrap();
        let cache = PageCache::new(cache_root.path(), &set, 4, 4);
        let first = cache.load(&set.entries[0]).unwrap();
        assert_eq!(first.pixels, vec![0; 16]);
        // Tamper with the cached pixels: a fresh stamp means the cache is trusted.
        let file = cache.file(&set.entries[0]);
        let mut bytes = fs::read(&file).unwrap();
        bytes[HEADER] = 77;
        fs::write(&file, &bytes).unwrap();
        assert_eq!(cache.load(&set.entries[0]).unwrap().pixels[0], 77);
        // Replace the source with a different size: the stamp changes and the page is rebuilt.
        GrayImage::from_pixel(32, 16, Luma([0])).save(&image_path).unwrap();
        let rebuilt = cache.load(&set.entries[0]).unwrap();
        assert_eq!(rebuilt.pixels[0], 255, "a 32x16 page fitted to 4x4 has white padding on top");
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
