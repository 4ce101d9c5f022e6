//! From prompts to pages: the trained score model as a denoiser under classifier-free
//! guidance (conditional and unconditional passes batched into one call), any of the
//! samplers, and image-to-image and inpainting from a partial page.

pub mod output;

use burn::tensor::{Device, Tensor, TensorData};
use image::GrayImage;

use crate::checkpoint::LoadedModel;
use crate::diffusion::sampler::{Denoiser, Level, Outputs, StepHook, sample};
use crate::diffusion::{Guidance, HostNoise, SamplerKind, Schedule};
use crate::error::{Error, Result};
use crate::text::ids_tensor;
use crate::unet::score_model::{ScoreModel, coordinate_channels};

/// How to sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The sampler, with its eta and timestep spacing where it has them.
    pub sampler: SamplerKind,
    /// Network evaluations per page (Heun uses two per step).
    pub steps: usize,
    /// Classifier-free guidance.
    pub guidance: Guidance,
    /// Page width in pixels.
    pub width: usize,
    /// Page height in pixels.
    pub height: usize,
    /// Seed of the first page; page `i` of a run uses `seed + i`, so any page can be
    /// made again on its own.
    pub seed: u64,
    /// Clip each step's implied clean page to `[-1, 1]`.
    pub clip_x0: bool,
}

/// A partial page to start from.
#[derive(Clone, Debug)]
pub struct Init {
    /// The page, already at the output size.
    pub page: GrayImage,
    /// Image-to-image: how much of the noise schedule to run, in `(0, 1]` (1 ignores the
    /// page except where a mask keeps it).
    pub strength: f64,
    /// Inpainting: white (255) where the page is regenerated, black where it is kept.
    pub mask: Option<GrayImage>,
}

/// Generates pages with a loaded model.
pub struct Generator<'a> {
    loaded: &'a LoadedModel,
    device: Device,
    schedule: Schedule,
}

/// Gray values `[0, 255]` to model values `[-1, 1]`.
fn to_unit(image: &GrayImage) -> Vec<f32> {
    image.as_raw().iter().map(|&p| p as f32 / 127.5 - 1.0).collect()
}

impl<'a> Generator<'a> {
    /// A generator on `device` (where the model was loaded).
    pub fn new(loaded: &'a LoadedModel, device: Device) -> Self {
        Self { schedule: Schedule::new(&loaded.config.schedule), loaded, device }
    }

    /// Checks options against the model, naming the bad value and the valid range.
    pub fn check(&self, options: &Options) -> Result<()> {
        self.loaded.config.unet.check_size(options.width, options.height)?;
        if !(1..=1000).contains(&options.steps) {
            return Err(Error::input(format!("steps {} is outside 1..=1000", options.steps)));
        }
        let g = options.guidance;
        if !(g.scale.is_finite() && (0.0..=30.0).contains(&g.scale)) {
            return Err(Error::input(format!("guidance {} is outside 0..=30", g.scale)));
        }
        if !(0.0..=1.0).contains(&g.rescale) {
            return Err(Error::input(format!("guidance rescale {} is outside 0..=1", g.rescale)));
        }
        if let Some(eta) = options.sampler.eta()
            && !(0.0..=1.0).contains(&eta)
        {
            return Err(Error::input(format!("eta {eta} is outside 0..=1")));
        }
        Ok(())
    }

    /// The network as a sampler sees it for `prompts` under `options`: classifier-free
    /// guidance against `negative` (the empty prompt for plain guidance) in one batched
    /// call, and the implied clean page clipped when `options.clip_x0`.
    pub fn denoiser(
        &self,
        prompts: &[String],
        negative: &str,
        options: &Options,
    ) -> GuidedDenoiser<'_> {
        let (batch, width, height) = (prompts.len(), options.width, options.height);
        let device = &self.device;
        let model = &self.loaded.model;

        // 1. The text contexts: conditional, then the negative (or empty) prompt.
        let tokenizer = &self.loaded.tokenizer;
        let mut ids: Vec<Vec<u32>> = prompts.iter().map(|p| tokenizer.encode(p).ids).collect();
        let guided = options.guidance.is_active();
        if guided {
            ids.extend(std::iter::repeat_n(tokenizer.encode(negative).ids, batch));
        }
        let context = model.encode(ids_tensor(&ids, device));

        // 2. The page coordinates of a whole page, for models trained on crops.
        let coords = (self.loaded.config.unet.coord_channels > 0).then(|| {
            let origins = vec![(0, 0); ids.len()];
            coordinate_channels(&origins, height, width, width, height, device)
        });
        GuidedDenoiser {
            model,
            context,
            coords,
            guidance: guided.then_some(options.guidance),
            clip_x0: options.clip_x0,
        }
    }

    /// Generates one page per prompt, all in one batch.
    ///
    /// `progress` is called after every sampler step with `(step, total)`.
    pub fn generate(
        &self,
        prompts: &[String],
        negative: &str,
        options: &Options,
        init: Option<&Init>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<GrayImage>> {
        self.check(options)?;
        let (batch, width, height) = (prompts.len(), options.width, options.height);
        let device = &self.device;

        // 1. The network with its prompts: one call per step for both guidance passes.
        let mut denoiser = self.denoiser(prompts, negative, options);

        // 2. Initial noise drawn on the host, page by page, so a seed is one page anywhere.
        let noise: Vec<f32> = (0..batch)
            .flat_map(|i| HostNoise::new(options.seed + i as u64).normal_vec(width * height))
            .collect();
        let x_noise =
            Tensor::<4>::from_data(TensorData::new(noise, [batch, 1, height, width]), device);
        let mut ancestral = HostNoise::new(options.seed ^ 0x5eed);

        // 3. Sample, from noise or from a partly noised page.
        let sampler = options.sampler.build();
        let total = options.steps;
        let mut reporter = Progress { progress, total };
        let x0 = match init {
            None => sample(
                &*sampler,
                &self.schedule,
                self.loaded.config.prediction,
                total,
                x_noise,
                None,
                &mut denoiser,
                &mut ancestral,
                &mut reporter,
            ),
            Some(init) => self.sample_from_init(
                init,
                options,
                batch,
                x_noise,
                &mut denoiser,
                &mut ancestral,
                &mut reporter,
            )?,
        };
        Ok(to_pages(x0))
    }

    #[allow(clippy::too_many_arguments)]
    fn sample_from_init(
        &self,
        init: &Init,
        options: &Options,
        batch: usize,
        x_noise: Tensor<4>,
        denoiser: &mut dyn Denoiser,
        ancestral: &mut HostNoise,
        reporter: &mut Progress<'_>,
    ) -> Result<Tensor<4>> {
        let (width, height) = (options.width, options.height);
        let device = &self.device;
        if init.page.dimensions() != (width as u32, height as u32) {
            return Err(Error::input(format!(
                "the init page is {}x{} but the output is {width}x{height}",
                init.page.width(),
                init.page.height()
            )));
        }
        let page: Vec<f32> = (0..batch).flat_map(|_| to_unit(&init.page)).collect();
        let known =
            Tensor::<4>::from_data(TensorData::new(page, [batch, 1, height, width]), device);
        let sampler = options.sampler.build();
        let prediction = self.loaded.config.prediction;
        let Some(mask) = &init.mask else {
            let init = Some((known, init.strength));
            return Ok(sample(
                &*sampler,
                &self.schedule,
                prediction,
                options.steps,
                x_noise,
                init,
                denoiser,
                ancestral,
                reporter,
            ));
        };
        if mask.dimensions() != init.page.dimensions() {
            return Err(Error::input(format!(
                "the mask is {}x{} but the init page is {}x{}",
                mask.width(),
                mask.height(),
                init.page.width(),
                init.page.height()
            )));
        }
        let regenerate: Vec<f32> = (0..batch)
            .flat_map(|_| mask.as_raw().iter().map(|&m| if m >= 128 { 1.0 } else { 0.0 }))
            .collect();
        let regenerate =
            Tensor::<4>::from_data(TensorData::new(regenerate, [batch, 1, height, width]), device);
        let mut hook = Inpaint {
            known: known.clone(),
            regenerate,
            noise: HostNoise::new(options.seed ^ 0x1a7e),
            inner: reporter,
            device: device.clone(),
        };
        let init = Some((known, init.strength));
        Ok(sample(
            &*sampler,
            &self.schedule,
            prediction,
            options.steps,
            x_noise,
            init,
            denoiser,
            ancestral,
            &mut hook,
        ))
    }
}

/// The trained network as a [`Denoiser`]: prompts encoded once, both guidance passes in
/// one network batch, page coordinates appended. Guidance and clipping are applied by the
/// sampler's step.
pub struct GuidedDenoiser<'a> {
    model: &'a ScoreModel,
    /// `[passes, tokens, text_dim]`: the prompts, then as many negative prompts if guided.
    context: Tensor<3>,
    /// `[passes, coord_channels, height, width]`, for models that take page coordinates.
    coords: Option<Tensor<4>>,
    /// `None` when the scale is 1 and the unconditional pass is skipped.
    guidance: Option<Guidance>,
    clip_x0: bool,
}

impl Denoiser for GuidedDenoiser<'_> {
    /// Shapes: `x_t` is `[batch, channels, height, width]`.
    fn predict(&mut self, x_t: Tensor<4>, t: f64) -> Outputs {
        let [batch, _, _, _] = x_t.dims();
        let passes = if self.guidance.is_some() { 2 * batch } else { batch };

        // 1. The doubled batch `[x; x]` with the page coordinates.
        let x = match self.guidance {
            Some(_) => Tensor::cat(vec![x_t.clone(), x_t.clone()], 0),
            None => x_t.clone(),
        };
        let x = match &self.coords {
            Some(coords) => Tensor::cat(vec![x, coords.clone()], 1),
            None => x,
        };

        // 2. One network call for both passes, split into its halves.
        let t_batch = Tensor::<1>::full([passes], t as f32, &x_t.device());
        let output = self.model.denoise(x, t_batch, self.context.clone());
        let (cond, uncond) = match self.guidance {
            Some(guidance) => {
                let uncond = output.clone().narrow(0, batch, batch);
                (output.narrow(0, 0, batch), Some((uncond, guidance)))
            }
            None => (output, None),
        };
        Outputs { cond, uncond, clip_x0: self.clip_x0 }
    }
}

/// Reports progress after each step.
struct Progress<'a> {
    progress: &'a mut dyn FnMut(usize, usize),
    total: usize,
}

impl StepHook for Progress<'_> {
    fn after_step(&mut self, step: usize, total: usize, _: Level, x: Tensor<4>) -> Tensor<4> {
        (self.progress)((step + 1).min(self.total), total);
        x
    }
}

/// Inpainting by replacement: after every step the kept part of the page is reset to the
/// known page noised to the current level, so the regenerated part grows around it.
struct Inpaint<'a, 'b> {
    known: Tensor<4>,
    regenerate: Tensor<4>,
    noise: HostNoise,
    inner: &'a mut Progress<'b>,
    device: Device,
}

impl StepHook for Inpaint<'_, '_> {
    fn after_step(&mut self, step: usize, total: usize, level: Level, x: Tensor<4>) -> Tensor<4> {
        let x = self.inner.after_step(step, total, level, x);
        let eps = self.noise.normal(self.known.dims(), &self.device);
        let noised = self.known.clone().mul_scalar(level.alpha()) + eps.mul_scalar(level.sigma());
        let keep = self.regenerate.clone().neg().add_scalar(1.0);
        x * self.regenerate.clone() + noised * keep
    }
}

/// Model values to 8-bit pages.
fn to_pages(x: Tensor<4>) -> Vec<GrayImage> {
    let [batch, _, height, width] = x.dims();
    let values =
        x.clamp(-1.0, 1.0).into_data().convert::<f32>().try_to_vec::<f32>().expect("float pages");
    values
        .chunks(width * height)
        .take(batch)
        .map(|page| {
            let pixels = page.iter().map(|&v| ((v + 1.0) * 127.5).round() as u8).collect();
            GrayImage::from_raw(width as u32, height as u32, pixels).expect("the buffer fits")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cpu, values};
    use crate::text::Tokenizer;
    use crate::unet::{ModelConfig, Preset};
    use burn::module::{Module, ModuleMapper, Param};

    /// Adds seeded noise to every weight. A freshly initialised model has zero-initialised
    /// output convolutions, through which the prompt cannot reach the output at all.
    struct Nudge(HostNoise);

    impl ModuleMapper for Nudge {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let noise = &mut self.0;
            param.map(|w| {
                let dims = w.dims();
                let values = noise.normal_vec(dims.iter().product());
                let delta = Tensor::<D>::from_data(TensorData::new(values, dims), &w.device());
                w + delta.mul_scalar(0.05)
            })
        }
    }

    /// A tiny model that reads page coordinates and whose prompts matter.
    fn tiny_model() -> LoadedModel {
        let device = cpu();
        let captions = ["a music score, instrumentation is piano", "organ fugue in d minor"];
        let tokenizer = Tokenizer::from_captions(captions, 1, 8);
        let mut config =
            ModelConfig::from_preset(Preset::Tiny, tokenizer.vocab_size(), tokenizer.max_tokens());
        config.unet.coord_channels = 2;
        config.validate().unwrap();
        let model = config.init_seeded(3, &device).map(&mut Nudge(HostNoise::new(4)));
        LoadedModel { model, config, tokenizer, folder: Default::default() }
    }

    fn options_at(loaded: &LoadedModel, scale: f64) -> Options {
        Options {
            sampler: SamplerKind::default(),
            steps: 3,
            guidance: Guidance { scale, rescale: 0.0 },
            width: loaded.config.page_width,
            height: loaded.config.page_height,
            seed: 0,
            clip_x0: false,
        }
    }

    /// The network output for one page and one prompt, in a call of its own.
    fn single_pass(
        loaded: &LoadedModel,
        x_t: &Tensor<4>,
        page: usize,
        prompt: &str,
        t: f64,
    ) -> Vec<f32> {
        let device = x_t.device();
        let [_, _, height, width] = x_t.dims();
        let context =
            loaded.model.encode(ids_tensor(&[loaded.tokenizer.encode(prompt).ids], &device));
        let coords = coordinate_channels(&[(0, 0)], height, width, width, height, &device);
        let x = Tensor::cat(vec![x_t.clone().narrow(0, page, 1), coords], 1);
        let t = Tensor::<1>::full([1], t as f32, &device);
        values(&loaded.model.denoise(x, t, context))
    }

    #[test]
    fn batched_guidance_equals_separate_passes_combined() {
        let loaded = tiny_model();
        let device = cpu();
        let generator = Generator::new(&loaded, device.clone());
        let (width, height) = (loaded.config.page_width, loaded.config.page_height);
        let prompts = vec!["piano".to_string(), "organ fugue".to_string()];
        let x_t = HostNoise::new(9).normal([2, 1, height, width], &device);
        let (t, scale, negative) = (600.0, 3.0, "d minor");
        let options = options_at(&loaded, scale);
        let batched = generator.denoiser(&prompts, negative, &options).predict(x_t.clone(), t);
        let (uncond, guidance) = batched.uncond.expect("scale 3 runs the unconditional pass");
        assert_eq!(guidance, options.guidance);
        let (batched_cond, batched_uncond) = (values(&batched.cond), values(&uncond));
        let n = width * height;
        let mut spread = 0.0f32;
        for (page, prompt) in prompts.iter().enumerate() {
            let cond = single_pass(&loaded, &x_t, page, prompt, t);
            let uncond = single_pass(&loaded, &x_t, page, negative, t);
            for i in 0..n {
                let (c, u) = (batched_cond[page * n + i], batched_uncond[page * n + i]);
                assert!((c - cond[i]).abs() <= 1e-5, "page {page} pixel {i}: {c} vs {}", cond[i]);
                assert!(
                    (u - uncond[i]).abs() <= 1e-5,
                    "page {page} pixel {i}: {u} vs {}",
                    uncond[i]
                );
                spread = spread.max((cond[i] - uncond[i]).abs());
            }
        }
        // The prompts must actually reach the output, or the check above proves nothing.
        assert!(spread > 1e-3, "conditional and unconditional outputs differ by {spread} at most");

        // At scale 1 the unconditional pass is skipped: the output is the conditional one.
        let plain = generator
            .denoiser(&prompts, negative, &options_at(&loaded, 1.0))
            .predict(x_t.clone(), t);
        assert!(plain.uncond.is_none());
        let plain = values(&plain.cond);
        for (page, prompt) in prompts.iter().enumerate() {
            let cond = single_pass(&loaded, &x_t, page, prompt, t);
            for i in 0..n {
                assert!(
                    (plain[page * n + i] - cond[i]).abs() <= 1e-5,
                    "scale 1, page {page} pixel {i}"
                );
            }
        }
    }

    #[test]
    fn a_negative_prompt_changes_the_output() {
        let loaded = tiny_model();
        let device = cpu();
        let generator = Generator::new(&loaded, device.clone());
        let (width, height) = (loaded.config.page_width, loaded.config.page_height);
        let prompts = vec!["piano".to_string()];
        let options = options_at(&loaded, 3.0);
        let x_t = HostNoise::new(9).normal([1, 1, height, width], &device);
        let uncond = |negative: &str| {
            let outputs =
                generator.denoiser(&prompts, negative, &options).predict(x_t.clone(), 600.0);
            values(&outputs.uncond.expect("guided").0)
        };
        let (none, organ) = (uncond(""), uncond("organ"));
        let largest = none.iter().zip(&organ).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(largest > 1e-3, "a negative prompt moved the output by {largest} at most");

        // Through whole sampling runs too, where the same negative prompt repeats exactly.
        let clipped = Options { clip_x0: true, ..options };
        let run = |negative: &str| {
            generator.generate(&prompts, negative, &clipped, None, &mut |_, _| {}).unwrap()
        };
        let (with_none, with_organ) = (run(""), run("organ"));
        assert_ne!(with_none, with_organ, "the negative prompt left the pages unchanged");
        assert_eq!(run("organ"), with_organ);
    }
}
