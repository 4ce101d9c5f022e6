//! Training from code: the `tiny` preset for a few steps on the bundled real pages, then
//! the loss of every step.
//!
//! ```sh
//! cargo run --release --example train_tiny -- 50
//! ```

use scoregen::train::{LogRecord, Observer, TrainConfig, Trainer};
use scoregen::unet::Preset;

struct Print;

impl Observer for Print {
    fn step(&mut self, record: &LogRecord) {
        println!(
            "step {:>4}  loss {:.4}  {:.1} img/s",
            record.step, record.loss, record.images_per_second
        );
    }
}

fn main() -> anyhow::Result<()> {
    let steps = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(30);
    let out = std::env::temp_dir().join(format!("scoregen-tiny-{}", std::process::id()));
    let config = TrainConfig {
        preset: Preset::Tiny,
        out: out.clone(),
        steps,
        batch_size: 8,
        learning_rate: 2e-3,
        warmup_steps: 10,
        checkpoint_every: steps,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, false, &mut Print)?;
    let checkpoint = trainer.run(&mut Print)?;
    println!("checkpoint {}", checkpoint.display());
    Ok(())
}
