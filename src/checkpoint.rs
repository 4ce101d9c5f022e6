//! Checkpoints: a folder anyone can read.
//!
//! ```text
//! config.json          the model configuration (UNet, text encoder, schedule, prediction)
//! tokenizer.json       the caption vocabulary
//! ema.safetensors      EMA weights, what sampling uses by default (readable from Python)
//! model.safetensors    the raw trained weights
//! model.bpk            the raw weights with parameter identities (training state only)
//! optimizer.bpk        AdamW moments (training state only)
//! train.json           step, seed and the resolved training configuration (training only)
//! ```
//!
//! Tensor names follow the module tree (`unet.down.0.blocks.0.conv1.weight`).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::text::Tokenizer;
use crate::unet::{ModelConfig, ScoreModel};

/// File names inside a checkpoint folder.
pub mod files {
    /// The model configuration.
    pub const CONFIG: &str = "config.json";
    /// The tokenizer.
    pub const TOKENIZER: &str = "tokenizer.json";
    /// EMA weights.
    pub const EMA: &str = "ema.safetensors";
    /// Raw weights.
    pub const RAW: &str = "model.safetensors";
}

/// Which weights to sample with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Weights {
    /// The exponential moving average of the training weights (smoother samples).
    #[default]
    Ema,
    /// The weights as last trained.
    Raw,
}

impl Weights {
    /// The weight file's name.
    pub fn file(self) -> &'static str {
        match self {
            Self::Ema => files::EMA,
            Self::Raw => files::RAW,
        }
    }
}

/// A model loaded for sampling.
#[derive(Debug)]
pub struct LoadedModel {
    /// The network.
    pub model: ScoreModel,
    /// Its configuration.
    pub config: ModelConfig,
    /// Its vocabulary.
    pub tokenizer: Tokenizer,
    /// The folder it came from.
    pub folder: PathBuf,
}

/// Writes `config.json`.
pub fn save_config(folder: &Path, config: &ModelConfig) -> Result<()> {
    let json = serde_json::to_string_pretty(config).expect("a model config serialises");
    write_atomic(&folder.join(files::CONFIG), json.as_bytes())
}

/// Reads `config.json`, naming the file and field on error.
pub fn load_config(folder: &Path) -> Result<ModelConfig> {
    let path = folder.join(files::CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let config: ModelConfig = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!("{}: not a scoregen model config: {e}", path.display()))
    })?;
    config.validate().map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
    Ok(config)
}

/// Writes a model's weights as safetensors.
pub fn save_weights(model: &ScoreModel, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| {
        Error::runtime(format!("{}: could not serialise weights: {e}", path.display()))
    })?;
    let bytes = store.get_bytes().map_err(|e| {
        Error::runtime(format!("{}: could not serialise weights: {e}", path.display()))
    })?;
    write_atomic(path, &bytes)
}

/// Loads safetensors weights into `model`; every tensor must be present with its shape.
pub fn load_weights(model: &mut ScoreModel, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model.load_from(&mut store).map_err(|e| {
        Error::input(format!("{}: not a readable weight file: {e}", path.display()))
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let first = result
            .errors
            .first()
            .map(|e| format!("{e:?}"))
            .or_else(|| result.missing.first().map(|(name, _)| format!("missing tensor `{name}`")))
            .unwrap_or_default();
        return Err(Error::input(format!(
            "{}: weights do not match config.json ({} errors, {} missing; first: {first})",
            path.display(),
            result.errors.len(),
            result.missing.len()
        )));
    }
    Ok(())
}

/// Loads a checkpoint folder for sampling.
pub fn load(folder: &Path, weights: Weights, device: &Device) -> Result<LoadedModel> {
    if !folder.is_dir() {
        return Err(Error::input(format!("{}: no such checkpoint folder", folder.display())));
    }
    let config = load_config(folder)?;
    let tokenizer = Tokenizer::load(&folder.join(files::TOKENIZER))?;
    if tokenizer.vocab_size() != config.text.vocab_size {
        return Err(Error::input(format!(
            "{}: tokenizer has {} words but config.json expects {}",
            folder.display(),
            tokenizer.vocab_size(),
            config.text.vocab_size
        )));
    }
    let mut model = config.init(device);
    load_weights(&mut model, &folder.join(weights.file()))?;
    Ok(LoadedModel { model: model.no_grad(), config, tokenizer, folder: folder.to_path_buf() })
}

/// The shipped demo model, found beside the executable or in the source tree.
pub fn shipped() -> Option<PathBuf> {
    let name = Path::new("checkpoints").join("small");
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/release/scoregen -> the repository root is three levels up.
        for ancestor in exe.ancestors().skip(1).take(4) {
            candidates.push(ancestor.join(&name));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(&name));
    candidates.into_iter().find(|c| c.join(files::CONFIG).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cpu, values};
    use crate::unet::Preset;

    #[test]
    fn weights_round_trip_and_mismatches_are_refused() {
        let device = cpu();
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig::from_preset(Preset::Tiny, 20, 8);
        let model = config.init(&device);
        let path = dir.path().join("w.safetensors");
        save_weights(&model, &path).unwrap();

        let mut other = config.init(&device);
        let ids = crate::text::ids_tensor(&[vec![3, 4, 0, 0, 0, 0, 0, 0]], &device);
        let before = values(&model.encode(ids.clone()));
        assert_ne!(values(&other.encode(ids.clone())), before, "fresh inits differ");
        load_weights(&mut other, &path).unwrap();
        assert_eq!(values(&other.encode(ids)), before);

        let mut wider = ModelConfig::from_preset(Preset::Tiny, 21, 8).init(&device);
        let err = load_weights(&mut wider, &path).unwrap_err();
        assert!(err.is_input() && err.to_string().contains("w.safetensors"), "{err}");

        std::fs::write(&path, b"truncated").unwrap();
        let err = load_weights(&mut other, &path).unwrap_err();
        assert!(err.is_input() && err.to_string().contains("w.safetensors"), "{err}");
    }
}
