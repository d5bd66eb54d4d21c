//! Process-wide settings for the CPU backend, made once at start-up before any tensor exists.
//!
//! A denoising step is a few dozen matrix products, each followed by element-wise operations.

/// Threads: gemm runs on rayon's pool, and candle's element-wise operations run on a second
/// pool of its own (`candle-bp-*`) whose workers spin for a while after every operation.
/// With two threads the spinning worker takes a core from the two gemm workers; on the 32M
/// Dream shape with a 256-token canvas a step took 0.86x as long with the second pool off
/// (`CANDLE_NUM_THREADS=1`, A B A B in one run). Only measured on two cores, so larger machines
/// keep candle's default. Either variable set by the user wins.
fn threads() {
    let vars = ["CANDLE_NUM_THREADS", "CANDLE_BARRIER_POOL_SPIN_LIMIT"];
    if vars.iter().any(|v| std::env::var_os(v).is_some()) {
        return;
    }
    // The count candle gives gemm (RAYON_NUM_THREADS, else the cores it may use).
    let gemm_threads = candle_core::utils::get_num_threads();
    if gemm_threads <= 2 {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Call first thing in `main`.
pub fn configure() {
    threads();
}
