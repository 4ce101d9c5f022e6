//! The UNet's building blocks: timestep embedding, residual blocks, attention blocks,
//! down- and up-sampling.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    GroupNorm, GroupNormConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
    PaddingConfig2d,
};
use burn::tensor::activation::{gelu, silu};
use burn::tensor::module::{attention, interpolate};
use burn::tensor::ops::{AttentionModuleOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

/// A 3x3 convolution that keeps the spatial size.
pub fn conv3x3(input: usize, output: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// A 3x3 convolution initialised to zero: a residual branch that starts as the identity.
fn zero_conv3x3(input: usize, output: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// Sinusoidal features of continuous timesteps (Transformer positional encoding).
///
/// Shapes: `t` is `[batch]`; the result is `[batch, dim]`.
pub fn timestep_features(t: Tensor<1>, dim: usize) -> Tensor<2> {
    let [batch] = t.dims();
    let half = dim / 2;
    let device = t.device();
    let freqs: Vec<f32> =
        (0..half).map(|i| (-(10_000f64.ln()) * i as f64 / half as f64).exp() as f32).collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).reshape([1, half]);
    let angles = t.reshape([batch, 1]) * freqs;
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}

/// GroupNorm, SiLU, conv; the timestep/text embedding added; GroupNorm, SiLU, conv; plus
/// a (1x1-projected where the width changes) skip connection.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    embedding: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    /// A block from `input` to `output` channels conditioned on an `embedding_dim` vector.
    pub fn new(
        input: usize,
        output: usize,
        embedding_dim: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        Self {
            norm1: GroupNormConfig::new(groups, input).init(device),
            conv1: conv3x3(input, output, device),
            embedding: LinearConfig::new(embedding_dim, output).init(device),
            norm2: GroupNormConfig::new(groups, output).init(device),
            conv2: zero_conv3x3(output, output, device),
            skip: (input != output)
                .then(|| Conv2dConfig::new([input, output], [1, 1]).init(device)),
        }
    }

    /// Shapes: `x` is `[batch, input, height, width]`, `embedding` is `[batch, embedding_dim]`;
    /// the result is `[batch, output, height, width]`.
    pub fn forward(&self, x: Tensor<4>, embedding: Tensor<2>) -> Tensor<4> {
        let [batch, _, _, _] = x.dims();

        // 1. First convolution.
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));

        // 2. Per-channel shift from the timestep and text embedding.
        let [_, channels, _, _] = h.dims();
        let shift = self.embedding.forward(silu(embedding)).reshape([batch, channels, 1, 1]);
        let h = h + shift;

        // 3. Second convolution (zero-initialised) and the skip connection.
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Multi-head attention with separate query and key/value inputs, through Burn's fused
/// attention operation.
#[derive(Module, Debug)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn new(dim: usize, context_dim: usize, heads: usize, device: &Device) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            query: linear(dim, dim),
            key: linear(context_dim, dim),
            value: linear(context_dim, dim),
            out: LinearConfig::new(dim, dim).init(device),
            heads,
        }
    }

    /// Shapes: `x` is `[batch, queries, dim]`, `context` `[batch, keys, context_dim]`; the
    /// result is `[batch, queries, dim]`.
    fn forward(&self, x: Tensor<3>, context: Tensor<3>) -> Tensor<3> {
        let [batch, queries, dim] = x.dims();
        let [_, keys, _] = context.dims();
        let head_dim = dim / self.heads;
        let split =
            |t: Tensor<3>, n: usize| t.reshape([batch, n, self.heads, head_dim]).swap_dims(1, 2);

        // 1. Project and split into heads: [batch, heads, tokens, head_dim].
        let q = split(self.query.forward(x), queries);
        let k = split(self.key.forward(context.clone()), keys);
        let v = split(self.value.forward(context), keys);

        // 2. softmax(q k^T / sqrt(head_dim)) v, then merge the heads.
        let attended = attention(q, k, v, None, None, AttentionModuleOptions::default());
        let merged = attended.swap_dims(1, 2).reshape([batch, queries, dim]);
        self.out.forward(merged)
    }
}

/// A transformer block over the pixels of a feature map: self-attention, cross-attention
/// to the text, and a feed-forward layer, each pre-normed and residual.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    norm: GroupNorm,
    proj_in: Linear,
    norm_self: LayerNorm,
    self_attention: Attention,
    norm_cross: LayerNorm,
    cross_attention: Attention,
    norm_ff: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    proj_out: Linear,
}

impl AttentionBlock {
    /// A block over `channels` features attending to a `text_dim`-wide context.
    pub fn new(
        channels: usize,
        text_dim: usize,
        heads: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        Self {
            norm: GroupNormConfig::new(groups, channels).init(device),
            proj_in: LinearConfig::new(channels, channels).init(device),
            norm_self: LayerNormConfig::new(channels).init(device),
            self_attention: Attention::new(channels, channels, heads, device),
            norm_cross: LayerNormConfig::new(channels).init(device),
            cross_attention: Attention::new(channels, text_dim, heads, device),
            norm_ff: LayerNormConfig::new(channels).init(device),
            ff_in: LinearConfig::new(channels, 4 * channels).init(device),
            ff_out: LinearConfig::new(4 * channels, channels).init(device),
            proj_out: LinearConfig::new(channels, channels)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// Shapes: `x` is `[batch, channels, height, width]`, `context` `[batch, tokens,
    /// text_dim]`; the result has the shape of `x`.
    pub fn forward(&self, x: Tensor<4>, context: Tensor<3>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();

        // 1. Pixels as tokens: [batch, height * width, channels].
        let tokens =
            self.norm.forward(x.clone()).reshape([batch, channels, height * width]).swap_dims(1, 2);
        let mut h = self.proj_in.forward(tokens);

        // 2. Self-attention among pixels, cross-attention to the text, feed-forward.
        let normed = self.norm_self.forward(h.clone());
        h = h + self.self_attention.forward(normed.clone(), normed);
        h = h.clone() + self.cross_attention.forward(self.norm_cross.forward(h), context);
        h = h.clone() + self.ff_out.forward(gelu(self.ff_in.forward(self.norm_ff.forward(h))));

        // 3. Back to a feature map, added to the input.
        let out =
            self.proj_out.forward(h).swap_dims(1, 2).reshape([batch, channels, height, width]);
        x + out
    }
}

/// Halves the resolution with a strided 3x3 convolution.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
}

impl Downsample {
    /// Keeps `channels`.
    pub fn new(channels: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([channels, channels], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        Self { conv }
    }

    /// Shapes: `[batch, channels, height, width]` to `[batch, channels, height / 2, width / 2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

/// Doubles the resolution: nearest-neighbour upsampling then a 3x3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    /// Keeps `channels`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self { conv: conv3x3(channels, channels, device) }
    }

    /// Shapes: `[batch, channels, height, width]` to `[batch, channels, 2 height, 2 width]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = x.dims();
        let mut options = InterpolateOptions::new(InterpolateMode::Nearest);
        options.output_size = Some([2 * height, 2 * width]);
        self.conv.forward(interpolate(x, options))
    }
}
