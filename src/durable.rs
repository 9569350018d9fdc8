//! Small files that must survive a crash whole: the job state, the lockout guard's records.
//!
//! A crash or a power cut must leave either the old content or the new, never a torn file, and a write that
//! returned must still be there after a reboot. So: a temporary file beside the target, written and fsynced,
//! renamed over the target, then the directory fsynced so that the rename itself is on disk.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes`, durably (see the module documentation). Creates the directory if needed; a
/// failed write leaves no temporary file behind.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // One temporary name per process, so that two processes never write into each other's file; writers of one
    // path within a process are serialized by their callers' locks.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_write_replaces_the_whole_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/state.json");
        super::write(&path, b"a longer first version").expect("first");
        super::write(&path, b"second").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).expect("dir").flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
