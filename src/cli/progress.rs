//! A spinner on stderr naming the pipeline's phase, when stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::pipeline::Progress;

pub struct Spinner(pub ProgressBar);

impl Progress for Spinner {
    fn phase(&self, name: &str, unit: Option<&str>) {
        self.0.set_message(match unit {
            Some(u) => format!("{name}: {u}"),
            None => name.to_string(),
        });
    }
}

/// A ticking spinner, or a hidden one when `quiet` or when stderr is not a terminal.
pub fn spinner(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
