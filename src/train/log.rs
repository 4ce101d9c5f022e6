//! The run's JSONL log (`log.jsonl`): one line per logged step, for plots and tools.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::held_out::HeldOutLoss;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// One logged step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Steps completed.
    pub step: usize,
    /// The step's loss.
    pub loss: f64,
    /// The learning rate the step used.
    pub learning_rate: f64,
    /// Training throughput since the run (or resume) started.
    pub images_per_second: f64,
    /// Seconds since the run (or resume) started.
    pub elapsed_seconds: f64,
    /// The held-out loss of the EMA weights after this step, on the steps it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOutLoss>,
}

/// An append-only log file.
pub struct StepLog {
    path: PathBuf,
    file: File,
}

impl StepLog {
    /// Opens `out/log.jsonl` for a run at `step`, dropping lines past it (steps a crash
    /// made the run repeat would otherwise appear twice).
    pub fn create(out: &Path, step: usize) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let path = out.join("log.jsonl");
        let kept: Vec<String> = read(&path)?
            .into_iter()
            .filter(|r| r.step <= step)
            .map(|r| serde_json::to_string(&r).expect("a log record serialises"))
            .collect();
        let text = kept.iter().map(|l| format!("{l}\n")).collect::<String>();
        write_atomic(&path, text.as_bytes())?;
        let file = OpenOptions::new().append(true).open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self { path, file })
    }

    /// Appends a record.
    pub fn append(&mut self, record: &LogRecord) -> Result<()> {
        let line = serde_json::to_string(record).expect("a log record serialises");
        writeln!(self.file, "{line}").map_err(|e| Error::io(&self.path, e))
    }
}

/// Reads a log, skipping a torn last line.
pub fn read(path: &Path) -> Result<Vec<LogRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    Ok(text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect())
}
