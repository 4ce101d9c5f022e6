//! The text-conditioned UNet (arXiv 1505.04597, as used for diffusion in arXiv 2006.11239
//! and 2112.10752) with an optional lossless space-to-depth stem (arXiv 2301.11093).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{
    GroupNorm, GroupNormConfig, Linear, LinearConfig, PixelShuffle, PixelShuffleConfig,
    PixelUnshuffle, PixelUnshuffleConfig,
};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use super::blocks::{AttentionBlock, Downsample, ResBlock, Upsample, conv3x3, timestep_features};
use super::config::UNetConfig;

/// One resolution level on the way down.
#[derive(Module, Debug)]
struct DownLevel {
    blocks: Vec<ResBlock>,
    attentions: Vec<AttentionBlock>,
    downsample: Option<Downsample>,
}

/// One resolution level on the way up.
#[derive(Module, Debug)]
struct UpLevel {
    blocks: Vec<ResBlock>,
    attentions: Vec<AttentionBlock>,
    upsample: Option<Upsample>,
}

/// The denoising network.
#[derive(Module, Debug)]
pub struct UNet {
    unshuffle: Option<PixelUnshuffle>,
    shuffle: Option<PixelShuffle>,
    conv_in: Conv2d,
    time_in: Linear,
    time_out: Linear,
    text_pool: Linear,
    down: Vec<DownLevel>,
    mid_first: ResBlock,
    mid_attention: AttentionBlock,
    mid_second: ResBlock,
    up: Vec<UpLevel>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    time_features: usize,
}

impl UNetConfig {
    /// Builds a freshly initialised UNet. The config must be valid ([`UNetConfig::validate`]).
    pub fn init(&self, device: &Device) -> UNet {
        let stem_area = self.stem * self.stem;
        let input = (self.image_channels + self.coord_channels) * stem_area;
        let first = self.channels[0];
        let embedding = 4 * first;
        let heads = |c: usize| c / self.head_channels;
        let attention = |level: usize| self.attention_levels.contains(&level);

        // Down path: remember the width of every skip connection.
        let mut skips = vec![first];
        let mut width = first;
        let mut down = Vec::new();
        for (level, &channels) in self.channels.iter().enumerate() {
            let mut blocks = Vec::new();
            let mut attentions = Vec::new();
            for _ in 0..self.blocks_per_level {
                blocks.push(ResBlock::new(width, channels, embedding, self.groups, device));
                width = channels;
                if attention(level) {
                    attentions.push(AttentionBlock::new(
                        width,
                        self.text_dim,
                        heads(width),
                        self.groups,
                        device,
                    ));
                }
                skips.push(width);
            }
            let last = level + 1 == self.channels.len();
            let downsample = (!last).then(|| Downsample::new(width, device));
            if !last {
                skips.push(width);
            }
            down.push(DownLevel { blocks, attentions, downsample });
        }

        // Middle.
        let deepest = width;
        let mid_heads = heads(deepest).max(1);

        // Up path: each block takes one skip.
        let mut up = Vec::new();
        for (level, &channels) in self.channels.iter().enumerate().rev() {
            let mut blocks = Vec::new();
            let mut attentions = Vec::new();
            for _ in 0..=self.blocks_per_level {
                let skip = skips.pop().expect("one skip per up block");
                blocks.push(ResBlock::new(width + skip, channels, embedding, self.groups, device));
                width = channels;
                if attention(level) {
                    attentions.push(AttentionBlock::new(
                        width,
                        self.text_dim,
                        heads(width),
                        self.groups,
                        device,
                    ));
                }
            }
            let upsample = (level > 0).then(|| Upsample::new(width, device));
            up.push(UpLevel { blocks, attentions, upsample });
        }

        UNet {
            unshuffle: (self.stem > 1).then(|| PixelUnshuffleConfig::new(self.stem).init()),
            shuffle: (self.stem > 1).then(|| PixelShuffleConfig::new(self.stem).init()),
            conv_in: conv3x3(input, first, device),
            time_in: LinearConfig::new(first, embedding).init(device),
            time_out: LinearConfig::new(embedding, embedding).init(device),
            text_pool: LinearConfig::new(self.text_dim, embedding).init(device),
            down,
            mid_first: ResBlock::new(deepest, deepest, embedding, self.groups, device),
            mid_attention: AttentionBlock::new(
                deepest,
                self.text_dim,
                mid_heads,
                self.groups,
                device,
            ),
            mid_second: ResBlock::new(deepest, deepest, embedding, self.groups, device),
            up,
            norm_out: GroupNormConfig::new(self.groups, first).init(device),
            conv_out: conv3x3(first, self.image_channels * stem_area, device),
            time_features: first,
        }
    }
}

impl UNet {
    /// Predicts the diffusion target for noisy pages.
    ///
    /// Shapes: `x` is `[batch, image_channels + coord_channels, height, width]` (the page
    /// coordinates, where the model uses them, already concatenated after the image; height
    /// and width multiples of [`UNetConfig::size_multiple`]), `t` is `[batch]` (each page's
    /// timestep on the schedule's 0 to T - 1 scale, fractions allowed), `context` is
    /// `[batch, tokens, text_dim]`; the result is `[batch, image_channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, context: Tensor<3>) -> Tensor<4> {
        // 1. Lossless space-to-depth: [batch, c * stem^2, height / stem, width / stem].
        let x = match &self.unshuffle {
            Some(unshuffle) => unshuffle.forward(x),
            None => x,
        };
        let mut h = self.conv_in.forward(x);

        // 2. Timestep embedding plus the pooled text.
        let time = self.time_in.forward(timestep_features(t, self.time_features));
        let [batch, _, text_dim] = context.dims();
        let pooled = context.clone().mean_dim(1).reshape([batch, text_dim]);
        let embedding = self.time_out.forward(silu(time)) + self.text_pool.forward(pooled);

        // 3. Down path, keeping every intermediate map for the skips.
        let mut skips = vec![h.clone()];
        for level in &self.down {
            for (i, block) in level.blocks.iter().enumerate() {
                h = block.forward(h, embedding.clone());
                if let Some(attention) = level.attentions.get(i) {
                    h = attention.forward(h, context.clone());
                }
                skips.push(h.clone());
            }
            if let Some(downsample) = &level.downsample {
                h = downsample.forward(h);
                skips.push(h.clone());
            }
        }

        // 4. Middle: residual, attention, residual.
        h = self.mid_first.forward(h, embedding.clone());
        h = self.mid_attention.forward(h, context.clone());
        h = self.mid_second.forward(h, embedding.clone());

        // 5. Up path, each block fed the matching skip.
        for level in &self.up {
            for (i, block) in level.blocks.iter().enumerate() {
                let skip = skips.pop().expect("one skip per up block");
                h = block.forward(Tensor::cat(vec![h, skip], 1), embedding.clone());
                if let Some(attention) = level.attentions.get(i) {
                    h = attention.forward(h, context.clone());
                }
            }
            if let Some(upsample) = &level.upsample {
                h = upsample.forward(h);
            }
        }

        // 6. Output head and depth-to-space back to pixels.
        let out = self.conv_out.forward(silu(self.norm_out.forward(h)));
        match &self.shuffle {
            Some(shuffle) => shuffle.forward(out),
            None => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::{Tensor, TensorData};

    use crate::diffusion::HostNoise;
    use crate::testing::cpu;
    use crate::unet::{Preset, UNetConfig};

    /// The output shape of a fresh UNet on a `[batch, channels, height, width]` input.
    fn output_dims(config: &UNetConfig, batch: usize, height: usize, width: usize) -> [usize; 4] {
        let device = cpu();
        let unet = config.init(&device);
        let mut noise = HostNoise::new(3);
        let channels = config.image_channels + config.coord_channels;
        let x = noise.normal([batch, channels, height, width], &device);
        let t: Vec<f32> = (0..batch).map(|i| 10.0 + 300.0 * i as f32).collect();
        let t = Tensor::<1>::from_floats(t.as_slice(), &device);
        let tokens = 5;
        let context = noise.normal_vec(batch * tokens * config.text_dim);
        let context = Tensor::<3>::from_data(
            TensorData::new(context, [batch, tokens, config.text_dim]),
            &device,
        );
        unet.forward(x, t, context).dims()
    }

    #[test]
    fn output_keeps_a_non_square_page_shape() {
        // 32 wide, 48 high: a swapped height and width would show as [2, 1, 32, 48].
        assert_eq!(output_dims(&Preset::Tiny.config(), 2, 48, 32), [2, 1, 48, 32]);
    }

    #[test]
    fn a_4x_stem_with_coordinates_returns_only_the_image_channels() {
        let config = UNetConfig {
            image_channels: 1,
            coord_channels: 2,
            stem: 4,
            channels: vec![16, 32],
            blocks_per_level: 1,
            attention_levels: vec![1],
            head_channels: 16,
            groups: 8,
            text_dim: 32,
        };
        config.validate().unwrap();
        config.check_size(64, 96).unwrap();
        // Three channels in (image and two coordinates), one out, at the full 96x64 size.
        assert_eq!(output_dims(&config, 2, 96, 64), [2, 1, 96, 64]);
    }

    #[test]
    fn tiny_is_well_under_a_million_parameters() {
        let params = Preset::Tiny.config().init(&cpu()).num_params();
        assert!(params < 1_000_000, "tiny has {params} parameters");
        // A vocabulary of a few hundred caption words keeps the whole model under too.
        let model = crate::unet::ModelConfig::from_preset(Preset::Tiny, 400, 24).init(&cpu());
        let total = model.num_params();
        assert!(total < 1_000_000, "tiny with its text encoder has {total} parameters");
    }
}
