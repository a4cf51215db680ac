//! The file-access seam: every write, sync and file creation of the spool goes through here, so tests can inject
//! faults (a full disk, a short write, a failing fsync) exactly where the operating system could produce them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Files are created readable and writable by the owner only: telemetry can hold personal data.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Directories are created accessible by the owner only.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Writes all of `bytes` at `offset` (positioned, so no shared cursor is involved).
pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(test)]
    if let Some(result) = faults::on_write(file, bytes, offset) {
        return result;
    }
    file.write_all_at(bytes, offset)
}

/// `fdatasync`: the data and the size of `file` reach stable storage.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(test)]
    if let Some(error) = faults::take(faults::Operation::Sync) {
        return Err(error);
    }
    file.sync_data()
}

/// Creates a new private file for reading and writing; fails if it exists.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    #[cfg(test)]
    if let Some(error) = faults::take(faults::Operation::Create) {
        return Err(error);
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Opens (creating if needed) a private file for reading and writing, keeping its contents.
pub(crate) fn open_or_create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
}

/// Fsyncs a directory, so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    if let Some(error) = faults::take(faults::Operation::Sync) {
        return Err(error);
    }
    File::open(dir)?.sync_all()
}

/// Reads from `offset` until `buffer` is full or the file ends; returns how many bytes were read.
pub(crate) fn read_at_most(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Creates `dir` (and its parents) with mode 0700 if it does not exist.
pub(crate) fn create_dir_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Fault injection for tests: a per-thread plan consulted by the functions above.
#[cfg(test)]
pub(crate) mod faults {
    use std::cell::RefCell;
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    /// The operation a fault applies to.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) enum Operation {
        /// [`super::write_all_at`].
        Write,
        /// [`super::sync_data`] and [`super::sync_dir`].
        Sync,
        /// [`super::create_new`].
        Create,
    }

    struct Fault {
        operation: Operation,
        kind: io::ErrorKind,
        /// For writes: how many bytes reach the file before the error (a short write).
        written_first: usize,
    }

    thread_local! {
        static PLAN: RefCell<Vec<Fault>> = const { RefCell::new(Vec::new()) };
    }

    /// Makes the next `operation` on this thread fail with `kind`; a write first writes `written_first` bytes.
    pub(crate) fn inject(operation: Operation, kind: io::ErrorKind, written_first: usize) {
        PLAN.with(|plan| {
            plan.borrow_mut().push(Fault {
                operation,
                kind,
                written_first,
            })
        });
    }

    /// Removes every planned fault of this thread.
    pub(crate) fn clear() {
        PLAN.with(|plan| plan.borrow_mut().clear());
    }

    pub(super) fn take(operation: Operation) -> Option<io::Error> {
        take_fault(operation).map(|fault| io::Error::from(fault.kind))
    }

    fn take_fault(operation: Operation) -> Option<Fault> {
        PLAN.with(|plan| {
            let mut plan = plan.borrow_mut();
            let position = plan.iter().position(|fault| fault.operation == operation)?;
            Some(plan.remove(position))
        })
    }

    pub(super) fn on_write(file: &File, bytes: &[u8], offset: u64) -> Option<io::Result<()>> {
        let fault = take_fault(Operation::Write)?;
        let prefix = &bytes[..fault.written_first.min(bytes.len())];
        if let Err(error) = file.write_all_at(prefix, offset) {
            return Some(Err(error));
        }
        Some(Err(io::Error::from(fault.kind)))
    }
}
