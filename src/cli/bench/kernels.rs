//! `bench kernels`: the CUDA vocabulary kernels against their CPU references, with their cost
//! beside copying the rows to the host (see `kernels::check`). Needs a CUDA build and a GPU;
//! elsewhere it says which is missing and exits non-zero.

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CUDA device's ordinal.
    #[arg(long, default_value_t = 0)]
    pub ordinal: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The report as text, and whether it passed.
pub fn run(args: &Args) -> anyhow::Result<(String, bool)> {
    let report = crate::kernels::check::run(args.ordinal)?;
    let text = match args.json {
        true => serde_json::to_string_pretty(&report)? + "\n",
        false => format!("{report}\n"),
    };
    Ok((text, report.passed()))
}
