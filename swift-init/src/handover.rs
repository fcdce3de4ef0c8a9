//! File descriptors and the servers we start.
//!
//! - Nothing swift-init inherited reaches a server (Swift's Popen uses
//!   `close_fds=True`): a shell's or a test harness's stray fds would
//!   otherwise live as long as the server, keeping pipes and files open.
//! - A graceful `reload` hands the running server's listening socket to the
//!   new one, so both accept from the same queue while they overlap and no
//!   connection waiting in it is lost when the old one stops. The socket is
//!   taken out of the running master with `pidfd_getfd` and passed by
//!   number in `SWIFT_INHERITED_LISTEN_FD`. Only our servers (ELF binaries)
//!   get it: a Python server would keep an fd it never accepts on, and the
//!   connections queued in it would wait forever. And only from our
//!   servers: a Python master shuts the socket down when it stops.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::process::Proc;

/// Make every fd above stderr close-on-exec, so that only 0, 1 and 2 (and
/// what a command hands over on purpose) reach the servers we start.
pub fn close_inherited_fds() {
    // Collected first: the directory being read is itself an fd.
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|fd| *fd > 2)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // EBADF for the directory's own fd, closed by now.
        let _ = swift_common::sys::fds::set_cloexec(fd, true);
    }
}

/// Whether `binary` is one of our servers (an ELF executable, which reads
/// `SWIFT_INHERITED_LISTEN_FD`) rather than a Python script (`#!`).
pub fn is_ours(binary: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(binary)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// Whether the running `proc` runs one of our servers: its executable is
/// named `cmd`, or as the file `binary` resolves to (it may have been
/// replaced on disk since), rather than being a Python interpreter. A
/// Python master shuts its listening socket down on SIGHUP, which would stop
/// the socket for whoever shares it: its socket is never handed over.
pub fn runs_ours(proc: &Proc, binary: &Path, cmd: &str) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", proc.pid())) else {
        return false;
    };
    let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.as_deref().unwrap_or_default();
    let name = name.strip_suffix(" (deleted)").unwrap_or(name);
    let installed = std::fs::canonicalize(binary)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    name == cmd || installed.as_deref() == Some(name)
}

/// The inodes of the sockets listed as listening (state `0A`) in a
/// `/proc/net/tcp` or `/proc/net/tcp6` table.
pub fn listening_inodes(table: &str) -> HashSet<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode
            (f.get(3) == Some(&"0A"))
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .filter(|ino| *ino != 0)
        .collect()
}

/// The socket inode an fd link names (`socket:[12345]`).
fn socket_inode(link: &Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Take a duplicate of the listening TCP socket of `proc` (a server
/// master). It must have exactly one (one server, one port); the
/// duplicate is close-on-exec.
pub fn take_listening_socket(proc: &Proc) -> Result<OwnedFd, String> {
    let pid = proc.pid();
    // The process's own network namespace, which may not be ours.
    let mut listening = HashSet::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            listening.extend(listening_inodes(&text));
        }
    }
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("cannot list /proc/{pid}/fd: {e}"))?;
    let mut found: Vec<(RawFd, u64)> = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Some(ino) = std::fs::read_link(entry.path())
            .ok()
            .and_then(|l| socket_inode(&l))
        else {
            continue;
        };
        // The same socket may sit on several fds; it counts once.
        if listening.contains(&ino) && !found.iter().any(|(_, i)| *i == ino) {
            found.push((fd, ino));
        }
    }
    let (fd, ino) = match found.as_slice() {
        [one] => *one,
        [] => return Err("it has no listening TCP socket".to_owned()),
        _ => return Err(format!("it has {} listening TCP sockets", found.len())),
    };
    let taken = proc
        .take_fd(fd)
        .map_err(|e| format!("pidfd_getfd: {}", e.desc()))?;
    // The fd number may have been reused since /proc was read.
    let file = std::fs::File::from(taken);
    let same = file.metadata().is_ok_and(|m| m.ino() == ino);
    if !same {
        return Err("its listening socket changed while it was being taken".to_owned());
    }
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_inodes_from_proc_net() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 36828 1 000000002dd03064 100 0 0 10 0\n\
   1: 0100007F:C7A3 0100007F:46A0 01 00000000:00000000 00:00000000 00000000     0        0 82701 31 0000000097a91e9f 100 0 0 10 0\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0 100 0 0 10 0\n";
        let got = listening_inodes(table);
        assert_eq!(got, HashSet::from([36828]));
        assert!(listening_inodes("").is_empty());
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(Path::new("socket:[181187]")), Some(181187));
        assert_eq!(socket_inode(Path::new("pipe:[181187]")), None);
        assert_eq!(socket_inode(Path::new("/dev/null")), None);
    }

    #[test]
    fn elf_or_script() {
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("swift-proxy-server");
        std::fs::write(&script, "#!/usr/bin/python3\n").unwrap();
        assert!(!is_ours(&script));
        assert!(!is_ours(&d.path().join("missing")));
        let me = std::env::current_exe().unwrap();
        assert!(is_ours(&me));
    }

    #[test]
    fn ours_by_executable_name() {
        let me_exe = std::env::current_exe().unwrap();
        let me = Proc::open(std::process::id() as i32).unwrap();
        let name = me_exe.file_name().unwrap().to_str().unwrap();
        assert!(runs_ours(&me, Path::new("/nonexistent"), name));
        assert!(runs_ours(&me, &me_exe, "swift-proxy-server"));
        assert!(!runs_ours(
            &me,
            Path::new("/nonexistent"),
            "swift-proxy-server"
        ));
    }

    #[test]
    fn takes_the_one_listening_socket_of_a_process() {
        // This test process listens on one socket; taking it from ourselves
        // goes through the same /proc and pidfd_getfd path.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let me = Proc::open(std::process::id() as i32).unwrap();
        match take_listening_socket(&me) {
            Ok(fd) => {
                let taken = std::net::TcpListener::from(fd);
                assert_eq!(taken.local_addr().unwrap(), addr);
            }
            // Other tests of this binary may listen at the same moment, or
            // pidfd_getfd may be refused (seccomp): both are reported.
            Err(e) => assert!(e.contains("listening TCP sockets") || e.contains("pidfd_getfd")),
        }
    }
}
