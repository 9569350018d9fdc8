//! Small files that must survive a crash whole: the job state, the lockout guard's records.
//!
//! A crash or a power cut must leave either the old content or the new, never a torn file, and a write that
//! returned must still be there after a reboot. So: a temporary file beside the target, written and fsynced,
//! renamed over the target, then the directory fsynced so that the rename itself is on disk.

use std::io::{Read, Write};
use std::path::Path;

/// The whole of a small file (a job state, a secret's metadata or age file), read without asking its size first:
/// `std::fs::read`, and `File::read_to_end` too, spend a `statx` and an `lseek` on that, which at 1,000 jobs were
/// a third of the system calls of `status`.
pub fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    read_all(std::fs::File::open(path)?)
}

/// A directory opened once for many small reads in it: each of its files is then found by its name alone, where
/// opening by path walks every directory of the path again (about a twentieth of `status` at 1,000 jobs).
pub struct Dir(std::os::fd::OwnedFd);

impl Dir {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        use rustix::fs::{Mode, OFlags};
        Ok(Self(rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?))
    }

    /// [`read_small`] of the file `name` in this directory.
    pub fn read_small(&self, name: &std::ffi::OsStr) -> std::io::Result<Vec<u8>> {
        use rustix::fs::{Mode, OFlags};
        read_all(rustix::fs::openat(&self.0, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?.into())
    }
}

/// [`read_small`] of `path`, found by its name in `dir` when its directory is open there (a batch read), else by
/// its path (no such directory yet, or one that did not open: the path's own error then says why).
pub fn read_small_in(dir: Option<&Dir>, path: &Path) -> std::io::Result<Vec<u8>> {
    match (dir, path.file_name()) {
        (Some(dir), Some(name)) => dir.read_small(name),
        _ => read_small(path),
    }
}

fn read_all(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0; SMALL];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(2 * len, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// Room for what rotavault's own small files hold (a few hundred bytes); a larger file only grows the buffer. No
/// more than the allocator's thread cache takes (1 KiB, `.cargo/config.toml`): a larger buffer takes the arena's lock.
const SMALL: usize = 1024;

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
    fn a_small_read_returns_the_whole_file_whatever_its_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0, 1, super::SMALL - 1, super::SMALL, super::SMALL + 1, 5 * super::SMALL + 7] {
            let path = dir.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &bytes).expect("write");
            assert_eq!(super::read_small(&path).expect("read"), bytes, "a file of {len} bytes");
        }
        let missing = super::read_small(&dir.path().join("none")).expect_err("a missing file is an error");
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

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
