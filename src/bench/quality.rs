//! Quality beside speed: the readability of pages a checkpoint makes at each sampler and
//! step count, with the time it took, so "fast" is never bought with "unreadable".

use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::checkpoint::LoadedModel;
use crate::diffusion::{Guidance, SamplerKind};
use crate::error::Result;
use crate::eval::{PageScore, StaffDetector};
use crate::sample::{Generator, Options};

/// One sampler setting's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityRow {
    /// The sampler.
    pub sampler: String,
    /// Its steps.
    pub steps: usize,
    /// Mean readability of the pages.
    pub readability: f64,
    /// Seconds per page.
    pub seconds_per_page: f64,
}

/// Samples `pages` pages per sampler and step count from fixed seeds and scores them.
pub fn sampler_table(
    loaded: &LoadedModel,
    device: &Device,
    samplers: &[SamplerKind],
    step_counts: &[usize],
    prompts: &[String],
    size: (usize, usize),
) -> Result<Vec<QualityRow>> {
    let generator = Generator::new(loaded, device.clone());
    let detector = StaffDetector::default();
    let mut rows = Vec::new();
    for &sampler in samplers {
        for &steps in step_counts {
            let options = Options {
                sampler,
                steps,
                guidance: Guidance { scale: loaded.config.guidance_scale(), ..Guidance::default() },
                width: size.0,
                height: size.1,
                seed: 0,
                clip_x0: true,
            };
            let start = Instant::now();
            let pages = generator.generate(prompts, "", &options, None, &mut |_, _| {})?;
            let seconds = start.elapsed().as_secs_f64();
            let readability = pages
                .iter()
                .map(|p| PageScore::from_structure(&detector.detect(p)).readability)
                .sum::<f64>()
                / pages.len() as f64;
            rows.push(QualityRow {
                sampler: sampler.name().to_string(),
                steps,
                readability,
                seconds_per_page: seconds / pages.len() as f64,
            });
        }
    }
    Ok(rows)
}
