//! The denoising network: a text-conditioned UNet over grayscale pages, with its
//! configuration presets, and the combined text-plus-UNet score model.

mod blocks;
pub mod config;
mod flops;
mod model;
pub mod score_model;

pub use config::{Preset, UNetConfig};
pub use model::UNet;
pub use score_model::{ModelConfig, ScoreModel};
