//! File-system helpers: writes that never leave a half-written file or folder behind, and
//! folder creation that says plainly when the way is blocked by a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name a file is written under before it is renamed into place.
pub fn temporary_path(path: &Path) -> PathBuf {
    hidden_sibling(path, "partial")
}

/// `.NAME.SUFFIX` beside `path`.
fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, then renames it
/// over `path`: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temporary);
        Error::io(path, e)
    })
}

/// Creates `path` and its missing parents. Where a file stands in the way (`--out notes.txt/pages`,
/// or `--out notes.txt` for a folder) the error is an input error that names that file; the
/// operating system's own answer there is an unhelpful "File exists" or "Not a directory".
pub fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| match path.ancestors().find(|a| a.exists()) {
        Some(blocker) if !blocker.is_dir() => Error::input(format!(
            "{}: cannot create this folder: {} is a file, not a folder",
            path.display(),
            blocker.display()
        )),
        _ => Error::io(path, e),
    })
}

/// Builds the folder `target` whole or not at all: `fill` writes into a hidden sibling
/// (`.NAME.partial`), which is renamed to `target` only once `fill` succeeds and removed
/// if it fails, so a reader never finds a half-written folder under the real name. A
/// partial folder left by a killed process is cleared first. An existing `target` is
/// replaced only once the new folder is whole (see [`replace_dir`]).
pub fn publish_dir<T>(target: &Path, fill: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let partial = temporary_path(target);
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    create_dir_all(&partial)?;
    let result = fill(&partial).and_then(|value| replace_dir(&partial, target).map(|()| value));
    if result.is_err() {
        // The error being returned is the one worth reporting; a failure to tidy up
        // would only hide it, and the next attempt clears the folder anyway.
        let _ = fs::remove_dir_all(&partial);
    }
    result
}

/// Renames the folder `new` to `target`. An existing `target` steps aside to a hidden
/// `.NAME.old` first and is deleted after the new folder has taken its name; should that
/// rename fail, the old folder is put back. A killed process leaves at most a hidden folder
/// behind, never a half-deleted one under the real name.
fn replace_dir(new: &Path, target: &Path) -> Result<()> {
    if !target.exists() {
        return fs::rename(new, target).map_err(|e| Error::io(target, e));
    }
    let old = hidden_sibling(target, "old");
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
    if let Err(e) = fs::rename(new, target) {
        // The rename's error is the one worth reporting.
        let _ = fs::rename(&old, target);
        return Err(Error::io(target, e));
    }
    fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))
}

/// Removes the folder `path` so that it vanishes from its real name at once: it is renamed
/// to its hidden temporary name (see [`temporary_path`]) and removed from there. A process
/// killed midway leaves a hidden `.NAME.partial` folder, which [`publish_dir`] clears, never
/// a half-emptied folder under the real name that a reader would take for a whole one.
pub fn remove_dir_atomic(path: &Path) -> Result<()> {
    let hidden = temporary_path(path);
    if hidden.exists() {
        fs::remove_dir_all(&hidden).map_err(|e| Error::io(&hidden, e))?;
    }
    fs::rename(path, &hidden).map_err(|e| Error::io(path, e))?;
    fs::remove_dir_all(&hidden).map_err(|e| Error::io(&hidden, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!temporary_path(&path).exists());
        let err = write_atomic(&dir.path().join("missing/a.json"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing/a.json"), "{err}");
    }

    #[test]
    fn a_file_in_the_way_of_a_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        fs::write(&file, b"x").unwrap();
        for path in [file.clone(), file.join("pages"), file.join("a/b")] {
            let err = create_dir_all(&path).unwrap_err();
            let text = err.to_string();
            assert!(err.is_input(), "{text}");
            assert!(text.contains(&format!("{} is a file", file.display())), "{text}");
        }
        create_dir_all(&dir.path().join("a/b")).unwrap();
        assert!(dir.path().join("a/b").is_dir());
    }

    #[test]
    fn an_atomic_removal_takes_the_name_away_first() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("step-00000002");
        fs::create_dir_all(folder.join("inner")).unwrap();
        fs::write(folder.join("inner/a.bin"), b"a").unwrap();
        // What a removal killed midway left last time is cleared too.
        fs::create_dir(temporary_path(&folder)).unwrap();
        fs::write(temporary_path(&folder).join("stale"), b"x").unwrap();
        remove_dir_atomic(&folder).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let err = remove_dir_atomic(&folder).unwrap_err();
        assert!(err.to_string().contains("step-00000002"), "{err}");
    }

    #[test]
    fn a_published_folder_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("split");
        let err = publish_dir(&target, |partial| {
            fs::write(partial.join("a.png"), b"a").unwrap();
            Err::<(), _>(Error::runtime("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");

        // A partial folder from a killed run is cleared, not merged into the new one.
        fs::create_dir(temporary_path(&target)).unwrap();
        fs::write(temporary_path(&target).join("stale.png"), b"old").unwrap();
        let files = publish_dir(&target, |partial| {
            fs::write(partial.join("b.png"), b"b").map_err(|e| Error::io(partial, e))?;
            Ok(fs::read_dir(partial).unwrap().count())
        })
        .unwrap();
        assert_eq!(files, 1);
        assert_eq!(fs::read(target.join("b.png")).unwrap(), b"b");
        assert!(!temporary_path(&target).exists());

        // Over an existing folder: a failed fill leaves it as it was, a whole one replaces it.
        let err = publish_dir(&target, |_| Err::<(), _>(Error::runtime("disk full"))).unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(fs::read(target.join("b.png")).unwrap(), b"b");
        publish_dir(&target, |partial| {
            fs::write(partial.join("c.png"), b"c").map_err(|e| Error::io(partial, e))
        })
        .unwrap();
        assert!(!target.join("b.png").exists());
        assert_eq!(fs::read(target.join("c.png")).unwrap(), b"c");
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["split"], "no temporary or old folder left");
    }
}
