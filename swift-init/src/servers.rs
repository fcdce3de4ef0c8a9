//! Server names: Swift's list of servers, the `all`/`main`/`rest` aliases,
//! `*` globs, `proxy` = `proxy-server`, named configs (`object.1`), the
//! server type (`object-replicator` reads `object-server` configs) and where
//! each server's `swift-<server>` binary is found.
//!
//! Order: Swift keeps names in Python sets, so its output order changes from
//! run to run. We sort servers by name (then by named config), which is also
//! what `swift-init main start` prints: account, container, object, proxy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every server swift-init knows, in Swift's order (`ALL_SERVERS`).
pub const ALL_SERVERS: [&str; 18] = [
    "account-auditor",
    "account-server",
    "container-auditor",
    "container-replicator",
    "container-reconciler",
    "container-server",
    "container-sharder",
    "container-sync",
    "container-updater",
    "object-auditor",
    "object-server",
    "object-expirer",
    "object-replicator",
    "object-reconstructor",
    "object-updater",
    "proxy-server",
    "account-replicator",
    "account-reaper",
];

/// The WSGI servers (`MAIN_SERVERS`); only these get SIGHUP for a graceful
/// stop and SIGUSR1 for a seamless reload.
pub const MAIN_SERVERS: [&str; 4] = [
    "proxy-server",
    "account-server",
    "container-server",
    "object-server",
];

/// Servers that match a type (`container-*`) but read their own
/// `<server>*.conf` rather than `<type>-server*.conf`.
pub const STANDALONE_SERVERS: [&str; 1] = ["container-reconciler"];

/// Whether `server` is one of the main (WSGI) servers.
pub fn is_main(server: &str) -> bool {
    MAIN_SERVERS.contains(&server)
}

/// Whether `server` takes the `once` argument (Swift's `START_ONCE_SERVERS`,
/// the known servers that are not main servers).
pub fn is_start_once(server: &str) -> bool {
    ALL_SERVERS.contains(&server) && !is_main(server)
}

/// Whether `server` reads its own config files (see [`STANDALONE_SERVERS`]).
pub fn is_standalone(server: &str) -> bool {
    STANDALONE_SERVERS.contains(&server)
}

/// The servers an alias stands for, in Swift's order.
pub fn alias(name: &str) -> Option<Vec<&'static str>> {
    match name {
        "all" => Some(ALL_SERVERS.to_vec()),
        "main" => Some(MAIN_SERVERS.to_vec()),
        "rest" => Some(
            ALL_SERVERS
                .iter()
                .copied()
                .filter(|s| !is_main(s))
                .collect(),
        ),
        _ => None,
    }
}

/// Swift's `format_server_name`: drop a `.<config>` suffix, add `-server`
/// when the name has no `-`; returns the server name and its binary name.
pub fn format_server_name(name: &str) -> (String, String) {
    let base = name.split_once('.').map_or(name, |(b, _)| b);
    let server = if base.contains('-') {
        base.to_owned()
    } else {
        format!("{base}-server")
    };
    let cmd = format!("swift-{server}");
    (server, cmd)
}

/// Swift's server glob: `*` becomes `.*` of a regular expression that must
/// match at the start of the name (not the end). `.` is any character there;
/// we treat every other character literally (Swift would pass them to `re`).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            // Anchored at the start only: a matched prefix is a match.
            None => true,
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => match n.split_first() {
                Some((d, nrest)) if *c == '.' || c == d => go(rest, nrest),
                _ => false,
            },
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// One server to act on, as Swift's `Server` sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Server {
    /// The full server name, e.g. `object-server` (always lowercase).
    pub server: String,
    /// The named config (`1` for `object.1`), if any.
    pub conf: Option<String>,
    /// The server type: `object` for `object-replicator`.
    pub kind: String,
    /// The binary name, `swift-object-server`.
    pub cmd: String,
}

impl Server {
    /// Parse a name the way Swift's `Server.__init__` does: lowercase, split
    /// a `.<config>` off the end, then [`format_server_name`].
    pub fn new(name: &str) -> Server {
        let lower = name.to_lowercase();
        let (base, conf) = match lower.rsplit_once('.') {
            Some((b, c)) => (b.to_owned(), Some(c.to_owned())),
            None => (lower.clone(), None),
        };
        let (server, cmd) = format_server_name(&base);
        let kind = server
            .rsplit_once('-')
            .map_or(server.as_str(), |(t, _)| t)
            .to_owned();
        Server {
            server,
            conf,
            kind,
            cmd,
        }
    }

    /// How the server is named in messages: Swift prints the server name only.
    pub fn name(&self) -> &str {
        &self.server
    }
}

/// The result of expanding the command line's server names.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Valid servers with their binaries, sorted, without duplicates.
    pub servers: Vec<(Server, PathBuf)>,
    /// Names given explicitly whose binary cannot be found: (name, binary name).
    pub missing: Vec<(String, String)>,
    /// Servers from an alias or glob whose binary cannot be found.
    pub skipped: Vec<String>,
    /// False as soon as an alias or a glob is used (Swift's `_default_strict`).
    pub default_strict: bool,
}

/// Expand aliases and globs, find each server's binary with `find_binary`,
/// and drop duplicates. A named config of a server that is also given
/// without one (`object object.1`) is covered by the unnamed one.
pub fn expand(names: &[String], find_binary: &dyn Fn(&str) -> Option<PathBuf>) -> Expanded {
    let mut out = Expanded {
        default_strict: true,
        ..Expanded::default()
    };
    // (name, explicit): explicit names are reported when their binary is missing.
    let mut wanted: Vec<(String, bool)> = Vec::new();
    for name in names {
        if let Some(list) = alias(name) {
            wanted.extend(list.into_iter().map(|s| (s.to_owned(), false)));
            out.default_strict = false;
        } else if name.contains('*') {
            wanted.extend(
                ALL_SERVERS
                    .iter()
                    .filter(|s| glob_matches(name, s))
                    .map(|s| ((*s).to_owned(), false)),
            );
            out.default_strict = false;
        } else {
            wanted.push((name.clone(), true));
        }
    }
    let mut seen_names = BTreeSet::new();
    let mut servers: BTreeSet<(Server, PathBuf)> = BTreeSet::new();
    for (name, explicit) in wanted {
        if !seen_names.insert(name.clone()) {
            continue;
        }
        if name.is_empty() {
            if explicit {
                out.missing.push((name, "swift--server".to_owned()));
            }
            continue;
        }
        // Swift checks the binary of the name as typed (case-sensitive).
        let (_, cmd) = format_server_name(&name);
        match find_binary(&cmd) {
            Some(path) => {
                servers.insert((Server::new(&name), path));
            }
            None if explicit => out.missing.push((name, cmd)),
            None => out.skipped.push(name),
        }
    }
    let unnamed: BTreeSet<String> = servers
        .iter()
        .filter(|(s, _)| s.conf.is_none())
        .map(|(s, _)| s.server.clone())
        .collect();
    out.servers = servers
        .into_iter()
        .filter(|(s, _)| s.conf.is_none() || !unnamed.contains(&s.server))
        .collect();
    out
}

/// Where a `swift-<server>` binary is: next to swift-init first (so a
/// build directory or package keeps its own servers together), then on
/// `PATH` (so our servers and Python's mix).
pub fn find_binary(
    cmd: &str,
    own_dir: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    if cmd.contains('/') {
        return None;
    }
    if let Some(dir) = own_dir {
        let candidate = dir.join(cmd);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    let path_var = path_var?;
    for dir in std::env::split_paths(path_var) {
        // An empty PATH entry means the current directory.
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(cmd);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_some(cmd: &str) -> Option<PathBuf> {
        // Every known server plus swift-test-server is "installed".
        let known = ALL_SERVERS.iter().any(|s| format!("swift-{s}") == cmd);
        (known || cmd == "swift-test-server").then(|| PathBuf::from(format!("/bin/{cmd}")))
    }

    fn names(e: &Expanded) -> Vec<String> {
        e.servers
            .iter()
            .map(|(s, _)| match &s.conf {
                Some(c) => format!("{}.{c}", s.server),
                None => s.server.clone(),
            })
            .collect()
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn main_and_rest_partition_all() {
        let rest = alias("rest").unwrap();
        assert_eq!(rest.len() + MAIN_SERVERS.len(), ALL_SERVERS.len());
        for s in MAIN_SERVERS {
            assert!(!rest.contains(&s));
            assert!(ALL_SERVERS.contains(&s));
        }
        assert!(is_start_once("object-replicator"));
        assert!(!is_start_once("proxy-server"));
        assert!(!is_start_once("test-server"));
    }

    #[test]
    fn format_names() {
        assert_eq!(
            format_server_name("proxy"),
            ("proxy-server".into(), "swift-proxy-server".into())
        );
        assert_eq!(
            format_server_name("Proxy"),
            ("Proxy-server".into(), "swift-Proxy-server".into())
        );
        assert_eq!(
            format_server_name(""),
            ("-server".into(), "swift--server".into())
        );
        assert_eq!(
            format_server_name("object.replication"),
            ("object-server".into(), "swift-object-server".into())
        );
        assert_eq!(
            format_server_name("object-replicator"),
            ("object-replicator".into(), "swift-object-replicator".into())
        );
    }

    #[test]
    fn server_parse() {
        let s = Server::new("proxy");
        assert_eq!(
            (s.server.as_str(), s.kind.as_str(), s.cmd.as_str()),
            ("proxy-server", "proxy", "swift-proxy-server")
        );
        assert_eq!(s.conf, None);
        let s = Server::new("object-replicator");
        assert_eq!(s.kind, "object");
        let s = Server::new("Proxy");
        assert_eq!(s.server, "proxy-server");
        assert_eq!(Server::new("Proxy"), Server::new("proxy-server"));
        let s = Server::new("object.1");
        assert_eq!(
            (s.server.as_str(), s.conf.as_deref()),
            ("object-server", Some("1"))
        );
        let s = Server::new("object-server.replication");
        assert_eq!(
            (s.server.as_str(), s.conf.as_deref()),
            ("object-server", Some("replication"))
        );
        // A file name is not a path: `proxy-server.conf` names config "conf".
        let s = Server::new("proxy-server.conf");
        assert_eq!(
            (s.server.as_str(), s.conf.as_deref()),
            ("proxy-server", Some("conf"))
        );
        assert_eq!(Server::new("container-reconciler").kind, "container");
    }

    #[test]
    fn globs() {
        assert!(glob_matches("object-*", "object-server"));
        assert!(glob_matches("*-replicator", "object-replicator"));
        assert!(!glob_matches("*-replicator", "object-server"));
        // Anchored at the start only, like re.match.
        assert!(glob_matches("object*", "object-replicator"));
        assert!(glob_matches("obj*-rep", "object-replicator"));
        // `.` is any character, as in Swift's regular expression.
        assert!(glob_matches("object.*", "object-server"));
        assert!(!glob_matches("proxy*x", "proxy-server"));
    }

    #[test]
    fn expand_aliases_globs_and_duplicates() {
        let e = expand(&args(&["proxy"]), &find_some);
        assert_eq!(names(&e), ["proxy-server"]);
        assert!(e.default_strict);

        let e = expand(&args(&["proxy", "proxy-server", "proxy"]), &find_some);
        assert_eq!(names(&e), ["proxy-server"]);

        let e = expand(&args(&["main"]), &find_some);
        assert_eq!(
            names(&e),
            [
                "account-server",
                "container-server",
                "object-server",
                "proxy-server"
            ]
        );
        assert!(!e.default_strict);

        let e = expand(&args(&["all"]), &find_some);
        assert_eq!(e.servers.len(), ALL_SERVERS.len());
        let e = expand(&args(&["main", "rest"]), &find_some);
        assert_eq!(e.servers.len(), ALL_SERVERS.len());
        let e = expand(&args(&["rest"]), &find_some);
        assert_eq!(e.servers.len(), ALL_SERVERS.len() - 4);
        let e = expand(&args(&["main", "proxy", "object-server"]), &find_some);
        assert_eq!(e.servers.len(), 4);

        let e = expand(&args(&["object-*"]), &find_some);
        assert_eq!(
            names(&e),
            [
                "object-auditor",
                "object-expirer",
                "object-reconstructor",
                "object-replicator",
                "object-server",
                "object-updater"
            ]
        );
        assert!(!e.default_strict);
        let e = expand(&args(&["*-replicator"]), &find_some);
        assert_eq!(
            names(&e),
            [
                "account-replicator",
                "container-replicator",
                "object-replicator"
            ]
        );
        let e = expand(&args(&["proxy*"]), &find_some);
        assert!(!e.default_strict);
    }

    #[test]
    fn expand_reports_explicit_unknown_names() {
        let e = expand(&args(&["proxy", "foo", "Object", "test"]), &find_some);
        assert_eq!(names(&e), ["proxy-server", "test-server"]);
        assert_eq!(
            e.missing,
            [
                ("foo".to_owned(), "swift-foo-server".to_owned()),
                ("Object".to_owned(), "swift-Object-server".to_owned())
            ]
        );
        let only_proxy = |cmd: &str| (cmd == "swift-proxy-server").then(|| PathBuf::from("/x"));
        let e = expand(&args(&["main"]), &only_proxy);
        assert_eq!(names(&e), ["proxy-server"]);
        assert!(e.missing.is_empty());
        assert_eq!(e.skipped.len(), 3);
    }

    #[test]
    fn named_configs_and_their_unnamed_server() {
        let e = expand(&args(&["object.2", "object.1"]), &find_some);
        assert_eq!(names(&e), ["object-server.1", "object-server.2"]);
        let e = expand(&args(&["object.1", "object"]), &find_some);
        assert_eq!(names(&e), ["object-server"]);
    }

    #[test]
    fn binary_lookup_prefers_own_dir() {
        use std::os::unix::fs::PermissionsExt;
        let own = tempfile::tempdir().unwrap();
        let on_path = tempfile::tempdir().unwrap();
        for d in [own.path(), on_path.path()] {
            let p = d.join("swift-proxy-server");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let p = on_path.path().join("swift-object-server");
        std::fs::write(&p, "").unwrap();
        // Not executable: not found.
        let path_var = on_path.path().as_os_str().to_owned();
        assert_eq!(
            find_binary("swift-proxy-server", Some(own.path()), Some(&path_var)),
            Some(own.path().join("swift-proxy-server"))
        );
        assert_eq!(
            find_binary("swift-proxy-server", None, Some(&path_var)),
            Some(on_path.path().join("swift-proxy-server"))
        );
        assert_eq!(
            find_binary("swift-object-server", Some(own.path()), Some(&path_var)),
            None
        );
        assert_eq!(
            find_binary("swift-x/../y", Some(own.path()), Some(&path_var)),
            None
        );
    }
}
