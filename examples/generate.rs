//! Generating a page from code: load a checkpoint, sample with DPM-Solver++ under
//! guidance, write a PNG.
//!
//! ```sh
//! cargo run --release --example generate -- "a music score, instrumentation is violin" page.png
//! ```

use std::path::PathBuf;

use scoregen::checkpoint::{self, Weights};
use scoregen::diffusion::{Guidance, SamplerKind};
use scoregen::sample::output::write_png;
use scoregen::sample::{Generator, Options};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let prompt = args.next().unwrap_or_else(|| "a music score, instrumentation is piano".into());
    let out = PathBuf::from(args.next().unwrap_or_else(|| "page.png".into()));
    let folder = checkpoint::shipped()
        .ok_or_else(|| anyhow::anyhow!("the shipped checkpoint is missing"))?;

    let device = scoregen::backend::DeviceSpec::Cpu.device()?;
    let model = checkpoint::load(&folder, Weights::Ema, &device)?;
    let options = Options {
        sampler: SamplerKind::DpmSolver2M,
        steps: 20,
        guidance: Guidance { scale: 3.0, rescale: 0.0 },
        width: model.config.page_width,
        height: model.config.page_height,
        seed: 7,
        clip_x0: true,
    };
    let generator = Generator::new(&model, device);
    let pages = generator.generate(
        std::slice::from_ref(&prompt),
        "",
        &options,
        None,
        &mut |step, total| {
            eprint!("\rstep {step}/{total}");
        },
    )?;
    eprintln!();
    write_png(&out, &pages[0], &[("prompt", prompt), ("seed", options.seed.to_string())])?;
    println!("{}", out.display());
    Ok(())
}
