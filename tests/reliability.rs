//! Hostile input through the `scoregen` binary, as a user meets it: out-of-range values,
//! broken pages in a training set, broken checkpoints, and output folders that cannot be
//! written (read-only, under a regular file, a full disk). Each bad input must give one
//! line that names the value or path, exit 2 for the user's input or 1 for a runtime
//! failure, no panic, and no partial or temporary file left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn scoregen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scoregen")).args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/musicscore-mini")
}

/// A prompt made of words the tiny model knows, so `generate` prints no notes.
const PROMPT: &str = "a music score";

/// Checks that a command failed with `code` and exactly one stderr line, which starts with
/// `error: `, contains every one of `expected`, and shows no panic; returns that line.
fn one_line_error(args: &[&str], code: i32, expected: &[&str]) -> String {
    let output = scoregen(args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{args:?}: {err}");
    for part in expected {
        assert!(lines[0].contains(part), "{args:?}: `{part}` missing from: {err}");
    }
    lines[0].to_string()
}

/// Writes a training config for `data` into `dir` and returns its path.
fn train_config(dir: &Path, data: &Path, out: &Path, steps: usize) -> PathBuf {
    let path = dir.join("train.json");
    let text = format!(
        r#"{{"preset": "tiny", "data": "{}", "out": "{}", "steps": {steps}, "batch_size": 2,
           "checkpoint_every": {steps}, "sample_steps": 1, "cache_dir": "{}"}}"#,
        data.display(),
        out.display(),
        dir.join("cache").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A tiny checkpoint trained once (2 steps) and shared by the tests of this file.
fn checkpoint() -> &'static Path {
    static CHECKPOINT: OnceLock<PathBuf> = OnceLock::new();
    CHECKPOINT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let run = dir.join("run");
        let config = train_config(&dir, &mini(), &run, 2);
        let output = scoregen(&["-q", "train", "--config", config.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr(&output));
        run.join("checkpoints/step-00000002")
    })
}

/// A copy of the shared checkpoint in `dir`, for a test to break.
fn checkpoint_copy(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(checkpoint()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    copy
}

/// Every file under `dir`, relative, sorted: what a failed command left behind.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn out_of_range_values_name_the_value_and_range_and_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pages");
    let (ckpt, out_arg) = (checkpoint().to_str().unwrap(), out.to_str().unwrap());
    // (extra arguments, parts the message must contain)
    let generate: [(&[&str], &[&str]); 13] = [
        (&["--steps", "0"], &["steps 0", "1..=1000"]),
        (&["--steps", "1001"], &["steps 1001", "1..=1000"]),
        (&["--guidance=-1"], &["guidance -1", "0..=30"]),
        (&["--guidance", "31"], &["guidance 31", "0..=30"]),
        (&["--guidance", "NaN"], &["guidance NaN", "0..=30"]),
        (&["--guidance-rescale", "2"], &["rescale 2", "0..=1"]),
        (&["--size", "30x45"], &["30x45", "multiples of 4"]),
        (&["--size", "0x48"], &["0x48", "positive multiples of 4"]),
        (&["--size", "64x100000"], &["64x100000", "at most 8192"]),
        (&["--count", "0"], &["--count", "at least 1"]),
        (&["--batch", "0"], &["--batch", "at least 1"]),
        (&["--strength", "0"], &["--strength 0", "(0, 1]"]),
        (&["--strength", "1.5"], &["--strength 1.5", "(0, 1]"]),
    ];
    for (extra, expected) in generate {
        let mut args = vec!["-q", "generate", PROMPT, "--checkpoint", ckpt, "--out", out_arg];
        args.extend_from_slice(extra);
        one_line_error(&args, 2, expected);
        assert!(!out.exists(), "{extra:?}: the output folder was created");
    }

    let run = dir.path().join("run");
    let data = mini();
    let train: [(&[&str], &[&str]); 6] = [
        (&["--batch-size", "0"], &["batch_size", "0 must be a positive multiple"]),
        (&["--learning-rate", "5"], &["learning_rate", "5 is not in (0, 1)"]),
        (&["--learning-rate", "0"], &["learning_rate", "0 is not in (0, 1)"]),
        (&["--steps", "0"], &["steps", "at least 1"]),
        (&["--checkpoint-every", "0"], &["checkpoint_every", "at least 1"]),
        (&["--crop", "3"], &["crop", "3 must be a multiple of 4"]),
    ];
    for (extra, expected) in train {
        let mut args = vec!["-q", "train", "--preset", "tiny", "--data", data.to_str().unwrap()];
        args.extend_from_slice(&["--out", run.to_str().unwrap()]);
        args.extend_from_slice(extra);
        one_line_error(&args, 2, expected);
        assert!(!run.exists(), "{extra:?}: the run folder was created");
    }
}

/// A PNG of `width` x `height` mid-grey pixels.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let page = image::GrayImage::from_pixel(width, height, image::Luma([128]));
    page.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

/// A 1x1 PNG whose header claims `width` x `height`, its checksum fixed so that only the
/// size gives it away.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(1, 1);
    // Signature (8), IHDR length (4), "IHDR" (4), then width and height; the CRC covers
    // the chunk type and its 13 data bytes.
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    bytes
}

#[test]
fn a_training_set_with_broken_pages_trains_and_names_each_skipped_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("train")).unwrap();
    std::fs::copy(mini().join("metadata.json"), data.join("metadata.json")).unwrap();
    for name in ["M21W0001_1.png", "M21W0002_1.png", "M21W0003_1.png", "M21W0005_1.png"] {
        std::fs::copy(mini().join("train").join(name), data.join("train").join(name)).unwrap();
    }
    let whole = png(32, 48);
    let broken: [(&str, Vec<u8>); 6] = [
        ("M21W0001_90.png", [&whole[..8], &b"garbage!"[..]].concat()),
        ("M21W0001_91.png", Vec::new()),
        ("M21W0001_92.png", whole[..whole.len() / 2].to_vec()),
        ("M21W0001_93.png", png_claiming(100_000, 100_000)),
        ("M21W0001_94.jpg", b"these are not the pages you are looking for".to_vec()),
        // Decodable, but no page: it would train the model on a flat grey block.
        ("M21W0001_95.png", png(1, 1)),
    ];
    for (name, bytes) in &broken {
        std::fs::write(data.join("train").join(name), bytes).unwrap();
    }

    let run = dir.path().join("run");
    let config = train_config(dir.path(), &data, &run, 2);
    let output = Command::new(env!("CARGO_BIN_EXE_scoregen"))
        .args(["train", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(run.join("checkpoints/step-00000002/ema.safetensors").is_file(), "{err}");
    for (name, _) in &broken {
        assert!(
            err.lines().any(|l| l.contains("skipping") && l.contains(name)),
            "{name} is not named as skipped: {err}"
        );
    }
    assert!(err.contains("6 pages skipped"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_repeated_work_id_stops_training_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("train")).unwrap();
    std::fs::copy(mini().join("train/M21W0001_1.png"), data.join("train/M21W0001_1.png")).unwrap();
    std::fs::write(
        data.join("metadata.json"),
        "{\"M21W0001\": {\"Key\": \"C major\"},\n \"M21W0001\": {\"Key\": \"D major\"}}",
    )
    .unwrap();
    let run = dir.path().join("run");
    let config = train_config(dir.path(), &data, &run, 2);
    let args = ["-q", "train", "--config", config.to_str().unwrap()];
    one_line_error(&args, 2, &["metadata.json", "duplicate work id `M21W0001`", "line 2"]);
    assert!(!run.exists());
}

#[test]
fn broken_checkpoints_give_one_line_naming_the_file_and_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pages");
    type Breakage = fn(&Path);
    let cases: [(&str, Breakage, &[&str]); 8] = [
        ("cut", |c| cut(&c.join("ema.safetensors")), &["ema.safetensors", "not a readable"]),
        (
            "empty",
            |c| std::fs::write(c.join("ema.safetensors"), b"").unwrap(),
            &["ema.safetensors", "not a readable"],
        ),
        ("not-json", |c| cut(&c.join("config.json")), &["config.json", "not a scoregen model"]),
        (
            "channels",
            |c| edit(&c.join("config.json"), "\"image_channels\": 1", "\"image_channels\": 3"),
            &["ema.safetensors", "unet.conv_in.weight"],
        ),
        (
            "no-channels",
            |c| edit(&c.join("config.json"), "\"image_channels\": 1", "\"image_channels\": 0"),
            &["config.json", "image_channels", "at least 1"],
        ),
        (
            "vocabulary",
            |c| edit(&c.join("config.json"), "\"vocab_size\": ", "\"vocab_size\": 1"),
            &["tokenizer has", "config.json expects"],
        ),
        (
            "no-tokenizer",
            |c| std::fs::remove_file(c.join("tokenizer.json")).unwrap(),
            &["tokenizer.json", "No such file"],
        ),
        ("cut-tokenizer", |c| cut(&c.join("tokenizer.json")), &["tokenizer.json"]),
    ];
    for (name, breakage, expected) in cases {
        let copy = checkpoint_copy(dir.path(), name);
        breakage(&copy);
        let (copy, out) = (copy.to_str().unwrap(), out.to_str().unwrap());
        one_line_error(
            &["-q", "generate", PROMPT, "--checkpoint", copy, "--out", out],
            2,
            expected,
        );
    }
    assert!(!out.exists(), "a broken checkpoint still created the output folder");
}

/// Keeps the first half of a file, as a copy killed midway would.
fn cut(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

/// Replaces `from` (which must be there) by `to` in a text file.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}: no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn output_under_a_regular_file_fails_naming_the_path_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let ckpt = checkpoint().to_str().unwrap();
    for (out, count) in [("file.txt/pages", "2"), ("file.txt/sub/page.png", "1")] {
        let out = dir.path().join(out);
        let out = out.to_str().unwrap();
        let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--count", count, "--out", out];
        one_line_error(&args, 2, &["file.txt"]);
    }
    let run = file.join("run");
    let args = ["-q", "train", "--preset", "tiny", "--steps", "1", "--batch-size", "1"];
    let data = mini();
    let mut args = args.to_vec();
    args.extend_from_slice(&["--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    one_line_error(&args, 2, &["file.txt/run"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert_eq!(files_under(dir.path()), ["file.txt"], "something was left behind");
}

/// Whether `dir` takes a new file: as root, permission bits do not stop writes.
fn writable(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

#[test]
fn a_read_only_output_folder_fails_naming_it_and_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let ckpt = checkpoint().to_str().unwrap();
    if writable(&locked) {
        eprintln!("notice: mode 0555 does not stop this user writing (root); check skipped");
    } else {
        for out in [locked.join("pages"), locked.join("page.png")] {
            let out = out.to_str().unwrap();
            let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--out", out];
            one_line_error(&args, 2, &[out, "ermission denied"]);
        }
        assert!(files_under(&locked).is_empty());
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A read-only mount stops root too.
    let Some(mount) = Tmpfs::mount(&dir.path().join("ro"), "ro,size=64k") else { return };
    for out in [mount.path.join("pages"), mount.path.join("page.png")] {
        let out = out.to_str().unwrap();
        let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--out", out];
        one_line_error(&args, 2, &[out, "Read-only file system"]);
    }
    let data = mini();
    let run = mount.path.join("run");
    let args = ["-q", "train", "--preset", "tiny", "--data", data.to_str().unwrap()];
    let mut args = args.to_vec();
    args.extend_from_slice(&["--out", run.to_str().unwrap()]);
    one_line_error(&args, 2, &[run.to_str().unwrap(), "Read-only file system"]);
    assert!(files_under(&mount.path).is_empty());
}

/// A small tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` at `path`, or prints why not (not root, or a container
    /// that forbids mounts) and returns `None` so the caller can skip.
    fn mount(path: &Path, options: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let arg_path = path.to_str().unwrap();
        let done = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs", arg_path])
            .output()
            .map(|o| if o.status.success() { Ok(()) } else { Err(stderr(&o)) });
        match done {
            Ok(Ok(())) => Some(Self { path: path.to_path_buf() }),
            Ok(Err(why)) => {
                eprintln!("notice: cannot mount a tmpfs here ({}); check skipped", why.trim());
                None
            }
            Err(why) => {
                eprintln!("notice: cannot run mount ({why}); check skipped");
                None
            }
        }
    }

    /// Fills the file system to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path.join("filler")).unwrap();
        while file.write_all(&[0; 4096]).is_ok() {}
        let _ = file.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_fails_naming_the_file_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "size=64k") else { return };
    let folder = disk.path.join("pages");
    std::fs::create_dir(&folder).unwrap();
    disk.fill();
    let ckpt = checkpoint().to_str().unwrap();
    let pages = folder.to_str().unwrap();
    let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--count", "2", "--out", pages];
    let page = folder.join("page-000.png");
    one_line_error(&args, 1, &[page.to_str().unwrap(), "No space left on device"]);
    let single = disk.path.join("one.png");
    let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--out", single.to_str().unwrap()];
    one_line_error(&args, 1, &[single.to_str().unwrap(), "No space left on device"]);
    assert_eq!(files_under(&disk.path), ["filler"], "a partial page was left behind");
}

#[test]
fn a_weight_shape_mismatch_is_reported_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let copy = checkpoint_copy(dir.path(), "ckpt");
    edit(&copy.join("config.json"), "\"image_channels\": 1", "\"image_channels\": 3");
    let out = dir.path().join("pages");
    let args = ["-q", "generate", PROMPT, "--checkpoint", copy.to_str().unwrap()];
    let mut args = args.to_vec();
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let line = one_line_error(&args, 2, &["weights do not match config.json"]);
    assert!(line.len() < 400, "{} characters: {line}", line.len());
}

#[test]
fn a_negative_value_after_a_space_is_range_checked() {
    let ckpt = checkpoint().to_str().unwrap();
    let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--guidance", "-1"];
    one_line_error(&args, 2, &["guidance -1", "0..=30"]);
}

#[test]
fn a_page_file_directly_under_a_regular_file_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file.txt"), b"x").unwrap();
    let out = dir.path().join("file.txt/out.png");
    let ckpt = checkpoint().to_str().unwrap();
    let args = ["-q", "generate", PROMPT, "--checkpoint", ckpt, "--out", out.to_str().unwrap()];
    one_line_error(&args, 2, &["file.txt is a file"]);
}

#[test]
fn a_schedule_of_zero_timesteps_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let copy = checkpoint_copy(dir.path(), "ckpt");
    edit(&copy.join("config.json"), "\"timesteps\": 1000", "\"timesteps\": 0");
    let out = dir.path().join("pages");
    let args = ["-q", "generate", PROMPT, "--checkpoint", copy.to_str().unwrap()];
    let mut args = args.to_vec();
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    one_line_error(&args, 2, &["config.json", "timesteps"]);
}

#[test]
fn a_full_disk_during_training_leaves_no_partial_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "size=64k") else { return };
    let run = disk.path.join("run");
    let data = mini();
    let config = train_config(dir.path(), &data, &run, 1);
    let output = scoregen(&["-q", "train", "--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("No space left on device"), "{}", stderr(&output));
    let left = files_under(&disk.path);
    assert!(left.iter().all(|f| !f.contains(".partial")), "{left:?}");
}

#[test]
fn a_checkpoint_carries_its_guidance_default_and_the_flag_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let copy = checkpoint_copy(dir.path(), "ckpt");
    edit(&copy.join("config.json"), "\"prediction\"", "\"guidance\": 1.5,\n  \"prediction\"");
    let run = |extra: &[&str], page: &str| {
        let out = dir.path().join(page);
        let mut args = vec!["generate", PROMPT, "--checkpoint", copy.to_str().unwrap()];
        args.extend_from_slice(&["--steps", "1", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let output = scoregen(&args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stderr(&output)
    };
    assert!(run(&[], "a.png").contains("guidance 1.5,"));
    assert!(run(&["--guidance", "4"], "b.png").contains("guidance 4,"));

    // Out of range in the file is the file's error.
    edit(&copy.join("config.json"), "\"guidance\": 1.5", "\"guidance\": 31");
    let out = dir.path().join("c.png");
    let args = ["-q", "generate", PROMPT, "--checkpoint", copy.to_str().unwrap()];
    let mut args = args.to_vec();
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    one_line_error(&args, 2, &["guidance 31", "0..=30"]);
}
