//! The proxy's memcached client: Swift's `MemcacheRing`
//! (`swift/common/memcached.py`), so a Python Swift proxy and this one can
//! share memcached servers and each other's entries.
//!
//! What is Swift's, byte for byte: keys are the MD5 hex of Swift's key; the
//! server is chosen on Swift's consistent ring (each server name, as written
//! in `memcache_servers`, hashed at 50 points), starting one point past the
//! key, and the next `tries` distinct servers are tried in ring order; values
//! are JSON written as Python's `json.dumps` writes them, with Swift's flags
//! (2 = JSON; 1 = pickle, read as a miss); the text protocol commands `get`,
//! `set`, `delete`, `incr`/`decr` (with Swift's `add` fallback); error
//! limiting (more than `error_suppression_limit` errors within
//! `error_suppression_interval` sidelines a server for that interval);
//! [`MemcacheConfig::from_conf`] is `load_memcache`, with its fallback to
//! `<swift_dir>/memcache.conf`.
//!
//! Where it differs, on purpose: every failure comes back as an `Err`
//! (Swift's `get` turns it into a miss), bounded by `pool_timeout`,
//! `connect_timeout` and `io_timeout` per server tried; an unexpected reply
//! fails at once instead of waiting for the timeout; a pooled connection
//! the server closed meanwhile (a memcached restart) is replaced once
//! without failing an idempotent command; errors are logged once per
//! outage of a server and once per error-limit event, not once per
//! request; bad config values are refused at start, naming file, section
//! and key (Swift ignores some and crashes on others); TLS is refused.
//!
//! Nothing here opens a socket until the first command, which runs on the
//! worker's runtime: a ring built in the master before the workers fork
//! holds no connection, and each worker gets its own pools. Single-threaded
//! (no `Send`); no `RefCell` borrow is held across an `.await`.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use swift_common::config::ini::{Encoding, Ini, IniOptions};
use swift_common::config::values::{
    config_positive_float_value, config_positive_int_value, config_true_value, non_negative_float,
    non_negative_int, python_float_repr, python_int,
};
use swift_common::config::{Conf, ConfigError};
use swift_common::http::BoxFuture;
use swift_common::logging::Logger;

use crate::context::{CacheError, Memcache};

/// The port of a server written without one.
pub const DEFAULT_MEMCACHED_PORT: u16 = 11211;
/// Swift's `CONN_TIMEOUT`.
pub const CONN_TIMEOUT: Duration = Duration::from_millis(300);
/// Swift's `POOL_TIMEOUT`.
pub const POOL_TIMEOUT: Duration = Duration::from_secs(1);
/// Swift's `IO_TIMEOUT`.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The flag of a pickled value (Python Swift no longer writes them; read as a miss).
pub const PICKLE_FLAG: u32 = 1;
/// The flag of a JSON value.
pub const JSON_FLAG: u32 = 2;
/// Points per server on the ring.
pub const NODE_WEIGHT: usize = 50;
/// Swift's `TRY_COUNT`.
pub const TRY_COUNT: usize = 3;
/// Swift's `ERROR_LIMIT_COUNT`.
pub const ERROR_LIMIT_COUNT: f64 = 10.0;
/// Swift's `ERROR_LIMIT_TIME` (and `ERROR_LIMIT_DURATION`).
pub const ERROR_LIMIT_TIME: Duration = Duration::from_secs(60);
/// Swift's default `memcache_max_connections`.
pub const MAX_CONNECTIONS: usize = 2;
/// The longest relative expiry memcached accepts; longer ones are sent as
/// an absolute time, as Swift's `sanitize_timeout` does.
const EXPTIME_MAXDELTA: u64 = 30 * 24 * 60 * 60;
/// A reply line longer than this is garbage, not memcached.
const MAX_LINE: usize = 8192;
/// A value length larger than this is garbage (memcached's items are 1 MiB
/// by default and at most 1 GiB).
const MAX_VALUE: usize = 1 << 30;

/// The MD5 hex digest of `key`, as Swift's `md5hash` (the memcached key).
pub fn md5hash(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Md5::digest(key.as_bytes());
    let mut hex = String::with_capacity(32);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// A server of `memcache_servers`: `host`, `host:port`, `IPv4:port`,
/// `[IPv6]` or `[IPv6]:port`, as Swift's `parse_socket_string` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    /// As written (stripped): the ring hashes this, so it must match the
    /// other proxies' config exactly.
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl ServerAddr {
    /// Parse one server; the error says what is wrong with it.
    pub fn parse(name: &str) -> Result<ServerAddr, String> {
        let (host, port) = if let Some(rest) = name.strip_prefix('[') {
            // Swift's `^\[(?P<address>.*)\](:(?P<port>[0-9]+))?$`: the
            // address runs to the last `]` that leaves a valid tail.
            match rest.strip_suffix(']') {
                Some(addr) => (addr, None),
                None => match rest.rsplit_once("]:") {
                    Some((addr, port))
                        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        (addr, Some(port))
                    }
                    _ => return Err(format!("invalid IPv6 address: {name}")),
                },
            }
        } else if name.contains(':') {
            let tokens: Vec<&str> = name.split(':').collect();
            if tokens.len() > 2 {
                return Err(format!(
                    "{name}: IPv6 addresses must be between '[]', as in [::1]:11211"
                ));
            }
            (tokens[0], Some(tokens[1]))
        } else {
            (name, None)
        };
        if host.is_empty() {
            return Err(format!("{name}: no host"));
        }
        let port = match port {
            None => DEFAULT_MEMCACHED_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(format!("{name}: the port must be a number from 1 to 65535")),
            },
        };
        Ok(ServerAddr {
            name: name.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

/// The client's settings: `[filter:cache]` over `<swift_dir>/memcache.conf`.
#[derive(Clone, Debug, PartialEq)]
pub struct MemcacheConfig {
    pub servers: Vec<ServerAddr>,
    /// Connections per server (per worker).
    pub max_connections: usize,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub pool_timeout: Duration,
    pub tries: usize,
    /// How long errors count, and how long a server is then left alone;
    /// zero disables error limiting.
    pub error_suppression_interval: Duration,
    /// More errors than this within the interval sideline the server.
    pub error_suppression_limit: f64,
    /// Warn on storing a value at least this large (`None`: never).
    pub item_size_warning_threshold: Option<usize>,
}

impl Default for MemcacheConfig {
    fn default() -> Self {
        MemcacheConfig {
            servers: vec![ServerAddr {
                name: "127.0.0.1:11211".into(),
                host: "127.0.0.1".into(),
                port: DEFAULT_MEMCACHED_PORT,
            }],
            max_connections: MAX_CONNECTIONS,
            connect_timeout: CONN_TIMEOUT,
            io_timeout: IO_TIMEOUT,
            pool_timeout: POOL_TIMEOUT,
            tries: TRY_COUNT,
            error_suppression_interval: ERROR_LIMIT_TIME,
            error_suppression_limit: ERROR_LIMIT_COUNT,
            item_size_warning_threshold: None,
        }
    }
}

/// A timeout in seconds: positive and finite.
fn seconds(value: &str) -> Result<Duration, String> {
    let s = config_positive_float_value(value)?;
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("must be a finite number of seconds, not \"{value}\""))
}

/// A non-negative, finite number of seconds (zero allowed).
fn interval(value: &str) -> Result<Duration, String> {
    let s = non_negative_float(value)?;
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("must be a finite number of seconds, not \"{value}\""))
}

fn integer(value: &str) -> Result<i64, String> {
    python_int(value).ok_or_else(|| format!("must be an integer, not \"{value}\""))
}

/// `<swift_dir>/memcache.conf`'s `[memcache]` (with its `[DEFAULT]`), read
/// as Swift reads it (a plain `ConfigParser`: lower-cased keys); `None` when
/// the file or the section does not exist.
fn read_memcache_conf(path: &Path) -> Result<Option<Conf>, ConfigError> {
    let mut ini = Ini::new(IniOptions::PYTHON_DEFAULT, path);
    match ini.read_file(path, Encoding::Utf8) {
        Ok(()) => {}
        Err(ConfigError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let Some(items) = ini.items("memcache") else {
        return Ok(None);
    };
    let items = items?;
    let mut origins = std::collections::BTreeMap::new();
    for (k, _) in &items {
        if let Some(v) = ini.get_raw("memcache", k)
            && let Some(line) = v.line
        {
            origins.insert(k.clone(), (v.source.to_path_buf(), line));
        }
    }
    let conf = Conf::new(path, "memcache", items.into_iter().collect());
    Ok(Some(conf.with_origins(origins)))
}

impl MemcacheConfig {
    /// Swift's `load_memcache(conf)`: the filter's conf, and when it lacks
    /// `memcache_servers` or `memcache_max_connections`,
    /// `<swift_dir>/memcache.conf` `[memcache]` as the base for every key.
    /// A bad value is an error naming the file, section and key.
    pub fn from_conf(conf: &Conf) -> Result<MemcacheConfig, ConfigError> {
        let local_servers = conf.get_nonempty("memcache_servers");
        // Swift documented memcache_max_connections but first read
        // max_connections; an empty value (or 0) means unset, as in Swift.
        let local_max = if conf.get_nonempty("memcache_max_connections").is_some() {
            conf.get_with("memcache_max_connections", "0", non_negative_int)?
        } else if conf.get_nonempty("max_connections").is_some() {
            conf.get_with("max_connections", "0", non_negative_int)?
        } else {
            0
        };
        let file = if local_servers.is_none() || local_max == 0 {
            let swift_dir = conf.get_nonempty("swift_dir").unwrap_or("/etc/swift");
            read_memcache_conf(&PathBuf::from(swift_dir).join("memcache.conf"))?
        } else {
            None
        };
        // The filter's own value wins over memcache.conf's.
        let source = |key: &str| -> Option<&Conf> {
            if conf.get(key).is_some() {
                Some(conf)
            } else {
                file.as_ref().filter(|f| f.get(key).is_some())
            }
        };
        let mut cfg = MemcacheConfig::default();

        let servers = match local_servers {
            Some(_) => Some(conf),
            None => file
                .as_ref()
                .filter(|f| f.get_nonempty("memcache_servers").is_some()),
        };
        if let Some(c) = servers {
            let text = c.get_or("memcache_servers", "");
            let mut list: Vec<ServerAddr> = Vec::new();
            for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let server = ServerAddr::parse(name)
                    .map_err(|reason| c.invalid("memcache_servers", &reason))?;
                // A server listed twice is one server (Swift would loop forever).
                if !list.iter().any(|s| s.name == server.name) {
                    list.push(server);
                }
            }
            if list.is_empty() {
                return Err(c.invalid("memcache_servers", "no server listed"));
            }
            cfg.servers = list;
        }

        cfg.max_connections = match local_max {
            0 => match file
                .as_ref()
                .filter(|f| f.get_nonempty("memcache_max_connections").is_some())
            {
                Some(f) => f.get_with("memcache_max_connections", "0", non_negative_int)?,
                None => 0,
            },
            n => n,
        }
        .try_into()
        .unwrap_or(MAX_CONNECTIONS);
        if cfg.max_connections == 0 {
            cfg.max_connections = MAX_CONNECTIONS;
        }

        if let Some(c) = source("memcache_serialization_support") {
            let v = c.get_with("memcache_serialization_support", "2", integer)?;
            if v != 2 {
                return Err(c.invalid(
                    "memcache_serialization_support",
                    "only 2 (JSON, what Swift writes) is supported",
                ));
            }
        }
        if let Some(c) = source("tls_enabled")
            && config_true_value(c.get_or("tls_enabled", ""))
        {
            return Err(c.invalid(
                "tls_enabled",
                "TLS to memcached is not supported by this proxy",
            ));
        }
        if let Some(c) = source("connect_timeout") {
            cfg.connect_timeout = c.get_with("connect_timeout", "0.3", seconds)?;
        }
        if let Some(c) = source("pool_timeout") {
            cfg.pool_timeout = c.get_with("pool_timeout", "1.0", seconds)?;
        }
        if let Some(c) = source("io_timeout") {
            cfg.io_timeout = c.get_with("io_timeout", "2.0", seconds)?;
        }
        if let Some(c) = source("tries") {
            let tries = c.get_with("tries", "3", config_positive_int_value)?;
            cfg.tries = usize::try_from(tries).unwrap_or(TRY_COUNT);
        }
        if let Some(c) = source("error_suppression_interval") {
            cfg.error_suppression_interval =
                c.get_with("error_suppression_interval", "60.0", interval)?;
        }
        if let Some(c) = source("error_suppression_limit") {
            cfg.error_suppression_limit =
                c.get_with("error_suppression_limit", "10", non_negative_float)?;
        }
        if let Some(c) = source("item_size_warning_threshold") {
            let t = c.get_with("item_size_warning_threshold", "-1", integer)?;
            cfg.item_size_warning_threshold = usize::try_from(t).ok();
        }
        Ok(cfg)
    }
}

/// Why one attempt on one server failed.
#[derive(Debug, thiserror::Error)]
enum OpError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before answering.
    #[error("connection closed by the server")]
    Closed,
    #[error("incomplete read")]
    Incomplete,
    /// A reply this client does not understand.
    #[error("{0}")]
    Protocol(String),
    #[error("timed out after {}s", python_float_repr(.0.as_secs_f64()))]
    Timeout(Duration),
    /// Swift's `MemcacheIncrNotFoundError`: not the server's fault.
    #[error("incr: the key expired between incr and add")]
    IncrNotFound,
    /// The server answered cleanly but refused the value (too large, out
    /// of memory), or the stored value is unreadable: not the server's fault.
    #[error("{0}")]
    Refused(String),
}

impl OpError {
    /// A pooled connection the server had closed.
    fn is_stale(&self) -> bool {
        match self {
            OpError::Closed => true,
            OpError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// Counts towards error limiting and is worth trying the next server.
    fn is_server_fault(&self) -> bool {
        !matches!(self, OpError::IncrNotFound | OpError::Refused(_))
    }
}

/// One attempt's failure, with what was being done (Swift's `action`).
struct Failure {
    action: &'static str,
    error: OpError,
}

fn failure(action: &'static str) -> impl FnOnce(OpError) -> Failure {
    move |error| Failure { action, error }
}

/// A command, as sent.
enum Op<'a> {
    Get {
        hash: &'a str,
    },
    Set {
        msg: Vec<u8>,
    },
    Delete {
        hash: &'a str,
    },
    Incr {
        hash: &'a str,
        decr: bool,
        delta: u64,
        exptime: u64,
    },
}

impl Op<'_> {
    /// Safe to send again when a pooled connection turns out closed.
    fn idempotent(&self) -> bool {
        !matches!(self, Op::Incr { .. })
    }
}

/// What a command got.
enum Answer {
    Value(Option<(u32, Vec<u8>)>),
    Done,
    Number(u64),
}

/// One connection to a server.
struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn connect(server: &ServerAddr) -> io::Result<Conn> {
        let stream = match server.host.parse::<IpAddr>() {
            Ok(ip) => TcpStream::connect((ip, server.port)).await?,
            Err(_) => {
                // Swift connects to getaddrinfo's first answer.
                let mut addrs =
                    tokio::net::lookup_host((server.host.as_str(), server.port)).await?;
                let addr = addrs.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the host name has no address")
                })?;
                TcpStream::connect(addr).await?
            }
        };
        stream.set_nodelay(true)?;
        Ok(Conn {
            io: BufReader::new(stream),
        })
    }

    async fn send(&mut self, msg: &[u8]) -> Result<(), OpError> {
        self.io.get_mut().write_all(msg).await?;
        Ok(())
    }

    /// One reply line, without its line ending.
    async fn line(&mut self) -> Result<Vec<u8>, OpError> {
        let mut line = Vec::new();
        loop {
            let buf = self.io.fill_buf().await?;
            if buf.is_empty() {
                return Err(if line.is_empty() {
                    OpError::Closed
                } else {
                    OpError::Incomplete
                });
            }
            let (used, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..used]);
            self.io.consume(used);
            if line.len() > MAX_LINE {
                return Err(OpError::Protocol(format!(
                    "reply line longer than {MAX_LINE} bytes"
                )));
            }
            if done {
                while line.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    line.pop();
                }
                return Ok(line);
            }
        }
    }

    /// A data block of `size` bytes and its `\r\n`.
    async fn data(&mut self, size: usize) -> Result<Vec<u8>, OpError> {
        let mut data = Vec::with_capacity(size.min(1 << 20) + 2);
        let read = (&mut self.io)
            .take(size as u64 + 2)
            .read_to_end(&mut data)
            .await?;
        if read < size + 2 {
            return Err(OpError::Incomplete);
        }
        if !data.ends_with(b"\r\n") {
            return Err(OpError::Protocol("a value not followed by \\r\\n".into()));
        }
        data.truncate(size);
        Ok(data)
    }

    async fn exchange(&mut self, op: &Op<'_>) -> Result<Answer, OpError> {
        match op {
            Op::Get { hash } => {
                let mut msg = Vec::with_capacity(hash.len() + 6);
                msg.extend_from_slice(b"get ");
                msg.extend_from_slice(hash.as_bytes());
                msg.extend_from_slice(b"\r\n");
                self.send(&msg).await?;
                let mut value = None;
                loop {
                    let line = self.line().await?;
                    let words: Vec<&[u8]> = line
                        .split(u8::is_ascii_whitespace)
                        .filter(|w| !w.is_empty())
                        .collect();
                    match words.first() {
                        None => return Err(OpError::Incomplete),
                        Some(w) if w.eq_ignore_ascii_case(b"END") => {
                            return Ok(Answer::Value(value));
                        }
                        Some(w) if w.eq_ignore_ascii_case(b"VALUE") && words.len() >= 4 => {
                            let num = |w: &[u8]| {
                                std::str::from_utf8(w)
                                    .ok()
                                    .and_then(|s| s.parse::<u64>().ok())
                            };
                            let (Some(flags), Some(size)) = (num(words[2]), num(words[3])) else {
                                return Err(unexpected("get", &line));
                            };
                            let flags =
                                u32::try_from(flags).map_err(|_| unexpected("get", &line))?;
                            let size = usize::try_from(size)
                                .ok()
                                .filter(|&s| s <= MAX_VALUE)
                                .ok_or_else(|| unexpected("get", &line))?;
                            let key_matches = words[1] == hash.as_bytes();
                            let data = self.data(size).await?;
                            if key_matches {
                                value = Some((flags, data));
                            }
                        }
                        Some(_) => return Err(unexpected("get", &line)),
                    }
                }
            }
            Op::Set { msg } => {
                self.send(msg).await?;
                let line = self.line().await?;
                if line == b"STORED" {
                    return Ok(Answer::Done);
                }
                let text = String::from_utf8_lossy(&line);
                if text.starts_with("SERVER_ERROR object too large")
                    || text.starts_with("SERVER_ERROR out of memory")
                {
                    return Err(OpError::Refused(format!("failed set: {text}")));
                }
                Err(OpError::Protocol(format!("failed set: {text}")))
            }
            Op::Delete { hash } => {
                self.send(format!("delete {hash}\r\n").as_bytes()).await?;
                let line = self.line().await?;
                if line == b"DELETED" || line == b"NOT_FOUND" {
                    Ok(Answer::Done)
                } else {
                    Err(unexpected("delete", &line))
                }
            }
            Op::Incr {
                hash,
                decr,
                delta,
                exptime,
            } => {
                let verb = if *decr { "decr" } else { "incr" };
                let incr = format!("{verb} {hash} {delta}\r\n");
                if let Some(n) = self.incr_once(&incr, verb).await? {
                    return Ok(Answer::Number(n));
                }
                // Swift's fallback: add the start value, or incr again if
                // another client added it first.
                let start = if *decr { 0 } else { *delta };
                let add_val = start.to_string();
                let add = format!("add {hash} 0 {exptime} {}\r\n{add_val}\r\n", add_val.len());
                self.send(add.as_bytes()).await?;
                let line = self.line().await?;
                match &line[..] {
                    b"STORED" => return Ok(Answer::Number(start)),
                    b"NOT_STORED" => {}
                    _ => return Err(unexpected("add", &line)),
                }
                match self.incr_once(&incr, verb).await? {
                    Some(n) => Ok(Answer::Number(n)),
                    None => Err(OpError::IncrNotFound),
                }
            }
        }
    }

    async fn incr_once(&mut self, msg: &str, verb: &str) -> Result<Option<u64>, OpError> {
        self.send(msg.as_bytes()).await?;
        let line = self.line().await?;
        if line == b"NOT_FOUND" {
            return Ok(None);
        }
        std::str::from_utf8(&line)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| unexpected(verb, &line))
    }
}

fn unexpected(verb: &str, line: &[u8]) -> OpError {
    let mut text = String::from_utf8_lossy(line).into_owned();
    if text.len() > 80 {
        let mut cut = 80;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    OpError::Protocol(format!("unexpected reply to {verb}: {text:?}"))
}

/// A server's connections: at most `max` open, idle ones kept for reuse.
struct Pool {
    idle: RefCell<Vec<Conn>>,
    slots: Semaphore,
}

/// One server: its pool and its error-limiting state.
struct Server {
    addr: ServerAddr,
    pool: Pool,
    /// When recent errors happened (Swift's `_errors`).
    errors: RefCell<Vec<Instant>>,
    /// Left alone until then (Swift's `_error_limited`).
    limited_until: Cell<Option<Instant>>,
    /// An error was logged and nothing has succeeded since: stay quiet.
    failing: Cell<bool>,
}

/// Swift's `MemcacheRing`. See the module doc.
pub struct MemcacheRing {
    servers: Vec<Server>,
    /// (MD5 hex of `<server>-<i>`, server index), sorted.
    ring: Vec<(String, usize)>,
    tries: usize,
    config: MemcacheConfig,
    logger: Logger,
    /// "No more memcached servers to try" was logged; quiet until a success.
    all_failing: Cell<bool>,
    /// The last JSON values read, with the bytes they were decoded from.
    decoded: RefCell<Decoded>,
}

/// How many decoded values [`Decoded`] keeps.
const DECODED_KEEP: usize = 16;

/// Recently decoded JSON values by the exact bytes they came from: every
/// request reads the same token and container info, and copying a value is
/// cheaper than decoding (and hashing the keys of) the same text again.
/// Only identical bytes hit, so what `get` returns is unchanged.
#[derive(Default)]
struct Decoded {
    /// (memcache key, stored bytes, their value), most recent last.
    entries: std::collections::VecDeque<(String, Vec<u8>, Rc<Value>)>,
}

impl Decoded {
    fn lookup(&self, hash: &str, data: &[u8]) -> Option<Rc<Value>> {
        let at = self
            .entries
            .iter()
            .rposition(|(h, d, _)| h == hash && d.as_slice() == data)?;
        Some(self.entries[at].2.clone())
    }

    fn remember(&mut self, hash: &str, data: Vec<u8>, value: Rc<Value>) {
        self.entries.retain(|(h, _, _)| h != hash);
        if self.entries.len() >= DECODED_KEEP {
            self.entries.pop_front();
        }
        self.entries.push_back((hash.to_owned(), data, value));
    }
}

impl MemcacheRing {
    /// A client for `config.servers`; connects on first use.
    pub fn new(config: &MemcacheConfig, logger: Logger) -> MemcacheRing {
        let servers: Vec<Server> = config
            .servers
            .iter()
            .map(|addr| Server {
                addr: addr.clone(),
                pool: Pool {
                    idle: RefCell::new(Vec::new()),
                    slots: Semaphore::new(config.max_connections.max(1)),
                },
                errors: RefCell::new(Vec::new()),
                limited_until: Cell::new(None),
                failing: Cell::new(false),
            })
            .collect();
        let mut ring = Vec::with_capacity(servers.len() * NODE_WEIGHT);
        for (i, s) in servers.iter().enumerate() {
            for n in 0..NODE_WEIGHT {
                ring.push((md5hash(&format!("{}-{n}", s.addr.name)), i));
            }
        }
        ring.sort();
        MemcacheRing {
            tries: config.tries.min(servers.len()),
            servers,
            ring,
            config: config.clone(),
            logger,
            all_failing: Cell::new(false),
            decoded: RefCell::new(Decoded::default()),
        }
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &MemcacheConfig {
        &self.config
    }

    /// The servers `key` goes to, in the order they are tried (Swift's
    /// `_get_conns`): from one point past the key's MD5 on the ring, the
    /// next `tries` distinct servers.
    pub fn servers_for(&self, key: &str) -> Vec<&str> {
        self.order(&md5hash(key))
            .into_iter()
            .map(|i| self.servers[i].addr.name.as_str())
            .collect()
    }

    fn order(&self, hash: &str) -> Vec<usize> {
        let mut served: Vec<usize> = Vec::with_capacity(self.tries);
        if self.ring.is_empty() {
            return served;
        }
        // bisect_right, then Swift's `pos = (pos + 1) % len` before each look.
        let mut pos = self.ring.partition_point(|(h, _)| h.as_str() <= hash);
        for _ in 0..self.ring.len() {
            if served.len() >= self.tries {
                break;
            }
            pos = (pos + 1) % self.ring.len();
            let server = self.ring[pos].1;
            if !served.contains(&server) {
                served.push(server);
            }
        }
        served
    }

    /// The value of `key`; `Ok(None)` on a miss (or a pickled value).
    pub async fn get(&self, key: &str) -> Result<Option<Value>, CacheError> {
        Ok(self
            .get_shared(key)
            .await?
            .map(|v| Rc::try_unwrap(v).unwrap_or_else(|v| (*v).clone())))
    }

    /// As [`MemcacheRing::get`], shared with the decoded values kept.
    pub async fn get_shared(&self, key: &str) -> Result<Option<Rc<Value>>, CacheError> {
        let hash = md5hash(key);
        let answer = self
            .run("get", key, &hash, &Op::Get { hash: &hash })
            .await?;
        let Answer::Value(Some((flags, data))) = answer else {
            return Ok(None);
        };
        if flags & PICKLE_FLAG != 0 {
            return Ok(None);
        }
        if flags & JSON_FLAG != 0 {
            if let Some(v) = self.decoded.borrow().lookup(&hash, &data) {
                return Ok(Some(v));
            }
            let value: Rc<Value> = Rc::new(serde_json::from_slice(&data).map_err(|e| {
                CacheError(format!("memcached get {key:?}: the value is not JSON: {e}"))
            })?);
            self.decoded
                .borrow_mut()
                .remember(&hash, data, value.clone());
            return Ok(Some(value));
        }
        // Stored unserialized (an incr counter, or by another client).
        match String::from_utf8(data) {
            Ok(s) => Ok(Some(Rc::new(Value::String(s)))),
            Err(_) => Err(CacheError(format!(
                "memcached get {key:?}: the value is neither JSON nor UTF-8"
            ))),
        }
    }

    /// Store `value` as JSON under `key` for `ttl` (zero: no expiry).
    pub async fn set(&self, key: &str, value: &Value, ttl: Duration) -> Result<(), CacheError> {
        let hash = md5hash(key);
        let data = crate::pyjson::dumps(value, false, false);
        if let Some(limit) = self.config.item_size_warning_threshold
            && data.len() >= limit
        {
            self.logger.warning(format_args!(
                "Item size larger than warning threshold: {} ({}) >= {} ({})",
                data.len(),
                human_readable(data.len()),
                limit,
                human_readable(limit)
            ));
        }
        let mut msg =
            format!("set {hash} {JSON_FLAG} {} {}\r\n", exptime(ttl), data.len()).into_bytes();
        msg.extend_from_slice(data.as_bytes());
        msg.extend_from_slice(b"\r\n");
        self.run("set", key, &hash, &Op::Set { msg }).await?;
        Ok(())
    }

    /// Remove `key` (no error when it is not there).
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let hash = md5hash(key);
        self.run("delete", key, &hash, &Op::Delete { hash: &hash })
            .await?;
        Ok(())
    }

    /// Swift's `incr`: add `delta` (subtract, for a negative one; memcached
    /// stops at zero) to the counter `key`, creating it as `delta` (or 0)
    /// with `ttl` when missing; the new value.
    pub async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, CacheError> {
        let hash = md5hash(key);
        let op = Op::Incr {
            hash: &hash,
            decr: delta < 0,
            delta: delta.unsigned_abs(),
            exptime: exptime(ttl),
        };
        let method = if delta < 0 { "decr" } else { "incr" };
        match self.run(method, key, &hash, &op).await? {
            Answer::Number(n) => i64::try_from(n)
                .map_err(|_| CacheError(format!("memcached {method} {key:?}: {n} is too large"))),
            _ => Err(CacheError(format!("memcached {method} {key:?}: no number"))),
        }
    }

    /// Try `op` on the key's servers in ring order until one answers.
    async fn run(
        &self,
        method: &'static str,
        key: &str,
        hash: &str,
        op: &Op<'_>,
    ) -> Result<Answer, CacheError> {
        let mut failures: Vec<String> = Vec::new();
        for i in self.order(hash) {
            let server = &self.servers[i];
            let start = Instant::now();
            if server.limited_until.get().is_some_and(|t| t > start) {
                failures.push(format!("{}: error limited", server.addr.name));
                continue;
            }
            match self.attempt(server, op).await {
                Ok(answer) => {
                    server.failing.set(false);
                    self.all_failing.set(false);
                    return Ok(answer);
                }
                Err(f) if !f.error.is_server_fault() => {
                    return Err(CacheError(format!(
                        "memcached {method} {key:?} on {}: {}",
                        server.addr.name, f.error
                    )));
                }
                Err(f) => {
                    failures.push(format!("{}: {}", server.addr.name, f.error));
                    self.exception_occurred(server, &f, method, key, start);
                }
            }
        }
        if !self.all_failing.replace(true) {
            self.logger.error(format_args!(
                "Error connecting to memcached: ALL: with key_prefix {}, method {method}: \
                 No more memcached servers to try",
                key_prefix(key)
            ));
        }
        if failures.is_empty() {
            failures.push("no memcached servers".into());
        }
        Err(CacheError(format!(
            "memcached {method} {key:?} failed: {}",
            failures.join("; ")
        )))
    }

    /// One server: a connection from its pool, the exchange, and the
    /// connection back to the pool only when the exchange completed.
    async fn attempt(&self, server: &Server, op: &Op<'_>) -> Result<Answer, Failure> {
        let pool = &server.pool;
        let _permit =
            match tokio::time::timeout(self.config.pool_timeout, pool.slots.acquire()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => {
                    return Err(Failure {
                        action: "getting a connection",
                        error: OpError::Protocol("the pool is closed".into()),
                    });
                }
                Err(_) => {
                    return Err(Failure {
                        action: "getting a connection",
                        error: OpError::Timeout(self.config.pool_timeout),
                    });
                }
            };
        let pooled = pool.idle.borrow_mut().pop();
        let (mut conn, reused) = match pooled {
            Some(c) => (c, true),
            None => (self.connect(server).await?, false),
        };
        let io_timeout = self.config.io_timeout;
        let result = match tokio::time::timeout(io_timeout, conn.exchange(op)).await {
            Ok(r) => r,
            Err(_) => Err(OpError::Timeout(io_timeout)),
        };
        let result = match result {
            // The server closed this idle connection (it restarted): a
            // fresh connection is not an error of the server's.
            Err(e) if reused && e.is_stale() && op.idempotent() => {
                drop(conn);
                conn = self.connect(server).await?;
                match tokio::time::timeout(io_timeout, conn.exchange(op)).await {
                    Ok(r) => r,
                    Err(_) => Err(OpError::Timeout(io_timeout)),
                }
            }
            r => r,
        };
        match result {
            Ok(answer) => {
                pool.idle.borrow_mut().push(conn);
                Ok(answer)
            }
            // The stored value was unreadable but the reply was complete.
            Err(e @ OpError::Refused(_)) | Err(e @ OpError::IncrNotFound) => {
                pool.idle.borrow_mut().push(conn);
                Err(failure("talking")(e))
            }
            Err(e) => Err(failure("talking")(e)),
        }
    }

    async fn connect(&self, server: &Server) -> Result<Conn, Failure> {
        let t = self.config.connect_timeout;
        match tokio::time::timeout(t, Conn::connect(&server.addr)).await {
            Ok(r) => r.map_err(|e| failure("connecting")(e.into())),
            Err(_) => Err(failure("connecting")(OpError::Timeout(t))),
        }
    }

    /// Swift's `_exception_occurred`: log (once per outage), count the
    /// error, and sideline the server when there were too many.
    fn exception_occurred(
        &self,
        server: &Server,
        f: &Failure,
        method: &str,
        key: &str,
        start: Instant,
    ) {
        let name = &server.addr.name;
        let spent = python_float_repr(start.elapsed().as_secs_f64());
        if !server.failing.replace(true) {
            match &f.error {
                OpError::Timeout(t) => self.logger.error(format_args!(
                    "Timeout {} to memcached: {name}: with key_prefix {}, method {method}, \
                     config_timeout {}, time_spent {spent}",
                    f.action,
                    key_prefix(key),
                    python_float_repr(t.as_secs_f64())
                )),
                e => self.logger.error(format_args!(
                    "Error {} to memcached: {name}: with key_prefix {}, method {method}, \
                     time_spent {spent}, {e}",
                    f.action,
                    key_prefix(key)
                )),
            }
        }
        let interval = self.config.error_suppression_interval;
        if interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let limit = self.config.error_suppression_limit;
        let mut errors = server.errors.borrow_mut();
        errors.push(now);
        if errors.len() as f64 > limit {
            errors.retain(|t| now.duration_since(*t) < interval);
            if errors.len() as f64 > limit {
                server.limited_until.set(Some(now + interval));
                self.logger
                    .error(format_args!("Error limiting server {name}"));
            }
        }
    }
}

impl Memcache for MemcacheRing {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Value>, CacheError>> {
        Box::pin(MemcacheRing::get(self, key))
    }

    fn get_shared<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Rc<Value>>, CacheError>> {
        Box::pin(MemcacheRing::get_shared(self, key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a Value,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(MemcacheRing::set(self, key, value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(MemcacheRing::delete(self, key))
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<i64, CacheError>> {
        Box::pin(MemcacheRing::incr(self, key, delta, ttl))
    }
}

/// Swift's `key_prefix`: the key up to its last `/`.
fn key_prefix(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(p, _)| p)
}

/// Swift's `sanitize_timeout`: whole seconds; past 30 days an absolute time.
fn exptime(ttl: Duration) -> u64 {
    let secs = ttl.as_secs();
    if secs > EXPTIME_MAXDELTA {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (ttl + now).as_secs()
    } else {
        secs
    }
}

/// Swift's `human_readable` (`1048576` is `1Mi`), with Python's rounding.
fn human_readable(n: usize) -> String {
    let mut value = n as f64;
    let suffixes = ['K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
    let mut index: Option<usize> = None;
    while value >= 1024.0 && index.map_or(0, |i| i + 1) < suffixes.len() {
        index = Some(index.map_or(0, |i| i + 1));
        value = (value / 1024.0).round_ties_even();
    }
    match index {
        None => format!("{value:.0}"),
        Some(i) => format!("{:.0}{}i", value.round_ties_even(), suffixes[i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_md5_hex() {
        assert_eq!(md5hash(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5hash("account/AUTH_test"),
            format!("{:x}", Md5::digest(b"account/AUTH_test"))
        );
    }

    #[test]
    fn servers_parse_as_swifts_parse_socket_string() {
        let p = |s: &str| ServerAddr::parse(s).map(|a| (a.host, a.port));
        assert_eq!(p("10.1.2.3:11212"), Ok(("10.1.2.3".into(), 11212)));
        assert_eq!(p("cache.example"), Ok(("cache.example".into(), 11211)));
        assert_eq!(p("[::1]:11213"), Ok(("::1".into(), 11213)));
        assert_eq!(p("[::1]"), Ok(("::1".into(), 11211)));
        assert_eq!(p("[fe80::1]]:5"), Ok(("fe80::1]".into(), 5)));
        assert!(p("::1").unwrap_err().contains("between '[]'"));
        assert!(p("[::1]:x").unwrap_err().contains("invalid IPv6"));
        assert!(p("[::1").is_err());
        assert!(p("host:").unwrap_err().contains("port"));
        assert!(p("host:0").is_err());
        assert!(p("host:70000").is_err());
        assert!(p(":11211").unwrap_err().contains("no host"));
    }

    #[test]
    fn json_is_written_as_pythons_json_dumps() {
        let v: Value = serde_json::from_str(
            r#"{"a": [1, -2, 1.0, 1e16, 1.5e-7, 0.0001, true, null], "b": "é\"\\\n\u0001\u007f😀/"}"#,
        )
        .unwrap();
        assert_eq!(
            crate::pyjson::dumps(&v, false, false),
            r#"{"a": [1, -2, 1.0, 1e+16, 1.5e-07, 0.0001, true, null], "b": "\u00e9\"\\\n\u0001\u007f\ud83d\ude00/"}"#
        );
        assert_eq!(
            crate::pyjson::dumps(&Value::from(u64::MAX), false, false),
            "18446744073709551615"
        );
    }

    #[test]
    fn human_readable_is_swifts() {
        assert_eq!(human_readable(1000), "1000");
        assert_eq!(human_readable(1024), "1Ki");
        assert_eq!(human_readable(1536), "2Ki");
        assert_eq!(human_readable(2560), "2Ki");
        assert_eq!(human_readable(1 << 20), "1Mi");
    }

    #[test]
    fn expiry_past_thirty_days_is_absolute() {
        assert_eq!(exptime(Duration::ZERO), 0);
        assert_eq!(
            exptime(Duration::from_secs(EXPTIME_MAXDELTA)),
            EXPTIME_MAXDELTA
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let abs = exptime(Duration::from_secs(EXPTIME_MAXDELTA + 1));
        assert!(abs > now + EXPTIME_MAXDELTA && abs <= now + EXPTIME_MAXDELTA + 3);
    }

    fn filter(dir: &Path, pairs: &[(&str, &str)]) -> Conf {
        let mut c = Conf::from_pairs(dir.join("proxy-server.conf"), "filter:cache", pairs);
        c.set("swift_dir", dir.display().to_string());
        c
    }

    fn names(cfg: &MemcacheConfig) -> Vec<&str> {
        cfg.servers.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn defaults_are_swifts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = MemcacheConfig::from_conf(&filter(dir.path(), &[])).unwrap();
        assert_eq!(cfg, MemcacheConfig::default());
        assert_eq!(names(&cfg), ["127.0.0.1:11211"]);
        assert_eq!(cfg.max_connections, 2);
        assert_eq!(cfg.tries, 3);
    }

    #[test]
    fn memcache_conf_is_the_base_when_the_filter_lacks_servers_or_connections() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memcache.conf"),
            "[DEFAULT]\nIO_Timeout = 0.5\n[memcache]\nmemcache_servers = 10.0.0.1:1, [::1]\n\
             memcache_max_connections = 7\nconnect_timeout = 0.1\ntries = 1\n\
             error_suppression_interval = 0\n",
        )
        .unwrap();
        let cfg = MemcacheConfig::from_conf(&filter(dir.path(), &[])).unwrap();
        assert_eq!(names(&cfg), ["10.0.0.1:1", "[::1]"]);
        assert_eq!(cfg.servers[1].host, "::1");
        assert_eq!(cfg.max_connections, 7);
        assert_eq!(cfg.connect_timeout, Duration::from_millis(100));
        assert_eq!(cfg.io_timeout, Duration::from_millis(500));
        assert_eq!(cfg.tries, 1);
        assert!(cfg.error_suppression_interval.is_zero());

        // The filter's own values win, key by key.
        let cfg = MemcacheConfig::from_conf(&filter(
            dir.path(),
            &[("memcache_servers", "a:2,a:2 , b"), ("tries", "2")],
        ))
        .unwrap();
        assert_eq!(names(&cfg), ["a:2", "b"]);
        assert_eq!((cfg.max_connections, cfg.tries), (7, 2));
        assert_eq!(cfg.connect_timeout, Duration::from_millis(100));

        // With both servers and connections set, memcache.conf is not read.
        let cfg = MemcacheConfig::from_conf(&filter(
            dir.path(),
            &[("memcache_servers", "b"), ("max_connections", "3")],
        ))
        .unwrap();
        assert_eq!((cfg.max_connections, cfg.tries), (3, 3));
        assert_eq!(cfg.connect_timeout, CONN_TIMEOUT);

        // An empty value is unset.
        let cfg = MemcacheConfig::from_conf(&filter(
            dir.path(),
            &[("memcache_servers", "b"), ("memcache_max_connections", "")],
        ))
        .unwrap();
        assert_eq!((cfg.max_connections, cfg.tries), (7, 1));
    }

    #[test]
    fn bad_values_name_the_file_section_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = |pairs: &[(&str, &str)]| {
            MemcacheConfig::from_conf(&filter(dir.path(), pairs))
                .unwrap_err()
                .to_string()
        };
        for (pairs, expect) in [
            (
                &[("io_timeout", "soon")][..],
                "[filter:cache] io_timeout = \"soon\"",
            ),
            (&[("connect_timeout", "0")], "connect_timeout"),
            (&[("pool_timeout", "inf")], "finite"),
            (&[("tries", "0")], "tries"),
            (
                &[("memcache_max_connections", "two")],
                "memcache_max_connections",
            ),
            (
                &[("error_suppression_limit", "-1")],
                "error_suppression_limit",
            ),
            (&[("memcache_servers", "::1")], "between '[]'"),
            (&[("memcache_servers", " , ")], "no server listed"),
            (&[("memcache_serialization_support", "1")], "only 2 (JSON"),
            (
                &[("tls_enabled", "yes")],
                "TLS to memcached is not supported",
            ),
            (
                &[("item_size_warning_threshold", "1k")],
                "item_size_warning_threshold",
            ),
        ] {
            let e = err(pairs);
            assert!(e.contains(expect), "{expect:?} not in {e:?}");
            assert!(e.contains("proxy-server.conf"), "{e}");
        }
        let cfg = MemcacheConfig::from_conf(&filter(
            dir.path(),
            &[
                ("memcache_serialization_support", "2"),
                ("item_size_warning_threshold", "0"),
            ],
        ))
        .unwrap();
        assert_eq!(cfg.item_size_warning_threshold, Some(0));

        std::fs::write(
            dir.path().join("memcache.conf"),
            "[memcache]\nmemcache_servers = x\npool_timeout = -1\n",
        )
        .unwrap();
        let e = err(&[]);
        assert!(
            e.contains("memcache.conf: line 3: [memcache] pool_timeout = \"-1\""),
            "{e}"
        );
        std::fs::write(dir.path().join("memcache.conf"), "memcache_servers = x\n").unwrap();
        let e = err(&[]);
        assert!(e.contains("memcache.conf: line 1"), "{e}");
    }

    #[test]
    fn key_prefix_is_up_to_the_last_slash() {
        assert_eq!(key_prefix("container/AUTH_a/c"), "container/AUTH_a");
        assert_eq!(key_prefix("plain"), "plain");
    }
}
