//! The score model: text encoder plus UNet, with the diffusion settings it was trained
//! under. This is what a checkpoint holds.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::config::{Preset, UNetConfig};
use super::model::UNet;
use crate::diffusion::{Prediction, ScheduleConfig};
use crate::error::Result;
use crate::text::{TextEncoder, TextEncoderConfig};

/// Everything needed to rebuild a model: saved as `config.json` in a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The preset the model started from, for display.
    pub preset: String,
    /// The UNet.
    pub unet: UNetConfig,
    /// The text encoder.
    pub text: TextEncoderConfig,
    /// The training noise schedule.
    pub schedule: ScheduleConfig,
    /// What the UNet predicts.
    pub prediction: Prediction,
    /// Page width the model generates by default, in pixels.
    pub page_width: usize,
    /// Page height the model generates by default, in pixels.
    pub page_height: usize,
    /// The guidance scale the model samples best at, measured after training: `generate`'s
    /// default for this checkpoint (`None`: the tool's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<f64>,
}

impl ModelConfig {
    /// A preset's configuration with a tokenizer's vocabulary.
    pub fn from_preset(preset: Preset, vocab_size: usize, max_tokens: usize) -> Self {
        let unet = preset.config();
        let (page_width, page_height) = preset.page_size();
        let heads = (unet.text_dim / 32).max(1);
        Self {
            preset: preset.name().to_string(),
            text: TextEncoderConfig {
                vocab_size,
                max_tokens,
                dim: unet.text_dim,
                layers: 2,
                heads,
            },
            unet,
            schedule: ScheduleConfig::default(),
            prediction: Prediction::V,
            page_width,
            page_height,
            guidance: None,
        }
    }

    /// The guidance scale to sample at when none is asked for: the model's own, else the
    /// tool's default.
    pub fn guidance_scale(&self) -> f64 {
        self.guidance.unwrap_or(crate::diffusion::Guidance::default().scale)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let check = |field: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(crate::Error::input(format!(
                    "model config: {field} {value} is outside {}..={}",
                    range.start(),
                    range.end()
                )))
            }
        };
        check("schedule.timesteps", self.schedule.timesteps, 2..=100_000)?;
        check("text.max_tokens", self.text.max_tokens, 1..=4096)?;
        check("text.layers", self.text.layers, 0..=64)?;
        check("text.vocab_size", self.text.vocab_size, 1..=1_000_000)?;
        check("text.dim", self.text.dim, 1..=4096)?;
        check("unet.channels levels", self.unet.channels.len(), 1..=8)?;
        for &c in &self.unet.channels {
            check("unet.channels", c, 1..=4096)?;
        }
        self.unet.validate()?;
        self.unet.check_size(self.page_width, self.page_height)?;
        if self.text.dim != self.unet.text_dim {
            return Err(crate::Error::input(format!(
                "model config: text.dim {} differs from unet.text_dim {}",
                self.text.dim, self.unet.text_dim
            )));
        }
        if self.text.heads == 0 || !self.text.dim.is_multiple_of(self.text.heads) {
            return Err(crate::Error::input(format!(
                "model config: text.heads {} does not divide text.dim {}",
                self.text.heads, self.text.dim
            )));
        }
        if let Some(scale) = self.guidance
            && !(0.0..=30.0).contains(&scale)
        {
            return Err(crate::Error::input(format!(
                "model config: guidance {scale} is outside 0..=30"
            )));
        }
        Ok(())
    }

    /// Builds a freshly initialised model from the backend's current random stream.
    pub fn init(&self, device: &Device) -> ScoreModel {
        let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.init_now(device)
    }

    /// Builds a model whose initial weights are fixed by `seed`.
    ///
    /// Burn's initialisers draw from one process-wide stream per backend; the lock keeps
    /// any other initialisation from drawing in between the seeding and this one.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> ScoreModel {
        let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        self.init_now(device)
    }

    /// Builds the model and draws every initial weight before returning. Burn initialises
    /// parameters lazily, on first use; left lazy, the draws would happen outside the lock,
    /// interleaved with other threads' draws from the same stream.
    fn init_now(&self, device: &Device) -> ScoreModel {
        let model = ScoreModel { text: self.text.init(device), unet: self.unet.init(device) };
        model.visit(&mut Materialise);
        model
    }
}

/// Touches every float parameter, which runs its pending initialiser.
struct Materialise;

impl burn::module::ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Serialises model initialisation (see [`ModelConfig::init_seeded`]).
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Text encoder and UNet.
#[derive(Module, Debug)]
pub struct ScoreModel {
    /// Encodes prompts.
    pub text: TextEncoder,
    /// Denoises pages.
    pub unet: UNet,
}

impl ScoreModel {
    /// Encodes token ids into the context the UNet attends to.
    ///
    /// Shapes: `ids` is `[batch, tokens]`; the result is `[batch, tokens, text_dim]`.
    pub fn encode(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.text.forward(ids)
    }

    /// The network output for noisy pages.
    ///
    /// Shapes: `x` is `[batch, image_channels + coord_channels, height, width]`, `t` is
    /// `[batch]` (timesteps on the schedule's 0 to T - 1 scale), `context` is
    /// `[batch, tokens, text_dim]` from [`ScoreModel::encode`]; the result is
    /// `[batch, image_channels, height, width]`, the configured prediction (v, eps or x0).
    pub fn denoise(&self, x: Tensor<4>, t: Tensor<1>, context: Tensor<3>) -> Tensor<4> {
        self.unet.forward(x, t, context)
    }
}

/// Page-coordinate channels for a crop: channel 0 is the horizontal position and channel
/// 1 the vertical position of each pixel on the whole page, both scaled to `[-1, 1]`.
///
/// `crops` holds `(left, top)` of each crop in pixels; the result is
/// `[crops.len(), 2, height, width]`.
pub fn coordinate_channels(
    crops: &[(usize, usize)],
    height: usize,
    width: usize,
    page_width: usize,
    page_height: usize,
    device: &Device,
) -> Tensor<4> {
    let scale = |p: usize, size: usize| (2.0 * (p as f32 + 0.5) / size as f32) - 1.0;
    let mut values = Vec::with_capacity(crops.len() * 2 * height * width);
    for &(left, top) in crops {
        for _row in 0..height {
            values.extend((0..width).map(|col| scale(left + col, page_width)));
        }
        for row in 0..height {
            let y = scale(top + row, page_height);
            values.extend(std::iter::repeat_n(y, width));
        }
    }
    Tensor::from_data(TensorData::new(values, [crops.len(), 2, height, width]), device)
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
    use burn::tensor::{Device, Int, Tensor, TensorData};

    use super::*;
    use crate::diffusion::{HostNoise, Schedule};
    use crate::testing::{cpu, values};
    use crate::text::ids_tensor;
    use crate::text::tokenizer::{EMPTY, PAD};

    /// A real prompt's token ids, and the empty prompt's.
    const PROMPT: [u32; 8] = [3, 4, 5, 6, PAD, PAD, PAD, PAD];
    const NO_PROMPT: [u32; 8] = [EMPTY, PAD, PAD, PAD, PAD, PAD, PAD, PAD];

    /// A fixed training batch: noisy pages, their v-targets, timesteps and prompts.
    struct Batch {
        x_t: Tensor<4>,
        target: Tensor<4>,
        t: Tensor<1>,
        ids: Tensor<2, Int>,
    }

    /// Two 48x32 pages of horizontal lines 4 px apart (staff-like), one with the real prompt
    /// and one with the empty prompt, at fixed noise and timesteps.
    fn batch(config: &ModelConfig, device: &Device) -> Batch {
        let (height, width) = (48, 32);
        let schedule = Schedule::new(&config.schedule);
        let timesteps = [200usize, 600];
        let mut x0 = Vec::new();
        for offset in 0..timesteps.len() {
            for row in 0..height {
                let ink = (row + offset) % 4 == 0 && (8..40).contains(&row);
                x0.extend(std::iter::repeat_n(if ink { -1.0f32 } else { 1.0 }, width));
            }
        }
        let shape = [timesteps.len(), 1, height, width];
        let x0 = Tensor::<4>::from_data(TensorData::new(x0, shape), device);
        let eps = HostNoise::new(5).normal(shape, device);

        // x_t = alpha x0 + sigma eps, and the v-target alpha eps - sigma x0 (arXiv 2202.00512).
        let column = |f: &dyn Fn(f64) -> f64| {
            let values: Vec<f32> =
                timesteps.iter().map(|&t| f(schedule.alpha_bar(t)) as f32).collect();
            Tensor::<1>::from_floats(values.as_slice(), device).reshape([timesteps.len(), 1, 1, 1])
        };
        let alpha = column(&|a| a.sqrt());
        let sigma = column(&|a| (1.0 - a).sqrt());
        let x_t = alpha.clone() * x0.clone() + sigma.clone() * eps.clone();
        let target = alpha * eps - sigma * x0;
        let t: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
        Batch {
            x_t,
            target,
            t: Tensor::from_floats(t.as_slice(), device),
            ids: ids_tensor(&[PROMPT.to_vec(), NO_PROMPT.to_vec()], device),
        }
    }

    /// Mean squared error of the model's v-prediction on the batch.
    fn loss(model: &ScoreModel, batch: &Batch) -> Tensor<1> {
        let context = model.encode(batch.ids.clone());
        let output = model.denoise(batch.x_t.clone(), batch.t.clone(), context);
        (output - batch.target.clone()).powf_scalar(2.0).mean()
    }

    /// One AdamW step on the batch's loss.
    fn step(
        model: ScoreModel,
        optimizer: &mut ModuleOptimizer,
        batch: &Batch,
        lr: f64,
    ) -> ScoreModel {
        let grads = GradientsParams::from_grads(loss(&model, batch).backward(), &model);
        optimizer.step(lr, model, grads)
    }

    /// The model's output on the batch's first noisy page under `ids`, and the context.
    fn outputs(model: &ScoreModel, batch: &Batch, ids: &[u32; 8]) -> (Vec<f32>, Vec<f32>) {
        let model = model.valid();
        let device = cpu();
        let x = batch.x_t.clone().inner().narrow(0, 0, 1);
        let t = batch.t.clone().inner().narrow(0, 0, 1);
        let context = model.encode(ids_tensor(&[ids.to_vec()], &device));
        (values(&model.denoise(x, t, context.clone())), values(&context))
    }

    #[test]
    fn the_prompt_matters_after_one_step_and_not_before() {
        let device = cpu().autodiff();
        let config = ModelConfig::from_preset(Preset::Tiny, 12, 8);
        let model = config.init_seeded(0, &device);
        let batch = batch(&config, &device);

        // Before training the two prompts encode differently, but the outputs are
        // bit-identical: every branch the text reaches (a residual block's second
        // convolution, an attention block's output projection) starts at zero.
        let (conditional, text) = outputs(&model, &batch, &PROMPT);
        let (unconditional, empty_text) = outputs(&model, &batch, &NO_PROMPT);
        assert_ne!(text, empty_text, "the prompts encode alike");
        assert_eq!(conditional, unconditional, "an untrained model already sees the prompt");

        let mut optimizer = AdamWConfig::new().init();
        let model = step(model, &mut optimizer, &batch, 1e-3);
        let (conditional, _) = outputs(&model, &batch, &PROMPT);
        let (unconditional, _) = outputs(&model, &batch, &NO_PROMPT);
        let largest =
            conditional.iter().zip(&unconditional).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(largest > 1e-4, "after one step the prompts differ by at most {largest}");
    }

    #[test]
    fn tiny_overfits_one_batch() {
        // Fixed pages, noise and timesteps: the loss falls ~20x in 30 steps (~0.2 s each).
        let device = cpu().autodiff();
        let config = ModelConfig::from_preset(Preset::Tiny, 12, 8);
        let mut model = config.init_seeded(1, &device);
        let batch = batch(&config, &device);
        let mut optimizer = AdamWConfig::new().init();
        let first = loss(&model, &batch).into_scalar::<f32>();
        for _ in 0..30 {
            model = step(model, &mut optimizer, &batch, 3e-3);
        }
        let last = loss(&model, &batch).into_scalar::<f32>();
        assert!(last < first / 10.0, "the loss fell from {first} only to {last}");
    }

    #[test]
    fn out_of_range_sizes_name_the_field() {
        let base = ModelConfig::from_preset(crate::unet::Preset::Tiny, 64, 16);
        base.validate().unwrap();
        let mut bad = base.clone();
        bad.schedule.timesteps = 0;
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("schedule.timesteps 0"), "{err}");
        bad.schedule.timesteps = 1;
        assert!(bad.validate().unwrap_err().to_string().contains("schedule.timesteps"));
        let mut bad = base.clone();
        bad.text.max_tokens = 1 << 20;
        assert!(bad.validate().unwrap_err().to_string().contains("text.max_tokens"));
        let mut bad = base.clone();
        bad.text.layers = 1000;
        assert!(bad.validate().unwrap_err().to_string().contains("text.layers"));
        let mut bad = base;
        bad.unet.channels[0] = 1 << 20;
        assert!(bad.validate().unwrap_err().to_string().contains("unet.channels"));
    }
}
