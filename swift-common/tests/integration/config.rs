//! Tests of `swift_common::config`: Swift's own config scenarios, exact error
//! messages, a differential comparison with Python Swift over the corpus in
//! `tests/data/config/` (and over generated files), and no-panic properties.
//!
//! The differential tests run `tests/data/config/reference.py` with the Python
//! of `$SWIFT_VENV` (default `<workspace>/target/swift-venv`, made by `./test.sh`).

// Setup helpers fail loudly; clippy allows unwrap only inside #[test] fns.
#![allow(clippy::unwrap_used)]

mod json;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use json::Json;
use proptest::prelude::*;
use swift_common::config::ini::{Ini, IniOptions};
use swift_common::config::swift_conf::ConstraintValue;
use swift_common::config::values::{FallocateReserve, config_fallocate_value, non_negative_float};
use swift_common::config::{ConfigError, Constraints, PasteConfig, SwiftConf};

// ---------------------------------------------------------------------------
// Helpers

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/config")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Write `text` as `proxy-server.conf` in a fresh directory.
fn conf_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "proxy-server.conf", text);
    (dir, path)
}

fn conf_map(conf: &swift_common::config::Conf) -> BTreeMap<String, String> {
    conf.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// Swift's own scenarios (test/unit/common/test_wsgi.py)

#[test]
fn init_request_processor_conf_is_default_plus_app_section_plus_names() {
    let (dir, path) = conf_file(
        "[DEFAULT]\nswift_dir = TEMPDIR\nfallocate_reserve = 1%\n\n[pipeline:main]\n\
         pipeline = proxy-server\n\n[app:proxy-server]\nuse = egg:swift#proxy\nconn_timeout = 0.2\n",
    );
    let cfg = PasteConfig::load(&path).unwrap();
    let conf = cfg.app_config("proxy-server", &[]).unwrap();
    let expected = map(&[
        ("__file__", &s(&path)),
        ("here", &s(dir.path())),
        ("conn_timeout", "0.2"),
        ("fallocate_reserve", "1%"),
        ("swift_dir", "TEMPDIR"),
        ("__name__", "proxy-server"),
    ]);
    assert_eq!(conf_map(&conf), expected);
    assert_eq!(conf.section(), "app:proxy-server");
    assert_eq!(conf.source(), path);
}

#[test]
fn default_wins_over_section_and_keys_are_case_sensitive() {
    let (_dir, path) = conf_file(
        "[DEFAULT]\nCONN_timeout = 10\nclient_timeout = 1\n[app:main]\nuse = egg:swift#object\n\
         conn_timeout = 5\nclient_timeout = 2\nCLIENT_TIMEOUT = 3\n",
    );
    let conf = PasteConfig::load(&path)
        .unwrap()
        .app_config("main", &[])
        .unwrap();
    assert_eq!(conf.get("client_timeout"), Some("1"));
    assert_eq!(conf.get("conn_timeout"), Some("5"));
    assert_eq!(conf.get("CONN_timeout"), Some("10"));
    assert_eq!(conf.get("CLIENT_TIMEOUT"), Some("3"));
}

#[test]
fn global_overrides_beat_default_and_plain_keys_but_not_set() {
    let cases = [
        (
            "[DEFAULT]\nlog_name = swift\n[app:main]\nuse = egg:swift#object\nlog_name = swift-main\n",
            "swift",
            "custom",
        ),
        (
            "[DEFAULT]\n[app:main]\nuse = egg:swift#object\nlog_name = swift-main\n",
            "swift-main",
            "custom",
        ),
        (
            "[DEFAULT]\nlog_name = swift\n[app:main]\nuse = egg:swift#object\nset log_name = swift-main\n",
            "swift-main",
            "swift-main",
        ),
    ];
    for (text, without, with) in cases {
        let (_dir, path) = conf_file(text);
        let cfg = PasteConfig::load(&path).unwrap();
        let plain = cfg.pipeline("main", &[]).unwrap();
        assert_eq!(plain.app.conf.get("log_name"), Some(without), "{text}");
        let custom = cfg.pipeline("main", &[("log_name", "custom")]).unwrap();
        assert_eq!(custom.app.conf.get("log_name"), Some(with), "{text}");
    }
}

#[test]
fn load_app_config_scenarios_resolve_the_final_app_through_the_pipeline() {
    let head = "[pipeline:main]\npipeline = proxy-logging proxy-server\n\
                [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n";
    let (_d, path) = conf_file(&format!(
        "[DEFAULT]\ndflt_option = dflt-value\n{head}[app:proxy-server]\nuse = egg:swift#proxy\n\
         proxy_option = proxy-value\ndflt_option = proxy-dflt-value\n"
    ));
    let p = PasteConfig::load(&path)
        .unwrap()
        .pipeline("main", &[])
        .unwrap();
    assert_eq!(p.app.conf.get("proxy_option"), Some("proxy-value"));
    assert_eq!(p.app.conf.get("dflt_option"), Some("dflt-value"));
    assert_eq!(p.filters.len(), 1);
    assert_eq!(p.filters[0].name, "proxy-logging");
    assert_eq!(p.filters[0].entry_point, "proxy_logging");

    let (_d, path) = conf_file(&format!(
        "[DEFAULT]\ndflt_option = dflt-value\n{head}[app:proxy-server]\nuse = egg:swift#proxy\n\
         proxy_option = proxy-value\nset dflt_option = proxy-dflt-value\n"
    ));
    let p = PasteConfig::load(&path)
        .unwrap()
        .pipeline("main", &[])
        .unwrap();
    assert_eq!(p.app.conf.get("dflt_option"), Some("proxy-dflt-value"));

    // No pipeline, or no app section: an error (Swift's load_app_config turns it into {}).
    let (_d, path) = conf_file("[app:proxy-server]\nuse = egg:swift#proxy\n");
    assert!(
        PasteConfig::load(&path)
            .unwrap()
            .pipeline("main", &[])
            .is_err()
    );
    let (_d, path) = conf_file(head);
    assert!(
        PasteConfig::load(&path)
            .unwrap()
            .pipeline("main", &[])
            .is_err()
    );
}

#[test]
fn conf_dir_sets_here_and_file_to_the_directory_and_merges_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("proxy-server.conf.d");
    write(
        &dir,
        "pipeline.conf",
        "[pipeline:main]\npipeline = catch_errors proxy-server\n",
    );
    write(
        &dir,
        "app.conf",
        "[app:proxy-server]\nuse = egg:swift#proxy\nconn_timeout = 0.2\n",
    );
    write(
        &dir,
        "catch-errors.conf",
        "[filter:catch_errors]\nuse = egg:swift#catch_errors\n",
    );
    write(
        &dir,
        "swift.conf",
        &format!("[DEFAULT]\nswift_dir = {}\n", root.path().display()),
    );
    let cfg = PasteConfig::load(&dir).unwrap();
    assert!(cfg.is_dir());
    assert_eq!(cfg.files().len(), 4);
    let conf = cfg.app_config("proxy-server", &[]).unwrap();
    let expected = map(&[
        ("__file__", &s(&dir)),
        ("here", &s(&dir)),
        ("conn_timeout", "0.2"),
        ("swift_dir", &s(root.path())),
        ("__name__", "proxy-server"),
    ]);
    assert_eq!(conf_map(&conf), expected);
    let p = cfg.pipeline("main", &[]).unwrap();
    assert_eq!(p.filters[0].entry_point, "catch_errors");
    assert_eq!(p.app.entry_point, "proxy");
}

#[test]
fn conf_dir_ignores_hidden_and_non_conf_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("server.conf.d");
    write(
        &dir,
        "01.conf",
        "[app:main]\nuse = egg:swift#proxy\nport = 8080\n",
    );
    write(
        &dir,
        ".01.conf.swp",
        "[app:main]\nuse = egg:swift#proxy\nport = 8081\n",
    );
    write(&dir, ".02.conf", "[app:main]\nport = 8082\n");
    write(&dir, "03.conf.bak", "[app:main]\nport = 8083\n");
    let conf = PasteConfig::load(&dir)
        .unwrap()
        .app_config("main", &[])
        .unwrap();
    let expected = map(&[
        ("__file__", &s(&dir)),
        ("here", &s(&dir)),
        ("port", "8080"),
        ("__name__", "main"),
    ]);
    assert_eq!(conf_map(&conf), expected);
}

#[test]
fn conf_dir_later_files_override_earlier_ones_in_sorted_order() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("x.conf.d");
    write(
        &dir,
        "b.conf",
        "[app:main]\nuse = egg:swift#proxy\nk = from-b\n",
    );
    write(&dir, "a.conf", "[app:main]\nk = from-a\nonly_a = 1\n");
    write(&dir, "c.conf", "[DEFAULT]\nd = from-c\n");
    let conf = PasteConfig::load(&dir)
        .unwrap()
        .app_config("main", &[])
        .unwrap();
    assert_eq!(conf.get("k"), Some("from-b"));
    assert_eq!(conf.get("only_a"), Some("1"));
    assert_eq!(conf.get("d"), Some("from-c"));
}

#[test]
fn conf_dir_duplicate_within_one_file_is_an_error_naming_that_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("x.conf.d");
    write(
        &dir,
        "1.conf",
        "[app:main]\nuse = egg:swift#proxy\nconn_timeout = 3\n",
    );
    let bad = write(
        &dir,
        "2.conf",
        "[app:main]\nconn_timeout = 3\nconn_timeout = 4\n",
    );
    let err = PasteConfig::load(&dir).unwrap_err();
    match &err {
        ConfigError::Syntax { path, line, .. } => {
            assert_eq!(path, &bad);
            assert_eq!(*line, 3);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("'conn_timeout'") && text.contains("already exists"),
        "{text}"
    );
}

#[test]
fn conf_dir_skips_entries_that_cannot_be_opened_like_python() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("x.conf.d");
    write(&dir, "a.conf", "[app:main]\nuse = egg:swift#proxy\n");
    std::fs::create_dir_all(dir.join("sub.conf")).unwrap();
    let cfg = PasteConfig::load(&dir).unwrap();
    assert_eq!(cfg.skipped_files(), [dir.join("sub.conf")]);
    assert!(cfg.app_config("main", &[]).is_ok());
}

// ---------------------------------------------------------------------------
// Error messages: one line, naming the file and the line/section/key

#[test]
fn duplicate_option_error_names_file_both_lines_section_and_key() {
    let (_d, path) =
        conf_file("[app:main]\nuse = egg:swift#object\nclient_timeout = 2\n\nclient_timeout = 3\n");
    let err = PasteConfig::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 5: option 'client_timeout' in section [app:main] already exists (first at \
             line 3); an option may appear only once per section in a file",
            path.display()
        )
    );
}

#[test]
fn duplicate_section_error_names_both_lines() {
    let (_d, path) = conf_file("[a]\nx = 1\n[b]\n[a]\n");
    let err = PasteConfig::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 4: section [a] already exists (first at line 1); a section may appear only \
             once per file",
            path.display()
        )
    );
}

#[test]
fn missing_section_header_error_shows_the_line_and_explains_a_bom() {
    let (_d, path) = conf_file("\n# c\nkey = value\n");
    let err = PasteConfig::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 3: no [section] header before 'key = value'; every setting must be inside a section",
            path.display()
        )
    );
    let (_d, path) = conf_file("\u{feff}[DEFAULT]\n");
    let err = PasteConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && err.contains("byte order mark"),
        "{err}"
    );
}

#[test]
fn parse_error_names_the_first_bad_line_and_counts_the_others() {
    let (_d, path) = conf_file("[s]\nok = 1\nbad one\nok2 = 2\nbad two\n");
    let err = PasteConfig::load(&path).unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("'bad one'") && text.contains("1 more such lines: 5"),
        "{text}"
    );
}

#[test]
fn bad_interpolation_error_names_file_line_section_key_and_value() {
    let (_d, path) = conf_file("[app:main]\nuse = egg:swift#proxy\n\nlog_dir = %(nope)s/log\n");
    let err = PasteConfig::load(&path)
        .unwrap()
        .app_config("main", &[])
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Interpolation { line: Some(4), section, key, .. }
            if section == "app:main" && key == "log_dir"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: line 4: [app:main] log_dir = \"%(nope)s/log\": ",
            path.display()
        )),
        "{text}"
    );
    assert!(text.contains("'nope'"), "{text}");

    for (value, needle) in [
        ("%(x)d", "bad interpolation variable reference"),
        ("50% of %(here)s", "'%' must be followed by '%' or '('"),
    ] {
        let (_d, path) = conf_file(&format!("[app:main]\nuse = egg:swift#proxy\nv = {value}\n"));
        let err = PasteConfig::load(&path)
            .unwrap()
            .app_config("main", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(needle) && err.contains(": line 3: [app:main] v = "),
            "{err}"
        );
    }
}

#[test]
fn one_percent_is_raw_but_breaks_once_referenced() {
    let (_d, path) = conf_file(
        "[DEFAULT]\nfallocate_reserve = 1%\n[app:main]\nuse = egg:swift#proxy\nx = 50%%\n",
    );
    let conf = PasteConfig::load(&path)
        .unwrap()
        .app_config("main", &[])
        .unwrap();
    assert_eq!(conf.get("fallocate_reserve"), Some("1%"));
    assert_eq!(conf.get("x"), Some("50%%"));
    let (_d, path) = conf_file("[DEFAULT]\nr = 1%\n[app:main]\nuse = egg:swift#proxy\nx = %(r)s\n");
    assert!(
        PasteConfig::load(&path)
            .unwrap()
            .app_config("main", &[])
            .is_err()
    );
}

#[test]
fn value_errors_name_the_file_and_line_the_value_came_from() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("proxy-server.conf.d");
    let dflt = write(&dir, "00.conf", "[DEFAULT]\n\nworkers = many\n");
    let app = write(
        &dir,
        "10.conf",
        "[app:proxy-server]\nuse = egg:swift#proxy\nset log_name = x\nfallocate_reserve = lots\n",
    );
    let conf = PasteConfig::load(&dir)
        .unwrap()
        .app_config("proxy-server", &[])
        .unwrap();
    assert_eq!(conf.origin("workers"), Some((dflt.as_path(), 3)));
    assert_eq!(conf.origin("log_name"), Some((app.as_path(), 3)));
    assert_eq!(conf.origin("here"), None);
    let err = conf.get_auto_int("workers", 2).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 3: [app:proxy-server] workers = \"many\": Config option must be an integer \
             or the string \"auto\", not \"many\".",
            dflt.display()
        )
    );
    let err = conf
        .get_with("fallocate_reserve", "1%", config_fallocate_value)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 4: [app:proxy-server] fallocate_reserve = \"lots\": Error: lots is an \
             invalid value for fallocate_reserve.",
            app.display()
        )
    );
    // An unset key falls back to the default, and an error then shows the default.
    let got = conf.get_with("disable_fallocate", "no", |v| Ok::<_, String>(v.to_owned()));
    assert_eq!(got.unwrap(), "no");
    let err = conf
        .get_with("stale_worker_timeout", "-1", non_negative_float)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stale_worker_timeout = \"-1\": Value must be a non-negative float"),
        "{err}"
    );
    assert!(
        err.starts_with(&format!("{}: [app:proxy-server]", dir.display())),
        "{err}"
    );
}

#[test]
fn no_section_error_uses_paste_wording_and_names_the_file() {
    let (_d, path) = conf_file("[app:proxy-server]\nuse = egg:swift#proxy\n");
    let cfg = PasteConfig::load(&path).unwrap();
    assert_eq!(
        cfg.app_config("main", &[]).unwrap_err().to_string(),
        format!(
            "No section 'main' (prefixed by 'app' or 'application' or 'composite' or 'composit' \
             or 'pipeline' or 'filter-app') found in config {}",
            path.display()
        )
    );
    let (_d, path) =
        conf_file("[pipeline:main]\npipeline = nope app\n[app:app]\nuse = egg:swift#proxy\n");
    let err = PasteConfig::load(&path)
        .unwrap()
        .pipeline("main", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "No section 'nope' (prefixed by 'filter') found in config {}",
            path.display()
        )
    );
}

#[test]
fn pipeline_errors_use_paste_wording() {
    let (_d, path) =
        conf_file("[pipeline:main]\npipeline = app\nother = 1\n[app:app]\nuse = egg:swift#proxy\n");
    let err = PasteConfig::load(&path)
        .unwrap()
        .pipeline("main", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "The [pipeline:main] pipeline section in {} has extra (disallowed) settings: other",
            path.display()
        )
    );
    let (_d, path) = conf_file("[pipeline:main]\n[app:app]\nuse = egg:swift#proxy\n");
    let err = PasteConfig::load(&path)
        .unwrap()
        .pipeline("main", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "The [pipeline:main] section in {} is missing a 'pipeline' setting",
            path.display()
        )
    );
    let (_d, path) = conf_file("[pipeline:main]\npipeline =\n");
    let err = PasteConfig::load(&path)
        .unwrap()
        .pipeline("main", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty 'pipeline' setting"), "{err}");
}

#[test]
fn missing_file_is_one_read_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.conf");
    let err = PasteConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("Unable to read config from {}: ", path.display())),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn relative_paths_are_made_absolute_and_normalized() {
    let cfg = PasteConfig::parse(
        "[app:main]\nuse = egg:swift\n",
        Path::new("etc/../etc/./p.conf"),
    )
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(cfg.path(), cwd.join("etc/p.conf"));
    let conf = cfg.app_config("main", &[]).unwrap();
    assert_eq!(conf.get("here"), Some(s(&cwd.join("etc")).as_str()));
}

#[test]
fn unsupported_paste_features_are_refused_naming_file_and_section() {
    let dir = data_dir().join("paste_unsupported");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 7);
    for path in names {
        let cfg = PasteConfig::load(&path).unwrap();
        let err = cfg.pipeline("main", &[]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Paste { .. }), "{text}");
        assert!(text.contains("not supported"), "{}: {text}", path.display());
        assert!(text.contains(&s(&path)), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}

// ---------------------------------------------------------------------------
// swift.conf

#[test]
fn swift_conf_missing_file_is_one_line_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = SwiftConf::load(dir.path()).unwrap_err().to_string();
    assert!(err.starts_with(&format!(
        "Unable to read config from {}/swift.conf: ",
        dir.path().display()
    )));
    assert!(!err.contains('\n'));
}

#[test]
fn swift_conf_without_hash_settings_gives_swifts_message() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "swift.conf", "[swift-hash]\n# nothing\n");
    let err = SwiftConf::load(dir.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "Error: [swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix are missing from {}/swift.conf",
            dir.path().display()
        )
    );
}

#[test]
fn swift_conf_constraints_feed_the_http_limits_and_info() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "swift.conf",
        "[swift-hash]\nswift_hash_path_suffix = s\n[swift-constraints]\nmax_request_line = 10240\nmax_header_size = 16384\n",
    );
    let conf = SwiftConf::load(dir.path()).unwrap();
    assert_eq!(conf.constraints.max_request_line, 10240);
    assert_eq!(conf.constraints.max_header_size, 16384);
    assert_eq!(conf.hash_path_suffix, b"s");
    let info = conf.constraints.info();
    let names: Vec<&str> = info.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "max_file_size",
            "max_meta_name_length",
            "max_meta_value_length",
            "max_meta_count",
            "max_meta_overall_size",
            "max_header_size",
            "max_request_line",
            "max_object_name_length",
            "container_listing_limit",
            "account_listing_limit",
            "max_account_name_length",
            "max_container_name_length",
            "valid_api_versions",
            "extra_header_count",
            "auto_create_account_prefix",
        ]
    );
    assert_eq!(info[6].1, ConstraintValue::Int(10240));
    assert_eq!(Constraints::default().max_header_size, 8192);
}

#[test]
fn negative_http_limit_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "swift.conf",
        "[swift-hash]\nswift_hash_path_suffix = s\n[swift-constraints]\nmax_header_size = -1\n",
    );
    let err = SwiftConf::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("[swift-constraints] max_header_size = \"-1\""),
        "{err}"
    );
}

#[test]
fn fallocate_reserve_default_parses_as_one_percent() {
    assert_eq!(
        config_fallocate_value("1%"),
        Ok(FallocateReserve::Percent(1.0))
    );
}

// ---------------------------------------------------------------------------
// Differential tests against Python Swift

/// The Python of the venv where Swift is installed.
fn python() -> PathBuf {
    let venv = std::env::var_os("SWIFT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/swift-venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run ./test.sh once (it creates the venv with `pip install swift==2.38.3`), \
         or point SWIFT_VENV at a venv where Python Swift is installed",
        py.display()
    );
    py
}

/// Run the reference script over `cases`; one result per case.
fn reference(cases: &[Json]) -> Vec<Json> {
    let mut input = String::new();
    Json::Array(cases.to_vec()).write(&mut input);
    let mut child = Command::new(python())
        .arg(data_dir().join("reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python reference");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = Json::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let results = parsed.as_array().to_vec();
    assert_eq!(results.len(), cases.len());
    results
}

fn jstr(v: &str) -> Json {
    Json::String(v.to_owned())
}

fn jobj(items: Vec<(&str, Json)>) -> Json {
    Json::Object(items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn jmap(m: &BTreeMap<String, String>) -> Json {
    Json::Object(m.iter().map(|(k, v)| (k.clone(), jstr(v))).collect())
}

#[derive(Clone, Debug)]
struct Case {
    mode: &'static str,
    path: PathBuf,
    name: String,
    globals: Vec<(String, String)>,
}

impl Case {
    fn new(mode: &'static str, path: &Path, name: &str, globals: &[(&str, &str)]) -> Self {
        Case {
            mode,
            path: path.to_path_buf(),
            name: name.to_owned(),
            globals: globals
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn to_json(&self) -> Json {
        let globals = Json::Object(
            self.globals
                .iter()
                .map(|(k, v)| (k.clone(), jstr(v)))
                .collect(),
        );
        jobj(vec![
            ("mode", jstr(self.mode)),
            ("path", jstr(&s(&self.path))),
            ("name", jstr(&self.name)),
            ("globals", globals),
        ])
    }

    fn describe(&self) -> String {
        format!(
            "{} {} name={:?} globals={:?}",
            self.mode,
            self.path.display(),
            self.name,
            self.globals
        )
    }

    /// What the Rust implementation says, in the reference script's shape.
    fn run(&self) -> Result<Json, ConfigError> {
        let globals: Vec<(&str, &str)> = self
            .globals
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match self.mode {
            "ini" => ini_report(PasteConfig::load(&self.path)?.ini()),
            "appconfig" => {
                let conf = PasteConfig::load(&self.path)?.app_config(&self.name, &globals)?;
                Ok(jmap(&conf_map(&conf)))
            }
            "pipeline" => {
                let p = PasteConfig::load(&self.path)?.pipeline(&self.name, &globals)?;
                let component = |c: &swift_common::config::Component| {
                    jobj(vec![
                        ("name", jstr(&c.name)),
                        ("dist", jstr(&c.dist)),
                        ("entry", jstr(&c.entry_point)),
                        ("conf", jmap(&conf_map(&c.conf))),
                    ])
                };
                Ok(jobj(vec![
                    (
                        "filters",
                        Json::Array(p.filters.iter().map(component).collect()),
                    ),
                    ("app", component(&p.app)),
                    ("global_conf", jmap(&conf_map(&p.global_conf))),
                ]))
            }
            "swift_conf" => {
                let conf = SwiftConf::load_file(&self.path)?;
                let constraints = conf
                    .constraints
                    .info()
                    .into_iter()
                    .map(|(name, v)| {
                        let v = match v {
                            ConstraintValue::Int(i) => Json::Number(i as f64),
                            ConstraintValue::Str(s) => jstr(&s),
                            ConstraintValue::List(l) => {
                                Json::Array(l.iter().map(|s| jstr(s)).collect())
                            }
                        };
                        (name.to_owned(), v)
                    })
                    .collect();
                let hex = |b: &[u8]| {
                    b.iter().fold(String::new(), |mut acc, x| {
                        let _ = write!(acc, "{x:02x}");
                        acc
                    })
                };
                Ok(jobj(vec![
                    ("constraints", Json::Object(constraints)),
                    ("prefix", jstr(&hex(&conf.hash_path_prefix))),
                    ("suffix", jstr(&hex(&conf.hash_path_suffix))),
                ]))
            }
            other => panic!("unknown mode {other}"),
        }
    }
}

fn ini_value(ini: &Ini, section: &str, key: &str) -> Json {
    match ini.get(section, key) {
        Ok(Some(v)) => jobj(vec![("v", jstr(&v))]),
        Ok(None) => jobj(vec![("missing", Json::Null)]),
        Err(_) => jobj(vec![("e", jstr("error"))]),
    }
}

fn ini_report(ini: &Ini) -> Result<Json, ConfigError> {
    let defaults = ini
        .defaults()
        .keys()
        .map(|k| Json::Array(vec![jstr(k), ini_value(ini, "DEFAULT", k)]))
        .collect();
    let sections = ini
        .sections()
        .map(|sec| {
            let opts = ini.option_names(sec.name()).unwrap_or_default();
            let items = opts
                .iter()
                .map(|k| Json::Array(vec![jstr(k), ini_value(ini, sec.name(), k)]))
                .collect();
            Json::Array(vec![jstr(sec.name()), Json::Array(items)])
        })
        .collect();
    Ok(jobj(vec![
        ("defaults", Json::Array(defaults)),
        ("sections", Json::Array(sections)),
    ]))
}

/// Objects compare as maps; a value error is just "error" (class names differ).
fn normalize(v: &Json) -> Json {
    match v {
        Json::Object(items) => {
            let mut items: Vec<(String, Json)> = items
                .iter()
                .map(|(k, v)| {
                    if k == "e" {
                        (k.clone(), jstr("error"))
                    } else {
                        (k.clone(), normalize(v))
                    }
                })
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(items)
        }
        Json::Array(items) => Json::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Swift's entry points by kind, as Python reports them.
struct EntryPoints {
    app: Vec<String>,
    filter: Vec<String>,
}

impl EntryPoints {
    /// Whether the Rust resolution of `case` names an entry point Swift lacks
    /// (resolving it is the caller's job, so the config layer accepts it).
    fn has_unknown(&self, case: &Case) -> bool {
        let globals: Vec<(&str, &str)> = case
            .globals
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let Ok(p) = PasteConfig::load(&case.path).and_then(|c| c.pipeline(&case.name, &globals))
        else {
            return false;
        };
        let unknown = |c: &swift_common::config::Component, known: &[String]| {
            c.dist != "swift" || !known.contains(&c.entry_point)
        };
        unknown(&p.app, &self.app) || p.filters.iter().any(|f| unknown(f, &self.filter))
    }
}

/// Check one Rust outcome against Python's; `Err` describes the mismatch.
fn check(
    case: &Case,
    py: &Json,
    rs: &Result<Json, ConfigError>,
    eps: &EntryPoints,
) -> Result<(), String> {
    let desc = case.describe();
    if let Some(ok) = py.get("ok") {
        return match rs {
            Ok(mine) if normalize(mine) == normalize(ok) => Ok(()),
            Ok(mine) => {
                let (mut a, mut b) = (String::new(), String::new());
                normalize(ok).write(&mut a);
                normalize(mine).write(&mut b);
                Err(format!("{desc}\n  python: {a}\n  rust:   {b}"))
            }
            Err(e) => Err(format!("{desc}\n  python succeeded, rust failed: {e}")),
        };
    }
    let class = py.get("error").and_then(Json::as_str).unwrap_or("?");
    let message = py.get("message").and_then(Json::as_str).unwrap_or("");
    // Python loads entry points as it resolves; the config layer leaves that
    // to its caller. Then either both fail, or Rust resolved an entry point
    // Swift does not have.
    if class == "LookupError"
        && message.contains("not found in egg")
        && (rs.is_err() || eps.has_unknown(case))
    {
        return Ok(());
    }
    let Err(err) = rs else {
        return Err(format!(
            "{desc}\n  python failed ({class}: {message}), rust succeeded"
        ));
    };
    let kind_ok = match class {
        "MissingSectionHeaderError"
        | "DuplicateSectionError"
        | "DuplicateOptionError"
        | "ParsingError"
        | "UnicodeDecodeError" => matches!(err, ConfigError::Syntax { .. }),
        c if c.starts_with("Interpolation") => matches!(err, ConfigError::Interpolation { .. }),
        "LookupError" | "KeyError" | "IndexError" => matches!(err, ConfigError::Paste { .. }),
        "InvalidHashPathConfigError" => matches!(err, ConfigError::MissingHashPath { .. }),
        "ValueError" => matches!(err, ConfigError::Value { .. }),
        _ => true,
    };
    if !kind_ok {
        return Err(format!(
            "{desc}\n  python {class}: {message}\n  rust: {err:?}"
        ));
    }
    if let Some(line) = py.get("line").and_then(Json::as_i64) {
        match err {
            ConfigError::Syntax { line: mine, .. } if *mine as i64 == line => {}
            _ => {
                return Err(format!(
                    "{desc}\n  python {class} at line {line}: {message}\n  rust: {err}"
                ));
            }
        }
    }
    let exact = message.starts_with("No section ")
        || message.starts_with("Ambiguous section names")
        || (message.starts_with("The [") && case.path.is_file());
    if exact && err.to_string() != message {
        return Err(format!("{desc}\n  python: {message}\n  rust:   {err}"));
    }
    Ok(())
}

/// Run every case in Rust and in Python, and report all mismatches at once.
fn differential(cases: &[Case]) {
    let mut inputs: Vec<Json> = cases.iter().map(Case::to_json).collect();
    inputs.push(jobj(vec![("mode", jstr("entry_points"))]));
    let mut py = reference(&inputs);
    let names = |kind: &str| -> Vec<String> {
        let eps = py
            .last()
            .and_then(|r| r.get("ok"))
            .and_then(|o| o.get(kind));
        eps.map(|a| {
            a.as_array()
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    };
    let eps = EntryPoints {
        app: names("app"),
        filter: names("filter"),
    };
    assert!(
        eps.app.contains(&"proxy".to_owned()) && eps.filter.contains(&"catch_errors".to_owned())
    );
    py.pop();
    let failures: Vec<String> = cases
        .iter()
        .zip(&py)
        .filter_map(|(case, py)| check(case, py, &case.run(), &eps).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Python Swift:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn corpus(sub: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

const GLOBALS: &[(&str, &str)] = &[("log_name", "custom"), ("extra_global", "%(here)s/g")];

/// The app names worth asking for in a paste config.
fn app_names(path: &Path) -> Vec<String> {
    let mut names = vec!["main".to_owned(), "nope".to_owned()];
    if let Ok(cfg) = PasteConfig::load(path) {
        for sec in cfg.ini().section_names() {
            if let Some((prefix, name)) = sec.split_once(':') {
                let name = name.trim().to_owned();
                if ["app", "application", "pipeline", "composite", "filter-app"].contains(&prefix)
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[test]
fn ini_corpus_matches_python_configparser() {
    let mut cases = Vec::new();
    for sub in ["ini", "paste", "paste_unsupported", "swift_conf"] {
        for path in corpus(sub) {
            cases.push(Case::new("ini", &path, "", &[]));
        }
    }
    assert!(cases.len() > 60);
    differential(&cases);
}

#[test]
fn paste_corpus_appconfig_matches_swift_appconfig() {
    let mut cases = Vec::new();
    for path in corpus("paste") {
        for name in app_names(&path) {
            cases.push(Case::new("appconfig", &path, &name, &[]));
            cases.push(Case::new("appconfig", &path, &name, GLOBALS));
        }
    }
    differential(&cases);
}

#[test]
fn paste_corpus_pipelines_match_swift_loadcontext() {
    let mut cases = Vec::new();
    for path in corpus("paste") {
        cases.push(Case::new("pipeline", &path, "main", &[]));
        cases.push(Case::new("pipeline", &path, "main", GLOBALS));
    }
    differential(&cases);
}

#[test]
fn swift_conf_corpus_matches_swift() {
    let cases: Vec<Case> = corpus("swift_conf")
        .iter()
        .map(|p| Case::new("swift_conf", p, "", &[]))
        .collect();
    assert!(cases.len() >= 10);
    differential(&cases);
}

#[test]
fn conf_dir_with_unopenable_entries_matches_python() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("x.conf.d");
    write(&dir, "a.conf", "[app:main]\nuse = egg:swift#proxy\nk = a\n");
    write(&dir, "c.conf", "[app:main]\nk = c\n");
    std::fs::create_dir_all(dir.join("b.conf")).unwrap();
    let empty = root.path().join("empty.conf.d");
    std::fs::create_dir_all(&empty).unwrap();
    let weird = root.path().join("50% (x) dir");
    write(
        &weird,
        "p.conf",
        "[app:main]\nuse = egg:swift#proxy\nwhere = %(here)s\n",
    );
    differential(&[
        Case::new("ini", &dir, "", &[]),
        Case::new("appconfig", &dir, "main", &[]),
        Case::new("appconfig", &empty, "main", &[]),
        Case::new("appconfig", &weird.join("p.conf"), "main", &[]),
    ]);
}

/// Swift's value parsers, with Python's `int()`/`float()` underneath.
#[test]
fn value_parsers_match_swift() {
    use swift_common::config::values::*;
    let values = [
        "",
        " ",
        "0",
        "1",
        "-1",
        "+5",
        " 7 ",
        "1_000",
        "1__0",
        "_1",
        "1_",
        "١٢",
        "٣.٥",
        "１２",
        "1.5",
        "-0",
        "-0.0",
        "1e3",
        "1E-5",
        ".5",
        "5.",
        ".",
        "e5",
        "1_0.5_5",
        "1.5e1_0",
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "-nan",
        "NaN",
        "1e400",
        "1e-400",
        "1%",
        "50%",
        "-5%",
        "%",
        "1.5%",
        " 2 %",
        "nan%",
        "auto",
        "AUTO",
        " auto",
        "true",
        "True",
        "yes",
        "ON",
        "t",
        "Y",
        "no",
        "off",
        "false",
        "1 ",
        "0x10",
        "9223372036854775807",
        "-9223372036854775808",
        "100",
        "100.0001",
        "101",
        "v1, v1.0,,  , v2",
        "\u{a0}1\u{a0}",
        "1\u{2003}",
        "\u{1c}5\u{1c}",
        "0.1",
        "1e16",
        "123.456e-7",
    ];
    let case = jobj(vec![
        ("mode", jstr("values")),
        (
            "values",
            Json::Array(values.iter().map(|v| jstr(v)).collect()),
        ),
    ]);
    let py = reference(&[case]);
    let rows = py[0].get("ok").expect("values ran").as_array();
    assert_eq!(rows.len(), values.len() * 11);
    let int = |r: Option<i64>| r.map(|i| Json::Number(i as f64)).ok_or_else(String::new);
    let float = |r: Result<f64, String>| r.map(|f| jstr(&python_float_repr(f)));
    let mut failures = Vec::new();
    for row in rows {
        let [name, value, outcome] = row.as_array() else {
            panic!("bad row {row:?}");
        };
        let (name, value) = (name.as_str().unwrap(), value.as_str().unwrap());
        let mine: Result<Json, String> = match name {
            "int" => int(python_int(value)),
            "float" => float(python_float(value).ok_or_else(String::new)),
            "config_true_value" => Ok(Json::Bool(config_true_value(value))),
            "config_auto_int_value" => {
                config_auto_int_value(Some(value), 7).map(|i| Json::Number(i as f64))
            }
            "non_negative_float" => float(non_negative_float(value)),
            "non_negative_int" => non_negative_int(value).map(|i| Json::Number(i as f64)),
            "config_positive_int_value" => {
                config_positive_int_value(value).map(|i| Json::Number(i as f64))
            }
            "config_positive_float_value" => float(config_positive_float_value(value)),
            "config_percent_value" => float(config_percent_value(value)),
            "config_fallocate_value" => config_fallocate_value(value).map(|r| match r {
                FallocateReserve::Bytes(b) => {
                    Json::Array(vec![jstr(&b.to_string()), Json::Bool(false)])
                }
                FallocateReserve::Percent(p) => {
                    Json::Array(vec![jstr(&python_float_repr(p)), Json::Bool(true)])
                }
            }),
            "list_from_csv" => Ok(Json::Array(
                list_from_csv(value).iter().map(|s| jstr(s)).collect(),
            )),
            other => panic!("unknown parser {other}"),
        };
        // int() and float() are Python's own: only their success is compared.
        let python_builtin = matches!(name, "int" | "float");
        let same = match (outcome.get("ok"), outcome.get("error"), &mine) {
            (Some(ok), _, Ok(m)) => ok == m,
            (_, Some(_), Err(_)) if python_builtin => true,
            (_, Some(err), Err(m)) => err.as_str() == Some(m.as_str()),
            _ => false,
        };
        if !same {
            failures.push(format!(
                "{name}({value:?}): python {outcome:?}, rust {mine:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A small deterministic generator of near-INI files (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One file: a few sections (rarely repeated), each with a few lines
    /// (keys rarely repeated), so that most files parse and many resolve.
    fn file(&mut self) -> String {
        const SECTIONS: &[&str] = &[
            "[DEFAULT]",
            "[app:main]",
            "[app:proxy-server]",
            "[pipeline:main]",
            "[filter:f1]",
            "[filter:f2]",
            "[App:main]",
            "[application:main]",
            "[app: main ]",
            "[s]",
            "[]",
            "[x] tail",
            // The common shapes again, to weigh the draw towards configs that resolve.
            "[DEFAULT]",
            "[app:main]",
            "[app:proxy-server]",
            "[pipeline:main]",
            "[filter:f1]",
            "[filter:f2]",
            "[app:proxy-server]",
            "[pipeline:main]",
        ];
        const KEYS: &[&str] = &[
            "a",
            "A",
            "b",
            "k",
            "K",
            "log_name",
            "set a",
            "set b",
            "set log_name",
            "get g",
            "get a",
            "key with space",
            "here",
            "__file__",
            "use",
            "pipeline",
            "paste.app_factory",
        ];
        const VALUES: &[&str] = &[
            "1",
            "",
            "x y",
            "1%",
            "50%%",
            "%(a)s",
            "%(A)s",
            "%(b)s/x",
            "%(here)s",
            "%(__file__)s",
            "%(nope)s",
            "%(a)d",
            "5% %(a)s",
            "%%(a)s",
            "%",
            "http://h:1/p",
            "=",
            "a = b",
            "%(log_name)s",
            "%(extra_global)s",
            "swift",
            "a",
            "log_name",
            "%(k)s%(k)s",
            "1",
            "x y",
            "%(here)s",
            "1%",
            "50%%",
            "%(log_name)s",
            "2",
            "3",
            "swift",
            "%(b)s/x",
        ];
        const PIPELINES: &[&str] = &[
            "f1 proxy-server",
            "f1 f2 proxy-server",
            "proxy-server",
            "f2 main",
            "",
            "nope proxy-server",
            "egg:swift#catch_errors main",
            "f1\n  proxy-server",
        ];
        let mut out = String::new();
        if self.chance(3) {
            out.push_str(self.pick(&["k = v", "# c", "\u{feff}[DEFAULT]"]));
            out.push('\n');
        }
        let mut used: Vec<&str> = Vec::new();
        for _ in 0..1 + self.next() % 5 {
            let mut header = self.pick(SECTIONS);
            if used.contains(&header) && header != "[DEFAULT]" && !self.chance(5) {
                header = self.pick(SECTIONS);
                if used.contains(&header) && header != "[DEFAULT]" {
                    continue;
                }
            }
            used.push(header);
            out.push_str(header);
            out.push_str(self.pick(&["\n", "\n", "\n", "\r\n", "\r"]));
            let mut keys: Vec<&str> = Vec::new();
            if header.starts_with("[app") && self.chance(85) {
                out.push_str(if self.chance(90) {
                    "use = egg:swift#proxy\n"
                } else {
                    "use = main\n"
                });
                keys.push("use");
            } else if header.starts_with("[filter") && self.chance(85) {
                out.push_str(if self.chance(60) {
                    "use = egg:swift#catch_errors\n"
                } else {
                    "use = f1\n"
                });
                keys.push("use");
            } else if header.starts_with("[pipeline") && self.chance(85) {
                out.push_str("pipeline = ");
                out.push_str(self.pick(PIPELINES));
                out.push('\n');
                keys.push("pipeline");
            }
            for _ in 0..self.next() % 5 {
                let roll = self.next() % 100;
                if roll < 10 {
                    out.push_str(self.pick(&[
                        "# comment",
                        "; comment",
                        "",
                        "   ",
                        "  # indented comment",
                    ]));
                } else if roll < 16 && !keys.is_empty() {
                    out.push_str(self.pick(&["  continued", "\tmore", "    x = y", "", "  "]));
                } else if roll < 18 {
                    out.push_str(self.pick(&["no delimiter here", "= empty key"]));
                } else {
                    let key = self.pick(KEYS);
                    if (keys.contains(&key) && !self.chance(5))
                        || (header.starts_with("[pipeline") && self.chance(80))
                    {
                        continue;
                    }
                    keys.push(key);
                    out.push_str(key);
                    out.push_str(self.pick(&[" = ", "=", ": ", " :"]));
                    out.push_str(self.pick(VALUES));
                }
                out.push_str(self.pick(&["\n", "\n", "\n", "\r\n", "\r"]));
            }
        }
        out
    }
}

#[test]
fn generated_configs_match_python() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Gen(0x9e37_79b9_7f4a_7c15);
    let mut cases = Vec::new();
    for i in 0..1000 {
        let path = write(dir.path(), &format!("gen{i:03}.conf"), &generator.file());
        cases.push(Case::new("ini", &path, "", &[]));
        cases.push(Case::new("appconfig", &path, "main", &[]));
        cases.push(Case::new("appconfig", &path, "proxy-server", GLOBALS));
        cases.push(Case::new(
            "pipeline",
            &path,
            "main",
            if i % 2 == 0 { &[] } else { GLOBALS },
        ));
    }
    differential(&cases);
}

// ---------------------------------------------------------------------------
// No input makes the parser or the paste loader panic

/// Lines that look like INI, to reach deep into the parser.
fn near_ini_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\[[a-zA-Z:_ -]{0,12}\\]",
        Just("[DEFAULT]".to_owned()),
        Just("[pipeline:main]".to_owned()),
        "[ \t]{0,3}[a-zA-Z_ ]{0,8}[ ]{0,2}[=:][ ]{0,2}[a-z%()#;: ]{0,16}",
        "(set|get) [a-z]{1,3} = [a-z%()]{0,8}",
        "use = (egg|config|call|x):[a-z]{0,5}(#[a-z]{0,5})?",
        "pipeline = ([a-z:_#]{1,6} ){0,4}",
        "[ \t]{0,4}[#;]?.{0,20}",
        "%\\(([a-z]{0,3}|here|__file__)\\)[sd]?",
    ]
}

fn near_ini_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            near_ini_line(),
            prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        ),
        0..30,
    )
    .prop_map(|lines| lines.into_iter().map(|(l, e)| l + e).collect())
}

fn exercise_paste(cfg: &PasteConfig, names: &[String]) {
    for name in names {
        let _ = cfg.app_config(name, &[]);
        let _ = cfg.app_config(name, &[("log_name", "x"), ("z", "%(here)s%")]);
        let _ = cfg.pipeline(name, &[]);
    }
    let ini = cfg.ini();
    for sec in ini.section_names() {
        for key in ini.option_names(sec).unwrap_or_default() {
            let _ = ini.get(sec, key);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let path = Path::new("/etc/swift/fuzz.conf");
        if let Ok(cfg) = PasteConfig::from_bytes(&bytes, path) {
            exercise_paste(&cfg, &["main".to_owned()]);
        }
        let _ = SwiftConf::from_bytes(&bytes, path);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_strings(text in "\\PC*") {
        let _ = Ini::parse(IniOptions::SWIFT, &text, Path::new("/x.conf"));
        let _ = Ini::parse(IniOptions::PYTHON_DEFAULT, &text, Path::new("/x.conf"));
    }

    #[test]
    fn paste_loader_never_panics_on_near_ini_text(
        text in near_ini_text(),
        name in prop_oneof![Just("main".to_owned()), "[a-z:#_ -]{0,8}"],
    ) {
        if let Ok(cfg) = PasteConfig::parse(&text, Path::new("/etc/swift/proxy-server.conf")) {
            let mut names = vec![name, "main".to_owned()];
            names.extend(cfg.ini().section_names().filter_map(|s| s.split_once(':')).map(|(_, n)| n.trim().to_owned()));
            exercise_paste(&cfg, &names);
        }
        let _ = SwiftConf::from_bytes(text.as_bytes(), Path::new("/etc/swift/swift.conf"));
    }
}
