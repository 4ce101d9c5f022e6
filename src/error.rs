//! The library's error type.
//!
//! Errors fall into two classes that the command line maps to exit codes: bad input
//! from the user (a file, field or value that is not what was expected; exit 2) and
//! failures while doing valid work (I/O, numerical blow-up; exit 1).

use std::path::{Path, PathBuf};

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the user gave is malformed or out of range.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// A capability that this build of scoregen does not provide.
    #[error("{0}")]
    Unavailable(String),
    /// Valid work that failed while running (e.g. a loss that became NaN).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// Bad input with a message that names the file, field or value.
    pub fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    /// A runtime failure.
    pub fn runtime(message: impl Into<String>) -> Self {
        Self::Runtime(message.into())
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// Whether the error is the user's input (exit code 2) rather than a runtime failure:
    /// a malformed value, or a path the user named that is missing or not accessible.
    pub fn is_input(&self) -> bool {
        use std::io::ErrorKind::{NotADirectory, NotFound, PermissionDenied, ReadOnlyFilesystem};
        match self {
            Self::Input(_) => true,
            Self::Io { source, .. } => {
                matches!(
                    source.kind(),
                    NotFound | PermissionDenied | ReadOnlyFilesystem | NotADirectory
                )
            }
            Self::Unavailable(_) | Self::Runtime(_) => false,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
