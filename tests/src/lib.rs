//! Harness for the end-to-end tests: find the built binaries, make scratch
//! directories, pick free loopback ports, run processes that are always ended
//! by pid, and speak just enough HTTP to check a server.
//!
//! Every wait here has a bound; nothing here sleeps to synchronise where a
//! readiness signal exists (callers poll a condition with [`wait_until`]).
#![forbid(unsafe_code)]

pub mod cluster;
pub mod functional;
pub mod init;
pub mod load;
pub mod server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the workspace's built binaries (`target/debug` or
/// `target/release`): the test executable lives in its `deps/` subdirectory.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test exe has a parent dir");
    if deps.ends_with("deps") {
        deps.parent().expect("deps has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// The path of a workspace binary; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (./test.sh does)",
        path.display()
    );
    path
}

/// The workspace root (for checked-in data such as `etc/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The Python Swift venv that `./test.sh` creates (`$SWIFT_VENV`, default
/// `target/swift-venv`). Panics with a hint when it is missing.
pub fn swift_venv() -> PathBuf {
    let venv = std::env::var_os("SWIFT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/swift-venv"));
    assert!(
        venv.join("bin/swift-init").exists(),
        "the Python Swift venv is missing at {}: run ./test.sh, which creates it",
        venv.display()
    );
    venv
}

/// A command running `bin/<name>` of the Python Swift venv, quiet
/// ([`quiet_python`]).
pub fn python_swift(name: &str) -> Command {
    let mut cmd = Command::new(swift_venv().join("bin").join(name));
    quiet_python(&mut cmd);
    cmd
}

/// Silence Python's own warnings (`PYTHONWARNINGS=ignore`) in `cmd`'s
/// environment. A dependency's deprecation warning (cryptography's about
/// DSA once printed eight lines per command) is not Swift's behaviour, and
/// must not show up as a difference in the differential tests; what Swift
/// itself prints is unaffected. Call it after any `env_clear()`.
pub fn quiet_python(cmd: &mut Command) -> &mut Command {
    cmd.env("PYTHONWARNINGS", "ignore")
}

/// A loopback port that was free a moment ago. The listener is closed before
/// returning, so a server can bind it; tests that can use port 0 should.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A fresh scratch directory, removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("swift-e2e-")
        .tempdir()
        .expect("create scratch dir")
}

/// Write `text` to `dir/name` (creating parent directories) and return the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dir");
    }
    std::fs::write(&path, text).expect("write file");
    path
}

/// Poll `cond` every 10 ms until it returns `Some`, for at most `timeout`.
pub fn wait_until<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process that is killed (SIGKILL, by its pid) and reaped on drop,
/// unless the test already waited for it.
pub struct Proc {
    pub child: Child,
    /// With [`Proc::spawn_merged`]: the read end of stdout+stderr.
    pub merged: Option<std::io::PipeReader>,
    reaped: bool,
}

impl Proc {
    /// Spawn `cmd` with stdout and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Proc {
            child,
            merged: None,
            reaped: false,
        }
    }

    /// Spawn `cmd` with stdout and stderr on one pipe, as swift-init does
    /// (read it from [`Proc::merged`]).
    pub fn spawn_merged(cmd: &mut Command) -> Proc {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let writer2 = writer.try_clone().expect("dup pipe");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .spawn()
            .expect("spawn");
        // Our copies of the write end are closed now (moved into cmd and
        // dropped with it once the caller drops cmd); the test holds only
        // the read end.
        Proc {
            child,
            merged: Some(reader),
            reaped: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait for exit for at most `timeout`; `None` if still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let status = wait_until(timeout, || self.child.try_wait().expect("try_wait"));
        if status.is_some() {
            self.reaped = true;
        }
        status
    }

    /// Wait (bounded) and collect the output; panics if it does not exit in time.
    pub fn output(mut self, timeout: Duration) -> Output {
        let status = self
            .wait_timeout(timeout)
            .unwrap_or_else(|| panic!("process {} did not exit within {timeout:?}", self.pid()));
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut s) = self.child.stdout.take() {
            s.read_to_end(&mut stdout).expect("read stdout");
        }
        if let Some(mut s) = self.child.stderr.take() {
            s.read_to_end(&mut stderr).expect("read stderr");
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Send a signal to this process (by pid).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("kill");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run a command to completion with a bound, stdin from /dev/null.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    Proc::spawn(cmd).output(timeout)
}

/// Whether a process with this pid exists (zombies count as gone).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the last ')' (comm may contain spaces or parens).
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !matches!(
                state.and_then(|s| s.chars().next()),
                Some('Z') | Some('X') | None
            )
        }
        Err(_) => false,
    }
}

/// The pids of the live children of `pid` (from /proc).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat"))
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // fields[0] = state, fields[1] = ppid
            if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid)
                && !matches!(fields.first(), Some(&"Z"))
            {
                out.push(child);
            }
        }
    }
    out.sort();
    out
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names exactly as the server sent them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send raw request bytes on a new connection and read the response until the
/// server closes the connection (the request should say `Connection: close`).
pub fn raw_request(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    parse_response(&buf).ok_or_else(|| {
        std::io::Error::other(format!("bad response: {:?}", String::from_utf8_lossy(&buf)))
    })
}

/// `GET path` (or another method) with `Connection: close` on a new connection.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Response> {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    raw_request(addr, req.as_bytes(), Duration::from_secs(10))
}

/// Parse one complete response (head and, if present, a Content-Length or
/// chunked body, or a body to EOF).
pub fn parse_response(buf: &[u8]) -> Option<Response> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next()?;
    let status = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        decode_chunked(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        reason,
        headers,
        body,
    })
}

fn decode_chunked(mut buf: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = buf.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&buf[..eol]).ok()?.trim(), 16).ok()?;
        buf = &buf[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(buf.get(..size)?);
        buf = buf.get(size + 2..)?;
    }
}
