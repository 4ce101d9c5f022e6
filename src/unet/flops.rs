//! Floating-point operations of one network evaluation, counted from the configuration
//! (a multiply-add is two operations). Convolutions, linear layers and attention are
//! counted; normalisation and activations, a few percent of the total, are not.

use super::config::UNetConfig;
use super::score_model::ModelConfig;

/// Operations of a `k` x `k` convolution producing `pixels` outputs.
fn conv(k: usize, input: usize, output: usize, pixels: usize) -> u64 {
    2 * (k * k * input * output * pixels) as u64
}

/// Operations of a residual block at `pixels` positions.
fn res_block(input: usize, output: usize, pixels: usize) -> u64 {
    let skip = if input != output { conv(1, input, output, pixels) } else { 0 };
    conv(3, input, output, pixels) + conv(3, output, output, pixels) + skip
}

/// Operations of an attention block over `n` pixel tokens of `c` channels attending to
/// `m` text tokens of width `d`.
fn attention_block(c: usize, n: usize, m: usize, d: usize) -> u64 {
    let (c, n, m, d) = (c as u64, n as u64, m as u64, d as u64);
    let projections = 2 * n * c * c * 2; // proj_in, proj_out
    let self_attention = 2 * n * c * c * 4 + 2 * 2 * n * n * c; // q, k, v, out; scores, mix
    let cross_attention = 2 * n * c * c * 2 + 2 * 2 * m * d * c + 2 * 2 * n * m * c;
    let feed_forward = 2 * n * c * 4 * c * 2;
    projections + self_attention + cross_attention + feed_forward
}

impl UNetConfig {
    /// Operations of one UNet evaluation on one `width` x `height` page with `tokens` text
    /// tokens, following the same layout as [`UNetConfig::init`].
    pub fn flops(&self, width: usize, height: usize, tokens: usize) -> u64 {
        let stem_area = self.stem * self.stem;
        let mut pixels = (width / self.stem) * (height / self.stem);
        let first = self.channels[0];
        let mut total =
            conv(3, (self.image_channels + self.coord_channels) * stem_area, first, pixels);
        let mut skips = vec![first];
        let mut width_now = first;
        let mut level_pixels = Vec::new();
        for (level, &channels) in self.channels.iter().enumerate() {
            level_pixels.push(pixels);
            for _ in 0..self.blocks_per_level {
                total += res_block(width_now, channels, pixels);
                width_now = channels;
                if self.attention_levels.contains(&level) {
                    total += attention_block(channels, pixels, tokens, self.text_dim);
                }
                skips.push(width_now);
            }
            if level + 1 < self.channels.len() {
                pixels /= 4;
                total += conv(3, width_now, width_now, pixels);
                skips.push(width_now);
            }
        }
        total += 2 * res_block(width_now, width_now, pixels)
            + attention_block(width_now, pixels, tokens, self.text_dim);
        for (level, &channels) in self.channels.iter().enumerate().rev() {
            let pixels = level_pixels[level];
            for _ in 0..=self.blocks_per_level {
                let skip = skips.pop().expect("one skip per up block");
                total += res_block(width_now + skip, channels, pixels);
                width_now = channels;
                if self.attention_levels.contains(&level) {
                    total += attention_block(channels, pixels, tokens, self.text_dim);
                }
            }
            if level > 0 {
                total += conv(3, width_now, width_now, level_pixels[level - 1]);
            }
        }
        total + conv(3, first, self.image_channels * stem_area, level_pixels[0])
    }
}

impl ModelConfig {
    /// Operations of one text encoding (a transformer layer is `24 d^2` per token plus
    /// `4 n d` for attention over `n` tokens).
    pub fn text_flops(&self) -> u64 {
        let (d, n, layers) =
            (self.text.dim as u64, self.text.max_tokens as u64, self.text.layers as u64);
        layers * n * (24 * d * d + 4 * n * d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_level_net_counts_by_hand() {
        // One level of 8 channels, one block, no stem, a 4x4 page, 2 text tokens of width 8:
        // conv_in 1->8, one block 8->8, the middle (two blocks and attention), two up blocks
        // 16->8 (with a 1x1 skip projection each), conv_out 8->1.
        let config = UNetConfig {
            image_channels: 1,
            coord_channels: 0,
            stem: 1,
            channels: vec![8],
            blocks_per_level: 1,
            attention_levels: vec![],
            head_channels: 8,
            groups: 4,
            text_dim: 8,
        };
        let conv3 = |i: u64, o: u64| 2 * 9 * i * o * 16;
        let block =
            |i: u64, o: u64| conv3(i, o) + conv3(o, o) + if i != o { 2 * i * o * 16 } else { 0 };
        let (c, n, m, d) = (8u64, 16u64, 2u64, 8u64);
        let attention = 4 * n * c * c
            + 8 * n * c * c
            + 4 * n * n * c
            + 4 * n * c * c
            + 4 * m * d * c
            + 4 * n * m * c
            + 16 * n * c * c;
        let expected = conv3(1, 8)
            + block(8, 8)
            + 2 * block(8, 8)
            + attention
            + 2 * block(16, 8)
            + conv3(8, 1);
        assert_eq!(config.flops(4, 4, 2), expected);
    }

    #[test]
    fn the_stem_makes_a_page_cost_what_a_smaller_one_does() {
        let mut config = super::super::Preset::Small.config();
        let with_stem = config.flops(512, 720, 24);
        config.stem = 1;
        config.coord_channels = 0;
        let without = config.flops(128, 176, 24);
        // Only the stem's wider first and last convolutions differ.
        let ratio = with_stem as f64 / without as f64;
        assert!((0.95..1.2).contains(&ratio), "{ratio}");
    }
}
