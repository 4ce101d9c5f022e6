//! The UNet's configuration and its named presets.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest page side, in pixels, that sampling and training accept: 16 times the shipped
/// model's page width, far past any page a CPU or a single GPU samples in reasonable time.
pub const MAX_PAGE_SIDE: usize = 8192;

/// Shape of the denoising UNet. Saved as `config.json` beside every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Image channels (1: grayscale pages).
    pub image_channels: usize,
    /// Extra input channels that are not predicted (2: the page coordinates of a crop).
    pub coord_channels: usize,
    /// Space-to-depth factor of the stem (1: none; 2 or 4: a 512-wide page is processed as
    /// a 256- or 128-wide grid of 4 or 16 channels, losslessly).
    pub stem: usize,
    /// Feature channels per resolution level, finest first.
    pub channels: Vec<usize>,
    /// Residual blocks per level on the way down (the way up has one more).
    pub blocks_per_level: usize,
    /// Levels (0 = finest) with self- and cross-attention; the middle block always has it.
    pub attention_levels: Vec<usize>,
    /// Channels per attention head.
    pub head_channels: usize,
    /// GroupNorm groups (divides every channel count).
    pub groups: usize,
    /// Width of the text embeddings the UNet attends to.
    pub text_dim: usize,
}

/// The presets people actually run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// CI-sized: well under a million parameters, trains in seconds at 32x48.
    Tiny,
    /// The shipped CPU model: 512x720 pages through a 4x space-to-depth stem.
    Small,
    /// A GPU model for 256x352 pages.
    Base,
    /// A GPU model for full 512x720 pages.
    Page,
}

impl Preset {
    /// The preset's configuration.
    pub fn config(self) -> UNetConfig {
        match self {
            Self::Tiny => UNetConfig {
                image_channels: 1,
                coord_channels: 0,
                stem: 1,
                channels: vec![16, 32, 48],
                blocks_per_level: 1,
                attention_levels: vec![2],
                head_channels: 16,
                groups: 8,
                text_dim: 32,
            },
            Self::Small => UNetConfig {
                image_channels: 1,
                coord_channels: 2,
                stem: 4,
                channels: vec![48, 96, 160],
                blocks_per_level: 1,
                attention_levels: vec![2],
                head_channels: 32,
                groups: 16,
                text_dim: 96,
            },
            Self::Base => UNetConfig {
                image_channels: 1,
                coord_channels: 2,
                stem: 2,
                channels: vec![96, 192, 256, 384],
                blocks_per_level: 2,
                attention_levels: vec![2, 3],
                head_channels: 64,
                groups: 32,
                text_dim: 256,
            },
            Self::Page => UNetConfig {
                image_channels: 1,
                coord_channels: 2,
                stem: 4,
                channels: vec![128, 256, 384],
                blocks_per_level: 2,
                attention_levels: vec![1, 2],
                head_channels: 64,
                groups: 32,
                text_dim: 256,
            },
        }
    }

    /// The page size (width, height) the preset is meant for.
    pub fn page_size(self) -> (usize, usize) {
        match self {
            Self::Tiny => (32, 48),
            Self::Small | Self::Page => (512, 720),
            Self::Base => (256, 352),
        }
    }

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::Small => "small",
            Self::Base => "base",
            Self::Page => "page",
        }
    }
}

impl UNetConfig {
    /// The factor that page sides must be divisible by: the stem times one halving per
    /// level below the finest.
    pub fn size_multiple(&self) -> usize {
        self.stem << (self.channels.len() - 1)
    }

    /// Checks the configuration for values no network can be built from.
    pub fn validate(&self) -> Result<()> {
        let fail =
            |field: &str, why: String| Err(Error::input(format!("UNet config `{field}`: {why}")));
        if self.image_channels == 0 {
            return fail("image_channels", "must be at least 1".into());
        }
        if ![1, 2, 4, 8].contains(&self.stem) {
            return fail("stem", format!("{} is not one of 1, 2, 4, 8", self.stem));
        }
        if self.channels.is_empty() {
            return fail("channels", "needs at least one level".into());
        }
        for &c in &self.channels {
            if self.groups == 0 || c % self.groups != 0 {
                return fail(
                    "groups",
                    format!("{} does not divide channel count {c}", self.groups),
                );
            }
        }
        for &level in &self.attention_levels {
            if level >= self.channels.len() {
                return fail("attention_levels", format!("level {level} does not exist"));
            }
            if !self.channels[level].is_multiple_of(self.head_channels) {
                return fail(
                    "head_channels",
                    format!("{} does not divide {}", self.head_channels, self.channels[level]),
                );
            }
        }
        if self.text_dim == 0 || self.head_channels == 0 {
            return fail("text_dim", "text_dim and head_channels must be positive".into());
        }
        Ok(())
    }

    /// Checks that a page of `width` x `height` fits the network: both sides positive
    /// multiples of [`UNetConfig::size_multiple`] and at most [`MAX_PAGE_SIDE`].
    pub fn check_size(&self, width: usize, height: usize) -> Result<()> {
        let m = self.size_multiple();
        if width == 0 || height == 0 || !width.is_multiple_of(m) || !height.is_multiple_of(m) {
            return Err(Error::input(format!(
                "page size {width}x{height} does not fit this model: both sides must be \
                 positive multiples of {m}"
            )));
        }
        if width.max(height) > MAX_PAGE_SIDE {
            return Err(Error::input(format!(
                "page size {width}x{height} is too large: each side must be at most \
                 {MAX_PAGE_SIDE} px"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for preset in [Preset::Tiny, Preset::Small, Preset::Base, Preset::Page] {
            let config = preset.config();
            config.validate().unwrap();
            let (w, h) = preset.page_size();
            config.check_size(w, h).unwrap();
        }
    }

    #[test]
    fn bad_sizes_name_the_multiple() {
        let err = Preset::Small.config().check_size(500, 720).unwrap_err().to_string();
        assert!(err.contains("500x720") && err.contains("multiples of 16"), "{err}");
    }

    #[test]
    fn sizes_stop_at_the_longest_side() {
        let config = Preset::Small.config();
        config.check_size(MAX_PAGE_SIDE, 512).unwrap();
        let err = config.check_size(512, MAX_PAGE_SIDE + 16).unwrap_err().to_string();
        assert!(err.contains("too large") && err.contains("at most 8192"), "{err}");
    }
}
