//! `swift-reload PID`: Swift's tool to reload a WSGI server safely
//! (`swift/cli/reload.py`): check that PID is a server's manager process,
//! check its config (`<its command line> --test-config`), bind its
//! notification socket, send SIGUSR1 and wait for `READY=1`.
//!
//! Options, messages (errors on stderr, the rest on stdout) and exit codes
//! are Swift's: 2 for a bad pid or bad arguments, 1 for a failed check or
//! reload, 238 (128 + ETIMEDOUT) for a timeout, 0 with `Reloaded <script>`.
//! Where we differ:
//!
//! - A reload that our server reports as failed (`STATUS=Reload failed:`
//!   with `READY=1`: the old configuration keeps serving) exits 1 with the
//!   reason, and so does a server that exits while reloading; Swift waits
//!   for the timeout in both cases.
//! - The timeout bounds the whole wait (Swift's bounds each receive).
//! - The pid is pinned (pidfd) from the check to the signal, and only
//!   notifications sent by that process count.
//! - The usage names the program (Swift's shows its docstring there); a
//!   negative or NaN timeout is a usage error (Swift raises ValueError).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::{Duration, Instant};
use swift_common::sys::stdio::{print_err, print_out};

use crate::cli::{py_bytes_repr, py_repr};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::notify::{Listener, Outcome};
use crate::process::Proc;

/// A pid that is not a server's manager (as argparse exits on a bad arg).
pub const EXIT_BAD_PID: i32 = 2;
/// The config check or the reload failed.
pub const EXIT_RELOAD_FAILED: i32 = 1;
/// No `READY=1` in time: 128 + ETIMEDOUT.
pub const EXIT_RELOAD_TIMEOUT: i32 = 128 + Errno::ETIMEDOUT as i32;

/// The servers that can check their config and reload seamlessly.
const RELOADABLE: [&str; 4] = [
    "swift-proxy-server",
    "swift-account-server",
    "swift-container-server",
    "swift-object-server",
];

const USAGE: &str = "usage: %prog [-h] [-t TIMEOUT | -w] [-v] pid\n";

const HELP: &str = "
Safely reload WSGI servers while minimizing client downtime and errors by

   * validating that the process is a Swift WSGI server manager,
   * checking that the configuration file used is valid,
   * sending the \"seamless reload\" signal, and
   * waiting for the reload to complete.

positional arguments:
  pid                   server PID which should be reloaded

options:
  -h, --help            show this help message and exit
  -t TIMEOUT, --timeout TIMEOUT
                        max time to wait for reload to complete
  -w, --no-wait         skip waiting for reload to complete
  -v, --verbose         display more information as the process reloads
";

/// The parsed arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub pid: i64,
    /// Seconds; infinite waits as long as the process lives.
    pub timeout: f64,
    pub wait: bool,
    pub verbose: bool,
}

/// The outcome of parsing.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Help,
    Run(Args),
    /// argparse's message; exit 2 after the usage.
    Error(String),
}

/// Python's `int()` of a decimal string: whitespace around, a sign,
/// `_` between digits.
pub fn py_decimal(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Python's `float()`, closely enough: whitespace, `_` between digits,
/// `inf`/`nan`.
pub fn py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let b = t.as_bytes();
    let underscores_ok = b.iter().enumerate().all(|(i, c)| {
        *c != b'_'
            || (i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if !underscores_ok || t.is_empty() {
        return None;
    }
    t.replace('_', "").parse().ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    Timeout,
    NoWait,
    Verbose,
}

const LONG: [(&str, Opt); 4] = [
    ("--help", Opt::Help),
    ("--timeout", Opt::Timeout),
    ("--no-wait", Opt::NoWait),
    ("--verbose", Opt::Verbose),
];

fn opt_name(o: Opt) -> &'static str {
    match o {
        Opt::Help => "-h/--help",
        Opt::Timeout => "-t/--timeout",
        Opt::NoWait => "-w/--no-wait",
        Opt::Verbose => "-v/--verbose",
    }
}

/// argparse's idea of a negative number, which is a positional here.
fn is_negative_number(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('-') else {
        return false;
    };
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let all = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if rest.contains('.') {
        all(int) && !frac.is_empty() && all(frac)
    } else {
        !int.is_empty() && all(int)
    }
}

/// Parse the arguments after the program name, as argparse does.
pub fn parse(args: &[OsString]) -> Parsed {
    let mut pid: Option<String> = None;
    let mut extra: Vec<String> = Vec::new();
    let mut timeout: Option<String> = None;
    let mut wait = true;
    let mut verbose = false;
    let mut rest: std::collections::VecDeque<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut positional_only = false;
    // Which of the mutually exclusive -t / -w came first.
    let mut exclusive: Option<Opt> = None;
    let mut take = |o: Opt, value: Option<String>| -> Result<bool, String> {
        if matches!(o, Opt::Timeout | Opt::NoWait) {
            match exclusive {
                Some(first) if first != o => {
                    return Err(format!(
                        "argument {}: not allowed with argument {}",
                        opt_name(o),
                        opt_name(first)
                    ));
                }
                _ => exclusive = Some(o),
            }
        }
        match o {
            Opt::Help => return Ok(true),
            Opt::Timeout => timeout = value,
            Opt::NoWait => wait = false,
            Opt::Verbose => verbose = true,
        }
        Ok(false)
    };
    while let Some(arg) = rest.pop_front() {
        if positional_only || arg == "-" || !arg.starts_with('-') || is_negative_number(&arg) {
            if pid.is_none() {
                pid = Some(arg);
            } else {
                extra.push(arg);
            }
            continue;
        }
        if arg == "--" {
            positional_only = true;
            continue;
        }
        let (opt, value) = if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let given = format!("--{name}");
            let hits: Vec<&(&str, Opt)> =
                LONG.iter().filter(|(n, _)| n.starts_with(&given)).collect();
            let exact = LONG.iter().find(|(n, _)| *n == given);
            let opt = match (exact, hits.as_slice()) {
                (Some((_, o)), _) | (None, [(_, o)]) => *o,
                (None, []) => {
                    extra.push(arg);
                    continue;
                }
                (None, many) => {
                    let names: Vec<&str> = many.iter().map(|(n, _)| *n).collect();
                    return Parsed::Error(format!(
                        "ambiguous option: {given} could match {}",
                        names.join(", ")
                    ));
                }
            };
            if opt != Opt::Timeout && value.is_some() {
                return Parsed::Error(format!(
                    "argument {}: ignored explicit argument {}",
                    opt_name(opt),
                    py_repr(value.as_deref().unwrap_or(""))
                ));
            }
            (opt, value)
        } else {
            // Short options, clustered: -vw, -t5, -vt 5.
            let chars: Vec<char> = arg.chars().skip(1).collect();
            let mut i = 0;
            let mut last = None;
            while i < chars.len() {
                let opt = match chars[i] {
                    'h' => Opt::Help,
                    't' => Opt::Timeout,
                    'w' => Opt::NoWait,
                    'v' => Opt::Verbose,
                    _ => {
                        extra.push(arg.clone());
                        break;
                    }
                };
                if opt == Opt::Timeout {
                    let attached: String = chars[i + 1..].iter().collect();
                    let attached = attached
                        .strip_prefix('=')
                        .map(str::to_owned)
                        .unwrap_or(attached);
                    last = Some((opt, (!attached.is_empty()).then_some(attached)));
                    break;
                }
                if i + 1 < chars.len() {
                    match take(opt, None) {
                        Ok(true) => return Parsed::Help,
                        Ok(false) => {}
                        Err(e) => return Parsed::Error(e),
                    }
                } else {
                    last = Some((opt, None));
                }
                i += 1;
            }
            match last {
                Some(l) => l,
                None => continue,
            }
        };
        let value = if opt == Opt::Timeout {
            match value {
                Some(v) => Some(v),
                None => match rest.front() {
                    Some(v) if !v.starts_with('-') || is_negative_number(v) => rest.pop_front(),
                    _ => {
                        return Parsed::Error(format!(
                            "argument {}: expected one argument",
                            opt_name(opt)
                        ));
                    }
                },
            }
        } else {
            None
        };
        match take(opt, value) {
            Ok(true) => return Parsed::Help,
            Ok(false) => {}
            Err(e) => return Parsed::Error(e),
        }
    }
    let timeout = match timeout {
        None => 300.0,
        Some(t) => match py_float(&t) {
            Some(v) if v >= 0.0 => v,
            _ => {
                return Parsed::Error(format!(
                    "argument -t/--timeout: invalid float value: {}",
                    py_repr(&t)
                ));
            }
        },
    };
    let Some(pid) = pid else {
        return Parsed::Error("the following arguments are required: pid".to_owned());
    };
    let Some(pid) = py_decimal(&pid) else {
        return Parsed::Error(format!(
            "argument pid: invalid int value: {}",
            py_repr(&pid)
        ));
    };
    if !extra.is_empty() {
        return Parsed::Error(format!("unrecognized arguments: {}", extra.join(" ")));
    }
    Parsed::Run(Args {
        pid,
        timeout,
        wait,
        verbose,
    })
}

/// The usage line.
pub fn usage(prog: &str) -> String {
    USAGE.replace("%prog", prog)
}

/// `-h`.
pub fn help(prog: &str) -> String {
    format!("{}{HELP}", usage(prog))
}

/// A process that passed [`validate_manager_pid`].
#[derive(Debug)]
pub struct Manager {
    /// Its command line.
    pub cmd: Vec<OsString>,
    /// Its script's name (`swift-proxy-server`).
    pub script: String,
    /// The process, pinned.
    pub proc: Proc,
}

/// Swift's `validate_manager_pid`: `Err` is the message for stderr (exit
/// [`EXIT_BAD_PID`]).
pub fn validate_manager_pid(pid: i64) -> Result<Manager, String> {
    let no_info = || format!("Failed to get process information for {pid}");
    let raw = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(no_info)?;
    // Pinned first, so everything read below is about this very process.
    let proc = Proc::open(raw).map_err(|_| no_info())?;
    let cmdline = std::fs::read(format!("/proc/{raw}/cmdline")).map_err(|_| no_info())?;
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(raw))).map_err(|_| no_info())?;
    if proc.has_exited() {
        return Err(no_info());
    }
    // Python: read().strip('\x00').split('\x00').
    let start = cmdline
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(cmdline.len());
    let end = cmdline
        .iter()
        .rposition(|b| *b != 0)
        .map_or(start, |i| i + 1);
    let cmd: Vec<OsString> = cmdline[start..end.max(start)]
        .split(|b| *b == 0)
        .map(|a| OsStr::from_bytes(a).to_owned())
        .collect();
    let text: Vec<String> = cmd
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let scripts: Vec<String> = text
        .iter()
        .filter(|c| c.contains("/bin/") && !c.contains("/bin/python"))
        .map(|c| c.rsplit('/').next().unwrap_or(c).to_owned())
        .collect();
    let script = match scripts.as_slice() {
        [one] if one.starts_with("swift-") => one.clone(),
        _ => return Err(format!("Non-swift process: {}", py_repr(&text.join(" ")))),
    };
    if !RELOADABLE.contains(&script.as_str()) {
        return Err(format!("Process does not support config checks: {script}"));
    }
    if sid.as_raw() != raw {
        return Err(format!(
            "Process appears to be a {script} worker, not a manager. Did you mean {sid}?"
        ));
    }
    Ok(Manager { cmd, script, proc })
}

/// Python's `OSError` text: `[Errno 98] Address already in use`.
fn os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("[Errno {n}] {}", Errno::from_raw(n).desc()),
        None => e.to_string(),
    }
}

/// Run `swift-reload` with `args` (after the program name); the exit code.
pub fn main(prog: &str, args: &[OsString]) -> i32 {
    let args = match parse(args) {
        Parsed::Help => {
            print_out(help(prog).trim_end());
            return 0;
        }
        Parsed::Error(msg) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}{prog}: error: {msg}",
                usage(prog)
            );
            return 2;
        }
        Parsed::Run(a) => a,
    };
    let m = match validate_manager_pid(args.pid) {
        Ok(m) => m,
        Err(msg) => {
            print_err(&msg);
            return EXIT_BAD_PID;
        }
    };
    let script = &m.script;
    if args.verbose {
        print_out(&format!("Checking config for {script}"));
    }
    let _ = std::io::stdout().flush();
    let Some((program, rest)) = m.cmd.split_first() else {
        print_err("Failed to validate config");
        return EXIT_RELOAD_FAILED;
    };
    match Command::new(program)
        .args(rest)
        .arg("--test-config")
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(_) => {
            print_err("Failed to validate config");
            return EXIT_RELOAD_FAILED;
        }
        Err(e) => {
            print_err(&format!(
                "Failed to validate config: cannot run {}: {e}",
                program.to_string_lossy()
            ));
            return EXIT_RELOAD_FAILED;
        }
    }
    let pid = m.proc.pid();
    let failed = |why: &str| {
        print_err(&format!("Failed to reload {script}: {why}"));
        EXIT_RELOAD_FAILED
    };
    if !args.wait {
        if args.verbose {
            print_out("Sending USR1 signal");
        }
        if m.proc.signal(Signal::SIGUSR1).is_err() {
            return failed(&format!("process {pid} exited"));
        }
        print_out(&format!("Reloaded {script}"));
        return 0;
    }
    let listener = match Listener::bind(pid) {
        Ok(l) => l,
        Err(e) => {
            print_err(&format!(
                "Could not bind notification socket: {}",
                os_error(&e)
            ));
            return EXIT_RELOAD_FAILED;
        }
    };
    if args.verbose {
        print_out("Sending USR1 signal");
    }
    if m.proc.signal(Signal::SIGUSR1).is_err() {
        return failed(&format!("process {pid} exited"));
    }
    // An infinite (or absurd) timeout waits as long as the process lives.
    let until = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .and_then(|d| Instant::now().checked_add(d))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400));
    let verbose = args.verbose;
    let outcome = listener.wait_ready(&m.proc, until, &mut |line| {
        if verbose {
            match line {
                b"READY=1" | b"RELOADING=1" | b"STOPPING=1" => {
                    let state = String::from_utf8_lossy(&line[..line.len() - 2]);
                    print_out(&format!("Process is {state}"));
                }
                _ => print_out(&format!("Received notification {}", py_bytes_repr(line))),
            }
        }
    });
    match outcome {
        Outcome::Ready(_) => {
            print_out(&format!("Reloaded {script}"));
            0
        }
        Outcome::Failed(why) => failed(&why),
        Outcome::Exited => failed(&format!("process {pid} exited")),
        Outcome::TimedOut => {
            print_err(&format!("Timed out reloading {script}"));
            EXIT_RELOAD_TIMEOUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&v)
    }

    fn run(args: &[&str]) -> Args {
        match p(args) {
            Parsed::Run(a) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match p(args) {
            Parsed::Error(e) => e,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn arguments_as_argparse_takes_them() {
        let a = run(&["123"]);
        assert_eq!(
            a,
            Args {
                pid: 123,
                timeout: 300.0,
                wait: true,
                verbose: false
            }
        );
        let a = run(&["-v", "-t", "2.5", "7"]);
        assert!(a.verbose && a.wait);
        assert_eq!((a.pid, a.timeout), (7, 2.5));
        assert_eq!(run(&["--timeout=1", "7"]).timeout, 1.0);
        assert_eq!(run(&["--time", "1e1", "7"]).timeout, 10.0);
        assert_eq!(run(&["-t5", "7"]).timeout, 5.0);
        assert_eq!(run(&["-vt", "5", "7"]).timeout, 5.0);
        assert!(!run(&["-vw", "7"]).wait);
        assert!(!run(&["--no", "7"]).wait);
        assert!(run(&["--verb", "7"]).verbose);
        assert_eq!(run(&["-5"]).pid, -5);
        assert_eq!(run(&["--", "-5"]).pid, -5);
        assert_eq!(run(&[" +1_0 "]).pid, 10);
        assert_eq!(run(&["010"]).pid, 10);
        assert!(run(&["-t", "inf", "1"]).timeout.is_infinite());
        assert_eq!(p(&["-h"]), Parsed::Help);
        assert_eq!(p(&["1", "--he"]), Parsed::Help);
    }

    #[test]
    fn argparse_errors() {
        assert_eq!(error(&[]), "the following arguments are required: pid");
        assert_eq!(error(&["abc"]), "argument pid: invalid int value: 'abc'");
        assert_eq!(error(&["0x10"]), "argument pid: invalid int value: '0x10'");
        assert_eq!(
            error(&["-t", "x", "1"]),
            "argument -t/--timeout: invalid float value: 'x'"
        );
        assert_eq!(
            error(&["-t", "-1", "1"]),
            "argument -t/--timeout: invalid float value: '-1'"
        );
        assert_eq!(
            error(&["1", "-t"]),
            "argument -t/--timeout: expected one argument"
        );
        assert_eq!(
            error(&["-t", "1", "-w", "5"]),
            "argument -w/--no-wait: not allowed with argument -t/--timeout"
        );
        assert_eq!(
            error(&["-w", "-t", "1", "5"]),
            "argument -t/--timeout: not allowed with argument -w/--no-wait"
        );
        assert_eq!(error(&["1", "2"]), "unrecognized arguments: 2");
        assert_eq!(error(&["1", "-x"]), "unrecognized arguments: -x");
        assert_eq!(error(&["1", "--foo"]), "unrecognized arguments: --foo");
    }

    #[test]
    fn python_numbers_and_reprs() {
        assert_eq!(py_decimal("12"), Some(12));
        assert_eq!(py_decimal("1__2"), None);
        assert_eq!(py_decimal(""), None);
        assert_eq!(py_float(" 1_0.5 "), Some(10.5));
        assert_eq!(py_float("1__0"), None);
        assert_eq!(py_float("_1"), None);
        assert!(py_float("nan").is_some_and(f64::is_nan));
        assert_eq!(py_repr("/usr/bin/rsync"), "'/usr/bin/rsync'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_bytes_repr(b"MONOTONIC_USEC=1"), "b'MONOTONIC_USEC=1'");
        assert_eq!(py_bytes_repr(b"a\xff'"), "b\"a\\xff'\"");
        assert_eq!(EXIT_RELOAD_TIMEOUT, 238);
    }

    #[test]
    fn validation_of_non_servers() {
        assert_eq!(
            validate_manager_pid(0).unwrap_err(),
            "Failed to get process information for 0"
        );
        assert_eq!(
            validate_manager_pid(-5).unwrap_err(),
            "Failed to get process information for -5"
        );
        let me = std::process::id() as i64;
        assert!(
            validate_manager_pid(me)
                .unwrap_err()
                .starts_with("Non-swift process: ")
        );
    }
}
