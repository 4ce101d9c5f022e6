//! scoregen: text-to-score-page diffusion models, trained on MusicScore, sampled fast.
//!
//! The crate is a library with a thin command-line front end ([`cli`]). Each concern has
//! its own module; the README gives an overview.
#![warn(missing_docs)]

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod dataset;
pub mod diffusion;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod imslp;
pub mod sample;
pub mod text;
pub mod train;
pub mod unet;

#[cfg(test)]
mod testing;

pub use error::{Error, Result};
