//! One split of a data set as a Burn [`Dataset`], for code that loads data through Burn's
//! `DataLoader` rather than scoregen's own training batcher. Items are prepared pages
//! (fitted to one size, through the on-disk page cache) with their work id and caption.

use burn::data::dataset::{Dataset, DatasetError};

use super::cache::PageCache;
use super::layout::{DataSet, Entry};
use super::page::PreparedPage;

/// One page of the data set.
#[derive(Clone, Debug, PartialEq)]
pub struct PageItem {
    /// The work (IMSLP file) id from the image's file name.
    pub id: String,
    /// The page number from the file name, where it has one.
    pub page_number: Option<u32>,
    /// The caption built from the work's metadata.
    pub caption: String,
    /// The page, fitted to the cache's size.
    pub page: PreparedPage,
}

/// The pages of one split, in the layout reader's order (sorted by file name).
#[derive(Clone, Debug)]
pub struct PageDataset {
    entries: Vec<Entry>,
    cache: PageCache,
}

impl PageDataset {
    /// Every page of `set`, prepared through `cache` when first asked for.
    pub fn new(set: &DataSet, cache: PageCache) -> Self {
        Self { entries: set.entries.clone(), cache }
    }

    /// The entry behind item `index`.
    pub fn entry(&self, index: usize) -> &Entry {
        &self.entries[index]
    }
}

impl Dataset<PageItem> for PageDataset {
    /// The page at `index`. A page that cannot be used is an error whose source is the
    /// [`crate::Error`] naming the file (an input error for an unusable image).
    ///
    /// Panics when `index >= len()`, as Burn's trait asks.
    fn get(&self, index: usize) -> Result<PageItem, DatasetError> {
        let entry = &self.entries[index];
        let page = self.cache.load(entry).map_err(DatasetError::new)?;
        Ok(PageItem {
            id: entry.work_id.clone(),
            page_number: entry.page,
            caption: entry.caption.clone(),
            page,
        })
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::dataset::{Split, bundled_mini};

    #[test]
    fn items_follow_the_layout_reader_and_the_file_names() {
        let set = DataSet::open(&bundled_mini(), Split::Val).unwrap();
        let cache_root = tempfile::tempdir().unwrap();
        let dataset = PageDataset::new(&set, PageCache::new(cache_root.path(), &set, 32, 48));
        assert_eq!(dataset.len(), set.entries.len());
        assert_eq!(dataset.len(), 32);
        for (index, entry) in set.entries.iter().enumerate() {
            let item = dataset.get(index).unwrap();
            // The id and page number as the file name spells them: `<ID>_<page>.png`.
            let name = entry.path.file_name().unwrap().to_string_lossy().into_owned();
            let page_number = item.page_number.unwrap();
            assert_eq!(format!("{}_{page_number}.png", item.id), name);
            assert!(item.id.starts_with("M21W"), "{}", item.id);
            assert_eq!(item.caption, entry.caption);
            assert_eq!((item.page.width, item.page.height), (32, 48));
        }
        // Items by Burn's iterator come in the same order.
        let ids: Vec<String> = dataset.iter().map(|item| item.unwrap().id).collect();
        let expected: Vec<String> = set.entries.iter().map(|e| e.work_id.clone()).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn an_unusable_page_is_a_typed_error_naming_the_file() {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join("test")).unwrap();
        std::fs::write(data.path().join("test").join("IMSLP913207_11.png"), b"").unwrap();
        let set = DataSet::open(data.path(), Split::Test).unwrap();
        let cache_root = tempfile::tempdir().unwrap();
        let dataset = PageDataset::new(&set, PageCache::new(cache_root.path(), &set, 32, 48));
        assert_eq!(dataset.entry(0).work_id, "IMSLP913207");
        let err = dataset.get(0).unwrap_err();
        let source = err.source().and_then(|s| s.downcast_ref::<crate::Error>()).unwrap();
        assert!(source.is_input(), "{source}");
        assert!(err.to_string().contains("IMSLP913207_11.png: empty file"), "{err}");
    }
}
