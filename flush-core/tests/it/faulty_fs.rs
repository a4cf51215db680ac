//! A file system for the spool's seam that fails chosen operations until healed, counts every operation, and can
//! hold writes (a hung disk). Everything else is the real file system.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use flush_core::spool::{DirEntry, FileSystem, OpenMode, RealFileSystem, SpoolConfig};

/// The operations of the seam.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    /// `open` that may create (`CreateNew`, `OpenOrCreate`).
    Create,
    /// `open` of an existing file (`Read`, `ReadWrite`).
    Open,
    Write,
    Read,
    SyncData,
    SetLen,
    SyncDir,
    Rename,
    Remove,
    CreateDir,
    ReadDir,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    /// Only paths whose file name contains this (empty: every path).
    name_contains: String,
    kind: io::ErrorKind,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    counts: HashMap<Op, u64>,
    /// Failures returned, by operation.
    failures: HashMap<Op, u64>,
    writes_held: bool,
    /// Fsyncs of files whose name is this wait until [`FaultyFs::heal`].
    syncs_held: Option<String>,
    /// Fsyncs waiting now.
    syncs_waiting: u64,
}

/// See the module doc. Cheap to clone (clones share their state).
#[derive(Debug, Default, Clone)]
pub(crate) struct FaultyFs {
    state: Arc<(Mutex<State>, Condvar)>,
}

impl FaultyFs {
    /// A spool configuration for `dir` whose file operations go through this file system.
    pub(crate) fn config(&self, dir: &Path) -> SpoolConfig {
        SpoolConfig::new(dir).with_file_system(Arc::new(self.clone()) as Arc<dyn FileSystem>)
    }

    /// Makes `op` fail with `kind` on every file whose name contains `name_contains`, until [`heal`](Self::heal).
    pub(crate) fn fail(&self, op: Op, name_contains: &str, kind: io::ErrorKind) {
        self.lock().rules.push(Rule {
            op,
            name_contains: name_contains.to_owned(),
            kind,
        });
    }

    /// The directory as if made read-only: nothing can be created, renamed or removed in it (what `chmod a-w` does
    /// for an unprivileged process; files already open stay writable).
    pub(crate) fn make_read_only(&self) {
        for op in [Op::Create, Op::Rename, Op::Remove, Op::CreateDir] {
            self.fail(op, "", io::ErrorKind::PermissionDenied);
        }
    }

    /// Removes every fault and lets held writes go.
    pub(crate) fn heal(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.writes_held = false;
        state.syncs_held = None;
        self.state.1.notify_all();
    }

    /// Makes every write wait until [`heal`](Self::heal).
    pub(crate) fn hold_writes(&self) {
        self.lock().writes_held = true;
    }

    /// Makes every fsync of a file named `name` wait until [`heal`](Self::heal).
    pub(crate) fn hold_syncs(&self, name: &str) {
        self.lock().syncs_held = Some(name.to_owned());
    }

    /// How many fsyncs are waiting in [`hold_syncs`](Self::hold_syncs) now.
    pub(crate) fn syncs_waiting(&self) -> u64 {
        self.lock().syncs_waiting
    }

    /// How many times `op` was called.
    pub(crate) fn count(&self, op: Op) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// How many times `op` failed by a rule.
    pub(crate) fn failures(&self, op: Op) -> u64 {
        self.lock().failures.get(&op).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Counts `op` on `path` and returns the planned failure, if any.
    fn check(&self, op: Op, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        *state.counts.entry(op).or_default() += 1;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = state
            .rules
            .iter()
            .find(|rule| rule.op == op && name.contains(&rule.name_contains))
            .map(|rule| rule.kind);
        match kind {
            Some(kind) => {
                *state.failures.entry(op).or_default() += 1;
                Err(kind.into())
            }
            None => Ok(()),
        }
    }

    fn check_file(&self, op: Op, file: &File) -> io::Result<()> {
        self.check(op, &path_of(file))
    }
}

/// The path an open file was opened under (from `/proc/self/fd`).
fn path_of(file: &File) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
}

impl FileSystem for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::CreateDir, dir)?;
        RealFileSystem.create_dir_all(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.check(Op::ReadDir, dir)?;
        RealFileSystem.read_dir(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        let op = match mode {
            OpenMode::CreateNew | OpenMode::OpenOrCreate => Op::Create,
            _ => Op::Open,
        };
        self.check(op, path)?;
        RealFileSystem.open(path, mode)
    }

    fn write_all_at(&self, file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.check_file(Op::Write, file)?;
        let (lock, released) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|poison| poison.into_inner());
        while state.writes_held {
            state = released
                .wait(state)
                .unwrap_or_else(|poison| poison.into_inner());
        }
        drop(state);
        RealFileSystem.write_all_at(file, bytes, offset)
    }

    fn read_at(&self, file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        self.check_file(Op::Read, file)?;
        RealFileSystem.read_at(file, buffer, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.check_file(Op::SyncData, file)?;
        let path = path_of(file);
        let (lock, released) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|poison| poison.into_inner());
        let held = |state: &State| {
            state
                .syncs_held
                .as_ref()
                .is_some_and(|name| path.file_name().is_some_and(|file| file == name.as_str()))
        };
        if held(&state) {
            state.syncs_waiting += 1;
            while held(&state) {
                state = released
                    .wait(state)
                    .unwrap_or_else(|poison| poison.into_inner());
            }
            state.syncs_waiting -= 1;
        }
        drop(state);
        RealFileSystem.sync_data(file)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.check_file(Op::SetLen, file)?;
        RealFileSystem.set_len(file, len)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::SyncDir, dir)?;
        RealFileSystem.sync_dir(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename, to)?;
        RealFileSystem.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(Op::Remove, path)?;
        RealFileSystem.remove_file(path)
    }
}
