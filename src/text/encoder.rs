//! A small transformer text encoder trained together with the UNet.
//!
//! This is the seam for a pretrained encoder: anything that maps token ids to a
//! `[batch, tokens, text_dim]` context can stand in for [`TextEncoder::forward`]
//! (e.g. a CLIP text tower loaded through hf-hub; the UNet only sees the context).

use burn::module::Module;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Shape of the text encoder. Saved in `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderConfig {
    /// Number of token ids (the tokenizer's vocabulary, special tokens included).
    pub vocab_size: usize,
    /// Sequence length (the tokenizer's `max_tokens`).
    pub max_tokens: usize,
    /// Embedding width.
    pub dim: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads per layer.
    pub heads: usize,
}

/// Token and position embeddings, a pre-norm transformer, and a final layer norm.
#[derive(Module, Debug)]
pub struct TextEncoder {
    tokens: Embedding,
    positions: Embedding,
    transformer: TransformerEncoder,
    norm: LayerNorm,
}

impl TextEncoderConfig {
    /// Builds a freshly initialised encoder.
    pub fn init(&self, device: &Device) -> TextEncoder {
        TextEncoder {
            tokens: EmbeddingConfig::new(self.vocab_size, self.dim).init(device),
            positions: EmbeddingConfig::new(self.max_tokens, self.dim).init(device),
            transformer: TransformerEncoderConfig::new(
                self.dim,
                4 * self.dim,
                self.heads,
                self.layers,
            )
            .with_dropout(0.0)
            .with_norm_first(true)
            .init(device),
            norm: LayerNormConfig::new(self.dim).init(device),
        }
    }
}

impl TextEncoder {
    /// Encodes token ids into a context.
    ///
    /// Shapes: `ids` is `[batch, tokens]`; the result is `[batch, tokens, dim]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, length] = ids.dims();
        let device = ids.device();

        // 1. Token plus learned position embeddings.
        let positions: Vec<i64> = (0..batch).flat_map(|_| 0..length as i64).collect();
        let positions =
            Tensor::<2, Int>::from_data(TensorData::new(positions, [batch, length]), &device);
        let x = self.tokens.forward(ids) + self.positions.forward(positions);

        // 2. Transformer layers over the whole (padded) sequence, then a final norm.
        let x = self.transformer.forward(TransformerEncoderInput::new(x));
        self.norm.forward(x)
    }
}

/// Token ids of several prompts as one tensor.
///
/// Shapes: `ids` holds `batch` rows of `tokens` ids each (all one length, as the tokenizer
/// pads them; rows of different lengths panic); the result is `[batch, tokens]`.
pub fn ids_tensor(ids: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let length = ids.first().map_or(0, Vec::len);
    let flat: Vec<i64> = ids.iter().flat_map(|row| row.iter().map(|&id| id as i64)).collect();
    Tensor::from_data(TensorData::new(flat, [ids.len(), length]), device)
}
