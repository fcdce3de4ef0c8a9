//! Swift's logger: levels (NOTICE included), syslog to a unix datagram socket
//! or UDP, optional console output, and Swift's line format
//! (`name: message`, newlines as `#012`, ` (txn: ...)` and
//! ` (client_ip: ...)` suffixes, `log_max_line_length`).
//!
//! A [`Logger`] is immutable once built and cheap to clone; sending a line is
//! one syscall per sink, with no lock and no background thread (the master
//! process must stay single-threaded). This module does not decide what to
//! log; it only formats and sends.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::{Conf, ConfigError};

/// Python logging levels, with Swift's NOTICE (25).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 10,
    Info = 20,
    Notice = 25,
    Warning = 30,
    Error = 40,
    Critical = 50,
}

impl Level {
    /// Parse a `log_level` value the way Python's `getattr(logging, v.upper())`
    /// would, plus NOTICE. Unknown names are an error, not INFO (wart 33).
    pub fn parse(value: &str) -> Option<Level> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "NOTICE" => Level::Notice,
            "WARNING" | "WARN" => Level::Warning,
            "ERROR" => Level::Error,
            "CRITICAL" | "FATAL" => Level::Critical,
            _ => return None,
        })
    }

    /// The syslog severity Python's SysLogHandler maps this level to.
    fn syslog_severity(self) -> u8 {
        match self {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Critical => 2,
        }
    }
}

/// The facility names SysLogHandler knows (`LOG_LOCAL0` ...), with their codes.
const FACILITIES: &[(&str, u8)] = &[
    ("LOG_KERN", 0),
    ("LOG_USER", 1),
    ("LOG_MAIL", 2),
    ("LOG_DAEMON", 3),
    ("LOG_AUTH", 4),
    ("LOG_SYSLOG", 5),
    ("LOG_LPR", 6),
    ("LOG_NEWS", 7),
    ("LOG_UUCP", 8),
    ("LOG_CRON", 9),
    ("LOG_AUTHPRIV", 10),
    ("LOG_FTP", 11),
    ("LOG_NTP", 12),
    ("LOG_SECURITY", 13),
    ("LOG_CONSOLE", 14),
    ("LOG_SOLCRON", 15),
    ("LOG_LOCAL0", 16),
    ("LOG_LOCAL1", 17),
    ("LOG_LOCAL2", 18),
    ("LOG_LOCAL3", 19),
    ("LOG_LOCAL4", 20),
    ("LOG_LOCAL5", 21),
    ("LOG_LOCAL6", 22),
    ("LOG_LOCAL7", 23),
];

/// Parse a `log_facility` value (case-sensitive, as Python's getattr is).
/// Unknown names are an error, not LOCAL0 (wart 33).
pub fn parse_facility(value: &str) -> Option<u8> {
    FACILITIES
        .iter()
        .find(|(name, _)| *name == value.trim())
        .map(|(_, code)| *code)
}

/// Where syslog lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A unix datagram socket (`log_address`).
    Unix(PathBuf),
    /// UDP syslog (`log_udp_host`, `log_udp_port`, or Swift's fallback).
    Udp(String, u16),
    /// Append to a file (`log_file`: our extension, not in Swift).
    File(PathBuf),
}

/// A logger's settings, read from a conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub name: String,
    pub level: Level,
    pub facility: u8,
    pub max_line_length: usize,
    pub target: Target,
}

impl LogConfig {
    /// Read Swift's `log_*` options from `conf`. With a `prefix` (such as
    /// `access_` for proxy_logging's access log), `<prefix>log_x` is tried
    /// before `log_x`. `default_name` applies when `log_name` is unset.
    pub fn from_conf(
        conf: &Conf,
        prefix: &str,
        default_name: &str,
    ) -> Result<LogConfig, ConfigError> {
        let get = |key: &str| -> Option<(String, &str)> {
            let prefixed = format!("{prefix}{key}");
            if !prefix.is_empty()
                && let Some(v) = conf.get_nonempty(&prefixed)
            {
                return Some((prefixed, v));
            }
            conf.get_nonempty(key).map(|v| (key.to_owned(), v))
        };
        let name = get("log_name").map_or_else(|| default_name.to_owned(), |(_, v)| v.to_owned());
        let level = match get("log_level") {
            None => Level::Info,
            Some((key, v)) => Level::parse(v).ok_or_else(|| {
                conf.invalid(
                    &key,
                    "unknown log level (use DEBUG, INFO, NOTICE, WARNING, ERROR or CRITICAL)",
                )
            })?,
        };
        let facility = match get("log_facility") {
            None => 16,
            Some((key, v)) => parse_facility(v)
                .ok_or_else(|| conf.invalid(&key, "unknown syslog facility (use LOG_LOCAL0 to LOG_LOCAL7, LOG_USER, LOG_DAEMON, ...)"))?,
        };
        let max_line_length = match get("log_max_line_length") {
            None => 0,
            Some((key, v)) => v
                .parse::<i64>()
                .map(|n| n.max(0) as usize)
                .map_err(|_| conf.invalid(&key, "must be an integer"))?,
        };
        let target = if let Some((_, path)) = get("log_file") {
            Target::File(PathBuf::from(path))
        } else if let Some((_, host)) = get("log_udp_host") {
            let port = match get("log_udp_port") {
                None => 514,
                Some((key, v)) => v
                    .parse::<u16>()
                    .map_err(|_| conf.invalid(&key, "must be a port number"))?,
            };
            Target::Udp(host.to_owned(), port)
        } else {
            let address = get("log_address").map_or("/dev/log", |(_, v)| v);
            // Swift: a path that is not a socket (or does not exist) falls
            // back to UDP syslog on localhost.
            match std::fs::metadata(address) {
                Ok(m) if m.file_type().is_socket() => Target::Unix(PathBuf::from(address)),
                _ => Target::Udp("localhost".to_owned(), 514),
            }
        };
        Ok(LogConfig {
            name,
            level,
            facility,
            max_line_length,
            target,
        })
    }
}

enum Sink {
    Unix(UnixDatagram, PathBuf),
    Udp(UdpSocket, SocketAddr),
    File(File),
    None,
}

struct Inner {
    name: String,
    level: Level,
    facility: u8,
    max_line_length: usize,
    sink: Sink,
    console: Option<File>,
}

/// Swift's logger. Clone freely; all clones share the sockets.
#[derive(Clone)]
pub struct Logger(Arc<Inner>);

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("name", &self.0.name)
            .field("level", &self.0.level)
            .finish()
    }
}

/// Why a logger could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open a socket for syslog: {0}")]
    Socket(std::io::Error),
}

/// How long a syslog send may block before the line is dropped: a stalled
/// syslog daemon must not stall request handling.
const SEND_TIMEOUT: Duration = Duration::from_millis(500);

impl Logger {
    /// Open the sinks of `config`; `console` is where `-v` output goes
    /// (a duplicate of the original stderr).
    pub fn open(config: &LogConfig, console: Option<File>) -> Result<Logger, LogError> {
        let sink = match &config.target {
            Target::Unix(path) => {
                let sock = UnixDatagram::unbound().map_err(LogError::Socket)?;
                let _ = sock.set_write_timeout(Some(SEND_TIMEOUT));
                Sink::Unix(sock, path.clone())
            }
            Target::Udp(host, port) => {
                match (host.as_str(), *port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                {
                    Some(addr) => {
                        let bind: SocketAddr = if addr.is_ipv4() {
                            "0.0.0.0:0".parse().map_err(|_| {
                                LogError::Socket(std::io::ErrorKind::InvalidInput.into())
                            })?
                        } else {
                            "[::]:0".parse().map_err(|_| {
                                LogError::Socket(std::io::ErrorKind::InvalidInput.into())
                            })?
                        };
                        let sock = UdpSocket::bind(bind).map_err(LogError::Socket)?;
                        Sink::Udp(sock, addr)
                    }
                    // An unresolvable host: Python would fail on every emit and
                    // print to stderr; we drop lines quietly.
                    None => Sink::None,
                }
            }
            Target::File(path) => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| LogError::File {
                        path: path.clone(),
                        source,
                    })?;
                Sink::File(file)
            }
        };
        Ok(Logger(Arc::new(Inner {
            name: config.name.clone(),
            level: config.level,
            facility: config.facility,
            max_line_length: config.max_line_length,
            sink,
            console,
        })))
    }

    /// A logger that only writes to `console` (used before the config is read).
    pub fn console_only(name: &str, console: Option<File>) -> Logger {
        Logger(Arc::new(Inner {
            name: name.to_owned(),
            level: Level::Info,
            facility: 16,
            max_line_length: 0,
            sink: Sink::None,
            console,
        }))
    }

    /// Whether this logger also writes to the console (`-v`).
    pub fn has_console(&self) -> bool {
        self.0.console.is_some()
    }

    /// The `log_name`.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether a line at `level` would be emitted.
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.0.level
    }

    /// Log `msg` at `level`.
    pub fn log(&self, level: Level, msg: fmt::Arguments<'_>) {
        self.log_with(level, msg, None, None);
    }

    /// Log with a transaction id and client ip, which Swift appends as
    /// ` (txn: ...)` (and ` (client_ip: ...)` above INFO) unless already present.
    pub fn log_with(
        &self,
        level: Level,
        msg: fmt::Arguments<'_>,
        txn_id: Option<&str>,
        client_ip: Option<&str>,
    ) {
        if !self.enabled(level) {
            return;
        }
        let line = self.format(level, msg, txn_id, client_ip);
        self.emit(level, &line);
    }

    /// Format one line exactly as Swift's SwiftLogFormatter would.
    pub fn format(
        &self,
        level: Level,
        msg: fmt::Arguments<'_>,
        txn_id: Option<&str>,
        client_ip: Option<&str>,
    ) -> String {
        // An access-log line is typically 200-300 bytes: room for it at once.
        let mut line = String::with_capacity(384);
        line.push_str(&self.0.name);
        line.push_str(": ");
        match msg.as_str() {
            Some(s) => line.push_str(s),
            None => {
                let _ = line.write_fmt(msg);
            }
        }
        if line.contains('\n') {
            line = line.replace('\n', "#012");
        }
        if let Some(txn) = txn_id.filter(|t| !t.is_empty() && !line.contains(*t)) {
            let _ = write!(line, " (txn: {txn})");
        }
        if level != Level::Info
            && let Some(ip) = client_ip.filter(|ip| !ip.is_empty() && !line.contains(*ip))
        {
            let _ = write!(line, " (client_ip: {ip})");
        }
        truncate_line(line, self.0.max_line_length)
    }

    fn emit(&self, level: Level, line: &str) {
        let inner = &*self.0;
        match &inner.sink {
            Sink::Unix(sock, path) => {
                let msg = self.syslog_datagram(level, line);
                let _ = sock.send_to(&msg, path);
            }
            Sink::Udp(sock, addr) => {
                let msg = self.syslog_datagram(level, line);
                let _ = sock.send_to(&msg, addr);
            }
            Sink::File(file) => {
                let stamp = crate::time::Utc::from_system(std::time::SystemTime::now()).iso8601();
                let _ = (&*file).write_all(format!("{stamp} {line}\n").as_bytes());
            }
            Sink::None => {}
        }
        if let Some(console) = &inner.console {
            let _ = (&*console).write_all(format!("{line}\n").as_bytes());
        }
    }

    /// `<PRI>line\0`, as Python's SysLogHandler sends it.
    fn syslog_datagram(&self, level: Level, line: &str) -> Vec<u8> {
        let pri = u32::from(self.0.facility) * 8 + u32::from(level.syslog_severity());
        let mut msg = Vec::with_capacity(line.len() + 8);
        // `<pri>` by hand: once per logged line, and fmt costs more.
        msg.push(b'<');
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        let mut n = pri;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        msg.extend_from_slice(&digits[i..]);
        msg.push(b'>');
        msg.extend_from_slice(line.as_bytes());
        msg.push(0);
        msg
    }

    pub fn debug(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Debug, msg)
    }
    pub fn info(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Info, msg)
    }
    pub fn notice(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Notice, msg)
    }
    pub fn warning(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Warning, msg)
    }
    pub fn error(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Error, msg)
    }
    pub fn critical(&self, msg: fmt::Arguments<'_>) {
        self.log(Level::Critical, msg)
    }
}

/// Swift's `log_max_line_length`: below 7 a hard cut, otherwise the two
/// ends joined by ` ... `. Lengths count characters, as Python's do.
fn truncate_line(line: String, max: usize) -> String {
    if max == 0 {
        return line;
    }
    let count = line.chars().count();
    if count <= max {
        return line;
    }
    if max < 7 {
        return line.chars().take(max).collect();
    }
    let half = (max - 5) / 2;
    let head: String = line.chars().take(half).collect();
    let tail: String = line.chars().skip(count - half).collect();
    format!("{head} ... {tail}")
}

static GLOBAL: OnceLock<Logger> = OnceLock::new();
static STDERR_CAPTURED: AtomicBool = AtomicBool::new(false);

/// Make `logger` the process's logger for panics; the first call wins.
pub fn set_global(logger: &Logger) {
    let _ = GLOBAL.set(logger.clone());
}

/// The process's logger, if set.
pub fn global() -> Option<&'static Logger> {
    GLOBAL.get()
}

/// Record that stderr now feeds the logger, so the panic hook stops writing
/// there (the line would be logged twice).
pub fn mark_stderr_captured() {
    STDERR_CAPTURED.store(true, Ordering::Relaxed);
}

/// Log every panic through the global logger at CRITICAL, and print it to
/// stderr while stderr is still a terminal or swift-init's pipe.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        if let Some(logger) = global() {
            logger.critical(format_args!("UNCAUGHT EXCEPTION: {text}"));
        }
        if !STDERR_CAPTURED.load(Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Conf {
        Conf::from_pairs("/etc/swift/proxy-server.conf", "app:proxy-server", pairs)
    }

    fn logger(max: usize) -> Logger {
        let cfg = LogConfig {
            name: "proxy-server".into(),
            level: Level::Info,
            facility: 16,
            max_line_length: max,
            target: Target::Udp("256.0.0.1".into(), 514),
        };
        Logger::open(&cfg, None).expect("open")
    }

    #[test]
    fn levels_parse_like_python_plus_notice_and_reject_typos() {
        assert_eq!(Level::parse("notice"), Some(Level::Notice));
        assert_eq!(Level::parse(" Warning "), Some(Level::Warning));
        assert_eq!(Level::parse("INFORMATION"), None);
        let err = LogConfig::from_conf(&conf(&[("log_level", "LOUD")]), "", "x").unwrap_err();
        assert!(err.to_string().contains("log_level = \"LOUD\""), "{err}");
    }

    #[test]
    fn facilities_are_case_sensitive_and_unknown_is_an_error() {
        assert_eq!(parse_facility("LOG_LOCAL3"), Some(19));
        assert_eq!(parse_facility("log_local3"), None);
        let err = LogConfig::from_conf(&conf(&[("log_facility", "LOCAL9")]), "", "x").unwrap_err();
        assert!(err.to_string().contains("log_facility"), "{err}");
    }

    #[test]
    fn prefixed_keys_win_over_plain_ones() {
        let c = conf(&[
            ("log_name", "a"),
            ("access_log_name", "b"),
            ("log_level", "DEBUG"),
        ]);
        let lc = LogConfig::from_conf(&c, "access_", "d").expect("conf");
        assert_eq!(lc.name, "b");
        assert_eq!(lc.level, Level::Debug);
        assert_eq!(LogConfig::from_conf(&c, "", "d").expect("conf").name, "a");
    }

    #[test]
    fn missing_log_address_falls_back_to_udp_localhost() {
        let c = conf(&[("log_address", "/nonexistent/dev/log")]);
        let lc = LogConfig::from_conf(&c, "", "x").expect("conf");
        assert_eq!(lc.target, Target::Udp("localhost".into(), 514));
    }

    #[test]
    fn format_matches_swift() {
        let l = logger(0);
        assert_eq!(
            l.format(
                Level::Error,
                format_args!("a\nb"),
                Some("tx1"),
                Some("1.2.3.4")
            ),
            "proxy-server: a#012b (txn: tx1) (client_ip: 1.2.3.4)"
        );
        // client_ip is not appended at INFO, and neither suffix when present.
        assert_eq!(
            l.format(
                Level::Info,
                format_args!("tx1 done"),
                Some("tx1"),
                Some("1.2.3.4")
            ),
            "proxy-server: tx1 done"
        );
    }

    #[test]
    fn max_line_length_cuts_like_swift() {
        let line = "proxy-server: 0123456789".to_string();
        assert_eq!(truncate_line(line.clone(), 5), "proxy");
        // approxhalf = (11 - 5) // 2 = 3
        assert_eq!(truncate_line(line.clone(), 11), "pro ... 789");
        assert_eq!(truncate_line(line.clone(), 100), line);
    }

    #[test]
    fn syslog_datagram_has_priority_and_nul() {
        let l = logger(0);
        assert_eq!(
            l.syslog_datagram(Level::Notice, "x: y"),
            b"<133>x: y\0".to_vec()
        );
        assert_eq!(
            l.syslog_datagram(Level::Error, "x: y"),
            b"<131>x: y\0".to_vec()
        );
    }

    #[test]
    fn udp_syslog_gets_the_datagram_python_sends() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = sock.local_addr().unwrap().port().to_string();
        let c = conf(&[
            ("log_udp_host", "127.0.0.1"),
            ("log_udp_port", port.as_str()),
            ("log_facility", "LOG_LOCAL2"),
            ("log_name", "udp-test"),
        ]);
        let cfg = LogConfig::from_conf(&c, "", "x").unwrap();
        let logger = Logger::open(&cfg, None).unwrap();
        logger.warning(format_args!("two\nlines"));
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        // LOCAL2 = 18, WARNING = 4: 18 * 8 + 4 = 148.
        assert_eq!(&buf[..n], b"<148>udp-test: two#012lines\0");
    }

    #[test]
    fn file_sink_appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/proxy.log");
        let c = conf(&[("log_file", path.to_str().unwrap())]);
        let logger =
            Logger::open(&LogConfig::from_conf(&c, "", "proxy-server").unwrap(), None).unwrap();
        logger.notice(format_args!("hello"));
        logger.debug(format_args!("hidden at INFO"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with(" proxy-server: hello\n"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }
}
