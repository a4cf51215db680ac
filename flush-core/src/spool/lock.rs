//! Advisory locks (`flock` through std's `File::try_lock`): the delivery lock and the per-writer liveness locks.
//! The kernel releases a lock when its holder exits, however it exits (SIGKILL included), so a lock that can be taken
//! means its holder is gone.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;

use super::format::{WriterId, lock_file_name};
use super::io::{create_new, open_or_create};

/// The name of the delivery lock file in the spool directory.
pub(crate) const DELIVERY_LOCK_FILE: &str = "delivery.lock";

/// Creates and locks `<writer>.lock` for a new writer. The file is created and locked under a temporary name and then
/// renamed into place, so no other process can ever see the lock file unlocked while the writer lives.
pub(crate) fn create_writer_lock(dir: &Path, writer: WriterId) -> io::Result<File> {
    let final_path = dir.join(lock_file_name(writer));
    let temporary_path = dir.join(format!("{}.tmp", lock_file_name(writer)));
    let file = create_new(&temporary_path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(io::Error::from(io::ErrorKind::WouldBlock)),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    if let Err(error) = fs::rename(&temporary_path, &final_path) {
        let _ = fs::remove_file(&temporary_path);
        return Err(error);
    }
    Ok(file)
}

/// Whether a writer is alive.
#[derive(Debug)]
pub(crate) enum Liveness {
    /// Its lock is held: it may still append.
    Alive,
    /// Its lock could be taken (held in the file, until dropped) or its lock file is gone: it will never append again.
    Dead(Option<File>),
}

/// Probes a writer's liveness lock. Errors other than "held" count as alive: the safe side (nothing is cut).
pub(crate) fn probe_writer(dir: &Path, writer: WriterId) -> Liveness {
    let path = dir.join(lock_file_name(writer));
    let file = match OpenOptions::new().read(true).open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Liveness::Dead(None),
        Err(error) => {
            tracing::debug!(%error, path = %path.display(), "spool: cannot probe a writer lock; assuming alive");
            return Liveness::Alive;
        }
    };
    match file.try_lock() {
        Ok(()) => Liveness::Dead(Some(file)),
        Err(TryLockError::WouldBlock) => Liveness::Alive,
        Err(TryLockError::Error(error)) => {
            tracing::debug!(%error, path = %path.display(), "spool: cannot lock a writer lock; assuming alive");
            Liveness::Alive
        }
    }
}

/// Tries to take the delivery lock: `Ok(None)` if another holder (in any process) has it.
pub(crate) fn try_delivery_lock(dir: &Path) -> io::Result<Option<File>> {
    let file = open_or_create(&dir.join(DELIVERY_LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(error)) => Err(error),
    }
}
