//! The command line, parsed the way Swift's optparse parser does it, so
//! operators' habits and scripts keep working: options anywhere among the
//! arguments, clustered short options (`-vc2`), unambiguous prefixes of long
//! options (`--verb`), `--opt=value` and `--opt value`, `--` ending options,
//! Python's integer syntax (`0x10`, `010`), and optparse's messages and exit
//! code 2 for a bad option. The usage text and command list are Swift's.
//!
//! Two options are ours: `--swift-dir` (Swift hard-codes /etc/swift; the
//! `SWIFT_DIR` environment variable is read too) and `--start-timeout`
//! (Swift waits for a server to start without a bound, and does not wait
//! for a seamless reload at all; this bounds both).

use std::ffi::OsString;

/// Swift's default run dir.
pub const RUN_DIR: &str = "/var/run/swift";
/// Swift's swift dir, unless `--swift-dir` or `SWIFT_DIR` say otherwise.
pub const SWIFT_DIR: &str = "/etc/swift";
/// Swift's `KILL_WAIT`.
pub const KILL_WAIT: i64 = 15;
/// How long `start` waits for servers to close their stdout, and
/// `reload-seamless` for them to report the reload, by default.
pub const START_TIMEOUT: i64 = 60;

/// The commands with their help lines, sorted as Swift lists them.
pub const COMMANDS: [(&str, &str); 12] = [
    ("force-reload", "alias for reload"),
    ("kill", "stop a server (no error if not running)"),
    ("no-daemon", "start a server interactively"),
    ("no-wait", "spawn server and return immediately"),
    (
        "once",
        "start server and run one pass on supporting daemons",
    ),
    (
        "reload",
        "graceful shutdown then restart on supporting servers",
    ),
    (
        "reload-seamless",
        "seamlessly re-exec, then shutdown of old listen sockets on\n           supporting servers",
    ),
    ("restart", "stops then restarts server"),
    (
        "shutdown",
        "allow current requests to finish on supporting servers",
    ),
    ("start", "starts a server"),
    ("status", "display status of tracked pids for server"),
    ("stop", "stops a server"),
];

const USAGE: &str = "%prog <server>[.<config>] [<server>[.<config>] ...] <command> [options]

where:
    <server>  is the name of a swift service e.g. proxy-server.
              The '-server' part of the name may be omitted.
              'all', 'main' and 'rest' are reserved words that represent a
              group of services.
              all: Expands to all swift daemons.
              main: Expands to main swift daemons.
                    (proxy, container, account, object)
              rest: Expands to all remaining background daemons (beyond
                    \"main\").
                    (updater, replicator, auditor, etc)
    <config>  is an explicit configuration filename without the
              .conf extension. If <config> is specified then <server> should
              refer to a directory containing the configuration file, e.g.:

                  swift-init object.1 start

              will start an object-server using the configuration file
              /etc/swift/object-server/1.conf
    <command> is a command from the list below.

Commands:
";

const OPTIONS_HELP: &str = "Options:
  -h, --help            show this help message and exit
  -v, --verbose         display verbose output
  -w, --no-wait         won't wait for server to start before returning
  -o, --once            only run one pass of daemon
  -n, --no-daemon       start server interactively
  -g, --graceful        send SIGHUP to supporting servers
  -c N, --config-num=N  send command to the Nth server only
  -k N, --kill-wait=N   wait N seconds for processes to die (default 15)
  --start-timeout=N     wait N seconds for a start or reload (default 60)
  -r RUN_DIR, --run-dir=RUN_DIR
                        alternative directory to store running pid files
                        default: /var/run/swift
  --swift-dir=SWIFT_DIR
                        alternative directory of swift configuration files
                        default: $SWIFT_DIR or /etc/swift
  --strict              Return non-zero status code if some config is missing.
                        Default mode if all servers are explicitly named.
  --non-strict          Return zero status code even if some config is
                        missing. Default mode if any server is a glob or one
                        of aliases `all`, `main` or `rest`.
  --kill-after-timeout  Kill daemon and all children after kill-wait period.
";

/// The usage text with the command list (optparse's `%prog` expanded).
pub fn usage(prog: &str) -> String {
    let mut s = USAGE.replace("%prog", prog);
    let lines: Vec<String> = COMMANDS
        .iter()
        .map(|(c, h)| format!("{c:>16}: {h}"))
        .collect();
    s.push_str(&lines.join("\n"));
    s
}

/// What optparse prints for `-h`: usage, a blank line, the options.
pub fn help(prog: &str) -> String {
    format!("Usage: {}\n\n{OPTIONS_HELP}", usage(prog))
}

/// What optparse prints to stderr before exiting 2 on a bad option.
pub fn error_text(prog: &str, msg: &str) -> String {
    format!("Usage: {}\n\n{prog}: error: {msg}\n", usage(prog))
}

/// Swift's command lookup: case-insensitive, `_` and `-` alike.
pub fn find_command(cmd: &str) -> Option<&'static str> {
    let wanted = cmd.to_lowercase().replace('_', "-");
    COMMANDS.iter().map(|(c, _)| *c).find(|c| *c == wanted)
}

/// Whether `word` is a command exactly as Swift lists it (the test for
/// swapping `start proxy` into `proxy start`).
pub fn is_listed_command(word: &str) -> bool {
    COMMANDS.iter().any(|(c, _)| *c == word)
}

/// The parsed options (Swift's `options`), plus ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub verbose: bool,
    pub wait: bool,
    pub once: bool,
    pub daemon: bool,
    pub graceful: bool,
    pub number: usize,
    pub kill_wait: i64,
    pub start_timeout: i64,
    pub run_dir: OsString,
    pub swift_dir: Option<OsString>,
    pub strict: Option<bool>,
    pub kill_after_timeout: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            verbose: false,
            wait: true,
            once: false,
            daemon: true,
            graceful: false,
            number: 0,
            kill_wait: KILL_WAIT,
            start_timeout: START_TIMEOUT,
            run_dir: OsString::from(RUN_DIR),
            swift_dir: None,
            strict: None,
            kill_after_timeout: false,
        }
    }
}

/// The outcome of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `-h`/`--help`: print [`help`] and exit 0.
    Help,
    /// Options and the positional arguments (servers and command).
    Run(Options, Vec<String>),
    /// A bad option: print [`error_text`] to stderr and exit 2.
    Error(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    Verbose,
    NoWait,
    Once,
    NoDaemon,
    Graceful,
    ConfigNum,
    KillWait,
    StartTimeout,
    RunDir,
    SwiftDir,
    Strict,
    NonStrict,
    KillAfterTimeout,
}

const SHORT: [(char, Opt); 9] = [
    ('h', Opt::Help),
    ('v', Opt::Verbose),
    ('w', Opt::NoWait),
    ('o', Opt::Once),
    ('n', Opt::NoDaemon),
    ('g', Opt::Graceful),
    ('c', Opt::ConfigNum),
    ('k', Opt::KillWait),
    ('r', Opt::RunDir),
];

const LONG: [(&str, Opt); 14] = [
    ("--help", Opt::Help),
    ("--verbose", Opt::Verbose),
    ("--no-wait", Opt::NoWait),
    ("--once", Opt::Once),
    ("--no-daemon", Opt::NoDaemon),
    ("--graceful", Opt::Graceful),
    ("--config-num", Opt::ConfigNum),
    ("--kill-wait", Opt::KillWait),
    ("--start-timeout", Opt::StartTimeout),
    ("--run-dir", Opt::RunDir),
    ("--swift-dir", Opt::SwiftDir),
    ("--strict", Opt::Strict),
    ("--non-strict", Opt::NonStrict),
    ("--kill-after-timeout", Opt::KillAfterTimeout),
];

impl Opt {
    fn takes_value(self) -> bool {
        matches!(
            self,
            Opt::ConfigNum | Opt::KillWait | Opt::StartTimeout | Opt::RunDir | Opt::SwiftDir
        )
    }
}

/// optparse's `int` type: `0x` hex, `0b` binary, a leading `0` octal, else
/// decimal; Python's `int()` syntax (whitespace, sign, `_` between digits).
pub fn py_int(val: &str) -> Option<i64> {
    let lower = val.to_ascii_lowercase();
    let (radix, body) = if lower.starts_with("0x") {
        (16, val)
    } else if lower.starts_with("0b") {
        let rest = &val[2..];
        (2, if rest.is_empty() { "0" } else { rest })
    } else if val.starts_with('0') {
        (8, val)
    } else {
        (10, val)
    };
    let t = body.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let tl = t.to_ascii_lowercase();
    let t = match radix {
        16 if tl.starts_with("0x") => &t[2..],
        8 if tl.starts_with("0o") => &t[2..],
        2 if tl.starts_with("0b") => &t[2..],
        _ => t,
    };
    let t = t.strip_prefix('_').filter(|_| radix != 10).unwrap_or(t);
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    let digits: String = t.chars().filter(|c| *c != '_').collect();
    let n = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -n } else { n })
}

fn set_value(opts: &mut Options, opt: Opt, name: &str, value: OsString) -> Result<(), String> {
    let as_int = |v: &OsString| {
        let s = v.to_string_lossy();
        py_int(&s).ok_or_else(|| format!("option {name}: invalid integer value: {}", py_repr(&s)))
    };
    match opt {
        Opt::ConfigNum => {
            let n = as_int(&value)?;
            // Swift would index from the end for a negative N.
            opts.number = usize::try_from(n).map_err(|_| {
                format!(
                    "option {name}: invalid integer value: {} (N must be 0 or more)",
                    py_repr(&value.to_string_lossy())
                )
            })?;
        }
        Opt::KillWait => opts.kill_wait = as_int(&value)?,
        Opt::StartTimeout => opts.start_timeout = as_int(&value)?,
        Opt::RunDir => opts.run_dir = value,
        Opt::SwiftDir => opts.swift_dir = Some(value),
        _ => {}
    }
    Ok(())
}

fn set_flag(opts: &mut Options, opt: Opt) {
    match opt {
        Opt::Verbose => opts.verbose = true,
        Opt::NoWait => opts.wait = false,
        Opt::Once => opts.once = true,
        Opt::NoDaemon => opts.daemon = false,
        Opt::Graceful => opts.graceful = true,
        Opt::Strict => opts.strict = Some(true),
        Opt::NonStrict => opts.strict = Some(false),
        Opt::KillAfterTimeout => opts.kill_after_timeout = true,
        _ => {}
    }
}

/// optparse's `_match_long_opt`: exact, else a unique prefix.
fn match_long(given: &str) -> Result<(&'static str, Opt), String> {
    if let Some((n, o)) = LONG.iter().find(|(n, _)| *n == given) {
        return Ok((n, *o));
    }
    let mut hits: Vec<(&'static str, Opt)> = LONG
        .iter()
        .filter(|(n, _)| n.starts_with(given))
        .copied()
        .collect();
    match hits.len() {
        0 => Err(format!("no such option: {given}")),
        1 => Ok(hits[0]),
        _ => {
            hits.sort_by_key(|(n, _)| *n);
            let names: Vec<&str> = hits.iter().map(|(n, _)| *n).collect();
            Err(format!("ambiguous option: {given} ({}?)", names.join(", ")))
        }
    }
}

/// Parse the arguments after the program name.
pub fn parse(args: &[OsString]) -> Parsed {
    let mut opts = Options::default();
    let mut positional = Vec::new();
    let mut rest: std::collections::VecDeque<OsString> = args.iter().cloned().collect();
    while let Some(arg) = rest.pop_front() {
        let s = arg.to_string_lossy().into_owned();
        if s == "--" {
            positional.extend(rest.drain(..).map(|a| a.to_string_lossy().into_owned()));
            break;
        } else if s.starts_with("--") {
            let (given, explicit) = match s.split_once('=') {
                Some((g, v)) => (g.to_owned(), Some(v.to_owned())),
                None => (s.clone(), None),
            };
            let (name, opt) = match match_long(&given) {
                Ok(m) => m,
                Err(e) => return Parsed::Error(e),
            };
            if opt.takes_value() {
                // `--opt=value` keeps the raw bytes of the value.
                let value = match explicit {
                    Some(_) => {
                        use std::os::unix::ffi::{OsStrExt, OsStringExt};
                        let bytes = arg.as_bytes();
                        let at = bytes
                            .iter()
                            .position(|b| *b == b'=')
                            .map_or(bytes.len(), |i| i + 1);
                        OsString::from_vec(bytes[at..].to_vec())
                    }
                    None => match rest.pop_front() {
                        Some(v) => v,
                        None => return Parsed::Error(format!("{name} option requires 1 argument")),
                    },
                };
                if let Err(e) = set_value(&mut opts, opt, name, value) {
                    return Parsed::Error(e);
                }
            } else if explicit.is_some() {
                return Parsed::Error(format!("{name} option does not take a value"));
            } else if opt == Opt::Help {
                return Parsed::Help;
            } else {
                set_flag(&mut opts, opt);
            }
        } else if s.starts_with('-') && s.len() > 1 {
            let chars: Vec<char> = s.chars().skip(1).collect();
            for (i, ch) in chars.iter().enumerate() {
                let name = format!("-{ch}");
                let Some((_, opt)) = SHORT.iter().find(|(c, _)| c == ch) else {
                    return Parsed::Error(format!("no such option: {name}"));
                };
                if opt.takes_value() {
                    let attached: String = chars[i + 1..].iter().collect();
                    let value = if !attached.is_empty() {
                        OsString::from(attached)
                    } else {
                        match rest.pop_front() {
                            Some(v) => v,
                            None => {
                                return Parsed::Error(format!("{name} option requires 1 argument"));
                            }
                        }
                    };
                    if let Err(e) = set_value(&mut opts, *opt, &name, value) {
                        return Parsed::Error(e);
                    }
                    break;
                } else if *opt == Opt::Help {
                    return Parsed::Help;
                } else {
                    set_flag(&mut opts, *opt);
                }
            }
        } else {
            positional.push(s);
        }
    }
    Parsed::Run(opts, positional)
}

/// Python's `repr()` of a `str`.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of `bytes`.
pub fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&v)
    }

    fn run(args: &[&str]) -> (Options, Vec<String>) {
        match p(args) {
            Parsed::Run(o, a) => (o, a),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn usage_matches_swift() {
        let u = usage("swift-init");
        assert!(u.starts_with(
            "swift-init <server>[.<config>] [<server>[.<config>] ...] <command> [options]\n"
        ));
        assert!(u.contains("    force-reload: alias for reload\n"));
        assert!(u.contains(" reload-seamless: seamlessly re-exec, then shutdown of old listen sockets on\n           supporting servers\n"));
        assert!(u.ends_with("            stop: stops a server"));
        let h = help("swift-init");
        assert!(h.contains("stops a server\n\nOptions:\n  -h, --help "));
        assert!(h.ends_with("kill-wait period.\n"));
        assert!(
            error_text("swift-init", "no such option: -x")
                .ends_with("stops a server\n\nswift-init: error: no such option: -x\n")
        );
    }

    #[test]
    fn flags_values_and_positionals_anywhere() {
        let (o, a) = run(&[
            "proxy",
            "-v",
            "start",
            "-c",
            "2",
            "--kill-wait=3",
            "-r",
            "/tmp/r",
        ]);
        assert_eq!(a, ["proxy", "start"]);
        assert!(o.verbose);
        assert_eq!(o.number, 2);
        assert_eq!(o.kill_wait, 3);
        assert_eq!(o.run_dir, OsString::from("/tmp/r"));
        let (o, _) = run(&["-vwong", "x", "y"]);
        assert!(o.verbose && !o.wait && o.once && !o.daemon && o.graceful);
        let (o, _) = run(&["-vc2"]);
        assert!(o.verbose);
        assert_eq!(o.number, 2);
        let (o, _) = run(&["-c", "0x10", "-k", "010"]);
        assert_eq!((o.number, o.kill_wait), (16, 8));
        let (o, _) = run(&["--verb", "--config", "3", "--kill-a", "--non"]);
        assert!(o.verbose && o.kill_after_timeout);
        assert_eq!(o.number, 3);
        assert_eq!(o.strict, Some(false));
        let (o, _) = run(&["--strict"]);
        assert_eq!(o.strict, Some(true));
        let (o, _) = run(&["--swift-dir", "/srv/swift", "--start-timeout=5"]);
        assert_eq!(o.swift_dir, Some(OsString::from("/srv/swift")));
        assert_eq!(o.start_timeout, 5);
        let (_, a) = run(&["proxy", "--", "-v", "start"]);
        assert_eq!(a, ["proxy", "-v", "start"]);
        let (_, a) = run(&["-", "start"]);
        assert_eq!(a, ["-", "start"]);
        assert_eq!(run(&[]).0, Options::default());
    }

    #[test]
    fn optparse_errors() {
        let e = |args: &[&str]| match p(args) {
            Parsed::Error(e) => e,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(e(&["-x"]), "no such option: -x");
        assert_eq!(e(&["-vx"]), "no such option: -x");
        assert_eq!(e(&["--foo"]), "no such option: --foo");
        assert_eq!(e(&["-c"]), "-c option requires 1 argument");
        assert_eq!(
            e(&["--config-num"]),
            "--config-num option requires 1 argument"
        );
        assert_eq!(e(&["--conf"]), "--config-num option requires 1 argument");
        assert_eq!(e(&["-c", "abc"]), "option -c: invalid integer value: 'abc'");
        assert_eq!(e(&["-c", "08"]), "option -c: invalid integer value: '08'");
        assert_eq!(
            e(&["--kill-wait=x'y"]),
            "option --kill-wait: invalid integer value: \"x'y\""
        );
        assert_eq!(
            e(&["--verbose=1"]),
            "--verbose option does not take a value"
        );
        assert_eq!(
            e(&["--kill"]),
            "ambiguous option: --kill (--kill-after-timeout, --kill-wait?)"
        );
        assert_eq!(e(&["---x"]), "no such option: ---x");
        assert_eq!(p(&["-x", "-h"]), Parsed::Error("no such option: -x".into()));
        assert_eq!(p(&["-h", "-x"]), Parsed::Help);
        assert_eq!(p(&["proxy", "--he"]), Parsed::Help);
    }

    #[test]
    fn python_ints() {
        assert_eq!(py_int("12"), Some(12));
        assert_eq!(py_int(" 12 "), Some(12));
        assert_eq!(py_int("-5"), Some(-5));
        assert_eq!(py_int("1_000"), Some(1000));
        assert_eq!(py_int("0"), Some(0));
        assert_eq!(py_int("010"), Some(8));
        assert_eq!(py_int("0o10"), Some(8));
        assert_eq!(py_int("0x1f"), Some(31));
        assert_eq!(py_int("0b101"), Some(5));
        assert_eq!(py_int("0b"), Some(0));
        assert_eq!(py_int("08"), None);
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_int(""), None);
        assert_eq!(py_int("abc"), None);
    }

    #[test]
    fn commands() {
        assert_eq!(find_command("START"), Some("start"));
        assert_eq!(find_command("no_wait"), Some("no-wait"));
        assert_eq!(find_command("Reload-Seamless"), Some("reload-seamless"));
        assert_eq!(find_command("kill_child_pids"), None);
        assert_eq!(find_command("__init__"), None);
        assert!(is_listed_command("no-wait"));
        assert!(!is_listed_command("START"));
    }
}
