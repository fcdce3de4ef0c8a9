//! The storage policies of `swift.conf`, as Swift 2.38.3's
//! `swift/common/storage_policy.py` parses and validates them
//! (`parse_storage_policies`, `StoragePolicyCollection`): every
//! `[storage-policy:N]` section with `name`, `aliases`, `default`,
//! `deprecated`, `policy_type` and `diskfile_module`; an implied `Policy-0`
//! when there is none; Swift's rules and messages. Lookups by index, name or
//! alias, the default policy, each policy's object ring name, its quorum,
//! and the policy list `/info` publishes.
//!
//! This module reads the already-parsed `swift.conf` ([`SwiftConf`]); it
//! never opens files, loads rings or logs. Erasure-coding policies are
//! refused with a clear message: only replication is implemented.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::SwiftConf;
use crate::config::ini::Ini;
use crate::config::pystr::{parse_int, repr};
use crate::config::swift_conf::json_string;
use crate::config::values::{config_true_value, list_from_csv};

/// Swift's `LEGACY_POLICY_NAME`: the name of the implied policy 0.
pub const LEGACY_POLICY_NAME: &str = "Policy-0";
/// Swift's `VALID_CHARS`: what a policy name may contain.
pub const VALID_CHARS: &str = "-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The section name prefix of a policy.
pub const SECTION_PREFIX: &str = "storage-policy:";
/// Swift's `REPL_POLICY`, the default `policy_type`.
pub const REPL_POLICY: &str = "replication";
/// Swift's `EC_POLICY`, which this implementation refuses.
pub const EC_POLICY: &str = "erasure_coding";

/// The options a replication policy section may set (Swift's
/// `_config_options_map`, less `policy_type`, which is read first).
const OPTIONS: &[&str] = &[
    "name",
    "aliases",
    "default",
    "deprecated",
    "diskfile_module",
];

/// A `swift.conf` whose storage policies Swift would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "ERROR: Invalid Storage Policy Configuration in {}{} ({message})",
    path.display(),
    section.as_ref().map(|s| format!(" [{s}]")).unwrap_or_default()
)]
pub struct PolicyError {
    /// The `swift.conf`.
    pub path: PathBuf,
    /// The section at fault, when one is (`storage-policy:1`).
    pub section: Option<String>,
    /// Swift's `PolicyError` text (`Invalid name 'a b', for index 1`), or
    /// ours where Swift has none (an unsupported `policy_type`).
    pub message: String,
}

impl PolicyError {
    /// The line Swift exits with for this error (without the section).
    pub fn swift_line(&self) -> String {
        format!(
            "ERROR: Invalid Storage Policy Configuration in {} ({})",
            self.path.display(),
            self.message
        )
    }
}

/// A policy's type. Only replication is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyType {
    /// `replication`: every primary holds a full copy.
    Replication,
}

impl PolicyType {
    /// The name as written in `swift.conf`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Replication => REPL_POLICY,
        }
    }
}

/// One storage policy (Swift's `StoragePolicy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePolicy {
    index: u64,
    alias_list: Vec<String>,
    is_default: bool,
    is_deprecated: bool,
    policy_type: PolicyType,
    ring_name: String,
    diskfile_module: String,
}

/// Swift's `get_zero_indexed_base_string`: `base` for 0, `base-N` otherwise.
fn zero_indexed(base: &str, index: u64) -> String {
    if index == 0 {
        base.to_owned()
    } else {
        format!("{base}-{index}")
    }
}

impl StoragePolicy {
    /// Swift's `BaseStoragePolicy.__init__`: `index` as written after
    /// `storage-policy:`, the names validated in order. `Err` is Swift's
    /// message.
    fn new(
        index: &str,
        name: &str,
        aliases: &str,
        is_default: &str,
        is_deprecated: &str,
        diskfile_module: &str,
    ) -> Result<StoragePolicy, String> {
        let index = parse_int(index)
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| format!("Invalid index, for index {}", repr(index)))?;
        let mut policy = StoragePolicy {
            index,
            alias_list: Vec::new(),
            is_default: config_true_value(is_default),
            is_deprecated: config_true_value(is_deprecated),
            policy_type: PolicyType::Replication,
            ring_name: zero_indexed("object", index),
            diskfile_module: diskfile_module.to_owned(),
        };
        policy.add_name(name)?;
        for alias in list_from_csv(aliases) {
            if alias != name {
                policy.add_name(&alias)?;
            }
        }
        if policy.is_deprecated && policy.is_default {
            return Err(format!(
                "Deprecated policy can not be default.  Invalid config, for index {index}"
            ));
        }
        Ok(policy)
    }

    /// The implied policy 0 of a `swift.conf` without policies.
    fn legacy() -> StoragePolicy {
        StoragePolicy {
            index: 0,
            alias_list: vec![LEGACY_POLICY_NAME.to_owned()],
            is_default: false,
            is_deprecated: false,
            policy_type: PolicyType::Replication,
            ring_name: "object".to_owned(),
            diskfile_module: "egg:swift#replication.fs".to_owned(),
        }
    }

    /// Swift's `_validate_policy_name` then `add_name`.
    fn add_name(&mut self, name: &str) -> Result<(), String> {
        let index = self.index;
        if name.is_empty() {
            return Err(format!("Invalid name {}, for index {index}", repr(name)));
        }
        if !name.chars().all(|c| VALID_CHARS.contains(c)) {
            return Err(format!(
                "Names are used as HTTP headers, and can not reliably contain any characters \
                 not in {}. Invalid name {}, for index {index}",
                repr(VALID_CHARS),
                repr(name)
            ));
        }
        let upper = name.to_ascii_uppercase();
        if upper == LEGACY_POLICY_NAME.to_ascii_uppercase() && index != 0 {
            return Err(format!(
                "The name {LEGACY_POLICY_NAME} is reserved for policy index 0. \
                 Invalid name {}, for index {index}",
                repr(name)
            ));
        }
        if self
            .alias_list
            .iter()
            .any(|n| n.to_ascii_uppercase() == upper)
        {
            return Err(format!(
                "The name {name} is already assigned to this policy., for index {index}"
            ));
        }
        self.alias_list.push(name.to_owned());
        Ok(())
    }

    /// The policy index (the `N` of `[storage-policy:N]`).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The primary name.
    pub fn name(&self) -> &str {
        // Construction always adds the name first.
        self.alias_list.first().map_or("", String::as_str)
    }

    /// Every name, the primary first (Swift's `alias_list`).
    pub fn alias_list(&self) -> &[String] {
        &self.alias_list
    }

    /// Swift's `aliases`: every name joined with `", "`.
    pub fn aliases(&self) -> String {
        self.alias_list.join(", ")
    }

    /// Whether this is the default policy.
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    /// Whether this policy is deprecated (no new containers may use it).
    pub fn is_deprecated(&self) -> bool {
        self.is_deprecated
    }

    /// The policy type.
    pub fn policy_type(&self) -> PolicyType {
        self.policy_type
    }

    /// The object ring's name: `object` for policy 0, `object-N` otherwise
    /// (the file is `<swift_dir>/<ring_name>.ring.gz`).
    pub fn ring_name(&self) -> &str {
        &self.ring_name
    }

    /// `diskfile_module` as configured (read, not used: the object
    /// servers are Python's).
    pub fn diskfile_module(&self) -> &str {
        &self.diskfile_module
    }

    /// Swift's `StoragePolicy.quorum` for a ring of `replica_count`
    /// replicas: `quorum_size(replica_count)`, `(n + 1) // 2` (Python's
    /// floor division, so 2.5 replicas give 1).
    pub fn quorum(&self, replica_count: f64) -> usize {
        quorum_size(replica_count)
    }

    /// Swift's `get_info()`: what `/info` shows of this policy.
    pub fn info(&self) -> PolicyInfo {
        PolicyInfo {
            name: self.name().to_owned(),
            aliases: self.aliases(),
            default: self.is_default,
            deprecated: self.is_deprecated,
        }
    }

    /// Python's `repr()` of the policy, which Swift's messages embed.
    fn swift_repr(&self) -> String {
        let names: Vec<String> = self.alias_list.iter().map(|n| repr(n)).collect();
        let py_bool = |b: bool| if b { "True" } else { "False" };
        format!(
            "StoragePolicy({}, [{}], is_default={}, is_deprecated={}, policy_type={})",
            self.index,
            names.join(", "),
            py_bool(self.is_default),
            py_bool(self.is_deprecated),
            repr(self.policy_type.as_str())
        )
    }
}

/// Swift's `quorum_size(n)`: `(n + 1) // 2`, the successes a write needs.
pub fn quorum_size(replica_count: f64) -> usize {
    let q = ((replica_count + 1.0) / 2.0).floor();
    if q.is_finite() && q > 0.0 {
        // A replica count is a small number; the conversion is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let q = q as usize;
        q
    } else {
        0
    }
}

/// One entry of `/info`'s `swift.policies` (Swift's `get_info()`):
/// `default` and `deprecated` appear only when true.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    pub name: String,
    /// Every name joined with `", "`.
    pub aliases: String,
    pub default: bool,
    pub deprecated: bool,
}

impl PolicyInfo {
    /// The entry as Python's `json.dumps` writes Swift's dict:
    /// `{"name": "gold", "aliases": "gold, silver", "default": true}`.
    pub fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"name\": {}, \"aliases\": {}",
            json_string(&self.name),
            json_string(&self.aliases)
        );
        if self.default {
            out.push_str(", \"default\": true");
        }
        if self.deprecated {
            out.push_str(", \"deprecated\": true");
        }
        out.push('}');
        out
    }
}

/// The validated policies of a `swift.conf` (Swift's
/// `StoragePolicyCollection`), in the order of their sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePolicies {
    policies: Vec<StoragePolicy>,
    by_index: HashMap<u64, usize>,
    /// Upper-cased names and aliases.
    by_name: HashMap<String, usize>,
    default: usize,
}

impl StoragePolicies {
    /// The policies of a loaded `swift.conf`.
    pub fn from_swift_conf(conf: &SwiftConf) -> Result<StoragePolicies, PolicyError> {
        StoragePolicies::from_ini(&conf.ini, &conf.path)
    }

    /// Swift's `parse_storage_policies` over a parsed `swift.conf` at `path`.
    pub fn from_ini(ini: &Ini, path: &Path) -> Result<StoragePolicies, PolicyError> {
        let error = |section: Option<&str>, message: String| PolicyError {
            path: path.to_path_buf(),
            section: section.map(str::to_owned),
            message,
        };
        let mut parsed = Vec::new();
        for section in ini.section_names() {
            let Some(index) = section.strip_prefix(SECTION_PREFIX) else {
                continue;
            };
            let fail = |message: String| error(Some(section), message);
            let items = match ini.items(section) {
                Some(Ok(items)) => items,
                Some(Err(e)) => return Err(fail(e.to_string())),
                None => continue,
            };
            let mut options: Vec<(String, String)> = items;
            let policy_type = match options.iter().position(|(k, _)| k == "policy_type") {
                Some(i) => options.remove(i).1,
                None => REPL_POLICY.to_owned(),
            };
            match policy_type.as_str() {
                REPL_POLICY => {}
                EC_POLICY => {
                    return Err(fail(format!(
                        "policy_type {EC_POLICY} is not supported (only {REPL_POLICY} \
                         policies are implemented), for index {}",
                        repr(index)
                    )));
                }
                other => {
                    return Err(fail(format!(
                        "Invalid policy_type {} (must be {REPL_POLICY}), for index {}",
                        repr(other),
                        repr(index)
                    )));
                }
            }
            if let Some((key, _)) = options.iter().find(|(k, _)| !OPTIONS.contains(&k.as_str())) {
                return Err(fail(format!(
                    "Invalid option {} in storage-policy section, for index {}",
                    repr(key),
                    repr(index)
                )));
            }
            let get = |key: &str| {
                options
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            let policy = StoragePolicy::new(
                index,
                get("name").unwrap_or(""),
                get("aliases").unwrap_or(""),
                get("default").unwrap_or(""),
                get("deprecated").unwrap_or(""),
                get("diskfile_module").unwrap_or("egg:swift#replication.fs"),
            )
            .map_err(fail)?;
            parsed.push((section.to_owned(), policy));
        }
        StoragePolicies::validate(parsed)
            .map_err(|(section, message)| error(section.as_deref(), message))
    }

    /// Swift's `StoragePolicyCollection._validate_policies`; `Err` is the
    /// section at fault (if one is) and Swift's message.
    fn validate(
        parsed: Vec<(String, StoragePolicy)>,
    ) -> Result<StoragePolicies, (Option<String>, String)> {
        let mut all = StoragePolicies {
            policies: Vec::new(),
            by_index: HashMap::new(),
            by_name: HashMap::new(),
            default: 0,
        };
        let mut default: Option<usize> = None;
        for (section, policy) in parsed {
            let fail = |message: String| (Some(section.clone()), message);
            if let Some(&other) = all.by_index.get(&policy.index) {
                return Err(fail(format!(
                    "Duplicate index {} conflicts with {}",
                    policy.swift_repr(),
                    all.policies[other].swift_repr()
                )));
            }
            for name in &policy.alias_list {
                if let Some(&other) = all.by_name.get(&name.to_uppercase()) {
                    return Err(fail(format!(
                        "Duplicate name {} conflicts with {}",
                        policy.swift_repr(),
                        all.policies[other].swift_repr()
                    )));
                }
            }
            if policy.is_default {
                if let Some(other) = default {
                    return Err(fail(format!(
                        "Duplicate default {} conflicts with {}",
                        policy.swift_repr(),
                        all.policies[other].swift_repr()
                    )));
                }
                default = Some(all.policies.len());
            }
            all.add(policy);
        }
        if !all.by_index.contains_key(&0) {
            if !all.policies.is_empty() {
                return Err((
                    None,
                    "You must specify a storage policy section for policy index 0 in order \
                     to define multiple policies"
                        .to_owned(),
                ));
            }
            all.add(StoragePolicy::legacy());
        }
        if all.policies.iter().all(|p| p.is_deprecated) {
            return Err((
                None,
                "Unable to find policy that's not deprecated!".to_owned(),
            ));
        }
        all.default = match default {
            Some(d) => d,
            None if all.policies.len() > 1 => {
                return Err((None, "Unable to find default policy".to_owned()));
            }
            // The one policy, which is policy 0.
            None => 0,
        };
        all.policies[all.default].is_default = true;
        Ok(all)
    }

    /// Swift's `_add_policy`.
    fn add(&mut self, policy: StoragePolicy) {
        let at = self.policies.len();
        for name in &policy.alias_list {
            self.by_name.insert(name.to_uppercase(), at);
        }
        self.by_index.insert(policy.index, at);
        self.policies.push(policy);
    }

    /// Swift's `get_by_index(int)`.
    pub fn get_by_index(&self, index: u64) -> Option<&StoragePolicy> {
        self.by_index.get(&index).map(|&i| &self.policies[i])
    }

    /// Swift's `get_by_index` of a header value (such as
    /// `X-Backend-Storage-Policy-Index`): empty means policy 0, otherwise
    /// Python's `int()` of it; `None` when it is not a number or no policy
    /// has it.
    pub fn get_by_index_str(&self, index: &str) -> Option<&StoragePolicy> {
        if index.is_empty() {
            return self.get_by_index(0);
        }
        let index = u64::try_from(parse_int(index)?).ok()?;
        self.get_by_index(index)
    }

    /// Swift's `get_by_name`: by name or alias, case-insensitively
    /// (Python's `upper()`).
    pub fn get_by_name(&self, name: &str) -> Option<&StoragePolicy> {
        self.by_name
            .get(&name.to_uppercase())
            .map(|&i| &self.policies[i])
    }

    /// Swift's `get_by_name_or_index`: `Err` when the name and the index
    /// find two different policies.
    pub fn get_by_name_or_index(
        &self,
        name_or_index: &str,
    ) -> Result<Option<&StoragePolicy>, String> {
        let by_name = self.get_by_name(name_or_index);
        let by_index = self.get_by_index_str(name_or_index);
        match (by_name, by_index) {
            (Some(n), Some(i)) if n.index != i.index => Err(format!(
                "Found different polices when searching by name ({}) and by index ({})",
                n.swift_repr(),
                i.swift_repr()
            )),
            (Some(n), _) => Ok(Some(n)),
            (None, i) => Ok(i),
        }
    }

    /// The default policy (for new containers without `X-Storage-Policy`).
    pub fn default_policy(&self) -> &StoragePolicy {
        &self.policies[self.default]
    }

    /// Swift's `legacy`: policy 0, which always exists.
    pub fn legacy(&self) -> &StoragePolicy {
        // Validation guarantees policy 0; fall back to the first anyway.
        self.get_by_index(0).unwrap_or(&self.policies[0])
    }

    /// Every policy, in the order of `swift.conf`'s sections.
    pub fn iter(&self) -> impl Iterator<Item = &StoragePolicy> {
        self.policies.iter()
    }

    /// The number of policies (at least 1).
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Always false: there is at least policy 0.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Swift's `get_policy_info()`: `/info`'s policy list, deprecated
    /// policies left out.
    pub fn get_policy_info(&self) -> Vec<PolicyInfo> {
        self.policies
            .iter()
            .filter(|p| !p.is_deprecated)
            .map(StoragePolicy::info)
            .collect()
    }
}

impl Default for StoragePolicies {
    /// What a `swift.conf` without policy sections gives: `Policy-0`, default.
    fn default() -> Self {
        let mut all = StoragePolicies {
            policies: Vec::new(),
            by_index: HashMap::new(),
            by_name: HashMap::new(),
            default: 0,
        };
        all.add(StoragePolicy::legacy());
        all.policies[0].is_default = true;
        all
    }
}

#[cfg(test)]
mod tests;
