//! Crash safety: a training process killed with SIGKILL at several points and resumed each
//! time ends with the weights of an uninterrupted run, never leaves a corrupt checkpoint,
//! and repeats at most one checkpoint interval of steps per crash.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scoregen::checkpoint::{self, Weights};
use scoregen::diffusion::HostNoise;

const STEPS: usize = 16;
const INTERVAL: usize = 2;

fn config(dir: &Path, out: &Path) -> std::path::PathBuf {
    let mini = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/musicscore-mini");
    let path = dir.join(format!("{}.json", out.file_name().unwrap().to_string_lossy()));
    let text = format!(
        r#"{{"preset": "tiny", "data": "{}", "out": "{}", "steps": {STEPS}, "batch_size": 4,
           "checkpoint_every": {INTERVAL}, "log_every": 1, "keep_checkpoints": 2, "sample_steps": 1,
           "cache_dir": "{}"}}"#,
        mini.display(),
        out.display(),
        dir.join("cache").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn train(config: &Path, resume: bool) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scoregen"));
    command.args(["-q", "train", "--config", config.to_str().unwrap()]);
    if resume {
        command.arg("--resume");
    }
    command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// The EMA network's output on a fixed input.
fn probe(folder: &Path) -> Vec<f32> {
    let device = scoregen::backend::DeviceSpec::Cpu.device().unwrap();
    let loaded = checkpoint::load(folder, Weights::Ema, &device).expect("every checkpoint loads");
    let x = HostNoise::new(4).normal([1, 1, 48, 32], &device);
    let t = burn::tensor::Tensor::<1>::from_floats([300.0], &device);
    let ids = vec![loaded.tokenizer.encode("a music score").ids];
    let context = loaded.model.encode(scoregen::text::ids_tensor(&ids, &device));
    loaded.model.denoise(x, t, context).into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The `step-*` checkpoint folders on disk, oldest first, with their step from the name.
fn checkpoints_on_disk(out: &Path) -> Vec<(usize, std::path::PathBuf)> {
    let mut found: Vec<(usize, std::path::PathBuf)> = std::fs::read_dir(out.join("checkpoints"))
        .into_iter()
        .flatten()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            Some((name.strip_prefix("step-")?.parse().ok()?, path.clone()))
        })
        .collect();
    found.sort();
    found
}

fn logged_steps(out: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(out.join("log.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["step"].as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_weights() {
    crash_and_resume(false);
}

#[test]
fn a_kill_leaves_no_half_removed_checkpoint_folder() {
    crash_and_resume(true);
}

/// Trains to STEPS while killing the run at random points and resuming it. `every_folder`:
/// every `step-*` folder on disk must load, not only those the trainer would resume from
/// (which have `train.json`, written last).
fn crash_and_resume(every_folder: bool) {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let crashed = dir.path().join("crashed");
    assert!(train(&config(dir.path(), &whole), false).wait().unwrap().success());
    let reference = probe(&whole.join(format!("checkpoints/step-{STEPS:08}")));

    let config = config(dir.path(), &crashed);
    let mut kills = 0;
    let mut delays = HostNoise::new(77);
    let mut resume = false;
    loop {
        let before = logged_steps(&crashed).last().copied().unwrap_or(0);
        let mut child = train(&config, resume);
        // Kill once the run has logged a randomly chosen later step, plus a random few
        // milliseconds, so the kill lands anywhere: mid-step, mid-checkpoint, mid-log.
        // Near the end the run is left to finish.
        let target = before + 1 + delays.below(2);
        let target = if target < STEPS { target } else { usize::MAX };
        let extra = Duration::from_millis(delays.below(120) as u64);
        let mut reached: Option<Instant> = None;
        let start = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if reached.is_none() && logged_steps(&crashed).last().is_some_and(|&s| s >= target) {
                reached = Some(Instant::now());
            }
            if reached.is_some_and(|r| r.elapsed() >= extra)
                || start.elapsed() > Duration::from_secs(120)
            {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match finished {
            Some(status) => {
                assert!(status.success(), "the resumed run failed");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
        // Every checkpoint left behind is whole, and the crash cost at most one interval:
        // the newest checkpoint on disk is no more than INTERVAL steps behind the last step
        // the killed run logged (no checkpoint at all counts as step 0).
        let logged = logged_steps(&crashed).last().copied().unwrap_or(0);
        let kept = checkpoints_on_disk(&crashed);
        let steps: Vec<usize> = kept.iter().map(|(step, _)| *step).collect();
        let complete: Vec<usize> = kept
            .iter()
            .filter(|(_, path)| path.join("train.json").is_file())
            .map(|(step, _)| *step)
            .collect();
        for (step, path) in &kept {
            if !every_folder && !complete.contains(step) {
                // A folder whose removal was cut short; the trainer must never pick it.
                assert!(
                    complete.last().is_some_and(|newest| newest > step),
                    "kill {kills}: step {step} is incomplete and not older than a whole one \
                     ({steps:?}, whole: {complete:?})"
                );
                continue;
            }
            let device = scoregen::backend::DeviceSpec::Cpu.device().unwrap();
            if let Err(err) = checkpoint::load(path, Weights::Ema, &device) {
                let mut names: Vec<String> = std::fs::read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                panic!(
                    "kill {kills}: checkpoint {step} of {steps:?} does not load: {err}; \
                     it holds {names:?}"
                );
            }
            let state: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path.join("train.json")).unwrap()).unwrap();
            assert_eq!(state["step"].as_u64(), Some(*step as u64), "{}", path.display());
        }
        let newest = complete.last().copied().unwrap_or(0);
        assert!(
            logged.saturating_sub(newest) <= INTERVAL,
            "kill {kills}: step {logged} logged but the newest checkpoint is step {newest}"
        );
        assert!(
            logged >= before.saturating_sub(INTERVAL),
            "the log went back more than an interval"
        );
        resume = true;
        assert!(kills < 2 * STEPS, "the run never finished");
    }

    assert!(kills >= 5, "only {kills} kill points were hit");
    let steps = logged_steps(&crashed);
    assert_eq!(steps, (1..=STEPS).collect::<Vec<_>>(), "each step is logged once");
    let resumed = probe(&crashed.join(format!("checkpoints/step-{STEPS:08}")));
    assert!(resumed == reference, "the resumed weights differ from the uninterrupted run's");
    eprintln!("survived {kills} kill points");
}
