//! The `scoregen` command as a user meets it: help, exit codes, one-line errors, and a
//! whole train -> generate -> eval round on the tiny preset.

use std::path::Path;
use std::process::{Command, Output};

fn scoregen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scoregen")).args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mini() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/musicscore-mini").display().to_string()
}

#[test]
fn every_subcommand_shows_a_worked_example() {
    for command in ["generate", "train", "dataset", "ingest", "bench", "eval"] {
        let output = scoregen(&[command, "--help"]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command}: {}", stderr(&output));
        assert!(
            text.contains("Example") && text.contains(&format!("scoregen {command}")),
            "{command}: {text}"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_code_two() {
    // (arguments, whether the library reports it: clap adds a usage hint of its own).
    let cases: [(&[&str], bool); 6] = [
        (&["generate", "x", "--checkpoint", "/nonexistent/ckpt"], true),
        (&["generate", "x", "--steps", "many"], false),
        (&["train", "--data", "/nonexistent/data", "--preset", "tiny"], true),
        (&["eval", "/nonexistent/pages"], true),
        (&["--device", "tpu", "bench"], false),
        (&["ingest", "Cargo.toml"], true),
    ];
    for (args, ours) in cases {
        let output = scoregen(args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "{args:?}: {err}");
        if ours {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
    }
}

#[test]
fn data_set_and_metadata_commands_read_the_bundled_files() {
    let output = scoregen(&["dataset", "info", &mini()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(text.contains("train: 261 pages, 0 without metadata"), "{text}");

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imslp/work.html");
    let output = scoregen(&["ingest", fixture.to_str().unwrap(), "--format", "captions"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        text.starts_with("a music score, instrumentation is 2 violins, viola, cello"),
        "{text}"
    );
}

#[test]
fn train_then_generate_then_eval() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let cache = dir.path().join("cache");
    let config = dir.path().join("train.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"preset": "tiny", "data": "{}", "out": "{}", "steps": 3, "batch_size": 2,
               "checkpoint_every": 3, "sample_steps": 2, "cache_dir": "{}",
               "held_out_every": 3, "held_out_pages": 4}}"#,
            mini(),
            run.display(),
            cache.display()
        ),
    )
    .unwrap();
    // Standard error is a pipe here, so the progress bar draws nothing and the run says
    // what it does in plain lines instead.
    let output = scoregen(&["train", "--config", config.to_str().unwrap()]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    for expected in [
        "training from step 0 with seed",
        "\"preset\": \"tiny\"",
        "step 3/3 loss ",
        "step 3: held-out loss ",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
    assert!(
        err.contains(&format!("checkpoint {}", run.join("checkpoints/step-00000003").display()))
    );
    let checkpoint = run.join("checkpoints/step-00000003");
    assert!(checkpoint.join("ema.safetensors").is_file() && run.join("loss.png").is_file());

    // The held-out loss logged at the last step is the one `eval --checkpoint` measures on
    // the same pages: the same inputs and the same EMA weights.
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    let logged = last["held_out"]["mean"].as_f64().expect("a held-out loss in the log");
    let held_out = dir.path().join("held-out.json");
    let output = Command::new(env!("CARGO_BIN_EXE_scoregen"))
        .args(["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--data", &mini()])
        .args(["--held-out-pages", "4", "--json", held_out.to_str().unwrap()])
        .env("SCOREGEN_CACHE", &cache)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let measured: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&held_out).unwrap()).unwrap();
    assert_eq!(measured["pages"], 4);
    assert_eq!(measured["by_timestep"].as_array().unwrap().len(), 5);
    let mean = measured["mean"].as_f64().unwrap();
    assert!((mean - logged).abs() < 1e-6 * logged, "{mean} against the logged {logged}");

    let pages = dir.path().join("pages");
    let args = [
        "-q",
        "generate",
        "a music score, instrumentation is piano",
        "--count",
        "2",
        "--steps",
        "3",
        "--seed",
        "11",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        pages.to_str().unwrap(),
    ];
    let output = scoregen(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let page = image::open(pages.join("page-001.png")).unwrap();
    assert_eq!((page.width(), page.height()), (32, 48));
    assert!(pages.join("sheet.png").is_file());

    // The same seed gives the same page; an existing file is not overwritten.
    let again = scoregen(&args);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("--force"));
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    let before = std::fs::read(pages.join("page-000.png")).unwrap();
    assert!(scoregen(&forced).status.success());
    assert_eq!(std::fs::read(pages.join("page-000.png")).unwrap(), before);

    // Pages and a checkpoint together: one report with both.
    let json = dir.path().join("eval.json");
    let output = Command::new(env!("CARGO_BIN_EXE_scoregen"))
        .args(["eval", pages.to_str().unwrap(), "--json", json.to_str().unwrap()])
        .args(["--checkpoint", checkpoint.to_str().unwrap(), "--data", &mini()])
        .args(["--held-out-pages", "4"])
        .env("SCOREGEN_CACHE", &cache)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["summary"]["pages"], 2, "two pages; the contact sheet is skipped");
    assert_eq!(report["pages"][0]["prompt"], "a music score, instrumentation is piano");
    assert_eq!(report["held_out"]["mean"].as_f64(), Some(mean));
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24, big-endian), read here without
/// the image crate so that the expected sizes do not come from the code under test.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&bytes[12..16], b"IHDR", "{}", path.display());
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    // `scoregen dataset info ... | head -0`: the pipe is closed before anything is printed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_scoregen"))
        .args(["dataset", "info", &mini()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("the binary ends");
    let err = stderr(&output);
    assert!(!err.contains("internal error") && !err.contains("panicked"), "{err}");
    assert!(matches!(output.status.code(), Some(0 | 141)), "{:?}: {err}", output.status);
}

#[test]
fn dataset_info_reports_page_sizes_and_metadata_coverage_per_split() {
    let output = scoregen(&["dataset", "info", &mini()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    // Every work id of the bundled set has a record in its metadata.json: 100% coverage.
    // (Checked independently with python: all 134 ids of the page names are keys.)
    for (split, pages) in [("train", 261), ("val", 32), ("test", 32)] {
        let folder = Path::new(&mini()).join(split);
        let mut widths = Vec::new();
        let mut heights = Vec::new();
        for file in std::fs::read_dir(&folder).unwrap() {
            let (width, height) = png_size(&file.unwrap().path());
            widths.push(width);
            heights.push(height);
        }
        assert_eq!(widths.len(), pages);
        widths.sort();
        heights.sort();
        let lower_middle = (pages - 1) / 2;
        let sizes = format!(
            "width px: min {}, median {}, max {}; height px: min {}, median {}, max {}",
            widths[0],
            widths[lower_middle],
            widths[pages - 1],
            heights[0],
            heights[lower_middle],
            heights[pages - 1]
        );
        let counts = format!("{split}: {pages} pages, 0 without metadata (100.0% with metadata)");
        let at = text.find(&counts).unwrap_or_else(|| panic!("{counts}\n{text}"));
        let next_line = text[at..].lines().nth(1).unwrap_or_default();
        assert_eq!(next_line.trim(), sizes, "{text}");
    }
    // The bundled pages are all 512x724 (its README); the headers must say so too.
    assert!(text.contains("width px: min 512, median 512, max 512; height px: min 724"), "{text}");
}

#[test]
fn dataset_check_lists_every_unusable_page_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train");
    std::fs::create_dir(&train).unwrap();
    let good = ["M21W0001_1.png", "M21W0002_1.png", "M21W0003_1.png"];
    for name in good {
        std::fs::copy(Path::new(&mini()).join("train").join(name), train.join(name)).unwrap();
    }
    let page = std::fs::read(train.join(good[0])).unwrap();
    let mut one_pixel = Vec::new();
    image::GrayImage::from_pixel(1, 1, image::Luma([0]))
        .write_to(&mut std::io::Cursor::new(&mut one_pixel), image::ImageFormat::Png)
        .unwrap();
    // The same 8-bit IHDR as a real page's, made to claim 20000x30000 (CRC recomputed).
    let mut huge = page[..33].to_vec();
    huge[16..24].copy_from_slice(&[0, 0, 0x4e, 0x20, 0, 0, 0x75, 0x30]);
    let mut crc = flate2::Crc::new();
    crc.update(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    // An empty IDAT chunk (its CRC is that of the bytes "IDAT"), then the page's IEND.
    let mut crc = flate2::Crc::new();
    crc.update(b"IDAT");
    huge.extend_from_slice(&[0, 0, 0, 0]);
    huge.extend_from_slice(b"IDAT");
    huge.extend_from_slice(&crc.sum().to_be_bytes());
    huge.extend_from_slice(&page[page.len() - 12..]);
    let bad: [(&str, &[u8], &str); 5] = [
        ("BAD1_1.png", b"", "empty file"),
        ("BAD2_1.png", &page[..page.len() / 3], "corrupt or truncated"),
        ("BAD3_1.jpg", b"<html>not found</html>", "not a PNG or JPEG image"),
        ("BAD4_1.png", &one_pixel, "too small: 1x1 px"),
        ("BAD5_1.png", &huge, "too large: 20000x30000 px"),
    ];
    for (name, bytes, _) in bad {
        std::fs::write(train.join(name), bytes).unwrap();
    }
    let root = dir.path().to_str().unwrap();
    for quiet in [false, true] {
        let args = ["-q", "dataset", "check", root, "--split", "train"];
        let output = scoregen(&args[usize::from(!quiet)..]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{text}{}", stderr(&output));
        for (name, _, why) in bad {
            let line = text.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{text}"));
            assert!(line.contains(why), "{name}: {line}");
        }
        assert!(good.iter().all(|name| !text.contains(name)), "{text}");
        assert!(text.contains("8 pages checked, 5 unusable"), "{text}");
        assert!(stderr(&output).contains("5 of 8 pages"), "{}", stderr(&output));
    }
}

#[test]
fn dataset_prepare_fills_the_page_cache_once_and_reports_pages_per_second() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let root = mini();
    let args = ["dataset", "prepare", &root, "--pages", "tiny", "--split", "val,test"];
    let args: Vec<&str> =
        args.into_iter().chain(["--cache", cache_dir, "--threads", "2"]).collect();
    let first = scoregen(&args);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{}", stderr(&first));
    for split in ["val", "test"] {
        let line = text.lines().find(|l| l.starts_with(split)).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(": 32 pages at 32x48 in "), "{line}");
        assert!(line.contains("pages/s, 2 threads): 32 decoded, 0 from the cache"), "{line}");
    }
    // One prepared page per source page: 32 + 32 files of 32x48 values and a header.
    let mut files = Vec::new();
    let mut folders = vec![cache.path().to_path_buf()];
    while let Some(folder) = folders.pop() {
        for item in std::fs::read_dir(folder).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() { folders.push(path) } else { files.push(path) }
        }
    }
    assert_eq!(files.len(), 64);
    assert!(files.iter().all(|f| std::fs::metadata(f).unwrap().len() == 28 + 32 * 48));

    let second = scoregen(&args);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(text.matches("0 decoded, 32 from the cache, 0 unusable").count(), 2, "{text}");
}

fn imslp_fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imslp");
    dir.join(name).display().to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn ingest_walks_folders_in_order_and_writes_one_json_line_per_work() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir_all(pages.join("b")).unwrap();
    std::fs::copy(imslp_fixture("symphony.wikitext"), pages.join("b/symphony.wikitext")).unwrap();
    std::fs::copy(imslp_fixture("piano-sonata.html"), pages.join("a.html")).unwrap();
    std::fs::write(pages.join("notes.txt"), "a shopping list\n").unwrap();
    let out = dir.path().join("metadata.jsonl");
    let args = [pages.to_str().unwrap(), &imslp_fixture("choral.html")];
    let output = scoregen(&[&["ingest"], &args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let report: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert_eq!(report.len(), 5, "{report:?}");
    assert!(
        report[0].ends_with("a.html: \"Piano Sonata No.2\" by Ludwig van Beethoven, 2 editions")
    );
    assert!(
        report[1].ends_with("symphony.wikitext: \"Symphony No.9\" by Antonín Dvořák, 4 editions")
    );
    assert!(report[2].starts_with("skipped ") && report[2].contains("notes.txt: not IMSLP"));
    assert!(
        report[3]
            .ends_with("choral.html: \"Cantique de Jean Racine\" by Gabriel Fauré, 2 editions")
    );
    assert!(report[4].starts_with("wrote 3 works from 3 of 4 inputs to "), "{}", report[4]);

    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let titles: Vec<&str> = lines.iter().map(|l| l["work_title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Piano Sonata No.2", "Symphony No.9", "Cantique de Jean Racine"]);
    assert_eq!(lines[0]["caption"], "a music score, instrumentation is piano, key is A major");
    assert_eq!(lines[1]["instruments"][6], serde_json::json!({"name": "trombone", "count": 3}));
    assert_eq!(lines[2]["editions"][1]["licence"], "Creative Commons Attribution 4.0");
}

#[test]
fn ingest_exits_two_and_writes_nothing_when_no_input_gives_a_work() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "a shopping list\n").unwrap();
    let out = dir.path().join("metadata.jsonl");
    let missing = dir.path().join("missing.html");
    let args = ["ingest", notes.to_str().unwrap(), missing.to_str().unwrap()];
    let output = scoregen(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let report = stdout(&output);
    assert_eq!(report.lines().filter(|l| l.starts_with("skipped ")).count(), 2, "{report}");
    assert!(report.contains("missing.html"), "{report}");
    assert!(stderr(&output).starts_with("error: none of the 2 inputs gave IMSLP metadata"));
    assert!(!out.exists());

    // The rule is stated where users look for it.
    let help = stdout(&scoregen(&["ingest", "--help"]));
    assert!(help.contains("Exit status: 0 when at least one input gave a work"), "{help}");
}

#[test]
fn ingest_licence_filter_keeps_named_licences_and_skips_works_left_without_one() {
    let args = [
        "ingest",
        &imslp_fixture("piano-sonata.html"),
        &imslp_fixture("violin-sonata.wikitext"),
        &imslp_fixture("choral.html"),
        "--licence",
        "cc-by-nc,CC BY-SA 4.0",
    ];
    let output = scoregen(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> =
        stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let kept: Vec<(&str, u64)> = lines
        .iter()
        .flat_map(|work| work["editions"].as_array().unwrap())
        .map(|e| (e["licence"].as_str().unwrap(), e["pages"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            ("Creative Commons Attribution-ShareAlike 4.0", 18),
            ("Creative Commons Attribution-NonCommercial 4.0", 35)
        ]
    );
    let report = stderr(&output);
    assert!(
        report.contains(
            "choral.html: no edition under cc-by-nc or cc-by-sa-4.0 (editions: \"Public Domain\", \
             \"Creative Commons Attribution 4.0\")"
        ),
        "{report}"
    );

    let output = scoregen(&["ingest", &imslp_fixture("work.html"), "--licence", "copyleft"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("licence `copyleft`"), "{}", stderr(&output));
}

#[test]
fn ingest_names_the_file_and_byte_offset_of_text_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("latin1.wikitext");
    std::fs::write(&page, b"{{#fte:imslppage\n|Composer=Dvo\xF8\xE1k, Anton\xEDn\n}}\n").unwrap();
    let output = scoregen(&["ingest", page.to_str().unwrap()]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("latin1.wikitext: not UTF-8") && err.contains("byte offset 30"), "{err}");
}

#[test]
fn ingest_captions_follow_the_template_options_and_forms_can_be_forced() {
    let page = imslp_fixture("work.html");
    let caption = |extra: &[&str]| {
        let output =
            scoregen(&[&["ingest", page.as_str(), "--format", "captions"], extra].concat());
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim_end().to_string()
    };
    let reference = "a music score, instrumentation is 2 violins, viola, cello, key is C major";
    assert_eq!(caption(&[]), reference);
    assert_eq!(
        caption(&["--caption-with", "composer"]),
        format!("{reference}, composer is Joseph Haydn")
    );
    assert_eq!(
        caption(&["--caption", "rich", "--caption-with", "period"]),
        format!(
            "{reference}, period is Classical, style is Classical, composer is Joseph Haydn, \
             genre is quartets"
        )
    );

    let wikitext = imslp_fixture("work.wikitext");
    let output = scoregen(&["ingest", &wikitext, "--form", "html"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("div.wi_body"), "{}", stderr(&output));
    let output = scoregen(&["ingest", &wikitext, "--form", "wikitext", "--format", "json"]);
    let works: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(works[0]["key"], "C major");
}
