//! Unit tests of the storage policies; the differential comparison with
//! Python Swift's messages is in `tests/integration/storage_policy.rs`.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;

const HASH: &str = "[swift-hash]\nswift_hash_path_suffix = s\n";

fn load(text: &str) -> Result<StoragePolicies, PolicyError> {
    let conf = SwiftConf::from_bytes(
        format!("{HASH}{text}").as_bytes(),
        Path::new("/etc/swift/swift.conf"),
    )
    .unwrap();
    StoragePolicies::from_swift_conf(&conf)
}

#[test]
fn no_policy_section_implies_policy_0_as_default() {
    let all = load("").unwrap();
    assert_eq!(all.len(), 1);
    let p = all.default_policy();
    assert_eq!(
        (p.index(), p.name(), p.ring_name()),
        (0, "Policy-0", "object")
    );
    assert!(p.is_default() && !p.is_deprecated());
    assert_eq!(p.policy_type(), PolicyType::Replication);
    assert_eq!(all, StoragePolicies::default());
    assert_eq!(
        all.get_policy_info()
            .iter()
            .map(PolicyInfo::to_json)
            .collect::<Vec<_>>(),
        ["{\"name\": \"Policy-0\", \"aliases\": \"Policy-0\", \"default\": true}"]
    );
}

#[test]
fn a_single_policy_0_becomes_the_default() {
    let all = load("[storage-policy:0]\nname = gold\n").unwrap();
    assert_eq!(all.default_policy().name(), "gold");
    assert!(all.legacy().is_default());
}

const THREE: &str = "[storage-policy:0]\nname = gold\naliases = yellow, orange\n\
                     [storage-policy:2]\nname = silver\ndefault = yes\n\
                     [storage-policy:1]\nname = bronze\ndeprecated = true\n\
                     diskfile_module = egg:swift#replication.fs\n";

#[test]
fn lookups_by_index_name_and_alias() {
    let all = load(THREE).unwrap();
    assert_eq!(all.len(), 3);
    let order: Vec<u64> = all.iter().map(StoragePolicy::index).collect();
    assert_eq!(order, [0, 2, 1], "the order of the sections");
    assert_eq!(all.default_policy().name(), "silver");
    assert_eq!(all.get_by_index(2).unwrap().ring_name(), "object-2");
    assert!(all.get_by_index(3).is_none());
    for name in ["gold", "GOLD", "Yellow", "orange"] {
        assert_eq!(all.get_by_name(name).unwrap().index(), 0, "{name}");
    }
    assert!(all.get_by_name("platinum").is_none());
    assert_eq!(
        all.get_by_index(0).unwrap().aliases(),
        "gold, yellow, orange"
    );
    assert_eq!(all.get_by_index(0).unwrap().alias_list().len(), 3);
    // Header values: empty is policy 0, Python's int() otherwise.
    assert_eq!(all.get_by_index_str("").unwrap().index(), 0);
    assert_eq!(all.get_by_index_str(" 2 ").unwrap().index(), 2);
    assert_eq!(all.get_by_index_str("+1").unwrap().index(), 1);
    assert!(all.get_by_index_str("-1").is_none());
    assert!(all.get_by_index_str("two").is_none());
    assert_eq!(all.get_by_name_or_index("1").unwrap().unwrap().index(), 1);
    assert_eq!(
        all.get_by_name_or_index("bronze").unwrap().unwrap().index(),
        1
    );
    assert!(all.get_by_name_or_index("nothing").unwrap().is_none());
    // The deprecated policy is not in /info.
    let info: Vec<String> = all
        .get_policy_info()
        .iter()
        .map(PolicyInfo::to_json)
        .collect();
    assert_eq!(
        info,
        [
            "{\"name\": \"gold\", \"aliases\": \"gold, yellow, orange\"}",
            "{\"name\": \"silver\", \"aliases\": \"silver\", \"default\": true}",
        ]
    );
    let bronze = all.get_by_index(1).unwrap();
    assert!(bronze.is_deprecated());
    assert_eq!(
        bronze.info().to_json(),
        "{\"name\": \"bronze\", \"aliases\": \"bronze\", \"deprecated\": true}"
    );
}

#[test]
fn a_name_and_an_index_naming_different_policies_is_an_error() {
    let all = load("[storage-policy:0]\nname = 1\n[storage-policy:1]\nname = one\ndefault = y\n")
        .unwrap();
    let err = all.get_by_name_or_index("1").unwrap_err();
    assert!(
        err.starts_with("Found different polices when searching by name (StoragePolicy(0, ['1']"),
        "{err}"
    );
}

#[test]
fn quorum_is_swifts_quorum_size() {
    let p = StoragePolicies::default();
    let p = p.default_policy();
    for (replicas, quorum) in [
        (1.0, 1),
        (2.0, 1),
        (2.5, 1),
        (3.0, 2),
        (4.0, 2),
        (5.0, 3),
        (0.0, 0),
    ] {
        assert_eq!(p.quorum(replicas), quorum, "{replicas}");
    }
}

#[test]
fn erasure_coding_and_unknown_types_are_refused_clearly() {
    let err = load("[storage-policy:0]\nname = a\n[storage-policy:1]\nname = ec\npolicy_type = erasure_coding\n")
        .unwrap_err();
    assert_eq!(err.section.as_deref(), Some("storage-policy:1"));
    assert_eq!(
        err.to_string(),
        "ERROR: Invalid Storage Policy Configuration in /etc/swift/swift.conf [storage-policy:1] \
         (policy_type erasure_coding is not supported (only replication policies are \
         implemented), for index '1')"
    );
    let err = load("[storage-policy:0]\nname = a\npolicy_type = mirrored\n").unwrap_err();
    assert_eq!(
        err.message,
        "Invalid policy_type 'mirrored' (must be replication), for index '0'"
    );
}

#[test]
fn errors_name_the_file_and_section_and_keep_swifts_line() {
    let err = load("[storage-policy:0]\nname = a b\n").unwrap_err();
    assert_eq!(err.section.as_deref(), Some("storage-policy:0"));
    assert_eq!(
        err.swift_line(),
        "ERROR: Invalid Storage Policy Configuration in /etc/swift/swift.conf (Names are used \
         as HTTP headers, and can not reliably contain any characters not in \
         '-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'. Invalid name 'a b', \
         for index 0)"
    );
    let err = load("[storage-policy:1]\nname = a\n").unwrap_err();
    assert_eq!(err.section, None);
    assert_eq!(
        err.to_string(),
        "ERROR: Invalid Storage Policy Configuration in /etc/swift/swift.conf (You must specify \
         a storage policy section for policy index 0 in order to define multiple policies)"
    );
}

#[test]
fn keys_are_case_folded_and_every_key_must_be_a_policy_option() {
    let err = load("[storage-policy:0]\nName = %(base)s-x\nbase = gold\n").unwrap_err();
    // `base` is not a policy option: Swift refuses it, interpolation or not.
    assert_eq!(
        err.message,
        "Invalid option 'base' in storage-policy section, for index '0'"
    );
    let all = load("[storage-policy:0]\nNAME = gold\nALIASES = gold, au\n").unwrap();
    assert_eq!(all.default_policy().aliases(), "gold, au");
}
