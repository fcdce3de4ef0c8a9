//! Swift's rings: reading `<swift_dir>/<name>.ring.gz` (`account`,
//! `container`, `object`, `object-N`) in format v1 or v2, `hash_path`, and
//! the lookups every server makes: the partition of a name, its primary
//! nodes, and its handoffs in Swift's exact order. Behaviour is Swift
//! 2.38.3's `swift/common/ring/ring.py` and `io.py`.
//!
//! - [`io`]: the file formats (bytes to a validated [`RingData`]).
//! - [`RingData`]: one loaded ring; lookups without I/O.
//! - [`MoreNodes`]: the handoff walk (`get_more_nodes`).
//! - [`Ring`]: the handle a server keeps: it re-reads the file when its
//!   mtime changes, checking at most every `reload_time`, and keeps the old
//!   ring when the new file is broken.
//!
//! This module never builds or writes rings (that is `swift-ring-builder`'s
//! job), never logs (a failed reload goes to a handler the server sets) and
//! takes no locks: a worker is single-threaded, so the handle uses `Rc`,
//! `Cell` and `RefCell`.
//!
//! Where it differs from Swift, on purpose: a ring whose table names a
//! device that does not exist is refused when loaded (Swift fails later,
//! on the lookup that meets it); the "unassigned" id (`none_dev_id`) is
//! skipped by lookups (Swift would raise); a truncated file or a v1 file
//! with missing rows is an error (Swift may read short rows); and a broken
//! replacement file is reported once and the old ring kept (Swift raises
//! from every lookup until the file is fixed).

mod data;
mod error;
mod handoffs;
pub mod io;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};

pub use data::{Device, Node, NodeRole, RingData, RingParts, Table};
pub use error::{HashPathError, RingError, RingErrorKind};
pub use handoffs::MoreNodes;

use crate::config::SwiftConf;

/// Swift's `DEFAULT_RELOAD_TIME`: how often a [`Ring`] looks at its file.
pub const DEFAULT_RELOAD_TIME: Duration = Duration::from_secs(15);

/// Swift's `hash_path(account, container, object, raw_digest=True)`:
/// `md5(prefix + b"/" + b"/".join(names) + suffix)`, where the names are
/// the account, then the container and the object when given and not
/// empty. An object without a container is an error, as in Swift.
pub fn hash_path(
    prefix: &[u8],
    suffix: &[u8],
    account: &str,
    container: Option<&str>,
    object: Option<&str>,
) -> Result<[u8; 16], HashPathError> {
    let container = container.filter(|c| !c.is_empty());
    let object = object.filter(|o| !o.is_empty());
    if object.is_some() && container.is_none() {
        return Err(HashPathError);
    }
    let mut md5 = Md5::new();
    md5.update(prefix);
    md5.update(b"/");
    md5.update(account.as_bytes());
    for name in [container, object].into_iter().flatten() {
        md5.update(b"/");
        md5.update(name.as_bytes());
    }
    md5.update(suffix);
    Ok(md5.finalize().into())
}

/// The hash path salt of `swift.conf` (`[swift-hash]`
/// `swift_hash_path_prefix` and `swift_hash_path_suffix`, as bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashPathConf {
    pub prefix: Vec<u8>,
    pub suffix: Vec<u8>,
}

impl HashPathConf {
    /// A salt from its two parts.
    pub fn new(prefix: impl Into<Vec<u8>>, suffix: impl Into<Vec<u8>>) -> Self {
        HashPathConf {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    /// The salt of a validated `swift.conf`.
    pub fn from_swift_conf(conf: &SwiftConf) -> Self {
        HashPathConf::new(conf.hash_path_prefix.clone(), conf.hash_path_suffix.clone())
    }

    /// [`hash_path`] with this salt, as raw bytes.
    pub fn hash_path(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<[u8; 16], HashPathError> {
        hash_path(&self.prefix, &self.suffix, account, container, object)
    }

    /// [`hash_path`] with this salt, as lowercase hex (Swift's default
    /// `raw_digest=False`).
    pub fn hash_path_hex(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<String, HashPathError> {
        let digest = self.hash_path(account, container, object)?;
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// `<swift_dir>/<ring_name>.ring.gz`.
pub fn ring_path(swift_dir: &Path, ring_name: &str) -> PathBuf {
    swift_dir.join(format!("{ring_name}.ring.gz"))
}

/// What a [`Ring`] knows of its file.
#[derive(Debug)]
struct State {
    data: Rc<RingData>,
    /// The mtime of the file `data` came from.
    mtime: Option<SystemTime>,
    /// Not before this instant is the file looked at again; `None`: never
    /// (an in-memory ring, or a `reload_time` too long to represent).
    next_check: Option<Instant>,
    /// The mtime of a replacement that failed to load (`Some(None)`: the
    /// file could not even be looked at), so it is reported only once.
    failed: Option<Option<SystemTime>>,
}

/// Called with the error of a reload that failed (the old ring is kept).
pub type ReloadErrorHandler = Rc<dyn Fn(&RingError)>;

/// A ring file kept up to date, as Swift's `Ring`: lookups first check,
/// at most every `reload_time`, whether the file's mtime changed, and if so
/// re-read it. A replacement that fails to load keeps the old ring; its
/// error goes once to the handler set with
/// [`Ring::set_reload_error_handler`] (or is returned by
/// [`Ring::maybe_reload`]).
pub struct Ring {
    path: PathBuf,
    hash: HashPathConf,
    reload_time: Cell<Duration>,
    state: RefCell<State>,
    on_reload_error: RefCell<Option<ReloadErrorHandler>>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("path", &self.path)
            .field("reload_time", &self.reload_time.get())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// Load `<swift_dir>/<ring_name>.ring.gz` (Swift's
    /// `Ring(swift_dir, ring_name=...)`), reloading every
    /// [`DEFAULT_RELOAD_TIME`].
    pub fn open(swift_dir: &Path, ring_name: &str, hash: &HashPathConf) -> Result<Ring, RingError> {
        Ring::open_file(&ring_path(swift_dir, ring_name), hash)
    }

    /// Load the ring file at `path`.
    pub fn open_file(path: &Path, hash: &HashPathConf) -> Result<Ring, RingError> {
        let (data, mtime) = io::load_with_mtime(path)?;
        Ok(Ring {
            path: path.to_path_buf(),
            hash: hash.clone(),
            reload_time: Cell::new(DEFAULT_RELOAD_TIME),
            state: RefCell::new(State {
                data: Rc::new(data),
                mtime,
                next_check: Instant::now().checked_add(DEFAULT_RELOAD_TIME),
                failed: None,
            }),
            on_reload_error: RefCell::new(None),
        })
    }

    /// A ring that lives only in memory and is never reloaded (for tests
    /// of the code that uses rings, and for tools); `path` is only the name
    /// its errors would give.
    pub fn in_memory(path: &Path, data: RingData, hash: &HashPathConf) -> Ring {
        Ring {
            path: path.to_path_buf(),
            hash: hash.clone(),
            reload_time: Cell::new(DEFAULT_RELOAD_TIME),
            state: RefCell::new(State {
                data: Rc::new(data),
                mtime: None,
                next_check: None,
                failed: None,
            }),
            on_reload_error: RefCell::new(None),
        }
    }

    /// Check the file every `reload_time` instead (Swift's `reload_time`
    /// option, `ring_check_interval` of some daemons); takes effect from
    /// the next check.
    pub fn with_reload_time(self, reload_time: Duration) -> Ring {
        self.set_reload_time(reload_time);
        self
    }

    /// See [`Ring::with_reload_time`]; the next check is re-armed too.
    pub fn set_reload_time(&self, reload_time: Duration) {
        self.reload_time.set(reload_time);
        let mut state = self.state.borrow_mut();
        if state.next_check.is_some() {
            state.next_check = Instant::now().checked_add(reload_time);
        }
    }

    /// The interval between checks of the file.
    pub fn reload_time(&self) -> Duration {
        self.reload_time.get()
    }

    /// Where a reload that fails (the old ring is kept) is reported: once
    /// per broken file, however many lookups follow.
    pub fn set_reload_error_handler(&self, handler: impl Fn(&RingError) + 'static) {
        *self.on_reload_error.borrow_mut() = Some(Rc::new(handler));
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash path salt this ring hashes names with.
    pub fn hash_path_conf(&self) -> &HashPathConf {
        &self.hash
    }

    /// Swift's `_reload()` when due: if `reload_time` has passed since the
    /// last check, look at the file and re-read it when its mtime changed.
    /// `Ok(true)` when a new ring was loaded; `Err` when the new file is
    /// broken (the old ring is kept, and that file is not reported again).
    /// The error handler is not called: the caller has the error.
    pub fn maybe_reload(&self) -> Result<bool, RingError> {
        self.maybe_reload_at(Instant::now())
    }

    /// [`Ring::maybe_reload`] as if the time were `now`.
    pub(crate) fn maybe_reload_at(&self, now: Instant) -> Result<bool, RingError> {
        {
            let mut state = self.state.borrow_mut();
            match state.next_check {
                Some(at) if now > at => {}
                _ => return Ok(false),
            }
            state.next_check = now.checked_add(self.reload_time.get());
        }
        self.reload_if_changed()
    }

    /// Swift's `has_changed()` then `RingData.load`, keeping the old ring
    /// on failure.
    fn reload_if_changed(&self) -> Result<bool, RingError> {
        let current = std::fs::metadata(&self.path).and_then(|m| m.modified());
        {
            let mut state = self.state.borrow_mut();
            match &current {
                Ok(mtime) if Some(*mtime) == state.mtime => {
                    state.failed = None;
                    return Ok(false);
                }
                Ok(mtime) if state.failed == Some(Some(*mtime)) => return Ok(false),
                Err(_) if state.failed == Some(None) => return Ok(false),
                _ => {}
            }
        }
        let seen = match current {
            Ok(mtime) => Some(mtime),
            Err(e) => {
                self.state.borrow_mut().failed = Some(None);
                return Err(RingError::new(&self.path, RingErrorKind::Read(e)));
            }
        };
        match io::load_with_mtime(&self.path) {
            Ok((data, mtime)) => {
                let mut state = self.state.borrow_mut();
                state.data = Rc::new(data);
                state.mtime = mtime;
                state.failed = None;
                Ok(true)
            }
            Err(e) => {
                self.state.borrow_mut().failed = Some(seen);
                Err(e)
            }
        }
    }

    /// The check every lookup makes; a failure goes to the handler.
    fn check(&self) {
        if let Err(e) = self.maybe_reload() {
            let handler = self.on_reload_error.borrow().clone();
            if let Some(handler) = handler {
                handler(&e);
            }
        }
    }

    /// The current ring (after the reload check): for the device list and
    /// anything else not wrapped here. The snapshot does not change under
    /// the caller.
    pub fn data(&self) -> Rc<RingData> {
        self.check();
        Rc::clone(&self.state.borrow().data)
    }

    /// The current ring without the reload check.
    fn current(&self) -> Rc<RingData> {
        Rc::clone(&self.state.borrow().data)
    }

    /// Swift's `get_part(account, container, obj)`.
    pub fn get_part(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<usize, HashPathError> {
        let digest = self.hash.hash_path(account, container, object)?;
        Ok(self.data().part_for_hash(&digest))
    }

    /// Swift's `get_nodes(account, container, obj)`: the partition and its
    /// primaries.
    pub fn get_nodes(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<(usize, Vec<Node>), HashPathError> {
        let part = self.get_part(account, container, object)?;
        Ok((part, self.current().get_part_nodes(part)))
    }

    /// Swift's `get_part_nodes(part)`: the primaries, each device once,
    /// with their `index`.
    pub fn get_part_nodes(&self, part: usize) -> Vec<Node> {
        self.data().get_part_nodes(part)
    }

    /// Swift's `get_more_nodes(part)`: the handoffs, lazily, in Swift's order.
    pub fn get_more_nodes(&self, part: usize) -> MoreNodes {
        self.data().get_more_nodes(part)
    }

    /// Swift's `replica_count` (fractional for a short last row). Like
    /// Swift, this does not check the file.
    pub fn replica_count(&self) -> f64 {
        self.current().replica_count()
    }

    /// Swift's `partition_count`. Like Swift, this does not check the file.
    pub fn partition_count(&self) -> usize {
        self.current().partition_count()
    }

    /// Swift's `part_power`.
    pub fn part_power(&self) -> u32 {
        self.current().part_power()
    }

    /// Swift's `next_part_power` (checks the file, as Swift does).
    pub fn next_part_power(&self) -> Option<u32> {
        self.data().next_part_power()
    }
}
