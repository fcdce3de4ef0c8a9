//! Pid files under the run dir: read as Swift reads them (the decimal pid,
//! whitespace ignored), written atomically (a temporary file renamed over
//! the pid file) and removed only while they still hold the pid we judged.
//!
//! Double starts are prevented with an exclusive `flock` on the run
//! directory itself, held from the "is it running?" check until the new pid
//! file is in place. A lock file next to the pid files would not do: Swift's
//! swift-init treats every `run_dir/<server>*` file as a pid file and
//! deletes the ones that do not hold a number. The temporary file lives in
//! the run dir's top level as a hidden file, where Swift's globs never look.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// What a pid file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidContent {
    /// A positive pid.
    Pid(i32),
    /// Anything else (Swift: "with invalid pid").
    Invalid,
}

/// Parse pid file text like Swift's `int(text.strip())`; zero, negative and
/// non-numbers are invalid (a negative pid would name a process group).
pub fn parse_pid(text: &[u8]) -> PidContent {
    let Ok(text) = std::str::from_utf8(text) else {
        return PidContent::Invalid;
    };
    let t = text.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return PidContent::Invalid;
    }
    match digits.parse::<i32>() {
        Ok(pid) if pid > 0 => PidContent::Pid(pid),
        _ => PidContent::Invalid,
    }
}

/// Read a pid file, with the identity (device, inode) of what was read so a
/// later removal can tell whether the file was replaced meanwhile.
pub fn read_pid(path: &Path) -> io::Result<(PidContent, (u64, u64))> {
    let bytes = std::fs::read(path)?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((parse_pid(&bytes), (meta.dev(), meta.ino())))
}

static TMP_SEQ: AtomicU32 = AtomicU32::new(0);

/// Write `pid` (decimal, no newline) to `path` atomically: write a hidden
/// temporary file in `run_dir`, then rename it over `path`. Parent
/// directories of `path` must exist (see [`create_dirs`]).
pub fn write_pid(path: &Path, pid: u32, run_dir: &Path) -> io::Result<()> {
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(".swift-init.{}.{seq}.tmp", std::process::id());
    let mut tmp = run_dir.join(&tmp_name);
    let write = |tmp: &Path| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)?;
        f.write_all(pid.to_string().as_bytes())?;
        Ok(())
    };
    write(&tmp)?;
    let mut result = std::fs::rename(&tmp, path);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EXDEV)) {
        // The pid file's directory is another file system: write the
        // temporary file next to it instead (briefly visible to Swift).
        let _ = std::fs::remove_file(&tmp);
        let dir = path.parent().unwrap_or(run_dir);
        tmp = dir.join(&tmp_name);
        write(&tmp)?;
        result = std::fs::rename(&tmp, path);
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Create `dir` and its parents. `Err(message)` is Swift's line for a
/// directory that cannot be created for lack of permission.
pub fn create_dirs(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(format!(
            "Unable to create {}.  Running as non-root?",
            dir.display()
        )),
        Err(e) => Err(format!("Unable to create {}: {e}", dir.display())),
    }
}

/// Remove `path` if it is still the file that was read as `identity`
/// (a concurrent start may have replaced it). Errors are ignored, as
/// Swift's `remove_file` does.
pub fn remove_if_same(path: &Path, identity: (u64, u64)) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == identity) {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether `path` holds `pid`.
pub fn holds(path: &Path, pid: i32) -> bool {
    matches!(read_pid(path), Ok((PidContent::Pid(p), _)) if p == pid)
}

/// Remove `path` if it still holds `pid`.
pub fn remove_if_holds(path: &Path, pid: i32) {
    match read_pid(path) {
        Ok((PidContent::Pid(p), id)) if p == pid => remove_if_same(path, id),
        _ => {}
    }
}

/// The run dir and its lock. The lock is re-entrant within this process
/// (flock locks are per open file, so a second open would deadlock us).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    held: RefCell<Option<(Flock<File>, usize)>>,
}

/// How long to wait for another swift-init holding the run dir lock; it only
/// holds it while it spawns servers and writes their pid files.
const LOCK_WAIT: Duration = Duration::from_secs(30);

impl RunDir {
    pub fn new(path: PathBuf) -> RunDir {
        RunDir {
            path,
            held: RefCell::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the run dir lock (creating the run dir if needed); the lock is
    /// released when the last guard is dropped.
    pub fn lock(&self) -> Result<RunDirGuard<'_>, String> {
        let mut held = self.held.borrow_mut();
        if let Some((_, depth)) = held.as_mut() {
            *depth += 1;
            return Ok(RunDirGuard { dir: self });
        }
        create_dirs(&self.path)?;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut file = File::open(&self.path)
            .map_err(|e| format!("Unable to open {}: {e}", self.path.display()))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    *held = Some((lock, 1));
                    return Ok(RunDirGuard { dir: self });
                }
                Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(format!(
                        "Timed out after {} seconds waiting for the lock on {} (another swift-init is starting servers)",
                        LOCK_WAIT.as_secs(),
                        self.path.display()
                    ));
                }
                Err((_, e)) => return Err(format!("Unable to lock {}: {e}", self.path.display())),
            }
        }
    }
}

/// Holds the run dir lock (see [`RunDir::lock`]).
#[derive(Debug)]
pub struct RunDirGuard<'a> {
    dir: &'a RunDir,
}

impl Drop for RunDirGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.dir.held.borrow_mut();
        let last = match held.as_mut() {
            Some((_, depth)) => {
                *depth -= 1;
                *depth == 0
            }
            None => false,
        };
        if last {
            // Closing the file releases the lock.
            *held = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_python_int() {
        assert_eq!(parse_pid(b"1234"), PidContent::Pid(1234));
        assert_eq!(parse_pid(b" 1234\n"), PidContent::Pid(1234));
        assert_eq!(parse_pid(b"+7"), PidContent::Pid(7));
        assert_eq!(parse_pid(b"0"), PidContent::Invalid);
        assert_eq!(parse_pid(b"Forty-Two"), PidContent::Invalid);
        assert_eq!(parse_pid(b"blah"), PidContent::Invalid);
        assert_eq!(parse_pid(b""), PidContent::Invalid);
        assert_eq!(parse_pid(b"-3"), PidContent::Invalid);
        assert_eq!(parse_pid(b"99999999999"), PidContent::Invalid);
        assert_eq!(parse_pid(b"\xff"), PidContent::Invalid);
    }

    #[test]
    fn atomic_write_and_guarded_remove() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path();
        std::fs::create_dir_all(run.join("object-replicator")).unwrap();
        let p = run.join("object-replicator/1.pid");
        write_pid(&p, 4321, run).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4321");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(run)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("object-replicator")]);
        let (content, id) = read_pid(&p).unwrap();
        assert_eq!(content, PidContent::Pid(4321));
        // Replaced meanwhile: the old identity no longer removes it.
        write_pid(&p, 5555, run).unwrap();
        remove_if_same(&p, id);
        assert!(p.exists());
        remove_if_holds(&p, 4321);
        assert!(p.exists());
        remove_if_holds(&p, 5555);
        assert!(!p.exists());
    }

    #[test]
    fn lock_is_reentrant_and_exclusive() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("run");
        let a = RunDir::new(run.clone());
        let g1 = a.lock().unwrap();
        let g2 = a.lock().unwrap();
        // Another open file of the same directory cannot take it.
        let f = File::open(&run).unwrap();
        let f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Err((f, Errno::EWOULDBLOCK)) => f,
            other => panic!("lock should be held: {:?}", other.map(|_| ())),
        };
        drop(g2);
        let f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Err((f, Errno::EWOULDBLOCK)) => f,
            other => panic!("lock should still be held: {:?}", other.map(|_| ())),
        };
        drop(g1);
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
