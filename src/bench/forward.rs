//! Forward time of one UNet configuration on its own, for comparing the network with a
//! reference implementation of the same shape (DESIGN.md §5 gives PyTorch 2 figures).
//!
//! Only the UNet runs: the text context is fixed noise of the configured width, so the
//! text encoder and the sampler add nothing to the figure. As in [`super::run`], warm-up
//! runs are excluded and the result is read back before a timer stops.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{median_min, synchronise};
use crate::backend::DeviceSpec;
use crate::diffusion::HostNoise;
use crate::error::{Error, Result};
use crate::unet::{ModelConfig, UNetConfig};

/// The DESIGN.md §5 reference network (4 levels of 32-48-64-96 channels, attention at the
/// third level, 16x16 on a 64x64 page) as near as this UNet's blocks allow: one residual
/// block per level is the fewest, and our attention blocks add a feed-forward layer and
/// cross-attention, so it has about 2.27M parameters where the reference has 2.0M.
pub const REFERENCE_2M: &str = include_str!("reference_2m.json");

/// What to time.
#[derive(Clone, Debug)]
pub struct ForwardConfig {
    /// The network.
    pub unet: UNetConfig,
    /// Page width in pixels.
    pub width: usize,
    /// Page height in pixels.
    pub height: usize,
    /// Batch sizes (network batch: pages per forward pass).
    pub batches: Vec<usize>,
    /// Text tokens the network attends to.
    pub tokens: usize,
    /// Timed runs per figure.
    pub runs: usize,
    /// Untimed runs before timing.
    pub warmup: usize,
}

/// One timed batch size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardRow {
    /// Device as named on the command line.
    pub device: String,
    /// Backend.
    pub backend: String,
    /// Page width.
    pub width: usize,
    /// Page height.
    pub height: usize,
    /// Pages per forward pass.
    pub batch: usize,
    /// Parameters of the UNet (no text encoder).
    pub parameters: usize,
    /// GFLOP of one forward pass of the whole batch.
    pub gflop: f64,
    /// Median milliseconds of one forward pass.
    pub forward_ms_median: f64,
    /// Fastest milliseconds of one forward pass.
    pub forward_ms_min: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
}

/// Reads a UNet configuration from JSON: either a bare [`UNetConfig`] or a checkpoint's
/// whole `config.json`, whose `unet` part is taken.
pub fn load_unet_config(path: &Path) -> Result<UNetConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config = parse_unet_config(&text)
        .map_err(|e| Error::input(format!("{}: not a UNet config: {e}", path.display())))?;
    config.validate().map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
    Ok(config)
}

fn parse_unet_config(text: &str) -> serde_json::Result<UNetConfig> {
    serde_json::from_str::<UNetConfig>(text)
        .or_else(|bare| serde_json::from_str::<ModelConfig>(text).map(|m| m.unet).or(Err(bare)))
}

/// Times one forward pass of a freshly initialised network per batch size.
pub fn run(config: &ForwardConfig, spec: DeviceSpec, device: &Device) -> Result<Vec<ForwardRow>> {
    let unet = &config.unet;
    unet.validate()?;
    unet.check_size(config.width, config.height)?;
    if config.runs == 0 || config.batches.is_empty() || config.batches.contains(&0) {
        return Err(Error::input("bench needs at least one run and batch sizes of at least 1"));
    }
    let model = unet.init(device);
    let parameters = model.num_params();
    let (width, height, tokens) = (config.width, config.height, config.tokens);
    let mut rows = Vec::new();
    for &batch in &config.batches {
        // 1. Fixed inputs: noisy pages (with coordinates, if any), timesteps, a context.
        let mut noise = HostNoise::new(1);
        let channels = unet.image_channels + unet.coord_channels;
        let x = noise.normal([batch, channels, height, width], device);
        let t = Tensor::<1>::full([batch], 500.0, device);
        let context = noise.normal_vec(batch * tokens * unet.text_dim);
        let context = Tensor::<3>::from_data(
            TensorData::new(context, [batch, tokens, unet.text_dim]),
            device,
        );

        // 2. Warm-up, then timed passes, each read back before its timer stops.
        let mut timings = Vec::new();
        for run in 0..config.warmup + config.runs {
            let start = Instant::now();
            synchronise(model.forward(x.clone(), t.clone(), context.clone()));
            if run >= config.warmup {
                timings.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let (forward_ms_median, forward_ms_min) = median_min(timings);
        let gflop = (unet.flops(width, height, tokens) * batch as u64) as f64 / 1e9;
        rows.push(ForwardRow {
            device: spec.to_string(),
            backend: spec.backend_name().to_string(),
            width,
            height,
            batch,
            parameters,
            gflop,
            forward_ms_median,
            forward_ms_min,
            gflops: gflop / (forward_ms_median / 1e3),
        });
    }
    Ok(rows)
}

/// A readable table of forward timings.
pub fn table(rows: &[ForwardRow]) -> String {
    let mut out = format!(
        "{:<8} {:>9} {:>5} {:>8} {:>8} {:>10} {:>10} {:>8}\n",
        "device", "size", "batch", "params", "GFLOP", "ms median", "ms min", "GFLOP/s"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<8} {:>9} {:>5} {:>7.3}M {:>8.2} {:>10.1} {:>10.1} {:>8.1}\n",
            row.device,
            format!("{}x{}", row.width, row.height),
            row.batch,
            row.parameters as f64 / 1e6,
            row.gflop,
            row.forward_ms_median,
            row.forward_ms_min,
            row.gflops
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unet::Preset;

    #[test]
    fn the_reference_config_matches_design_within_the_blocks_available() {
        let config = parse_unet_config(REFERENCE_2M).unwrap();
        config.validate().unwrap();
        config.check_size(64, 64).unwrap();
        assert_eq!(config.channels, [32, 48, 64, 96]);
        // Level 2 of a 64x64 page is 16x16, where DESIGN.md §5 puts attention.
        assert_eq!(config.attention_levels, [2]);
        let params = config.init(&crate::testing::cpu()).num_params();
        // 2.0M in the reference; our attention blocks are heavier (see REFERENCE_2M).
        assert!((2_000_000..2_400_000).contains(&params), "{params} parameters");
    }

    #[test]
    fn a_checkpoint_config_is_read_for_its_unet() {
        let model = ModelConfig::from_preset(Preset::Tiny, 10, 8);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(load_unet_config(&path).unwrap(), model.unet);
        std::fs::write(&path, serde_json::to_string(&model.unet).unwrap()).unwrap();
        assert_eq!(load_unet_config(&path).unwrap(), model.unet);
        std::fs::write(&path, r#"{"channels": [8]}"#).unwrap();
        let err = load_unet_config(&path).unwrap_err();
        assert!(err.is_input() && err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn forward_rows_count_the_whole_batch() {
        let device = crate::testing::cpu();
        let unet = Preset::Tiny.config();
        let config = ForwardConfig {
            unet: unet.clone(),
            width: 32,
            height: 48,
            batches: vec![1, 3],
            tokens: 4,
            runs: 2,
            warmup: 0,
        };
        let rows = run(&config, DeviceSpec::Cpu, &device).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].parameters, unet.init(&device).num_params());
        assert!((rows[1].gflop - 3.0 * unet.flops(32, 48, 4) as f64 / 1e9).abs() < 1e-12);
        assert!(
            rows[1].forward_ms_min > 0.0 && rows[1].forward_ms_min <= rows[1].forward_ms_median
        );
        assert_eq!(table(&rows).lines().count(), 3);

        let odd = ForwardConfig { width: 30, ..config };
        assert!(run(&odd, DeviceSpec::Cpu, &device).unwrap_err().to_string().contains("30x48"));
    }
}
