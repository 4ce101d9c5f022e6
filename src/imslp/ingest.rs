//! Reading many IMSLP metadata files at once, the library side of `scoregen ingest`: files
//! and folders in, and for each file the works it gave or why it gave none.
//!
//! A folder is walked depth first and its files are read in sorted path order, so one tree
//! always gives the same output. Hidden entries (names starting with `.`, such as the
//! `.name.partial` files that [`crate::fsutil::write_atomic`] leaves while writing) are not
//! read, and symbolic links to folders are not followed, so a link cannot loop the walk.
//! A file named on its own is always read, whatever its name.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Form, LicenceFilter, WorkMetadata, read_file};
use crate::error::{Error, Result};

/// How inputs are read.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Read every file as this form; `None` detects the form of each file from its content.
    pub form: Option<Form>,
    /// Keep only editions this filter allows, and only works left with one; `None` keeps
    /// every work and edition.
    pub licences: Option<LicenceFilter>,
}

/// What one input file (or a folder that could not be walked) gave.
#[derive(Debug)]
pub struct InputReport {
    /// The file or folder.
    pub path: PathBuf,
    /// Its works, or why it has none.
    pub outcome: Outcome,
}

/// The result of reading one input.
#[derive(Debug)]
pub enum Outcome {
    /// The file was read as IMSLP metadata.
    Read {
        /// The works kept, in the file's order.
        works: Vec<WorkMetadata>,
        /// Works the licence filter left out, with the reason for each.
        left_out: Vec<LeftOut>,
    },
    /// Nothing could be read: the file is missing, unreadable, not UTF-8 or not IMSLP
    /// metadata, or the folder could not be listed or holds no file. The error names the
    /// path.
    Failed(Error),
}

/// A work the licence filter left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// Its title, where it has one.
    pub title: Option<String>,
    /// Why, e.g. `no edition under public-domain (editions: "Non-PD US")`.
    pub reason: String,
}

impl InputReport {
    /// The works kept from this input (none for a failed one).
    pub fn works(&self) -> &[WorkMetadata] {
        match &self.outcome {
            Outcome::Read { works, .. } => works,
            Outcome::Failed(_) => &[],
        }
    }
}

/// Reads every file named in `paths` or found under a folder named there, in order (see the
/// module docs for the walk), one report per file; a folder that cannot be listed, or holds
/// no file, gives one failed report of its own.
pub fn ingest<'a>(
    paths: &'a [PathBuf],
    options: &'a IngestOptions,
) -> impl Iterator<Item = InputReport> + 'a {
    paths.iter().flat_map(|path| inputs(path)).map(|(path, found)| match found {
        Ok(()) => read_input(path, options),
        Err(err) => InputReport { path, outcome: Outcome::Failed(err) },
    })
}

/// The files an argument stands for: itself, or the files under a folder. A folder that
/// cannot be listed is an `Err` in place of its files.
fn inputs(path: &Path) -> Vec<(PathBuf, Result<()>)> {
    if !path.is_dir() {
        return vec![(path.to_path_buf(), Ok(()))];
    }
    let mut found = Vec::new();
    walk(path, &mut found);
    if found.is_empty() {
        let err = Error::input(format!("{}: the folder holds no file to read", path.display()));
        found.push((path.to_path_buf(), Err(err)));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn walk(folder: &Path, found: &mut Vec<(PathBuf, Result<()>)>) {
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(err) => return found.push((folder.to_path_buf(), Err(Error::io(folder, err)))),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return found.push((folder.to_path_buf(), Err(Error::io(folder, err)))),
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // `file_type` does not follow links: a linked folder is neither walked nor read.
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => walk(&path, found),
            Ok(_) if path.is_file() => found.push((path, Ok(()))),
            Ok(_) => {}
            Err(err) => found.push((path.clone(), Err(Error::io(&path, err)))),
        }
    }
}

fn read_input(path: PathBuf, options: &IngestOptions) -> InputReport {
    let works = match read_file(&path, options.form) {
        Ok(works) => works,
        Err(err) => return InputReport { path, outcome: Outcome::Failed(err) },
    };
    let Some(filter) = &options.licences else {
        return InputReport { path, outcome: Outcome::Read { works, left_out: Vec::new() } };
    };
    let mut kept = Vec::new();
    let mut left_out = Vec::new();
    for work in works {
        let title = work.work_title.clone();
        match filter.apply(work) {
            Ok(work) => kept.push(work),
            Err(reason) => left_out.push(LeftOut { title, reason }),
        }
    }
    InputReport { path, outcome: Outcome::Read { works: kept, left_out } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::Licence;
    use crate::imslp::tests::{HTML, METADATA, WIKITEXT};

    fn names(reports: &[InputReport], root: &Path) -> Vec<String> {
        let relative = |r: &InputReport| r.path.strip_prefix(root).unwrap().display().to_string();
        reports.iter().map(relative).collect()
    }

    #[test]
    fn walks_folders_in_sorted_order_and_skips_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/inner")).unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("b/z.wikitext"), WIKITEXT).unwrap();
        fs::write(root.join("b/inner/m.html"), HTML).unwrap();
        fs::write(root.join("b/.out.jsonl.partial"), "half").unwrap();
        fs::write(root.join("a/notes.txt"), "a shopping list").unwrap();
        fs::write(root.join("records.json"), METADATA).unwrap();

        let paths = [root.to_path_buf(), root.join("empty"), root.join("missing.html")];
        let reports: Vec<_> = ingest(&paths, &IngestOptions::default()).collect();
        assert_eq!(
            names(&reports, root),
            [
                "a/notes.txt",
                "b/inner/m.html",
                "b/z.wikitext",
                "records.json",
                "empty",
                "missing.html"
            ]
        );
        let works: Vec<usize> = reports.iter().map(|r| r.works().len()).collect();
        assert_eq!(works, [0, 1, 1, 2, 0, 0]);
        let failure = |i: usize| match &reports[i].outcome {
            Outcome::Failed(err) => err.to_string(),
            Outcome::Read { .. } => panic!("{:?} was read", reports[i].path),
        };
        assert!(failure(0).contains("notes.txt") && failure(0).contains("not IMSLP"));
        assert!(failure(4).contains("holds no file"), "{}", failure(4));
        assert!(failure(5).contains("missing.html"), "{}", failure(5));
    }

    #[test]
    fn a_forced_form_reads_every_file_as_that_form() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.txt");
        fs::write(&page, WIKITEXT).unwrap();
        let as_html = IngestOptions { form: Some(Form::Html), ..IngestOptions::default() };
        let report = ingest(std::slice::from_ref(&page), &as_html).next().unwrap();
        match report.outcome {
            Outcome::Failed(err) => assert!(err.to_string().contains("div.wi_body"), "{err}"),
            Outcome::Read { .. } => panic!("wikitext read as HTML"),
        }
        let as_wiki = IngestOptions { form: Some(Form::Wikitext), ..IngestOptions::default() };
        let report = ingest(std::slice::from_ref(&page), &as_wiki).next().unwrap();
        assert_eq!(report.works()[0].key.as_deref(), Some("C major"));
    }

    #[test]
    fn the_licence_filter_drops_editions_and_reports_works_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let (page, records) = (dir.path().join("work.html"), dir.path().join("records.json"));
        fs::write(&page, HTML).unwrap();
        fs::write(&records, METADATA).unwrap();
        let filter = LicenceFilter::new(vec![Licence::PublicDomain]);
        let options = IngestOptions { licences: Some(filter), ..IngestOptions::default() };
        let reports: Vec<_> = ingest(&[page, records], &options).collect();

        let kept = &reports[0].works()[0];
        assert_eq!(kept.editions.len(), 1, "only the public-domain score of three files");
        assert_eq!(kept.editions[0].file_id.as_deref(), Some("913207"));
        // metadata.json records list no editions, so none can pass.
        let Outcome::Read { works, left_out } = &reports[1].outcome else { panic!() };
        assert!(works.is_empty());
        assert_eq!(left_out.len(), 2);
        assert_eq!(left_out[0].title.as_deref(), Some("String Quartet Op.76 No.3"));
        assert_eq!(left_out[0].reason, "no edition listed, so none under public-domain");
    }
}
