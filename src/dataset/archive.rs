//! Unpacking `.tar.gz` splits safely. Archives from the internet are untrusted: entries
//! with absolute paths, `..`, links or device nodes are refused, the unpacked size is
//! capped (a gzip bomb stops at the cap), and a split appears only complete: it is
//! unpacked into a hidden folder, marked, then renamed into place.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::error::{Error, Result};

/// Written last into a split unpacked from an archive.
pub const COMPLETE_MARKER: &str = ".complete";

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
/// At most `max_bytes` are written; `progress` is told the bytes written so far.
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
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = target.with_file_name(format!(".{name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    match unpack_into(archive, &partial, max_bytes, progress) {
        Ok(done) => {
            fs::write(partial.join(COMPLETE_MARKER), b"").map_err(|e| Error::io(&partial, e))?;
            fs::rename(&partial, target).map_err(|e| Error::io(target, e))?;
            Ok(done)
        }
        Err(err) => {
            let _ = fs::remove_dir_all(&partial);
            Err(err)
        }
    }
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
    let entries = tar.entries().map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("damaged archive: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| bad(format!("entry with an unreadable name: {e}")))?
            .into_owned();
        let kind = entry.header().entry_type();
        let relative = safe_path(&raw).map_err(|why| {
            bad(format!("entry `{}` has {why}; refusing to unpack", raw.display()))
        })?;
        let destination = root.join(&relative);
        match kind {
            EntryType::Directory => {
                fs::create_dir_all(&destination).map_err(|e| Error::io(&destination, e))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = destination.parent() {
                    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                let budget = max_bytes.saturating_sub(done.bytes);
                let mut out =
                    fs::File::create(&destination).map_err(|e| Error::io(&destination, e))?;
                let written = io::copy(&mut (&mut entry).take(budget + 1), &mut out)
                    .map_err(|e| bad(format!("entry `{}`: {e}", raw.display())))?;
                if written > budget {
                    return Err(bad(format!(
                        "unpacks to more than {max_bytes} bytes; stopped at `{}`",
                        raw.display()
                    )));
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
