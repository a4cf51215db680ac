//! Advisory locks (`flock` through std's `File::try_lock`): the delivery lock and the per-writer liveness locks, and
//! the removal of dead writers' lock files. The kernel releases a lock when its holder exits, however it exits
//! (SIGKILL included), so a lock that can be taken means its holder is gone.

use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;

use super::format::{WriterId, lock_file_name, parse_lock_file_name};
use super::io::{FileSystem, OpenMode};

/// The name of the delivery lock file in the spool directory.
pub(crate) const DELIVERY_LOCK_FILE: &str = "delivery.lock";

/// The suffix of a writer lock file while it is being created (`<writer>.lock.tmp`).
const LOCK_TMP_SUFFIX: &str = ".tmp";

/// How many fresh writer ids a starting writer tries when its half-created lock file is taken away.
const CREATE_ATTEMPTS: usize = 8;

/// Creates and locks the lock file of a new writer and returns the writer's id with it.
///
/// The file is created and locked under a temporary name (`<writer>.lock.tmp`) and then renamed into place, so no
/// other process ever sees `<writer>.lock` unlocked while the writer lives. Between the creation and the lock, a
/// delivering process may take a temporary file for a dead writer's and remove it ([`remove_dead_lock_file`]); the
/// lock or the rename then fails, and the writer starts again under a fresh id (ids are never reused).
pub(crate) fn create_writer_lock(
    fs: &dyn FileSystem,
    dir: &Path,
    writer: Option<WriterId>,
) -> io::Result<(WriterId, File)> {
    let mut last_error = None;
    for attempt in 0..CREATE_ATTEMPTS {
        let writer = match writer {
            Some(writer) if attempt == 0 => writer,
            _ => WriterId::generate(),
        };
        let final_path = dir.join(lock_file_name(writer));
        let temporary_path = dir.join(format!("{}{LOCK_TMP_SUFFIX}", lock_file_name(writer)));
        let file = fs.open(&temporary_path, OpenMode::CreateNew)?;
        let locked = match file.try_lock() {
            Ok(()) => fs.rename(&temporary_path, &final_path),
            Err(TryLockError::WouldBlock) => Err(io::Error::from(io::ErrorKind::WouldBlock)),
            Err(TryLockError::Error(error)) => Err(error),
        };
        match locked {
            Ok(()) => return Ok((writer, file)),
            // Taken away by a collector that saw it unlocked: try again under a new name.
            Err(error)
                if error.kind() == io::ErrorKind::WouldBlock
                    || error.kind() == io::ErrorKind::NotFound =>
            {
                last_error = Some(error);
            }
            Err(error) => {
                let _ = fs.remove_file(&temporary_path);
                return Err(error);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::WouldBlock)))
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
pub(crate) fn probe_writer(fs: &dyn FileSystem, dir: &Path, writer: WriterId) -> Liveness {
    let path = dir.join(lock_file_name(writer));
    let file = match fs.open(&path, OpenMode::Read) {
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

/// The writer a lock file name belongs to, final (`<writer>.lock`) or half created (`<writer>.lock.tmp`).
pub(crate) fn parse_any_lock_file_name(name: &str) -> Option<WriterId> {
    parse_lock_file_name(name.strip_suffix(LOCK_TMP_SUFFIX).unwrap_or(name))
}

/// Removes the lock file `name` (final or temporary) if its writer is dead, under that writer's lock: the file is
/// opened, locked, and only then removed, so a live writer's file is never removed (a starting writer whose
/// temporary file is removed before it locked it starts again under a new id, see [`create_writer_lock`]). Returns
/// whether it removed the file.
pub(crate) fn remove_dead_lock_file(fs: &dyn FileSystem, dir: &Path, name: &str) -> bool {
    let path = dir.join(name);
    let Ok(file) = fs.open(&path, OpenMode::Read) else {
        return false;
    };
    if file.try_lock().is_err() {
        return false;
    }
    // Invariant: the lock is held (by `file`) while the path is removed.
    let removed = fs.remove_file(&path).is_ok();
    drop(file);
    removed
}

/// Tries to take the delivery lock: `Ok(None)` if another holder (in any process) has it.
pub(crate) fn try_delivery_lock(fs: &dyn FileSystem, dir: &Path) -> io::Result<Option<File>> {
    let file = fs.open(&dir.join(DELIVERY_LOCK_FILE), OpenMode::OpenOrCreate)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(error)) => Err(error),
    }
}
