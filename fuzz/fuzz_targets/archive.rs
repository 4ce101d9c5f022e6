//! Archives from the internet: the first byte picks whether the rest is a tar stream (the
//! target gzips it, so the fuzzer works on tar structure) or raw gzip bytes. An unpack
//! either succeeds, leaving a marked split whose every file lies inside it within the size
//! cap, or fails leaving nothing at all; in no case is anything written beside it.

#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use scoregen::dataset::archive::{COMPLETE_MARKER, ENTRY_COST, Unpacked, unpack};

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rest).unwrap();
        gz.finish().unwrap()
    } else {
        rest.to_vec()
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("train.tar.gz");
    std::fs::write(&archive, &bytes).unwrap();
    let target = dir.path().join("train");
    let mut last = 0;
    let result = unpack(&archive, &target, CAP, &mut |bytes| {
        assert!(bytes >= last && bytes <= CAP, "progress went from {last} to {bytes}");
        last = bytes;
    });
    let mut beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    match result {
        Ok(done) => {
            assert_eq!(beside, ["train", "train.tar.gz"]);
            assert!(target.join(COMPLETE_MARKER).is_file());
            let mut found = Unpacked::default();
            walk(&target, &mut found);
            // The marker is the one file the archive did not hold. Files written twice
            // by the archive are counted once on disk, so disk totals are bounds.
            assert!(found.files - 1 <= done.files, "{found:?} on disk, {done:?} reported");
            assert!(found.bytes <= done.bytes && done.bytes + ENTRY_COST <= CAP);
        }
        Err(err) => {
            assert_eq!(beside, ["train.tar.gz"], "{err}");
        }
    }
});

/// Counts regular files and their bytes under `folder`; anything else is a failure.
fn walk(folder: &Path, found: &mut Unpacked) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            walk(&entry.path(), found);
        } else {
            assert!(kind.is_file(), "{} is not a file or folder", entry.path().display());
            found.files += 1;
            found.bytes += entry.metadata().unwrap().len();
        }
    }
}
