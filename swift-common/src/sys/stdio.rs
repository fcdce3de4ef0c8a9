//! Standard streams at the file-descriptor level: /dev/null on stdin, and the
//! pipes that carry stdout and stderr into the logger once a server is ready
//! (Swift's `capture_stdio`, done on fds so `println!` and panics are caught
//! too, and so that swift-init, which reads our stdout, sees it close).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;

use super::{OrSys, SysError};

/// A pair of pipes whose write ends become fds 1 and 2.
#[derive(Debug)]
pub struct CapturePipes {
    pub stdout_read: File,
    pub stderr_read: File,
    stdout_write: OwnedFd,
    stderr_write: OwnedFd,
}

impl CapturePipes {
    /// Create the pipes: close-on-exec everywhere, read ends non-blocking.
    pub fn new() -> Result<CapturePipes, SysError> {
        let (or, ow) = nix::unistd::pipe2(OFlag::O_CLOEXEC).or_sys(|| "pipe2".into())?;
        let (er, ew) = nix::unistd::pipe2(OFlag::O_CLOEXEC).or_sys(|| "pipe2".into())?;
        for fd in [&or, &er] {
            set_nonblocking(fd)?;
        }
        Ok(CapturePipes {
            stdout_read: File::from(or),
            stderr_read: File::from(er),
            stdout_write: ow,
            stderr_write: ew,
        })
    }

    /// Point fd 0 at /dev/null and fds 1 and 2 at the pipes (keeping fd 2 on
    /// the terminal when `keep_stderr`, where console logging goes).
    pub fn install(&self, keep_stderr: bool) -> Result<(), SysError> {
        stdin_from_devnull()?;
        nix::unistd::dup2_stdout(self.stdout_write.as_fd()).or_sys(|| "dup2 onto stdout".into())?;
        if !keep_stderr {
            nix::unistd::dup2_stderr(self.stderr_write.as_fd())
                .or_sys(|| "dup2 onto stderr".into())?;
        }
        Ok(())
    }

    /// The fd numbers of the write ends (for a forked worker to close once
    /// they are installed on fds 1 and 2).
    pub fn write_fds(&self) -> [std::os::fd::RawFd; 2] {
        use std::os::fd::AsRawFd;
        [self.stdout_write.as_raw_fd(), self.stderr_write.as_raw_fd()]
    }

    /// Drop the write ends this process holds (fds 1 and 2 keep theirs), so
    /// the read ends see EOF when every writer is gone.
    pub fn into_readers(self) -> (File, File) {
        (self.stdout_read, self.stderr_read)
    }
}

/// Print a line on stdout, ignoring errors: stdout may be a pipe whose
/// reader is gone (`| head`, or swift-init after its start timeout), and a
/// message must never become a panic.
pub fn print_out(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Print a line on stderr, ignoring errors (see [`print_out`]).
pub fn print_err(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Point fd 0 at /dev/null.
pub fn stdin_from_devnull() -> Result<(), SysError> {
    let null = File::open("/dev/null").or_sys(|| "open /dev/null".into())?;
    nix::unistd::dup2_stdin(null.as_fd()).or_sys(|| "dup2 onto stdin".into())
}

/// Point fds 1 and 2 at /dev/null.
pub fn stdout_stderr_to_devnull() -> Result<(), SysError> {
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .or_sys(|| "open /dev/null".into())?;
    nix::unistd::dup2_stdout(null.as_fd()).or_sys(|| "dup2 onto stdout".into())?;
    nix::unistd::dup2_stderr(null.as_fd()).or_sys(|| "dup2 onto stderr".into())
}

/// A close-on-exec duplicate of fd 2, for console logging that must outlive
/// the capture of stderr.
pub fn dup_stderr() -> Result<File, SysError> {
    let fd = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .or_sys(|| "dup stderr".into())?;
    Ok(File::from(fd))
}

/// Make `fd` non-blocking.
pub fn set_nonblocking(fd: &impl AsFd) -> Result<(), SysError> {
    use nix::fcntl::{FcntlArg, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).or_sys(|| "fcntl(F_GETFL)".into())?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags))
        .map(|_| ())
        .or_sys(|| "fcntl(F_SETFL, O_NONBLOCK)".into())
}

/// Splits what arrives on a captured stream into lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    /// The stream ended: every writer is gone, and none can come back.
    eof: bool,
}

/// Longest line kept whole; longer ones are cut into pieces of this size.
const MAX_CAPTURED_LINE: usize = 16 * 1024;

impl LineSplitter {
    /// Read what is available from the non-blocking `src` and return the
    /// complete lines, and whether the stream reached EOF (in which case a
    /// final partial line is returned too).
    pub fn read_lines(&mut self, src: &mut File) -> (Vec<String>, bool) {
        let mut buf = [0u8; 4096];
        let mut eof = false;
        loop {
            match src.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock, or a broken pipe: nothing more now
            }
        }
        self.eof |= eof;
        (self.take_lines(eof), eof)
    }

    /// Whether the stream has ended (not worth polling or reading again:
    /// a pipe at EOF is always readable).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Feed bytes read elsewhere; returns the complete lines.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        self.take_lines(false)
    }

    fn take_lines(&mut self, flush: bool) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        while self.pending.len() > MAX_CAPTURED_LINE {
            let line: Vec<u8> = self.pending.drain(..MAX_CAPTURED_LINE).collect();
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        if flush && !self.pending.is_empty() {
            lines.push(String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_returns_complete_lines_and_keeps_the_rest() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"one\ntw"), vec!["one".to_string()]);
        assert_eq!(
            s.push(b"o\n\nthree"),
            vec!["two".to_string(), String::new()]
        );
        assert_eq!(s.take_lines(true), vec!["three".to_string()]);
    }

    #[test]
    fn splitter_cuts_endless_lines() {
        let mut s = LineSplitter::default();
        let lines = s.push(&vec![b'x'; MAX_CAPTURED_LINE * 2 + 5]);
        assert_eq!(lines.len(), 2);
        assert_eq!(s.take_lines(true), vec!["xxxxx".to_string()]);
    }
}
