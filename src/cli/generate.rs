//! `scoregen generate`.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::DeviceSpec;
use crate::checkpoint::{self, Weights};
use crate::dataset::page::{decode, fit};
use crate::diffusion::{Guidance, SamplerKind, TimestepSpacing};
use crate::error::Error;
use crate::sample::output::{contact_sheet, write_png};
use crate::sample::{Generator, Init, Options};

/// Longest prompt kept, in words; the tokenizer's own limit may be lower.
const MAX_PROMPT_CHARS: usize = 1000;

/// Arguments of `scoregen generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt(s); each gives `--count` pages. An empty prompt samples unconditionally.
    pub prompts: Vec<String>,
    /// A file with one prompt per line (added after the prompts given as arguments).
    #[arg(long)]
    pub prompts_file: Option<PathBuf>,
    /// What the pages should not look like (replaces the unconditional guidance pass).
    #[arg(long, default_value = "")]
    pub negative: String,
    /// Pages per prompt.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1)]
    pub count: usize,
    /// Seed of the first page (page i uses seed + i); random when left out, and printed.
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// The sampler: ddpm, ddim, dpmpp-2m, euler or heun.
    #[arg(long, default_value = "dpmpp-2m", value_parser = SamplerKind::parse)]
    pub sampler: SamplerKind,
    /// DDIM only: the fraction of the DDPM posterior's noise drawn afresh at each step, in
    /// [0, 1] (0, the default: deterministic; 1: DDPM-like ancestral sampling).
    #[arg(long, allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// DDPM and DDIM only: where the timesteps sit: leading, linspace or trailing (the
    /// default). Leading never reaches the last timestep, so with a zero-terminal-SNR model
    /// it starts from the wrong noise level. The other samplers use the Karras sigma grid.
    #[arg(long, value_parser = TimestepSpacing::parse)]
    pub spacing: Option<TimestepSpacing>,
    /// Sampler steps (network evaluations; Heun uses two per step).
    #[arg(long, allow_negative_numbers = true, default_value_t = 20)]
    pub steps: usize,
    /// Classifier-free guidance scale (1: the conditional model alone). Default: the scale
    /// stored with the checkpoint (`guidance` in its config.json), else 3.
    #[arg(long, allow_negative_numbers = true)]
    pub guidance: Option<f64>,
    /// Guidance rescale phi in [0, 1] (arXiv 2305.08891).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub guidance_rescale: f64,
    /// Page size WIDTHxHEIGHT in pixels (default: the model's).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(usize, usize)>,
    /// Checkpoint folder (default: the shipped model).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Sample with the raw trained weights instead of their EMA.
    #[arg(long)]
    pub raw: bool,
    /// Output: a .png file for a single page, otherwise a folder.
    #[arg(long, short, default_value = "pages")]
    pub out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Start from this page (image-to-image, or inpainting with --mask).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// With --init: how much of the schedule to run, in (0, 1].
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.6)]
    pub strength: f64,
    /// With --init: white where the page is regenerated, black where it is kept.
    #[arg(long, requires = "init")]
    pub mask: Option<PathBuf>,
    /// Do not clip each step's implied clean page to the page's value range.
    #[arg(long)]
    pub no_clip: bool,
    /// Pages sampled together in one batch.
    #[arg(long, allow_negative_numbers = true, default_value_t = 4)]
    pub batch: usize,
}

pub(super) fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let (w, h) =
        text.split_once('x').ok_or_else(|| format!("size `{text}` is not WIDTHxHEIGHT"))?;
    let side = |s: &str| {
        s.parse::<usize>().map_err(|_| format!("size `{text}`: `{s}` is not a whole number"))
    };
    Ok((side(w)?, side(h)?))
}

fn read_prompts(args: &GenerateArgs) -> anyhow::Result<Vec<String>> {
    let mut prompts = args.prompts.clone();
    if let Some(path) = &args.prompts_file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        prompts.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
    }
    if prompts.is_empty() {
        prompts.push(String::new());
    }
    for prompt in &mut prompts {
        if prompt.chars().count() > MAX_PROMPT_CHARS {
            *prompt = prompt.chars().take(MAX_PROMPT_CHARS).collect();
        }
    }
    Ok(prompts)
}

/// Where each page goes, refusing to overwrite without `--force`.
fn outputs(
    out: &Path,
    pages: usize,
    force: bool,
) -> anyhow::Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let single = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let (files, sheet) = if single {
        if pages != 1 {
            return Err(Error::input(format!(
                "--out {} is one file but {pages} pages were asked for: give a folder",
                out.display()
            ))
            .into());
        }
        (vec![out.to_path_buf()], None)
    } else {
        let files = (0..pages).map(|i| out.join(format!("page-{i:03}.png"))).collect();
        (files, (pages > 1).then(|| out.join("sheet.png")))
    };
    if !force && let Some(existing) = files.iter().chain(sheet.iter()).find(|p| p.exists()) {
        return Err(Error::input(format!(
            "{} exists: pass --force to overwrite it",
            existing.display()
        ))
        .into());
    }
    let folder = if single {
        out.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        out.to_path_buf()
    };
    if !folder.as_os_str().is_empty() {
        crate::fsutil::create_dir_all(&folder)?;
    }
    Ok((files, sheet))
}

/// Runs `scoregen generate`.
pub fn run(args: &GenerateArgs, device: DeviceSpec, quiet: bool) -> anyhow::Result<()> {
    if args.count == 0 || args.batch == 0 {
        return Err(Error::input("--count and --batch must be at least 1").into());
    }
    if !(args.strength > 0.0 && args.strength <= 1.0) {
        return Err(Error::input(format!("--strength {} is outside (0, 1]", args.strength)).into());
    }
    let folder = match &args.checkpoint {
        Some(folder) => folder.clone(),
        None => checkpoint::shipped().ok_or_else(|| {
            Error::input("no checkpoint given and the shipped model (checkpoints/small) was not found: pass --checkpoint DIR")
        })?,
    };
    let burn_device = device.device()?;
    let weights = if args.raw { Weights::Raw } else { Weights::Ema };
    let loaded = checkpoint::load(&folder, weights, &burn_device)?;
    let generator = Generator::new(&loaded, burn_device);
    let (width, height) =
        args.size.unwrap_or((loaded.config.page_width, loaded.config.page_height));
    let seed = args.seed.unwrap_or_else(|| rand::random::<u32>() as u64);
    let mut sampler = args.sampler;
    if let Some(eta) = args.eta {
        sampler = sampler.with_eta(eta).map_err(|e| Error::input(format!("--eta: {e}")))?;
    }
    if let Some(spacing) = args.spacing {
        sampler =
            sampler.with_spacing(spacing).map_err(|e| Error::input(format!("--spacing: {e}")))?;
    }
    let options = Options {
        sampler,
        steps: args.steps,
        guidance: Guidance {
            scale: args.guidance.unwrap_or_else(|| loaded.config.guidance_scale()),
            rescale: args.guidance_rescale,
        },
        width,
        height,
        seed,
        clip_x0: !args.no_clip,
    };
    generator.check(&options)?;

    let prompts = read_prompts(args)?;
    for prompt in &prompts {
        let tokens = loaded.tokenizer.encode(prompt);
        if prompt.trim().is_empty() {
            eprintln!("note: empty prompt: sampling unconditionally");
        }
        if !tokens.unknown.is_empty() {
            eprintln!(
                "note: words the model does not know (ignored): {}",
                tokens.unknown.join(", ")
            );
        }
        if tokens.truncated {
            eprintln!(
                "note: prompt cut to the model's {} words: {prompt}",
                loaded.tokenizer.max_tokens()
            );
        }
    }
    let jobs: Vec<String> =
        prompts.iter().flat_map(|p| std::iter::repeat_n(p.clone(), args.count)).collect();
    let (files, sheet) = outputs(&args.out, jobs.len(), args.force)?;
    let init = match &args.init {
        None => None,
        Some(path) => Some(Init {
            page: fit(&decode(path)?, width as u32, height as u32),
            strength: args.strength,
            mask: args
                .mask
                .as_deref()
                .map(|m| decode(m).map(|mask| fit_mask(&mask, width, height)))
                .transpose()?,
        }),
    };
    if !quiet {
        eprintln!(
            "seed {seed}, {} {} steps, guidance {}, {width}x{height}, checkpoint {}",
            options.sampler,
            options.steps,
            options.guidance.scale,
            folder.display()
        );
    }

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((jobs.len() * options.steps) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("pages {msg} {bar:30} {pos}/{len} steps [{elapsed} < {eta}]")
            .expect("a valid template"),
    );
    let mut pages = Vec::new();
    for (b, chunk) in jobs.chunks(args.batch).enumerate() {
        let first = b * args.batch;
        bar.set_message(format!("{}-{} of {}", first + 1, first + chunk.len(), jobs.len()));
        let batch_options = Options { seed: options.seed + first as u64, ..options.clone() };
        let done = bar.position();
        let made = generator.generate(
            chunk,
            &args.negative,
            &batch_options,
            init.as_ref(),
            &mut |step, _| {
                bar.set_position(done + (step * chunk.len()) as u64);
            },
        )?;
        for (i, page) in made.into_iter().enumerate() {
            let index = first + i;
            let mut text = vec![
                ("prompt", jobs[index].clone()),
                ("negative", args.negative.clone()),
                ("seed", (options.seed + index as u64).to_string()),
                ("sampler", options.sampler.name().to_string()),
                ("steps", options.steps.to_string()),
                ("guidance", options.guidance.scale.to_string()),
                ("checkpoint", folder.display().to_string()),
                ("software", format!("scoregen {}", env!("CARGO_PKG_VERSION"))),
            ];
            if let Some(eta) = options.sampler.eta() {
                text.push(("eta", eta.to_string()));
            }
            if let Some(spacing) = options.sampler.spacing() {
                text.push(("spacing", spacing.name().to_string()));
            }
            write_png(&files[index], &page, &text)?;
            pages.push((page, jobs[index].clone()));
        }
    }
    bar.finish_and_clear();
    if let Some(sheet_path) = &sheet {
        write_png(sheet_path, &contact_sheet(&pages, 4), &[])?;
    }
    for file in &files {
        println!("{}", file.display());
    }
    if let Some(sheet_path) = sheet {
        println!("{}", sheet_path.display());
    }
    Ok(())
}

/// Masks are resized like pages but padded with "keep" (black), not white.
fn fit_mask(mask: &image::GrayImage, width: usize, height: usize) -> image::GrayImage {
    let inverted = image::GrayImage::from_fn(mask.width(), mask.height(), |x, y| {
        image::Luma([255 - mask.get_pixel(x, y).0[0]])
    });
    let fitted = fit(&inverted, width as u32, height as u32);
    image::GrayImage::from_fn(fitted.width(), fitted.height(), |x, y| {
        image::Luma([255 - fitted.get_pixel(x, y).0[0]])
    })
}
