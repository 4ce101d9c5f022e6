//! The text side: captions to token ids to a context the UNet attends to.

pub mod encoder;
pub mod tokenizer;

pub use encoder::{TextEncoder, TextEncoderConfig, ids_tensor};
pub use tokenizer::{Tokenizer, Tokens};
