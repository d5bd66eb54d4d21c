//! `--offline`: one switch, set once by the command line, that every stage able to reach the
//! network (a remote reasoner, a Neo4j server, `models pull`) checks before it connects.

use std::sync::atomic::{AtomicBool, Ordering};

static OFFLINE: AtomicBool = AtomicBool::new(false);

/// What `--offline` refused, named as the user wrote it.
#[derive(Debug, thiserror::Error)]
#[error(
    "--offline: {0} would use the network; drop --offline (or unset OUROBOROS_OFFLINE) to allow it"
)]
pub struct Refused(pub String);

pub fn set(offline: bool) {
    OFFLINE.store(offline, Ordering::Relaxed);
}

/// An error naming `what` when the network is off limits.
pub fn check(what: &str) -> Result<(), Refused> {
    if OFFLINE.load(Ordering::Relaxed) {
        Err(Refused(what.to_string()))
    } else {
        Ok(())
    }
}
