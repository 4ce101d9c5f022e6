//! Classifier-free guidance (arXiv 2207.12598) with guidance rescale (arXiv 2305.08891).
//!
//! The conditional and unconditional passes run as one batch of twice the size: the
//! network sees `[x; x]` with `[condition; unconditional or negative prompt]`. The sampler
//! step combines the two halves (`scoregen_kernels::sampler_step`, one fused pass on GPU
//! backends, together with the update).

use serde::{Deserialize, Serialize};

/// Guidance settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guidance {
    /// `w` in `uncond + w * (cond - uncond)`; 1 is the conditional model alone.
    pub scale: f64,
    /// `phi`: how much of the result is rescaled to the conditional output's standard
    /// deviation (0 off, 0.7 recommended with zero-terminal-SNR schedules).
    pub rescale: f64,
}

impl Default for Guidance {
    fn default() -> Self {
        Self { scale: 3.0, rescale: 0.0 }
    }
}

impl Guidance {
    /// Whether the unconditional pass is needed at all.
    pub fn is_active(&self) -> bool {
        self.scale != 1.0
    }
}
