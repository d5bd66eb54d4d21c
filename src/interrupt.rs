//! Ctrl-C and SIGTERM during a run: the first signal sets a flag that the pipeline checks
//! between steps (and the test gate while its tests run), so the run stops at a point where no
//! file is half-written and its provenance record says `success: false`. A second signal ends
//! the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signum: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // Only async-signal-safe calls here: restore the default and re-raise.
        unsafe {
            libc::signal(signum, libc::SIG_DFL);
            libc::raise(signum);
        }
    }
}

/// Install the handlers (idempotent).
pub fn install() {
    #[cfg(unix)]
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
