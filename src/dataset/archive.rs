//! Unpacking `.tar.gz` splits safely. Archives from the internet are untrusted: entries
//! with absolute paths, `..`, links or device nodes are refused, the unpacked size is
//! capped (a gzip bomb stops at the cap, whether it holds a few huge files or millions of
//! empty ones), and a split appears only complete: it is unpacked into a hidden folder,
//! marked, then renamed into place.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::error::{Error, Result};

/// Written last into a split unpacked from an archive.
pub const COMPLETE_MARKER: &str = ".complete";

/// What each entry costs against the size cap beyond its data: the size of a tar header.
/// Without it an archive of millions of empty files or folders would unpack under any cap.
pub const ENTRY_COST: u64 = 512;

/// What an unpack did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// The relative path an entry may be written to, or why it may not.
fn safe_path(raw: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut clean = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("a `..` component"),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path"),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err("an empty path");
    }
    Ok(clean)
}

/// Unpacks `archive` (tar, gzip-compressed) into `target`, which must not exist yet.
/// At most `max_bytes` are written, counting [`ENTRY_COST`] per entry on top of the file
/// data; `progress` is told the file bytes written so far.
pub fn unpack(
    archive: &Path,
    target: &Path,
    max_bytes: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Unpacked> {
    if target.exists() {
        return Err(Error::input(format!(
            "{}: already exists; not unpacking over it",
            target.display()
        )));
    }
    crate::fsutil::publish_dir(target, |partial| {
        let done = unpack_into(archive, partial, max_bytes, progress)?;
        let marker = partial.join(COMPLETE_MARKER);
        fs::write(&marker, b"").map_err(|e| Error::io(&marker, e))?;
        Ok(done)
    })
}

fn unpack_into(
    archive: &Path,
    root: &Path,
    max_bytes: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Unpacked> {
    let file = fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let bad = |what: String| Error::input(format!("{}: {what}", archive.display()));
    let mut done = Unpacked::default();
    let mut headers = 0u64;
    let entries = tar.entries().map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("damaged archive: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| bad(format!("entry with an unreadable name: {e}")))?
            .into_owned();
        headers += 1;
        let used = done.bytes.saturating_add(headers.saturating_mul(ENTRY_COST));
        let too_big = || {
            bad(format!(
                "unpacks to more than {max_bytes} bytes (file data plus {ENTRY_COST} per \
                 entry); stopped at `{}`",
                raw.display()
            ))
        };
        if used > max_bytes {
            return Err(too_big());
        }
        let kind = entry.header().entry_type();
        let relative = safe_path(&raw).map_err(|why| {
            bad(format!("entry `{}` has {why}; refusing to unpack", raw.display()))
        })?;
        let destination = root.join(&relative);
        // Everything is written inside a folder made for this unpack, so a file that
        // cannot be created there clashes with an earlier entry (a file where a folder
        // is wanted, or the reverse): the archive's fault, not the disk's.
        let create_error = |path: &Path, e: io::Error| {
            use io::ErrorKind::{AlreadyExists, IsADirectory, NotADirectory};
            if matches!(e.kind(), AlreadyExists | IsADirectory | NotADirectory) {
                bad(format!("entry `{}` clashes with an earlier entry: {e}", raw.display()))
            } else {
                Error::io(path, e)
            }
        };
        match kind {
            EntryType::Directory => {
                fs::create_dir_all(&destination).map_err(|e| create_error(&destination, e))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = destination.parent() {
                    fs::create_dir_all(parent).map_err(|e| create_error(parent, e))?;
                }
                let budget = max_bytes - used;
                let mut out =
                    fs::File::create(&destination).map_err(|e| create_error(&destination, e))?;
                let written = io::copy(&mut (&mut entry).take(budget + 1), &mut out)
                    .map_err(|e| bad(format!("entry `{}`: {e}", raw.display())))?;
                if written > budget {
                    return Err(too_big());
                }
                done.bytes += written;
                done.files += 1;
                progress(done.bytes);
            }
            // PAX and GNU extension headers carry metadata for the next entry.
            EntryType::XHeader | EntryType::XGlobalHeader | EntryType::GNULongName => {}
            other => {
                return Err(bad(format!(
                    "entry `{}` is a {other:?}, not a file or folder; refusing to unpack",
                    raw.display()
                )));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tar.gz with `(name, kind, data)` entries; names are written raw, so hostile
    /// ones are possible.
    pub fn archive(path: &Path, entries: &[(&str, EntryType, &[u8])]) {
        let file = fs::File::create(path).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if *kind == EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn unpacks_files_and_marks_the_split_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.tar.gz");
        archive(
            &path,
            &[
                ("train/", EntryType::Directory, b""),
                ("train/A_1.png", EntryType::Regular, b"png!"),
                ("./B_2.png", EntryType::Regular, b"xy"),
            ],
        );
        let target = dir.path().join("out").join("train");
        let done = unpack(&path, &target, 1 << 20, &mut |_| {}).unwrap();
        assert_eq!(done, Unpacked { files: 2, bytes: 6 });
        assert_eq!(fs::read(target.join("train/A_1.png")).unwrap(), b"png!");
        assert_eq!(fs::read(target.join("B_2.png")).unwrap(), b"xy");
        assert!(target.join(COMPLETE_MARKER).exists());
        assert!(
            unpack(&path, &target, 1 << 20, &mut |_| {})
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
    }

    #[test]
    fn hostile_entries_are_refused_and_leave_nothing() {
        let cases: [(&str, EntryType, &str); 5] = [
            ("../evil.png", EntryType::Regular, "`..`"),
            ("/tmp/evil.png", EntryType::Regular, "absolute path"),
            ("link.png", EntryType::Symlink, "Symlink"),
            ("dev", EntryType::Char, "Char"),
            ("fifo", EntryType::Fifo, "Fifo"),
        ];
        for (name, kind, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("val.tar.gz");
            archive(&path, &[("ok.png", EntryType::Regular, b"fine"), (name, kind, b"")]);
            let target = dir.path().join("val");
            let err = unpack(&path, &target, 1 << 20, &mut |_| {}).unwrap_err();
            let text = err.to_string();
            assert!(
                err.is_input() && text.contains(name) && text.contains(expected),
                "{name}: {text}"
            );
            assert!(
                !target.exists() && !dir.path().join(".val.partial").exists(),
                "{name}: debris left"
            );
        }
    }

    #[test]
    fn entries_that_clash_are_input_errors_and_leave_nothing() {
        let cases: [&[(&str, EntryType, &[u8])]; 3] = [
            &[("a", EntryType::Regular, b"x"), ("a/b.png", EntryType::Regular, b"y")],
            &[("a", EntryType::Regular, b"x"), ("a", EntryType::Directory, b"")],
            &[("a", EntryType::Directory, b""), ("a", EntryType::Regular, b"y")],
        ];
        for entries in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("train.tar.gz");
            archive(&path, entries);
            let err = unpack(&path, &dir.path().join("train"), 1 << 20, &mut |_| {}).unwrap_err();
            assert!(err.is_input() && err.to_string().contains("clashes"), "{err}");
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "only the archive is left");
        }
    }

    #[test]
    fn many_empty_entries_count_against_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.tar.gz");
        let names: Vec<String> = (0..100).map(|i| format!("{i}.png")).collect();
        let entries: Vec<(&str, EntryType, &[u8])> =
            names.iter().map(|n| (n.as_str(), EntryType::Regular, &b""[..])).collect();
        archive(&path, &entries);
        // 100 headers cost 51 200 bytes: one cap below that fails, one at it passes.
        let err = unpack(&path, &dir.path().join("a"), 100 * ENTRY_COST - 1, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("stopped at `99.png`"), "{err}");
        let done = unpack(&path, &dir.path().join("b"), 100 * ENTRY_COST, &mut |_| {}).unwrap();
        assert_eq!(done, Unpacked { files: 100, bytes: 0 });
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.tar.gz");
        let zeros = vec![0u8; 4 << 20];
        archive(
            &path,
            &[("a.png", EntryType::Regular, &zeros), ("b.png", EntryType::Regular, &zeros)],
        );
        assert!(fs::metadata(&path).unwrap().len() < 100_000, "compresses well");
        let err =
            unpack(&path, &dir.path().join("test"), 6 << 20, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("more than 6291456 bytes") && err.contains("b.png"), "{err}");
        let err = unpack(&dir.path().join("none.tar.gz"), &dir.path().join("x"), 1, &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("none.tar.gz"));
    }
}
