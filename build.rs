//! Record the git commit the binary was built from, for benchmark rows and provenance.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OUROBOROS_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    // A commit rewrites the branch's ref file, not HEAD; a directory's mtime would not notice.
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(branch) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{branch}");
        }
    }
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        compile_kernels();
    }
}

/// nvcc turns kernels/vocab.cu into PTX for $CUDA_COMPUTE_CAP (default 90, Hopper), which
/// src/kernels includes and the driver JIT-compiles when the kernels are first used.
fn compile_kernels() {
    println!("cargo:rerun-if-changed=kernels/vocab.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("vocab.ptx");
    let status = Command::new(&nvcc)
        .args([
            "-ptx",
            "-O3",
            &format!("-arch=compute_{cap}"),
            "kernels/vocab.cu",
            "-o",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{nvcc} failed on kernels/vocab.cu ({s})"),
        Err(e) => panic!(
            "--features cuda needs nvcc ({nvcc}: {e}); scripts/cuda-toolchain.sh installs one"
        ),
    }
}
