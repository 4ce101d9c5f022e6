//! An on-disk cache of prepared pages, so that only the first epoch decodes and resizes
//! JPEGs. One file per page and size, checked against the source file's length and
//! modification time and rebuilt when either changes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::layout::{DataSet, Entry};
use super::page::{PreparedPage, decode, fit};
use super::parallel::map_ordered;
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
        self.load_or_make(entry).map(|(page, _)| page)
    }

    /// Prepares every page of `entries` on the current rayon pool (one worker per core
    /// unless called inside [`rayon::ThreadPool::install`]) and hands each result to `each`
    /// with its index, in the entries' order, on the calling thread. Returns how many pages
    /// were decoded rather than read from the cache.
    pub fn load_each(
        &self,
        entries: &[Entry],
        mut each: impl FnMut(usize, Result<PreparedPage>),
    ) -> usize {
        let mut decoded = 0;
        map_ordered(
            entries,
            |entry| self.load_or_make(entry),
            |i, result| {
                let result = result.map(|(page, made)| {
                    decoded += usize::from(made);
                    page
                });
                each(i, result);
            },
        );
        decoded
    }

    /// The prepared page, and whether it was made now (not read from the cache).
    fn load_or_make(&self, entry: &Entry) -> Result<(PreparedPage, bool)> {
        let (length, modified) = stamp(&entry.path)?;
        let file = self.file(entry);
        if let Some(page) = self.read(&file, length, modified) {
            return Ok((page, false));
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
        Ok((page, true))
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

    /// Every page of the first `count` of the bundled set's validation split, prepared at
    /// 64x90 with a fresh cache on a pool of `threads` threads: indices and results.
    fn prepare_val(count: usize, threads: usize) -> (Vec<usize>, Vec<PreparedPage>, usize) {
        let mut set = DataSet::open(&crate::dataset::bundled_mini(), Split::Val).unwrap();
        set.entries.truncate(count);
        let cache_root = tempfile::tempdir().unwrap();
        let cache = PageCache::new(cache_root.path(), &set, 64, 90);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut indices = Vec::new();
        let mut pages = Vec::new();
        let decoded = pool.install(|| {
            cache.load_each(&set.entries, |i, page| {
                indices.push(i);
                pages.push(page.unwrap());
            })
        });
        // A second pass reads every page back from the cache.
        assert_eq!(pool.install(|| cache.load_each(&set.entries, |_, _| {})), 0);
        (indices, pages, decoded)
    }

    #[test]
    fn parallel_preparation_gives_the_sequential_pages_in_order() {
        let (sequential_indices, sequential, decoded) = prepare_val(20, 1);
        let (parallel_indices, parallel, _) = prepare_val(20, 4);
        assert_eq!(decoded, 20);
        assert_eq!(sequential_indices, (0..20).collect::<Vec<_>>());
        assert_eq!(parallel_indices, sequential_indices);
        assert_eq!(parallel, sequential);
        // The pages differ from one another, so a change of order could not go unseen.
        assert!(sequential.windows(2).all(|pair| pair[0] != pair[1]));
        // And each is the page decoded and fitted directly, one at a time.
        let set = DataSet::open(&crate::dataset::bundled_mini(), Split::Val).unwrap();
        for (entry, page) in set.entries.iter().zip(&sequential) {
            let direct = PreparedPage::from_image(&fit(&decode(&entry.path).unwrap(), 64, 90));
            assert_eq!(&direct, page, "{}", entry.path.display());
        }
    }

    #[test]
    fn unusable_pages_keep_their_place_among_the_results() {
        let data = tempfile::tempdir().unwrap();
        let cache_root = tempfile::tempdir().unwrap();
        fs::create_dir(data.path().join("train")).unwrap();
        for (name, shade) in [("A_1.png", 10), ("C_1.png", 30)] {
            GrayImage::from_pixel(32, 32, Luma([shade]))
                .save(data.path().join("train").join(name))
                .unwrap();
        }
        fs::write(data.path().join("train").join("B_1.png"), b"").unwrap();
        let set = DataSet::open(data.path(), Split::Train).unwrap();
        let cache = PageCache::new(cache_root.path(), &set, 4, 4);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut results = Vec::new();
        pool.install(|| cache.load_each(&set.entries, |i, r| results.push((i, r))));
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].1.as_ref().unwrap().pixels[0], 10);
        assert!(results[1].1.as_ref().unwrap_err().to_string().contains("B_1.png: empty file"));
        assert_eq!(results[2].1.as_ref().unwrap().pixels[0], 30);
    }
}
