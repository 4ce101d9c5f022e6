//! Plain-tensor references: the definitions the fused kernels are held to.

mod loss;
mod noising;
mod sampler;

pub use loss::weighted_mse;
pub use noising::{Target, forward_noising};
pub use sampler::{Guidance, SamplerStep, Update, sampler_step};
