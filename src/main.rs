use std::process::ExitCode;

fn main() -> ExitCode {
    ouroboros::cpu_tuning::configure();
    // Output piped into `head` should end the process quietly, as it does for other Unix tools,
    // not panic in println! on EPIPE.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = ouroboros::cli::parse();
    match ouroboros::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors can carry URLs with credentials in them, or a secret the user typed.
            eprintln!(
                "error: {}",
                ouroboros::provenance::redact(&format!("{e:#}"))
            );
            ExitCode::from(2)
        }
    }
}
