//! The `scoregen` command: parses arguments, runs the library, maps failures to exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    scoregen::cli::main()
}
