//! The state lock: one `flock(2)` on `<state-dir>/lock` serialises every run
//! that may change the host. The kernel drops it when the process dies, so a
//! crash never leaves a stale lock.

use std::fs::File;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{ApplyError, StepError};
use crate::fs::Fs;
use crate::journal::StateDir;

/// Held while this process may change the host; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

/// How often a waiting run retries the lock.
const POLL: Duration = Duration::from_millis(25);

impl StateLock {
    /// Takes the lock, creating the state directory when missing, waiting up
    /// to `timeout` for another run to release it; `waiting` is told once
    /// when it has to wait (the caller says so to the user).
    pub fn acquire(
        fs: &dyn Fs,
        state: &StateDir,
        timeout: Duration,
        waiting: &dyn Fn(&str),
    ) -> Result<Self, ApplyError> {
        let (mut file, shown) = state.open_lock(fs)?;
        let start = Instant::now();
        let mut announced = false;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(StateLock { _lock: lock }),
                Err((f, Errno::EWOULDBLOCK)) => file = f,
                Err((_, errno)) => {
                    return Err(StepError {
                        step: "lock",
                        path: shown,
                        source: errno.into(),
                    }
                    .into())
                }
            }
            if start.elapsed() >= timeout {
                return Err(ApplyError::LockTimeout {
                    path: shown,
                    waited_secs: timeout.as_secs(),
                });
            }
            if !announced {
                waiting(&format!(
                    "waiting up to {} s for another gpu-setup to release {shown}",
                    timeout.as_secs(),
                ));
                announced = true;
            }
            std::thread::sleep(POLL.min(timeout.saturating_sub(start.elapsed())));
        }
    }
}
