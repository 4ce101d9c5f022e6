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
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
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
    /// `[batch]`, `context` is `[batch, tokens, text_dim]`; the result is
    /// `[batch, image_channels, height, width]`.
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
