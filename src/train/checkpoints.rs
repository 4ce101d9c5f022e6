//! Training checkpoints: written whole into a hidden folder and renamed into place, so a
//! crash at any moment leaves either the previous checkpoint or the new one, never a part.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::checkpoint::{files, load_config, load_weights, save_config, save_weights};
use crate::error::{Error, Result};
use crate::fsutil::{publish_dir, remove_dir_atomic, write_atomic};
use crate::text::Tokenizer;
use crate::unet::{ModelConfig, ScoreModel};

const MODEL_STATE: &str = "model.bpk";
const OPTIMIZER_STATE: &str = "optimizer.bpk";
const TRAIN_STATE: &str = "train.json";

/// `train.json`: where the run stands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub step: usize,
    /// The configuration the run was started with.
    pub config: TrainConfig,
}

/// Everything a checkpoint holds.
pub struct Snapshot<'a> {
    /// The model configuration.
    pub model_config: &'a ModelConfig,
    /// The vocabulary.
    pub tokenizer: &'a Tokenizer,
    /// The trained weights.
    pub model: &'a ScoreModel,
    /// The EMA weights.
    pub ema: &'a ScoreModel,
    /// The optimiser.
    pub optimizer: &'a ModuleOptimizer,
    /// Step and configuration.
    pub state: TrainState,
}

/// A run's checkpoint folder.
pub fn folder(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

fn step_name(step: usize) -> String {
    format!("step-{step:08}")
}

fn state_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::input(format!("{}: unreadable {what}: {e}", path.display()))
}

/// Writes a checkpoint and keeps only the newest `keep`.
pub fn save(out: &Path, snapshot: &Snapshot<'_>, keep: usize) -> Result<PathBuf> {
    let root = folder(out);
    let name = step_name(snapshot.state.step);
    let done = root.join(&name);
    // Written whole under a hidden name; a folder of the same step (a run resumed at its
    // last step saves it again) is replaced only then.
    publish_dir(&done, |partial| {
        save_config(partial, snapshot.model_config)?;
        snapshot.tokenizer.save(&partial.join(files::TOKENIZER))?;
        save_weights(snapshot.ema, &partial.join(files::EMA))?;
        save_weights(snapshot.model, &partial.join(files::RAW))?;
        let model_state = snapshot
            .model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| Error::runtime(format!("could not serialise the model state: {e}")))?;
        write_atomic(&partial.join(MODEL_STATE), &model_state)?;
        let optimizer_state = snapshot
            .optimizer
            .into_bytes()
            .map_err(|e| Error::runtime(format!("could not serialise the optimiser state: {e}")))?;
        write_atomic(&partial.join(OPTIMIZER_STATE), &optimizer_state)?;
        let state = serde_json::to_string_pretty(&snapshot.state).expect("train state serialises");
        write_atomic(&partial.join(TRAIN_STATE), state.as_bytes())
    })?;
    prune(&root, keep)?;
    Ok(done)
}

/// Complete checkpoints, oldest first.
pub fn list(out: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let root = folder(out);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for item in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
        let path = item.map_err(|e| Error::io(&root, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse::<usize>().ok())
            && path.join(TRAIN_STATE).is_file()
        {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

fn prune(root: &Path, keep: usize) -> Result<()> {
    let out = root.parent().unwrap_or(root);
    let all = list(out)?;
    for (_, path) in all.iter().take(all.len().saturating_sub(keep)) {
        remove_dir_atomic(path)?;
    }
    Ok(())
}

/// A checkpoint read back for resuming.
pub struct Restored {
    /// The model configuration.
    pub model_config: ModelConfig,
    /// The vocabulary.
    pub tokenizer: Tokenizer,
    /// The trained weights (with their parameter ids, which the optimiser state refers to).
    pub model: ScoreModel,
    /// The EMA weights.
    pub ema: ScoreModel,
    /// The optimiser with its moments.
    pub optimizer: ModuleOptimizer,
    /// Step and configuration.
    pub state: TrainState,
}

/// Reads the checkpoint in `path` onto `device` (an autodiff device).
pub fn restore(path: &Path, optimizer: ModuleOptimizer, device: &Device) -> Result<Restored> {
    let state_path = path.join(TRAIN_STATE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| state_error(&state_path, "train state", e))?;
    let model_config = load_config(path)?;
    let tokenizer = Tokenizer::load(&path.join(files::TOKENIZER))?;

    let model_path = path.join(MODEL_STATE);
    let bytes = std::fs::read(&model_path).map_err(|e| Error::io(&model_path, e))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| state_error(&model_path, "model state", e))?;
    let model = model_config
        .init(device)
        .try_load_record(record)
        .map_err(|e| state_error(&model_path, "model state", e))?;

    let mut ema = model.valid();
    load_weights(&mut ema, &path.join(files::EMA))?;

    let optimizer_path = path.join(OPTIMIZER_STATE);
    let bytes = std::fs::read(&optimizer_path).map_err(|e| Error::io(&optimizer_path, e))?;
    let optimizer = optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| state_error(&optimizer_path, "optimiser state", e))?;
    Ok(Restored { model_config, tokenizer, model, ema, optimizer, state })
}
