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
//!
//! # Reading a checkpoint from Python
//!
//! The weight files are plain safetensors (f32; convolution weights are `[out_channels,
//! in_channels, kernel_height, kernel_width]`, linear weights `[in, out]`, the transpose of
//! PyTorch's) and the rest is JSON, so reading them needs no scoregen code, only
//! `pip install safetensors numpy`:
//!
//! ```python
//! import json
//! from safetensors.numpy import load_file
//!
//! folder = "runs/demo/checkpoints/step-00001100/"
//! weights = load_file(folder + "ema.safetensors")  # {name: numpy.ndarray}
//! config = json.load(open(folder + "config.json"))
//!
//! print(len(weights), "tensors,", sum(w.size for w in weights.values()), "parameters")
//! print(config["unet"]["channels"])
//! w = weights["unet.conv_in.weight"]  # [channels[0], (1 + coord_channels) * stem^2, 3, 3]
//! print(w.shape, w.dtype)
//! ```
//!
//! For the `small` demo model (a 109-token vocabulary) this prints `286 tensors, 6331200
//! parameters`, `[48, 96, 160]` and `(48, 48, 3, 3) float32`.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ApplyError, ModuleSnapshot, SafetensorsStore};
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

/// Loads safetensors weights into `model`; every tensor must be present with its shape,
/// and the file may hold no tensor the model lacks. A mismatch is an input error that
/// names the file, the first few tensors concerned and, for a wrong shape, both shapes.
pub fn load_weights(model: &mut ScoreModel, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Burn's own checks fail with a summary table; collecting the mismatches instead lets
    // the message name them in the terms of config.json.
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(false).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|e| {
        Error::input(format!("{}: not a readable weight file: {e}", path.display()))
    })?;
    let mut problems: Vec<String> = result.errors.iter().map(describe).collect();
    problems.extend(result.missing.iter().map(|(name, _)| format!("tensor `{name}` is missing")));
    problems.extend(
        result.unused.iter().map(|name| format!("tensor `{name}` is not part of this model")),
    );
    if problems.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 3;
    let more = match problems.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!("; and {n} more"),
    };
    Err(Error::input(format!(
        "{}: weights do not match config.json: {}{more}",
        path.display(),
        problems[..problems.len().min(SHOWN)].join("; ")
    )))
}

/// One tensor that could not be loaded, in words.
fn describe(error: &ApplyError) -> String {
    match error {
        ApplyError::ShapeMismatch { path, expected, found } => {
            format!(
                "tensor `{path}` has shape {found} in the file but config.json gives {expected}"
            )
        }
        ApplyError::DTypeMismatch { path, expected, found } => {
            format!("tensor `{path}` is {found:?} in the file but the model needs {expected:?}")
        }
        ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => {
            format!("tensor `{path}` could not be read: {message}")
        }
    }
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
    use std::collections::BTreeMap;

    use burn::module::{ModuleMapper, Param};
    use burn::tensor::Tensor;

    use super::*;
    use crate::diffusion::HostNoise;
    use crate::testing::{cpu, values};
    use crate::text::ids_tensor;
    use crate::unet::Preset;

    /// Adds standard normal noise to every weight, so that no tensor keeps a value (such as
    /// the zeros of a zero-initialised layer) that a fresh model would also have.
    struct Perturb(HostNoise);

    impl ModuleMapper for Perturb {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let noise = &mut self.0;
            param.map(|tensor| {
                let dims = tensor.dims();
                let values = noise.normal_vec(dims.iter().product());
                let device = tensor.device();
                tensor + Tensor::<1>::from_floats(values.as_slice(), &device).reshape(dims)
            })
        }
    }

    /// Writes a complete checkpoint folder (config, tokenizer, EMA weights) of a tiny model
    /// with perturbed weights; returns the model and its configuration.
    fn write_checkpoint(folder: &Path) -> (ScoreModel, ModelConfig) {
        let tokenizer = Tokenizer::from_captions(["a music score, instrumentation is piano"], 1, 8);
        let config =
            ModelConfig::from_preset(Preset::Tiny, tokenizer.vocab_size(), tokenizer.max_tokens());
        let model = config.init_seeded(3, &cpu()).map(&mut Perturb(HostNoise::new(4)));
        save_config(folder, &config).unwrap();
        tokenizer.save(&folder.join(files::TOKENIZER)).unwrap();
        save_weights(&model, &folder.join(files::EMA)).unwrap();
        (model, config)
    }

    /// Every tensor of a model by name: its shape and its bytes.
    fn tensors(model: &ScoreModel) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
        model
            .collect(None, None, false)
            .into_iter()
            .map(|tensor| {
                let (name, _, shape, _, bytes) = tensor.into_parts().unwrap();
                (name, (shape.to_vec(), bytes.to_vec()))
            })
            .collect()
    }

    /// The error of loading the EMA weights of `folder`, as text; it must be an input error.
    fn load_error(folder: &Path) -> String {
        let err = load(folder, Weights::Ema, &cpu()).expect_err("the checkpoint loaded");
        assert!(err.is_input(), "not an input error: {err}");
        err.to_string()
    }

    #[test]
    fn a_checkpoint_folder_loads_back_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let (model, config) = write_checkpoint(dir.path());
        let loaded = load(dir.path(), Weights::Ema, &cpu()).unwrap();
        assert_eq!(loaded.config, config);

        let (saved, back) = (tensors(&model), tensors(&loaded.model));
        assert_eq!(saved.keys().collect::<Vec<_>>(), back.keys().collect::<Vec<_>>());
        assert!(saved.len() > 100, "only {} tensors", saved.len());
        for (name, tensor) in &saved {
            assert!(back[name] == *tensor, "`{name}` changed on the way through the file");
        }

        // The loaded network computes what the saved one did, bit for bit.
        let device = cpu();
        let ids = ids_tensor(&[loaded.tokenizer.encode("piano score").ids], &device);
        let x = HostNoise::new(6).normal([1, 1, 48, 32], &device);
        let t = Tensor::<1>::from_floats([300.0], &device);
        let run = |m: &ScoreModel| {
            let context = m.encode(ids.clone());
            let out = m.denoise(x.clone(), t.clone(), context.clone());
            (values(&context), values(&out))
        };
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        let ((c1, o1), (c2, o2)) = (run(&model), run(&loaded.model));
        assert_eq!(bits(c1), bits(c2), "text encodings differ");
        assert_eq!(bits(o1), bits(o2), "UNet outputs differ");
    }

    #[test]
    fn a_weight_file_cut_in_half_is_an_input_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path());
        let path = dir.path().join(files::EMA);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn a_changed_channel_count_names_the_tensor_and_both_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut config) = write_checkpoint(dir.path());
        config.unet.channels[2] = 64;
        save_config(dir.path(), &config).unwrap();
        let err = load_error(dir.path());
        let expected = "tensor `unet.down.2.blocks.0.conv1.weight` has shape [48, 32, 3, 3] \
                        in the file but config.json gives [64, 32, 3, 3]";
        assert!(err.contains("ema.safetensors") && err.contains(expected), "{err}");
        assert!(err.lines().count() == 1 && err.len() < 600, "not one short line: {err}");
    }

    #[test]
    fn a_missing_tokenizer_is_an_input_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path());
        std::fs::remove_file(dir.path().join(files::TOKENIZER)).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains(files::TOKENIZER), "{err}");
    }

    #[test]
    fn a_tensor_missing_from_the_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = write_checkpoint(dir.path());
        let mut store = SafetensorsStore::from_bytes(None)
            .with_predicate(|path, _| path != "unet.conv_out.bias");
        model.save_into(&mut store).unwrap();
        std::fs::write(dir.path().join(files::EMA), store.get_bytes().unwrap()).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains("tensor `unet.conv_out.bias` is missing"), "{err}");
    }

    #[test]
    fn a_tensor_the_config_has_no_place_for_is_named() {
        // Without attention at level 2 every shape still matches, but the file's attention
        // weights would be silently dropped.
        let dir = tempfile::tempdir().unwrap();
        let (_, mut config) = write_checkpoint(dir.path());
        config.unet.attention_levels.clear();
        save_config(dir.path(), &config).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains("unet.down.2.attentions.0.") && err.contains("not part of"), "{err}");
    }

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
