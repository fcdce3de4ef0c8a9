//! What `/info` says (Swift's `register_swift_info` and
//! `get_swift_info`): the proxy app registers the `swift` section (version,
//! policies, constraints, settings), each middleware its own section; the
//! document lists only what this proxy serves, since Swift's functional
//! tests and clients decide what to use from it. `disallowed_sections`
//! hides sections or keys (`swift.valid_api_versions`).

use serde_json::{Map, Value, json};
use swift_common::config::Constraints;
use swift_common::storage_policy::StoragePolicies;

use crate::app::Settings;

/// The registry: sections in registration order, keys in registration
/// order within each.
#[derive(Debug, Default)]
pub struct SwiftInfo {
    sections: Vec<(String, Vec<(String, Value)>)>,
}

impl SwiftInfo {
    /// Add `key = value` to `section` (replacing an earlier value).
    pub fn register(&mut self, section: &str, key: &str, value: Value) {
        let idx = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_owned(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let keys = &mut self.sections[idx].1;
        match keys.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => keys.push((key.to_owned(), value)),
        }
    }

    /// Make `section` present even with no keys (`"tempauth": {}` style).
    pub fn register_section(&mut self, section: &str) {
        if !self.sections.iter().any(|(s, _)| s == section) {
            self.sections.push((section.to_owned(), Vec::new()));
        }
    }

    /// The proxy app's `swift` section, in Swift's key order.
    pub fn register_swift(&mut self, s: &Settings, c: &Constraints, policies: &StoragePolicies) {
        self.register(
            "swift",
            "version",
            Value::String(env!("CARGO_PKG_VERSION").to_owned()),
        );
        self.register("swift", "strict_cors_mode", Value::Bool(s.strict_cors_mode));
        let infos: Vec<String> = policies
            .get_policy_info()
            .iter()
            .map(|p| p.to_json())
            .collect();
        let list = serde_json::from_str(&format!("[{}]", infos.join(", "))).unwrap_or(Value::Null);
        self.register("swift", "policies", list);
        self.register(
            "swift",
            "allow_account_management",
            Value::Bool(s.allow_account_management),
        );
        self.register(
            "swift",
            "account_autocreate",
            Value::Bool(s.account_autocreate),
        );
        self.register(
            "swift",
            "allow_open_expired",
            Value::Bool(s.allow_open_expired),
        );
        for (k, v) in [
            ("max_file_size", json!(c.max_file_size)),
            ("max_meta_name_length", json!(c.max_meta_name_length)),
            ("max_meta_value_length", json!(c.max_meta_value_length)),
            ("max_meta_count", json!(c.max_meta_count)),
            ("max_meta_overall_size", json!(c.max_meta_overall_size)),
            ("max_header_size", json!(c.max_header_size)),
            ("max_request_line", json!(c.max_request_line)),
            ("max_object_name_length", json!(c.max_object_name_length)),
            ("container_listing_limit", json!(c.container_listing_limit)),
            ("account_listing_limit", json!(c.account_listing_limit)),
            ("max_account_name_length", json!(c.max_account_name_length)),
            (
                "max_container_name_length",
                json!(c.max_container_name_length),
            ),
            ("valid_api_versions", json!(c.valid_api_versions)),
            ("extra_header_count", json!(c.extra_header_count)),
            (
                "auto_create_account_prefix",
                json!(c.auto_create_account_prefix),
            ),
        ] {
            self.register("swift", k, v);
        }
    }

    /// The document, without `disallowed` sections (`tempauth`) or keys
    /// (`swift.valid_api_versions`).
    pub fn render(&self, disallowed: &[String]) -> String {
        let mut doc = Map::new();
        for (section, keys) in &self.sections {
            if disallowed.iter().any(|d| d == section) {
                continue;
            }
            let mut m = Map::new();
            for (k, v) in keys {
                if disallowed.iter().any(|d| *d == format!("{section}.{k}")) {
                    continue;
                }
                m.insert(k.clone(), v.clone());
            }
            doc.insert(section.clone(), Value::Object(m));
        }
        crate::pyjson::dumps(&Value::Object(doc), false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_keys_can_be_hidden() {
        let mut i = SwiftInfo::default();
        i.register("swift", "version", json!("1"));
        i.register("swift", "valid_api_versions", json!(["v1"]));
        i.register("tempauth", "account_acls", json!(true));
        let all = i.render(&[]);
        assert!(
            all.contains("\"tempauth\": {\"account_acls\": true}"),
            "{all}"
        );
        let some = i.render(&["swift.valid_api_versions".into(), "tempauth".into()]);
        assert_eq!(some, "{\"swift\": {\"version\": \"1\"}}");
    }
}
