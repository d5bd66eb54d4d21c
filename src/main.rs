use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ouroboros::cli::Cli::parse();
    match ouroboros::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
