//! Swift's ACL syntax (`swift/common/middleware/acl.py`): container ACLs
//! (`X-Container-Read`/`-Write`: groups, `.r:` referrer designations,
//! `.rlistings`), cleaned and parsed as Swift does; version-2 account ACLs
//! (`X-Account-Access-Control`, JSON); and `referrer_allowed`.
//!
//! Deciding who may do what is the auth middleware's job, not this one's.

use serde_json::Value;
use swift_common::http::quote::unquote_to_bytes;

/// `clean_acl(name, value)`: the ACL in canonical form, or Swift's
/// message for a bad one.
pub fn clean_acl(name: &str, value: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    let mut values = Vec::new();
    for raw in value.split(',') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let Some((first, second)) = raw.split_once(':') else {
            values.push(raw.to_owned());
            continue;
        };
        let (first, mut second) = (first.trim(), second.trim());
        if first.is_empty() || !first.starts_with('.') {
            values.push(raw.to_owned());
        } else if matches!(first, ".r" | ".ref" | ".referer" | ".referrer") {
            if name.contains("write") {
                return Err(format!(
                    "Referrers not allowed in write ACL: {}",
                    py_repr(raw)
                ));
            }
            let mut negate = false;
            if let Some(rest) = second.strip_prefix('-') {
                negate = true;
                second = rest.trim();
            }
            if !second.is_empty() && second != "*" && second.starts_with('*') {
                second = second[1..].trim();
            }
            if second.is_empty() || second == "." {
                return Err(format!(
                    "No host/domain value after referrer designation in ACL: {}",
                    py_repr(raw)
                ));
            }
            values.push(format!(".r:{}{second}", if negate { "-" } else { "" }));
        } else {
            return Err(format!(
                "Unknown designator {} in ACL: {}",
                py_repr(first),
                py_repr(raw)
            ));
        }
    }
    Ok(values.join(","))
}

/// Python's `repr` of a str.
pub fn py_repr(s: &str) -> String {
    swift_common::config::values::python_repr(s.chars().map(u32::from))
}

/// `parse_acl_v1`: `(referrers, groups)` of a container ACL.
pub fn parse_acl(acl: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut referrers = Vec::new();
    let mut groups = Vec::new();
    if let Some(acl) = acl.filter(|a| !a.is_empty()) {
        for value in acl.split(',') {
            match value.strip_prefix(".r:") {
                Some(r) => referrers.push(r.to_owned()),
                None => groups.push(
                    String::from_utf8_lossy(&unquote_to_bytes(value.as_bytes())).into_owned(),
                ),
            }
        }
    }
    (referrers, groups)
}

/// `referrer_allowed(referrer, referrer_acl)`.
pub fn referrer_allowed(referrer: Option<&str>, acl: &[String]) -> bool {
    let mut allow = false;
    if acl.is_empty() {
        return false;
    }
    let rhost = referrer
        .and_then(url_host)
        .unwrap_or_else(|| "unknown".into());
    for m in acl {
        if let Some(m) = m.strip_prefix('-') {
            if m == rhost || (m.starts_with('.') && rhost.ends_with(m)) {
                allow = false;
            }
        } else if m == "*" || *m == rhost || (m.starts_with('.') && rhost.ends_with(m.as_str())) {
            allow = true;
        }
    }
    allow
}

/// `urlparse(url).hostname`: lowercased, without port, user or brackets.
fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("//")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `parse_acl_v2`: `None` when absent or not a JSON object; `{}` when empty.
pub fn parse_acl_v2(data: Option<&str>) -> Option<serde_json::Map<String, Value>> {
    match data? {
        "" => Some(serde_json::Map::new()),
        d => match serde_json::from_str::<Value>(d) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        },
    }
}

/// `format_acl_v2`: compact JSON, keys sorted, non-ASCII escaped.
pub fn format_acl_v2(acl: &serde_json::Map<String, Value>) -> String {
    crate::pyjson::dumps(&Value::Object(acl.clone()), true, true)
}

/// The owner's view of the stored account ACL: `None` when it is empty or
/// not a JSON object (Swift's `add_acls_from_sys_metadata`).
pub fn format_account_acl(stored: &str) -> Option<String> {
    let acl = parse_acl_v2(Some(stored))?;
    (!acl.is_empty()).then(|| format_acl_v2(&acl))
}

/// An account ACL: who is admin, read-write, read-only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountAcls {
    pub admin: Vec<String>,
    pub read_write: Vec<String>,
    pub read_only: Vec<String>,
}

/// `acls_from_account_info`: from the account's
/// `sysmeta['core-access-control']`; `Ok(None)` when none is set, `Err`
/// when it is not valid.
pub fn acls_from_sysmeta(stored: Option<&str>) -> Result<Option<AccountAcls>, String> {
    let Some(acl) = parse_acl_v2(stored) else {
        return if stored.is_none() {
            Ok(None)
        } else {
            Err("Invalid ACL".into())
        };
    };
    let list = |k: &str| -> Vec<String> {
        acl.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let acls = AccountAcls {
        admin: list("admin"),
        read_write: list("read-write"),
        read_only: list("read-only"),
    };
    if acls.admin.is_empty() && acls.read_write.is_empty() && acls.read_only.is_empty() {
        return Ok(None);
    }
    Ok(Some(acls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_acl_like_swift() {
        assert_eq!(
            clean_acl("x-container-read", "bob, sue").unwrap(),
            "bob,sue"
        );
        assert_eq!(
            clean_acl("x-container-read", "bob,,,sue").unwrap(),
            "bob,sue"
        );
        assert_eq!(
            clean_acl("x-container-read", ".referrer : *").unwrap(),
            ".r:*"
        );
        assert_eq!(
            clean_acl("x-container-read", ".ref:*.example.com").unwrap(),
            ".r:.example.com"
        );
        assert_eq!(
            clean_acl("x-container-read", ".r:*, .rlistings").unwrap(),
            ".r:*,.rlistings"
        );
        assert_eq!(
            clean_acl("x-container-write", ".r:*").unwrap_err(),
            "Referrers not allowed in write ACL: '.r:*'"
        );
        assert_eq!(
            clean_acl("x-container-read", ".r:").unwrap_err(),
            "No host/domain value after referrer designation in ACL: '.r:'"
        );
        assert_eq!(
            clean_acl("x-container-read", ".x:y").unwrap_err(),
            "Unknown designator '.x' in ACL: '.x:y'"
        );
    }

    #[test]
    fn referrers() {
        let (r, g) = parse_acl(Some(".r:*,.r:-.thief.com,bob,a%20b"));
        assert_eq!(g, vec!["bob", "a b"]);
        assert!(referrer_allowed(Some("http://www.example.com/x"), &r));
        assert!(!referrer_allowed(Some("http://x.thief.com:8080/"), &r));
        assert!(referrer_allowed(None, &r));
        assert!(!referrer_allowed(None, &[]));
    }

    #[test]
    fn account_acls() {
        let a = acls_from_sysmeta(Some(r#"{"admin":["x"],"read-only":[]}"#))
            .unwrap()
            .unwrap();
        assert_eq!(a.admin, vec!["x"]);
        assert!(acls_from_sysmeta(Some("{}")).unwrap().is_none());
        assert!(acls_from_sysmeta(None).unwrap().is_none());
        assert!(acls_from_sysmeta(Some("[1]")).is_err());
        assert_eq!(
            format_account_acl(r#"{"read-only": ["b", "\u00e9"], "admin": ["a"]}"#).unwrap(),
            r#"{"admin":["a"],"read-only":["b","\u00e9"]}"#
        );
        assert!(format_account_acl("").is_none());
    }
}
