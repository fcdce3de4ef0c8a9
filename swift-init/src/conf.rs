//! Config discovery as Swift does it: `search_tree` over the swift dir
//! (`<type>-server*.conf`, `*.conf.d` directories, `<type>-server/**/N.conf`
//! for named configs), `-c N` picking the N-th in sorted order, the
//! object-expirer's preference for object-server configs with an
//! `[object-expirer]` section, and the mapping between a config file and its
//! pid file under the run dir.
//!
//! Two deliberate differences from Swift: directories are walked in sorted
//! order (Swift walks them in the file system's order, which decides what
//! its "stop at the first `*.conf.d`" rule finds), and the pid↔conf mapping
//! rewrites the path below the swift or run dir only (Swift rewrites the
//! first match in the whole path, which breaks when the run dir itself
//! contains `object-server` or `.conf`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::servers::{self, Server};

/// `os.path.normpath` for absolute and relative paths: no `.`, no `//`, no
/// trailing `/`, `..` folded where it can be.
pub fn normpath(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Swift's `search_tree(root, glob, ext, exts, dir_ext)`.
///
/// `pattern` is a file name in `root`, or a prefix followed by `*`. A
/// matching file is kept when it ends with `ext` (or any of `exts`); a
/// matching directory is walked: files ending with one of `exts` are
/// collected, and a directory ending with `dir_ext` is returned as one entry
/// (the walk stops at the first level that has one, as Swift's does).
/// The result is sorted.
pub fn search_tree(
    root: &Path,
    pattern: &str,
    exts: &[&str],
    dir_ext: Option<&str>,
) -> Vec<PathBuf> {
    let ends_with_any = |name: &OsStr| {
        let all_empty = exts.iter().all(|e| e.is_empty());
        all_empty || exts.iter().any(|e| name.as_bytes().ends_with(e.as_bytes()))
    };
    let mut found = Vec::new();
    for path in glob_one_level(root, pattern) {
        if path.is_dir() {
            walk(&path, &ends_with_any, dir_ext, &mut found);
        } else {
            // Swift checks only its single `ext` here, so a named pid search
            // (`exts` = [`1.pid`, `1.pid.d`]) also returned `object-server.pid`
            // for `object.1`; every extension asked for is checked here.
            if path.file_name().is_some_and(ends_with_any) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `glob.glob(root/pattern)` for a pattern that is a plain name or a prefix
/// ending in `*`; hidden entries only match a pattern starting with `.`.
fn glob_one_level(root: &Path, pattern: &str) -> Vec<PathBuf> {
    match pattern.strip_suffix('*') {
        None => {
            let p = root.join(pattern);
            if std::fs::symlink_metadata(&p).is_ok() {
                vec![p]
            } else {
                Vec::new()
            }
        }
        Some(prefix) => {
            let Ok(entries) = std::fs::read_dir(root) else {
                return Vec::new();
            };
            let mut out: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.as_bytes();
                    name.starts_with(prefix.as_bytes())
                        && (!name.starts_with(b".") || prefix.starts_with('.'))
                })
                .map(|e| root.join(e.file_name()))
                .collect();
            out.sort();
            out
        }
    }
}

/// One `os.walk` of `top`, top-down, subdirectories in sorted order,
/// symlinked directories listed but not entered.
fn walk(
    top: &Path,
    keep: &dyn Fn(&OsStr) -> bool,
    dir_ext: Option<&str>,
    found: &mut Vec<PathBuf>,
) {
    let is_config_dir =
        |p: &Path| dir_ext.is_some_and(|d| p.as_os_str().as_bytes().ends_with(d.as_bytes()));
    // Swift's walk ends for good (not just for this subtree) at the first
    // level that is or contains a `dir_ext` directory.
    fn level(
        dir: &Path,
        keep: &dyn Fn(&OsStr) -> bool,
        is_config_dir: &dyn Fn(&Path) -> bool,
        found: &mut Vec<PathBuf>,
    ) -> bool {
        if is_config_dir(dir) {
            found.push(dir.to_path_buf());
            return true;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for e in entries.flatten() {
            let path = dir.join(e.file_name());
            // Like os.walk: a symlink to a directory counts as a directory.
            if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
                dirs.push((path, is_link));
            } else {
                files.push(path);
            }
        }
        files.sort();
        dirs.sort();
        for f in files {
            if f.file_name().is_some_and(keep) {
                found.push(f);
            }
        }
        let mut stop = false;
        for (d, _) in &dirs {
            if is_config_dir(d) {
                stop = true;
                found.push(d.clone());
            }
        }
        if stop {
            return true;
        }
        for (d, is_link) in dirs {
            if !is_link && level(&d, keep, is_config_dir, found) {
                return true;
            }
        }
        false
    }
    level(top, keep, &is_config_dir, found);
}

/// The config files of `server` found under `swift_dir`, before `-c N`
/// (Swift's `Server._find_conf_files` plus the expirer and standalone rules).
/// `has_expirer_section` decides whether an object-server config also
/// configures the object-expirer.
pub fn find_conf_files(
    server: &Server,
    swift_dir: &Path,
    has_expirer_section: &dyn Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let search = |prefix: &str| match &server.conf {
        Some(name) => {
            let ext = format!("{name}.conf");
            let dir_ext = format!("{name}.conf.d");
            search_tree(swift_dir, prefix, &[&ext], Some(&dir_ext))
        }
        None => search_tree(
            swift_dir,
            &format!("{prefix}*"),
            &[".conf"],
            Some(".conf.d"),
        ),
    };
    if server.server == "object-expirer" {
        let with_section: Vec<PathBuf> = search("object-server")
            .into_iter()
            .filter(|p| has_expirer_section(p))
            .collect();
        if with_section.is_empty() {
            search("object-expirer")
        } else {
            with_section
        }
    } else if servers::is_standalone(&server.server) {
        search(&server.server)
    } else {
        search(&format!("{}-server", server.kind))
    }
}

/// `-c N`: the N-th (1-based) config in sorted order; 0 means all.
pub fn select_number(found: &[PathBuf], number: usize) -> Vec<PathBuf> {
    if number == 0 {
        return found.to_vec();
    }
    found.get(number - 1).cloned().into_iter().collect()
}

/// Whether a config file (or the `*.conf` files of a `.conf.d` directory,
/// read together) has `[section]`, as Swift's `readconf(path,
/// section_name=...)` decides it; a config that cannot be read or parsed
/// has no section.
pub fn has_section(path: &Path, section: &str) -> bool {
    use swift_common::config::ini::{Encoding, Ini, IniOptions};
    let files: Vec<PathBuf> = if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return false;
        };
        let mut v: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.as_bytes().ends_with(b".conf") && !n.as_bytes().starts_with(b"."))
            .map(|n| path.join(n))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut ini = Ini::new(IniOptions::SWIFT, path);
    for f in &files {
        if ini.read_file(f, Encoding::Utf8).is_err() {
            return false;
        }
    }
    !files.is_empty() && ini.has_section(section)
}

/// The pid file of `conf` for `server` (Swift's `get_pid_file_name`): the
/// config's path below the swift dir, with the first `<type>-server` turned
/// into the server name and the first `.conf` into `.pid`, under `run_dir`.
pub fn pid_file_for(server: &Server, conf: &Path, swift_dir: &Path, run_dir: &Path) -> PathBuf {
    let type_server = format!("{}-server", server.kind);
    match conf.strip_prefix(swift_dir) {
        Ok(rel) => {
            let rel = rel.to_string_lossy();
            let rel = rel
                .replacen(&type_server, &server.server, 1)
                .replacen(".conf", ".pid", 1);
            run_dir.join(rel)
        }
        Err(_) => {
            // Not below the swift dir (cannot happen for found configs): do
            // what Swift does with the whole path.
            let s = conf.to_string_lossy();
            let s = s
                .replacen(
                    &swift_dir.to_string_lossy().into_owned(),
                    &run_dir.to_string_lossy(),
                    1,
                )
                .replacen(&type_server, &server.server, 1)
                .replacen(".conf", ".pid", 1);
            PathBuf::from(s)
        }
    }
}

/// The config file a pid file belongs to (Swift's `get_conf_file_name`),
/// the reverse of [`pid_file_for`]. For the object-expirer, whose pid file
/// is the same for `object-server.conf` and the deprecated
/// `object-expirer.conf`, the one that exists wins.
pub fn conf_for_pid_file(
    server: &Server,
    pid_file: &Path,
    swift_dir: &Path,
    run_dir: &Path,
) -> PathBuf {
    let type_server = format!("{}-server", server.kind);
    let rel = match pid_file.strip_prefix(run_dir) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => return pid_file.with_extension("conf"),
    };
    let as_own = swift_dir.join(rel.replacen(".pid", ".conf", 1));
    if servers::is_standalone(&server.server) {
        return as_own;
    }
    let as_type = swift_dir.join(
        rel.replacen(&server.server, &type_server, 1)
            .replacen(".pid", ".conf", 1),
    );
    if server.server == "object-expirer" && !as_type.exists() && as_own.exists() {
        return as_own;
    }
    as_type
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "").unwrap();
        p
    }

    fn mkdir(root: &Path, rel: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn rels(root: &Path, v: &[PathBuf]) -> Vec<String> {
        v.iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn no_section(_: &Path) -> bool {
        false
    }

    #[test]
    fn normpath_like_python() {
        assert_eq!(normpath(Path::new("/etc/swift/")), Path::new("/etc/swift"));
        assert_eq!(
            normpath(Path::new("/etc//swift/./x/..")),
            Path::new("/etc/swift")
        );
        assert_eq!(normpath(Path::new("a/../..")), Path::new(".."));
        assert_eq!(normpath(Path::new("/..")), Path::new("/"));
        assert_eq!(normpath(Path::new("")), Path::new("."));
    }

    #[test]
    fn conf_files_found_and_sorted() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in [
            "object-server1.conf",
            "object-server/2.conf",
            "object-server/object3.conf",
            "object-server/conf/server4.conf",
            "object-server.txt",
            "proxy-server.conf",
            "account-server.ini",
            "account-server/2.conf",
            "account-server/1.conf",
        ] {
            touch(r, f);
        }
        let found = find_conf_files(&Server::new("object-replicator"), r, &no_section);
        assert_eq!(
            rels(r, &found),
            [
                "object-server/2.conf",
                "object-server/conf/server4.conf",
                "object-server/object3.conf",
                "object-server1.conf"
            ]
        );
        let found = find_conf_files(&Server::new("account"), r, &no_section);
        assert_eq!(
            rels(r, &select_number(&found, 2)),
            ["account-server/2.conf"]
        );
        assert!(select_number(&found, 5).is_empty());
        assert_eq!(select_number(&found, 0).len(), 2);
        let found = find_conf_files(&Server::new("account.2"), r, &no_section);
        assert_eq!(rels(r, &found), ["account-server/2.conf"]);
        assert!(find_conf_files(&Server::new("auth"), r, &no_section).is_empty());
        // `-c N` is lexicographic, as Swift's: 10.conf sorts before 2.conf.
        touch(r, "account-server/10.conf");
        let found = find_conf_files(&Server::new("account"), r, &no_section);
        assert_eq!(
            rels(r, &select_number(&found, 2)),
            ["account-server/10.conf"]
        );
        // Named configs match by suffix, as Swift's: object.1 matches 11.conf.
        touch(r, "object-server/11.conf");
        touch(r, "object-server/1.conf");
        let found = find_conf_files(&Server::new("object.1"), r, &no_section);
        assert_eq!(
            rels(r, &found),
            ["object-server/1.conf", "object-server/11.conf"]
        );
    }

    #[test]
    fn standalone_reconciler() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "container-server.conf");
        touch(r, "container-reconciler.conf");
        let found = find_conf_files(&Server::new("container-reconciler"), r, &no_section);
        assert_eq!(rels(r, &found), ["container-reconciler.conf"]);
        let found = find_conf_files(&Server::new("container-auditor"), r, &no_section);
        assert_eq!(rels(r, &found), ["container-server.conf"]);
    }

    #[test]
    fn conf_dirs() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "proxy-server.conf.d/00.conf");
        touch(r, "proxy-server.conf.d/01.conf");
        let found = find_conf_files(&Server::new("proxy"), r, &no_section);
        assert_eq!(rels(r, &found), ["proxy-server.conf.d"]);

        touch(r, "object-server/object-replication.conf.d/00.conf");
        touch(r, "object-server/object-server.conf.d/00.conf");
        let found = find_conf_files(&Server::new("object.replication"), r, &no_section);
        assert_eq!(rels(r, &found), ["object-server/object-replication.conf.d"]);
        let found = find_conf_files(&Server::new("object"), r, &no_section);
        assert_eq!(
            rels(r, &found),
            [
                "object-server/object-replication.conf.d",
                "object-server/object-server.conf.d"
            ]
        );

        for n in 1..=4 {
            touch(r, &format!("container-server/{n}.conf.d/server.conf"));
        }
        let found = find_conf_files(&Server::new("container"), r, &no_section);
        assert_eq!(
            rels(r, &found),
            [
                "container-server/1.conf.d",
                "container-server/2.conf.d",
                "container-server/3.conf.d",
                "container-server/4.conf.d"
            ]
        );
    }

    #[test]
    fn walk_stops_at_first_conf_d_level() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "object-server/a.conf");
        touch(r, "object-server/x.conf.d/1.conf");
        touch(r, "object-server/z/deeper.conf");
        let found = find_conf_files(&Server::new("object"), r, &no_section);
        // Files of the level are kept, then the walk stops (z/ never visited).
        assert_eq!(
            rels(r, &found),
            ["object-server/a.conf", "object-server/x.conf.d"]
        );
        let d2 = mkdir(r, "hidden");
        touch(&d2, ".object-server.conf");
        assert!(search_tree(&d2, "object-server*", &[".conf"], None).is_empty());
    }

    #[test]
    fn pid_file_search_any_extension() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(r, "proxy-server.pid");
        touch(r, "object-replicator/1.pid");
        touch(r, "object-replicator/2.pid");
        touch(r, "object-server.pid");
        let all = search_tree(r, "object-replicator*", &[""], None);
        assert_eq!(
            rels(r, &all),
            ["object-replicator/1.pid", "object-replicator/2.pid"]
        );
        let named = search_tree(r, "object-replicator*", &["2.pid", "2.pid.d"], None);
        assert_eq!(rels(r, &named), ["object-replicator/2.pid"]);
        let proxy = search_tree(r, "proxy-server*", &[""], None);
        assert_eq!(rels(r, &proxy), ["proxy-server.pid"]);
    }

    #[test]
    fn expirer_prefers_object_server_with_section() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let exp = Server::new("object-expirer");
        std::fs::write(r.join("object-expirer.conf"), "[object-expirer]\n").unwrap();
        std::fs::write(
            r.join("object-server.conf"),
            "[DEFAULT]\n[app:object-server]\n",
        )
        .unwrap();
        let found = find_conf_files(&exp, r, &|p: &Path| has_section(p, "object-expirer"));
        assert_eq!(rels(r, &found), ["object-expirer.conf"]);
        std::fs::write(
            r.join("object-server.conf"),
            "[DEFAULT]\nx = 1\n  [object-expirer]\n[object-expirer]\ninterval = 1\n",
        )
        .unwrap();
        let found = find_conf_files(&exp, r, &|p: &Path| has_section(p, "object-expirer"));
        assert_eq!(rels(r, &found), ["object-server.conf"]);
        // The pid file maps back to the config that exists.
        let run = Path::new("/run/x");
        let pid = pid_file_for(&exp, &r.join("object-server.conf"), r, run);
        assert_eq!(pid, run.join("object-expirer.pid"));
        assert_eq!(
            conf_for_pid_file(&exp, &pid, r, run),
            r.join("object-server.conf")
        );
        std::fs::remove_file(r.join("object-server.conf")).unwrap();
        assert_eq!(
            conf_for_pid_file(&exp, &pid, r, run),
            r.join("object-expirer.conf")
        );
    }

    #[test]
    fn section_check() {
        let d = tempfile::tempdir().unwrap();
        let check = |text: &str| {
            let p = d.path().join("x.conf");
            std::fs::write(&p, text).unwrap();
            has_section(&p, "object-expirer")
        };
        assert!(check("[object-expirer]\n"));
        assert!(check("[a]\nk = v\n\n[object-expirer]\n"));
        // A continuation line, a comment, another name, a broken file: no.
        assert!(!check("[a]\nk = v\n  [object-expirer]\n"));
        assert!(!check("[a]\n# [object-expirer]\n"));
        assert!(!check("[object-expirers]\n"));
        assert!(!check("[object-expirer]\nno delimiter here\n"));
        let dir = d.path().join("object-server.conf.d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("00.conf"), "[DEFAULT]\n").unwrap();
        assert!(!has_section(&dir, "object-expirer"));
        std::fs::write(dir.join("10.conf"), "[object-expirer]\n").unwrap();
        assert!(has_section(&dir, "object-expirer"));
    }

    #[test]
    fn pid_names() {
        let etc = Path::new("/etc/swift");
        let run = Path::new("/var/run/swift");
        let p = Server::new("proxy");
        assert_eq!(
            pid_file_for(&p, &etc.join("proxy-server.conf"), etc, run),
            run.join("proxy-server.pid")
        );
        let r = Server::new("object-replicator");
        assert_eq!(
            pid_file_for(&r, &etc.join("object-server/1.conf"), etc, run),
            run.join("object-replicator/1.pid")
        );
        let a = Server::new("container-auditor");
        assert_eq!(
            pid_file_for(
                &a,
                &etc.join("container-server/1/container-auditor.conf"),
                etc,
                run
            ),
            run.join("container-auditor/1/container-auditor.pid")
        );
        let random = Path::new("/random/dir");
        assert_eq!(
            pid_file_for(&r, &etc.join("object-server/1.conf"), etc, random),
            random.join("object-replicator/1.pid")
        );
        assert_eq!(
            pid_file_for(&p, &etc.join("proxy-server.conf.d"), etc, run),
            run.join("proxy-server.pid.d")
        );
        // A run dir containing the type name is left alone (Swift's is not).
        let odd = Path::new("/srv/object-server.conf/run");
        assert_eq!(
            pid_file_for(&r, &etc.join("object-server/1.conf"), etc, odd),
            odd.join("object-replicator/1.pid")
        );
        assert_eq!(
            conf_for_pid_file(&r, &odd.join("object-replicator/1.pid"), etc, odd),
            etc.join("object-server/1.conf")
        );
    }

    #[test]
    fn conf_names() {
        let etc = Path::new("/etc/swift");
        let run = Path::new("/var/run/swift");
        let p = Server::new("proxy");
        assert_eq!(
            conf_for_pid_file(&p, &run.join("proxy-server.pid"), etc, run),
            etc.join("proxy-server.conf")
        );
        let r = Server::new("object-replicator");
        assert_eq!(
            conf_for_pid_file(&r, &run.join("object-replicator/1.pid"), etc, run),
            etc.join("object-server/1.conf")
        );
        let a = Server::new("container-auditor");
        assert_eq!(
            conf_for_pid_file(
                &a,
                &run.join("container-auditor/1/container-auditor.pid"),
                etc,
                run
            ),
            etc.join("container-server/1/container-auditor.conf")
        );
        let c = Server::new("container-reconciler");
        assert_eq!(
            conf_for_pid_file(&c, &run.join("container-reconciler.pid"), etc, run),
            etc.join("container-reconciler.conf")
        );
    }
}
