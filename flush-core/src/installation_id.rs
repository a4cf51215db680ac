//! The stable installation id: generated once, kept in the spool directory, used as `distinct_id` when the
//! application gives none (the design documents' `repoId`).
//!
//! Creation is race-free between processes: the id is written to a temporary file and hard-linked into place, which
//! fails if another process got there first; then everyone reads the one that won.

use std::io::Write;
use std::path::Path;

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
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|id| !id.is_empty())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
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
}
