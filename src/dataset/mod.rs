//! MusicScore data (Lin, Dai and Kong 2024, arXiv 2406.11462) as scoregen reads it: the
//! published folder layout and `metadata.json`, captions, page preprocessing at the
//! page's own aspect, crops for patch training, and an on-disk cache of prepared pages.

pub mod archive;
pub mod cache;
pub mod caption;
pub mod hub;
pub mod items;
pub mod layout;
pub mod metadata;
pub mod page;
pub mod parallel;
pub mod stats;

pub use cache::{PageCache, default_cache_root};
pub use items::{PageDataset, PageItem};
pub use layout::{DataSet, Entry, Split, bundled_mini};
pub use metadata::Metadata;
pub use page::{Crop, PreparedPage};
pub use stats::{SplitStats, Spread};
