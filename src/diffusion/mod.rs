//! The score-matching core: noise schedules, prediction targets and loss weights,
//! samplers and classifier-free guidance. Nothing here knows about networks or files.

pub mod guidance;
pub mod noise;
pub mod objective;
pub mod sampler;
pub mod schedule;

pub use guidance::Guidance;
pub use noise::HostNoise;
pub use objective::{LossWeighting, Prediction};
pub use sampler::{Denoiser, Level, Sampler, SamplerKind};
pub use schedule::{BetaSchedule, Schedule, ScheduleConfig, TimestepSpacing};
