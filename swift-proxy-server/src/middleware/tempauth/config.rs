//! tempauth's `[filter:tempauth]` section, read as Swift's `TempAuth.__init__`
//! reads it: the reseller prefixes and their `require_group`, the auth
//! prefix, token life, overrides, the storage URL scheme, Fernet keys, and
//! the users (`user_<account>_<user>`, `user64_<b64 account>_<b64 user>`).
//!
//! A value Swift would fail on is an error here too, one line naming the
//! file, section and key; nothing here serves requests.

use std::collections::BTreeMap;

use swift_common::config::Conf;
use swift_common::config::values::config_true_value;
use swift_common::http::quote::quote;

use super::fernet::{Fernet, b64decode};

/// Swift's `DEFAULT_TOKEN_LIFE`.
pub const DEFAULT_TOKEN_LIFE: i64 = 86400;

/// One configured user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub key: String,
    /// The storage URL, possibly with `$HOST` for the request's host.
    pub url: String,
    pub groups: Vec<String>,
}

/// Everything tempauth is configured with.
#[derive(Clone, Debug)]
pub struct Config {
    /// `reseller_prefix` as a list, each with its `_` (`AUTH_`), or `""`.
    pub reseller_prefixes: Vec<String>,
    /// The first of them: tokens and groups are made with it.
    pub reseller_prefix: String,
    /// `require_group` for each prefix (`""`: none).
    pub require_group: BTreeMap<String, String>,
    pub auth_prefix: String,
    /// Whether `auth_prefix` had to be rewritten (Swift logs a warning).
    pub auth_prefix_rewritten: Option<String>,
    pub token_life: i64,
    /// `fernet_key_<id>` keys, by id (sorted as Swift's `load_multikey_opts`).
    pub fernet_keys: Vec<(String, Fernet)>,
    pub active_fernet_key_id: Option<String>,
    pub allow_overrides: bool,
    pub storage_url_scheme: String,
    /// `account:user` -> user.
    pub users: BTreeMap<String, User>,
}

/// Python's `str.split()`: runs of whitespace (as Python's `str.isspace`).
pub fn py_split(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
        .filter(|p| !p.is_empty())
        .collect()
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// `config_read_reseller_options(conf, {'require_group': ''})`.
fn reseller_options(conf: &Conf) -> (Vec<String>, BTreeMap<String, String>) {
    let mut prefixes: Vec<String> = Vec::new();
    for p in conf.get_or("reseller_prefix", "AUTH").split(',') {
        let mut p = py_strip(p).to_owned();
        if p.is_empty() {
            continue;
        }
        if p == "''" {
            p.clear();
        }
        if !p.is_empty() && !p.ends_with('_') {
            p.push('_');
        }
        if !prefixes.contains(&p) {
            prefixes.push(p);
        }
    }
    if prefixes.is_empty() {
        prefixes.push(String::new());
    }
    let read = |name: &str| -> Option<String> {
        conf.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| py_strip(v).to_owned())
    };
    let mut rules = BTreeMap::new();
    for p in &prefixes {
        let prefix_name = if p.is_empty() { "''" } else { p.as_str() };
        let group = read(&format!("{prefix_name}require_group"))
            .or_else(|| read("require_group"))
            .unwrap_or_default();
        rules.insert(p.clone(), group);
    }
    (prefixes, rules)
}

/// A `user64_` name part: Swift pads with `len % 4` `=` (sic) and decodes.
fn b64_name(conf: &Conf, key: &str, part: &str) -> Result<String, String> {
    let padded = format!("{part}{}", "=".repeat(part.len() % 4));
    let bytes = b64decode(&padded, false).map_err(|e| {
        conf.invalid(key, &format!("{part:?} is not base64: {e}"))
            .to_string()
    })?;
    String::from_utf8(bytes).map_err(|_| {
        conf.invalid(key, &format!("{part:?} does not decode to UTF-8"))
            .to_string()
    })
}

impl Config {
    /// Read `conf` (DEFAULT and the filter's section merged).
    pub fn from_conf(conf: &Conf) -> Result<Config, String> {
        let (reseller_prefixes, require_group) = reseller_options(conf);
        let reseller_prefix = reseller_prefixes[0].clone();

        let raw_prefix = conf.get_or("auth_prefix", "/auth/");
        let mut auth_prefix = raw_prefix.to_owned();
        let mut auth_prefix_rewritten = None;
        if auth_prefix.trim_matches('/').is_empty() {
            auth_prefix_rewritten = Some(auth_prefix.clone());
            auth_prefix = "/auth/".into();
        }
        if !auth_prefix.starts_with('/') {
            auth_prefix.insert(0, '/');
        }
        if !auth_prefix.ends_with('/') {
            auth_prefix.push('/');
        }

        let token_life = match conf.get("token_life") {
            None => DEFAULT_TOKEN_LIFE,
            Some(v) => py_int(v).ok_or_else(|| {
                conf.invalid("token_life", "not an integer (seconds)")
                    .to_string()
            })?,
        };

        let mut fernet_keys = Vec::new();
        for (k, v) in conf.iter() {
            let Some(suffix) = k.strip_prefix("fernet_key") else {
                continue;
            };
            let id = match suffix.strip_prefix('_') {
                Some(id) if !id.is_empty() => id,
                _ => {
                    return Err(conf
                        .invalid(k, "malformed multi-key option name; use fernet_key_<id>")
                        .to_string());
                }
            };
            let f = Fernet::new(v).map_err(|e| conf.invalid(k, &e).to_string())?;
            fernet_keys.push((id.to_owned(), f));
        }
        fernet_keys.sort_by(|a, b| a.0.cmp(&b.0));
        let active_fernet_key_id = conf
            .get("active_fernet_key_id")
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        if let Some(id) = &active_fernet_key_id
            && !fernet_keys.iter().any(|(k, _)| k == id)
        {
            let ids: Vec<&str> = fernet_keys.iter().map(|(k, _)| k.as_str()).collect();
            return Err(conf
                .invalid(
                    "active_fernet_key_id",
                    &format!("key_id {id:?} not found; {ids:?} are available"),
                )
                .to_string());
        }

        let mut users: BTreeMap<String, User> = BTreeMap::new();
        let mut defined_by: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in conf.iter() {
            let rest = match k
                .strip_prefix("user64_")
                .or_else(|| k.strip_prefix("user_"))
            {
                Some(r) => r,
                None => continue,
            };
            let parts: Vec<&str> = rest.split('_').collect();
            let [account, username] = parts[..] else {
                return Err(conf
                    .invalid(
                        k,
                        "invalid user name; use user_<account>_<user> \
                         (or user64_ with base64 names for underscores)",
                    )
                    .to_string());
            };
            let (account, username) = if k.starts_with("user64_") {
                (b64_name(conf, k, account)?, b64_name(conf, k, username)?)
            } else {
                (account.to_owned(), username.to_owned())
            };
            let mut values: Vec<&str> = py_split(v);
            if values.is_empty() {
                return Err(conf.invalid(k, "no key set").to_string());
            }
            let key = values.remove(0).to_owned();
            let url = match values.last() {
                Some(last) if last.contains("://") || last.contains("$HOST") => {
                    let u = (*last).to_owned();
                    values.pop();
                    u
                }
                _ => format!("$HOST/v1/{reseller_prefix}{}", quote(&account, "/")),
            };
            let name = format!("{account}:{username}");
            // Python keeps whichever comes last in the file; we cannot
            // tell, so two definitions of one user are refused.
            if let Some(other) = defined_by.get(&name) {
                return Err(conf
                    .invalid(k, &format!("user {name:?} is also defined by {other}"))
                    .to_string());
            }
            defined_by.insert(name.clone(), k.to_owned());
            users.insert(
                name,
                User {
                    key,
                    url,
                    groups: values.into_iter().map(str::to_owned).collect(),
                },
            );
        }

        Ok(Config {
            reseller_prefixes,
            reseller_prefix,
            require_group,
            auth_prefix,
            auth_prefix_rewritten,
            token_life,
            fernet_keys,
            active_fernet_key_id,
            allow_overrides: config_true_value(conf.get_or("allow_overrides", "t")),
            storage_url_scheme: conf.get_or("storage_url_scheme", "default").to_owned(),
            users,
        })
    }

    /// The Fernet key new tokens are made with, if any.
    pub fn active_fernet(&self) -> Option<&Fernet> {
        let id = self.active_fernet_key_id.as_deref()?;
        self.fernet_keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, f)| f)
    }

    /// The keys tokens are checked against.
    pub fn fernets(&self) -> Vec<Fernet> {
        self.fernet_keys.iter().map(|(_, f)| f.clone()).collect()
    }
}

/// Python's `int(s)` of a str: optional sign, digits with single `_`
/// between them, surrounding whitespace.
fn py_int(s: &str) -> Option<i64> {
    let s = py_strip(s);
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Conf {
        Conf::from_pairs("/etc/swift/proxy-server.conf", "filter:tempauth", pairs)
    }

    fn prefixes(v: &str) -> Vec<String> {
        Config::from_conf(&conf(&[("reseller_prefix", v)]))
            .unwrap()
            .reseller_prefixes
    }

    #[test]
    fn reseller_prefixes_as_swift_reads_them() {
        let c = Config::from_conf(&conf(&[])).unwrap();
        assert_eq!(c.reseller_prefixes, ["AUTH_"]);
        assert_eq!(c.reseller_prefix, "AUTH_");
        assert_eq!(prefixes("TEST"), ["TEST_"]);
        assert_eq!(prefixes("TEST_"), ["TEST_"]);
        assert_eq!(prefixes(""), [""]);
        assert_eq!(prefixes("    "), [""]);
        assert_eq!(prefixes("  ''  "), [""]);
        assert_eq!(prefixes(" '', TEST"), ["", "TEST_"]);
        assert_eq!(
            prefixes("AUTH_, SOMEOTHER_, YETANOTHER_"),
            ["AUTH_", "SOMEOTHER_", "YETANOTHER_"]
        );
        assert_eq!(prefixes("AUTH, AUTH_"), ["AUTH_"]);
    }

    #[test]
    fn require_group_per_prefix() {
        let c = Config::from_conf(&conf(&[
            ("reseller_prefix", "AUTH, PRE2, ''"),
            ("require_group", " .all "),
            ("PRE2_require_group", ".service"),
            ("''require_group", ".blank"),
        ]))
        .unwrap();
        assert_eq!(c.require_group["AUTH_"], ".all");
        assert_eq!(c.require_group["PRE2_"], ".service");
        assert_eq!(c.require_group[""], ".blank");
    }

    #[test]
    fn auth_prefix_is_normalized() {
        for (given, want) in [
            ("", "/auth/"),
            ("/", "/auth/"),
            ("/test/", "/test/"),
            ("/test", "/test/"),
            ("test/", "/test/"),
            ("test", "/test/"),
        ] {
            let c = Config::from_conf(&conf(&[("auth_prefix", given)])).unwrap();
            assert_eq!(c.auth_prefix, want, "{given:?}");
        }
    }

    #[test]
    fn users_as_swift_parses_them() {
        let c = Config::from_conf(&conf(&[
            ("reseller_prefix", "ABC"),
            ("user_test_tester3", "testing"),
            ("user_has_url", "urlly .admin http://a.b/v1/DEF_has"),
            ("user_admin_admin", "admin .admin .reseller_admin"),
            ("user_admin_auditor", "admin_ro .reseller_reader"),
            ("user_h_host", "k $HOST/v1/X"),
            ("user_t\u{e9}st_t\u{e9}ster", "p\u{e1}ss .admin"),
        ]))
        .unwrap();
        let u = |n: &str| c.users[n].clone();
        let user = |key: &str, url: &str, groups: &[&str]| User {
            key: key.into(),
            url: url.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert_eq!(
            u("admin:admin"),
            user(
                "admin",
                "$HOST/v1/ABC_admin",
                &[".admin", ".reseller_admin"]
            )
        );
        assert_eq!(
            u("admin:auditor"),
            user("admin_ro", "$HOST/v1/ABC_admin", &[".reseller_reader"])
        );
        assert_eq!(u("test:tester3"), user("testing", "$HOST/v1/ABC_test", &[]));
        assert_eq!(
            u("has:url"),
            user("urlly", "http://a.b/v1/DEF_has", &[".admin"])
        );
        assert_eq!(u("h:host"), user("k", "$HOST/v1/X", &[]));
        assert_eq!(
            u("t\u{e9}st:t\u{e9}ster").url,
            "$HOST/v1/ABC_t%C3%A9st".to_string()
        );
        assert_eq!(c.users.len(), 6);
    }

    #[test]
    fn base64_user_names() {
        let c = Config::from_conf(&conf(&[
            ("reseller_prefix", "ABC"),
            ("user64_dGVzdA_dGVzdGVyMw", "testing .reseller_admin"),
            (
                "user64_dXNlcl9mb28_YWI",
                "urlly .admin http://a.b/v1/DEF_has",
            ),
        ]))
        .unwrap();
        assert_eq!(c.users["test:tester3"].groups, [".reseller_admin"]);
        assert_eq!(c.users["test:tester3"].url, "$HOST/v1/ABC_test");
        assert_eq!(c.users["user_foo:ab"].url, "http://a.b/v1/DEF_has");
    }

    #[test]
    fn bad_users_are_one_line_naming_the_key() {
        let e = Config::from_conf(&conf(&[("user_bob_bobby", "")])).unwrap_err();
        assert_eq!(
            e,
            "/etc/swift/proxy-server.conf: [filter:tempauth] user_bob_bobby = \"\": no key set"
        );
        let e = Config::from_conf(&conf(&[("user_testtester", "testing")])).unwrap_err();
        assert!(
            e.contains("user_testtester") && e.contains("invalid user name"),
            "{e}"
        );
        let e = Config::from_conf(&conf(&[("user_a_b_c", "k")])).unwrap_err();
        assert!(e.contains("user_a_b_c"), "{e}");
        let e = Config::from_conf(&conf(&[("user64_dGVzd_YQ", "k")])).unwrap_err();
        assert!(e.contains("user64_dGVzd_YQ") && e.contains("base64"), "{e}");
        let e = Config::from_conf(&conf(&[("user64__wA", "k")])).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        let e =
            Config::from_conf(&conf(&[("user_a_b", "k1"), ("user64_YQ_Yg", "k2")])).unwrap_err();
        assert!(e.contains("\"a:b\" is also defined by"), "{e}");
        let e = Config::from_conf(&conf(&[("token_life", "1d")])).unwrap_err();
        assert!(e.contains("token_life = \"1d\""), "{e}");
    }

    #[test]
    fn token_life_is_pythons_int() {
        for (v, want) in [("10", 10), (" +5 ", 5), ("-3", -3), ("1_000", 1000)] {
            let c = Config::from_conf(&conf(&[("token_life", v)])).unwrap();
            assert_eq!(c.token_life, want);
        }
        for v in ["", "1.5", "_1", "1__0", "0x10"] {
            assert!(
                Config::from_conf(&conf(&[("token_life", v)])).is_err(),
                "{v}"
            );
        }
    }

    #[test]
    fn fernet_keys_and_the_active_one() {
        let k1 = "esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=";
        let k2 = "gRXHeKlt5h1nMDZL_QA7UfVIJ5z3ZP3v351cvmiRZD4=";
        let c = Config::from_conf(&conf(&[
            ("fernet_key_2025", k2),
            ("fernet_key_2024", k1),
            ("active_fernet_key_id", "2025"),
        ]))
        .unwrap();
        let ids: Vec<&str> = c.fernet_keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(ids, ["2024", "2025"]);
        assert!(c.active_fernet().is_some());
        let e = Config::from_conf(&conf(&[
            ("fernet_key_2024", k1),
            ("active_fernet_key_id", "2023"),
        ]))
        .unwrap_err();
        assert!(
            e.contains("key_id \"2023\" not found; [\"2024\"] are available"),
            "{e}"
        );
        let e = Config::from_conf(&conf(&[("fernet_key_x", "short")])).unwrap_err();
        assert!(
            e.contains("fernet_key_x") && e.contains("32 url-safe"),
            "{e}"
        );
        for bad in ["fernet_key", "fernet_key_", "fernet_keys"] {
            let e = Config::from_conf(&conf(&[(bad, k1)])).unwrap_err();
            assert!(e.contains("malformed multi-key option name"), "{e}");
        }
    }
}
