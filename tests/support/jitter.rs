//! When the crash tests pull the trigger: a number below `max` that differs between rounds and
//! runs, so SIGKILL lands at a different point of the work each time.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn jitter(round: u32, max: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos.wrapping_mul(2654435761).wrapping_add(round)) % max
}
