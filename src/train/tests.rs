//! Training runs on a few real pages: learning, resuming and data parallelism.

use super::*;
use crate::testing::mini_subset;
use crate::unet::Preset;

struct Record(Vec<f64>);

impl Observer for Record {
    fn step(&mut self, record: &LogRecord) {
        self.0.push(record.loss);
    }
}

fn config(data: &std::path::Path, out: &std::path::Path) -> TrainConfig {
    TrainConfig {
        preset: Preset::Tiny,
        data: data.to_path_buf(),
        out: out.to_path_buf(),
        steps: 6,
        batch_size: 4,
        learning_rate: 2e-3,
        warmup_steps: 2,
        checkpoint_every: 3,
        log_every: 1,
        cache_dir: Some(out.join("cache")),
        ..TrainConfig::default()
    }
}

/// The network's output on a fixed input: equal outputs mean equal weights in practice.
fn probe(model: &ScoreModel) -> Vec<f32> {
    let device = crate::testing::cpu();
    let model = model.valid();
    let x = crate::diffusion::HostNoise::new(9).normal([1, 1, 48, 32], &device);
    let t = Tensor::<1>::from_floats([500.0], &device);
    let context = model.encode(ids_tensor(&[vec![3, 4, 5, 0]], &device));
    crate::testing::values(&model.denoise(x, t, context))
}

#[test]
fn resuming_repeats_the_uninterrupted_run_exactly() {
    let data = mini_subset(6);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Uninterrupted: six steps.
    let mut losses = Record(Vec::new());
    let mut whole = Trainer::new(config(data.path(), a.path()), false, &mut Quiet).unwrap();
    whole.run(&mut losses).unwrap();

    // Interrupted after the checkpoint at step 3, then resumed from it.
    let mut first = Trainer::new(config(data.path(), b.path()), false, &mut Quiet).unwrap();
    let mut early = Record(Vec::new());
    first.run_until(4, &mut early).unwrap();
    drop(first);
    let mut resumed = Trainer::new(config(data.path(), b.path()), true, &mut Quiet).unwrap();
    assert_eq!(resumed.step(), 3);
    let mut late = Record(Vec::new());
    resumed.run(&mut late).unwrap();

    assert_eq!(early.0, losses.0[..4], "the same seed gives the same first steps");
    assert_eq!(late.0, losses.0[3..], "the resumed run repeats the uninterrupted losses");
    assert!(probe(resumed.model()) == probe(whole.model()), "the trained weights differ");
    assert!(probe(resumed.ema()) == probe(whole.ema()), "the EMA weights differ");

    // The log holds each step once, and the kept checkpoints are the newest.
    let log = log::read(&b.path().join("log.jsonl")).unwrap();
    assert_eq!(log.iter().map(|r| r.step).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let kept: Vec<usize> =
        checkpoints::list(b.path()).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [3, 6]);
}

#[test]
fn a_fresh_run_refuses_a_folder_with_checkpoints() {
    let data = mini_subset(2);
    let out = tempfile::tempdir().unwrap();
    let short = TrainConfig { steps: 1, checkpoint_every: 1, ..config(data.path(), out.path()) };
    Trainer::new(short.clone(), false, &mut Quiet).unwrap().run(&mut Quiet).unwrap();
    let err = Trainer::new(short.clone(), false, &mut Quiet).err().expect("refused");
    assert!(err.is_input() && err.to_string().contains("--resume"), "{err}");
    let changed = TrainConfig { learning_rate: 1e-3, ..short };
    let err = Trainer::new(changed, true, &mut Quiet).err().expect("refused");
    assert!(err.to_string().contains("different configuration"), "{err}");
}

#[test]
fn two_devices_take_the_same_step_as_one() {
    let data = mini_subset(4);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = TrainConfig { steps: 2, ..config(data.path(), a.path()) };
    let two = TrainConfig { devices: vec!["cpu".into(), "cpu".into()], ..one.clone() };
    let two =
        TrainConfig { out: b.path().to_path_buf(), cache_dir: Some(b.path().join("cache")), ..two };
    let mut single = Trainer::new(one, false, &mut Quiet).unwrap();
    let mut pair = Trainer::new(two, false, &mut Quiet).unwrap();
    for _ in 0..2 {
        let (x, y) = (single.train_step().unwrap(), pair.train_step().unwrap());
        assert!((x - y).abs() < 1e-5 * x.abs().max(1.0), "loss {x} vs {y}");
    }
    let (p, q) = (probe(single.model()), probe(pair.model()));
    let worst = p.iter().zip(&q).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-4, "outputs after two steps differ by up to {worst}");
}

#[test]
fn the_loss_falls_on_real_pages() {
    let data = mini_subset(8);
    let out = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        steps: 40,
        checkpoint_every: 40,
        warmup_steps: 5,
        ..config(data.path(), out.path())
    };
    let mut record = Record(Vec::new());
    Trainer::new(config, false, &mut Quiet).unwrap().run(&mut record).unwrap();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (start, end) = (mean(&record.0[..10]), mean(&record.0[30..]));
    assert!(end < 0.7 * start, "mean loss went from {start} to {end}");
}

#[test]
fn fine_tuning_starts_from_the_checkpoint_weights() {
    let data = mini_subset(2);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let base = TrainConfig { steps: 2, checkpoint_every: 2, ..config(data.path(), a.path()) };
    let mut first = Trainer::new(base.clone(), false, &mut Quiet).unwrap();
    let folder = first.run(&mut Quiet).unwrap();

    let tuned = TrainConfig {
        out: b.path().to_path_buf(),
        init_from: Some(folder.clone()),
        weighting: crate::diffusion::LossWeighting::Plain,
        seed: 7,
        ..base.clone()
    };
    let second = Trainer::new(tuned.clone(), false, &mut Quiet).unwrap();
    assert_eq!(second.step(), 0);
    assert!(probe(second.model()) == probe(first.model()), "raw weights were not loaded");
    assert!(probe(second.ema()) == probe(first.ema()), "EMA weights were not loaded");
    let fresh = Trainer::new(
        TrainConfig { init_from: None, out: b.path().join("fresh"), ..tuned.clone() },
        false,
        &mut Quiet,
    )
    .unwrap();
    assert!(probe(fresh.model()) != probe(first.model()), "a fresh seed-7 model differs");

    // A folder with EMA weights only (a shipped model) starts both from them.
    let shipped = b.path().join("shipped");
    std::fs::create_dir(&shipped).unwrap();
    for file in ["config.json", "tokenizer.json", crate::checkpoint::files::EMA] {
        std::fs::copy(folder.join(file), shipped.join(file)).unwrap();
    }
    let from_ema = Trainer::new(
        TrainConfig { init_from: Some(shipped), out: b.path().join("from-ema"), ..tuned.clone() },
        false,
        &mut Quiet,
    )
    .unwrap();
    assert!(probe(first.model()) != probe(first.ema()), "two steps moved the EMA off the weights");
    assert!(probe(from_ema.model()) == probe(first.ema()), "raw weights start from the EMA");
    assert!(probe(from_ema.ema()) == probe(first.ema()));

    let other = TrainConfig { preset: Preset::Small, out: b.path().join("small"), ..tuned };
    let err = Trainer::new(other, false, &mut Quiet).err().expect("refused");
    assert!(err.is_input() && err.to_string().contains("`init_from`"), "{err}");
}

/// Multiplies every weight by NaN: what a diverged optimiser step leaves.
struct Poison;

impl burn::module::ModuleMapper for Poison {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|t| t.mul_scalar(f64::NAN))
    }
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let data = mini_subset(4);
    let out = tempfile::tempdir().unwrap();
    let config = config(data.path(), out.path());
    let mut trainer = Trainer::new(config.clone(), false, &mut Quiet).unwrap();
    trainer.run_until(4, &mut Quiet).unwrap();
    trainer.model = trainer.model.clone().map(&mut Poison);

    let err = trainer.run(&mut Quiet).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the loss became NaN at step 5"), "{text}");
    assert!(text.contains("last checkpoint") && text.contains("intact"), "{text}");
    assert_eq!(trainer.step(), 4, "the step that failed did not count");
    let kept: Vec<usize> =
        checkpoints::list(out.path()).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [3], "nothing after the last good checkpoint was written");

    let resumed = Trainer::new(config, true, &mut Quiet).unwrap();
    assert_eq!(resumed.step(), 3);
    assert!(probe(resumed.model()).iter().all(|v| v.is_finite()));
}

#[test]
fn a_half_written_checkpoint_is_passed_over_for_the_previous_one() {
    let data = mini_subset(4);
    let out = tempfile::tempdir().unwrap();
    let config = config(data.path(), out.path());
    let mut trainer = Trainer::new(config.clone(), false, &mut Quiet).unwrap();
    trainer.run(&mut Quiet).unwrap();
    drop(trainer);
    let root = checkpoints::folder(out.path());
    let read = |step: usize| {
        let state = std::fs::read(root.join(format!("step-{step:08}/train.json"))).unwrap();
        serde_json::from_slice::<serde_json::Value>(&state).unwrap()["step"].as_u64()
    };
    assert_eq!((read(3), read(6)), (Some(3), Some(6)));

    // The save of step 6 cut short: its folder still under its hidden name, its weights
    // half written.
    let six = root.join("step-00000006");
    let hidden = crate::fsutil::temporary_path(&six);
    std::fs::rename(&six, &hidden).unwrap();
    let ema = hidden.join(crate::checkpoint::files::EMA);
    let bytes = std::fs::read(&ema).unwrap();
    std::fs::write(&ema, &bytes[..bytes.len() / 2]).unwrap();
    let resumed = Trainer::new(config.clone(), true, &mut Quiet).unwrap();
    assert_eq!(resumed.step(), 3);
    drop(resumed);

    // The same folder under its real name but without the state file, written last.
    std::fs::rename(&hidden, &six).unwrap();
    std::fs::remove_file(six.join("train.json")).unwrap();
    let resumed = Trainer::new(config, true, &mut Quiet).unwrap();
    assert_eq!(resumed.step(), 3);
}
