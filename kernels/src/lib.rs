//! Fused kernels for the score-matching core of a diffusion model, each beside a
//! reference written in plain Burn tensor operations.
//!
//! The crate knows nothing of networks or files: it takes tensors and per-sample
//! coefficients. The library calls one function per operation; on the CPU backend that
//! function is the plain-tensor reference.
#![warn(missing_docs)]

pub mod reference;

pub use reference::{Target, forward_noising, weighted_mse};
