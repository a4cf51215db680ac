//! The file-system seam: every file operation of the spool, in the application's threads and in the reporter's
//! workers alike, goes through a [`FileSystem`], so tests inject faults (a full disk, `EIO` on a write or an fsync,
//! a directory that vanished or turned read-only) exactly where the operating system could produce them.
//!
//! [`RealFileSystem`] is the default (set one with [`SpoolConfig::with_file_system`](super::SpoolConfig::with_file_system)).
//! Every method of the trait has the real implementation as its default, so a test double overrides only the
//! operations it injects faults into and calls [`RealFileSystem`] for the rest.
//!
//! The spool opens nothing that is not a regular file: [`FileSystem::open`] opens with `O_NONBLOCK` (so a FIFO or a
//! device named like a spool file cannot block the caller, whatever races with the directory listing) and then
//! refuses anything `fstat` does not call a regular file, with [`NOT_A_REGULAR_FILE`].

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

/// Files are created readable and writable by the owner only: telemetry can hold personal data.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Directories are created accessible by the owner only.
pub(crate) const DIR_MODE: u32 = 0o700;

/// The message of the error [`FileSystem::open`] returns for a path that is not a regular file (its kind is
/// [`io::ErrorKind::InvalidInput`]).
pub const NOT_A_REGULAR_FILE: &str = "not a regular file";

/// How [`FileSystem::open`] opens a file. Every mode opens close-on-exec and non-blocking, and creates files with
/// mode `0600`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet (`O_CREAT | O_EXCL`).
    CreateNew,
    /// Read and write, created if missing, contents kept.
    OpenOrCreate,
}

/// One entry of a directory listing: its name and whether the directory entry says it is a regular file (read
/// without opening or following it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name.
    pub name: OsString,
    /// Whether it is a regular file (a symbolic link, a FIFO, a socket, a device or a directory is not).
    pub is_file: bool,
}

/// The file operations of the spool: the seam where tests inject disk faults. Each default method is the real
/// operation ([`RealFileSystem`] overrides none), so a test double overrides only what it injects faults into and
/// calls [`RealFileSystem`] for the rest. [`open`](FileSystem::open) opens regular files only, with `O_NONBLOCK`,
/// so nothing named like a spool file can block the caller.
///
/// Implementations must be usable from several threads at once (the reporter's spooler and sender share one spool).
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its missing parents with mode `0700`; succeeds if it exists.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
    }

    /// Lists the entries of `dir` (without `.` and `..`).
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
            entries.push(DirEntry {
                name: entry.file_name(),
                is_file,
            });
        }
        Ok(entries)
    }

    /// The metadata of `path` itself (a symbolic link is not followed).
    fn symlink_metadata(&self, path: &Path) -> io::Result<fs::Metadata> {
        fs::symlink_metadata(path)
    }

    /// Opens a regular file (see [`OpenMode`]); anything else is refused with [`NOT_A_REGULAR_FILE`] without
    /// blocking.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NONBLOCK);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                options.write(true);
            }
            OpenMode::CreateNew => {
                options.write(true).create_new(true);
            }
            OpenMode::OpenOrCreate => {
                options.write(true).create(true).truncate(false);
            }
        }
        let file = options.open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                NOT_A_REGULAR_FILE,
            ));
        }
        Ok(file)
    }

    /// Writes all of `bytes` at `offset` (positioned: no shared cursor is involved).
    fn write_all_at(&self, file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(bytes, offset)
    }

    /// Reads at `offset` into `buffer`; returns how many bytes were read (0 at the end of the file).
    fn read_at(&self, file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buffer, offset)
    }

    /// `fdatasync`: the data and the size of `file` reach stable storage.
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Truncates or extends `file` to `len` bytes.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    /// Fsyncs the directory `dir`, so that file creations, renames and removals in it are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Renames `from` to `to`, replacing `to` atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// The operating system's file system: what the spool uses unless a test sets another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealFileSystem;

impl FileSystem for RealFileSystem {}

/// Reads from `offset` until `buffer` is full or the file ends; returns how many bytes were read.
pub(crate) fn read_at_most(
    fs: &dyn FileSystem,
    file: &File,
    buffer: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match fs.read_at(file, &mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Reads a whole (regular) file.
pub(crate) fn read_whole(fs: &dyn FileSystem, path: &Path) -> io::Result<Vec<u8>> {
    let file = fs.open(path, OpenMode::Read)?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut bytes = vec![0_u8; len];
    let read = read_at_most(fs, &file, &mut bytes, 0)?;
    bytes.truncate(read);
    Ok(bytes)
}
