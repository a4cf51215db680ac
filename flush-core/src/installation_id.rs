//! The stable installation id: generated once, kept in the spool directory, used as `distinct_id` when the
//! application gives none (the design documents' `repoId`).
//!
//! Creation is race-free between processes: the id is written to a temporary file and hard-linked into place, which
//! fails if another process got there first; then everyone reads the one that won.
//!
//! A file by that name that is not a regular file (a FIFO, a device, a directory) is refused with an error, never
//! opened for a blocking read, and a file longer than any id is refused rather than read whole.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The longest installation id file accepted (a UUID is 36 characters; an id given in a file may be longer).
const MAX_ID_BYTES: u64 = 256;

/// The file name inside the spool directory.
pub const INSTALLATION_ID_FILE: &str = "installation_id";

/// Reads the installation id in `dir`, creating it first if there is none.
///
/// # Errors
/// The I/O error if the directory cannot be created, written or read.
pub(crate) fn load_or_create(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(INSTALLATION_ID_FILE);
    if let Some(id) = read(&path)? {
        return Ok(id);
    }
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(
        "{INSTALLATION_ID_FILE}.{}.tmp",
        uuid::Uuid::now_v7().simple()
    ));
    {
        let mut file = std::fs::File::create(&temporary)?;
        writeln!(file, "{}", uuid::Uuid::now_v7())?;
        file.sync_all()?;
    }
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    read(&path)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the installation id file is empty",
        )
    })
}

fn read(path: &Path) -> std::io::Result<Option<String>> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if metadata.len() > MAX_ID_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} holds {} bytes, more than an installation id ({MAX_ID_BYTES} at most)",
                path.display(),
                metadata.len()
            ),
        ));
    }
    let mut text = String::new();
    (&mut file).take(MAX_ID_BYTES).read_to_string(&mut text)?;
    Ok(Some(text.trim().to_owned()).filter(|id| !id.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(&dir.path().join("spool")).unwrap();
        let second = load_or_create(&dir.path().join("spool")).unwrap();
        assert_eq!(first, second);
        assert!(uuid::Uuid::parse_str(&first).is_ok());
    }

    #[test]
    fn racing_processes_agree_on_one_id() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_create(dir.path()).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
    }

    #[test]
    fn a_fifo_in_place_of_the_id_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join(INSTALLATION_ID_FILE))
            .status()
            .unwrap();
        assert!(made.success());

        let error = load_or_create(dir.path()).unwrap_err();

        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn an_oversized_id_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INSTALLATION_ID_FILE), vec![b'x'; 10_000]).unwrap();

        let error = load_or_create(dir.path()).unwrap_err();

        assert!(
            error.to_string().contains("more than an installation id"),
            "{error}"
        );
    }
}
