//! PLACEHOLDER until the storage_policy module lands: policy 0 only.
#![allow(missing_docs)]

use crate::config::SwiftConf;

#[derive(Clone, Debug)]
pub struct StoragePolicy {
    pub idx: u32,
    pub name: String,
    pub deprecated: bool,
}

impl StoragePolicy {
    pub fn ring_name(&self) -> String {
        if self.idx == 0 {
            "object".into()
        } else {
            format!("object-{}", self.idx)
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoragePolicies {
    policies: Vec<StoragePolicy>,
}

impl StoragePolicies {
    pub fn from_swift_conf(_c: &SwiftConf) -> Result<StoragePolicies, String> {
        Ok(StoragePolicies {
            policies: vec![StoragePolicy {
                idx: 0,
                name: "Policy-0".into(),
                deprecated: false,
            }],
        })
    }
    pub fn iter(&self) -> impl Iterator<Item = &StoragePolicy> {
        self.policies.iter()
    }
    pub fn get_by_index(&self, idx: u32) -> Option<&StoragePolicy> {
        self.policies.iter().find(|p| p.idx == idx)
    }
    pub fn get_by_name(&self, name: &str) -> Option<&StoragePolicy> {
        self.policies
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
    pub fn default(&self) -> &StoragePolicy {
        &self.policies[0]
    }
    pub fn info_json(&self) -> serde_json::Value {
        serde_json::json!([{"name": "Policy-0", "default": true}])
    }
}
