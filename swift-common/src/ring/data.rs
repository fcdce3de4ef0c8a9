//! One loaded ring, immutable: its devices, its replica-to-partition-to-device
//! table and the bookkeeping the handoff walk needs (Swift's `RingData` plus
//! what `Ring._reload` derives from it). Reading files is `io`'s job; reload
//! is the `Ring` handle's.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::ops::Deref;
use std::rc::Rc;

use serde_json::Value;

use super::handoffs::MoreNodes;

/// A device of the ring: one entry of Swift's `devs` list.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// The device id, which is also its position in the ring's device list.
    pub id: u32,
    pub region: i64,
    pub zone: i64,
    /// The address the proxy talks to (IPv6 without brackets).
    pub ip: String,
    pub port: u16,
    /// The replication network address; `ip` when the ring has none.
    pub replication_ip: String,
    /// The replication network port; `port` when the ring has none.
    pub replication_port: u16,
    /// The device's directory name under the server's `devices` (`sdb1`).
    pub device: String,
    /// The relative weight (0 when the ring does not say).
    pub weight: f64,
    /// Free-form notes (empty when the ring does not say).
    pub meta: String,
}

impl Device {
    /// A device from its JSON dict, the way Swift reads it
    /// (`normalize_devices`: replication address defaults to the address).
    /// `Err` says which key is missing or of the wrong type.
    pub(crate) fn from_json(position: usize, value: &Value) -> Result<Device, String> {
        let Some(obj) = value.as_object() else {
            return Err(format!("device {position} is not a JSON object"));
        };
        let missing = |key: &str| format!("device {position} has no {key:?}");
        let bad = |key: &str, what: &str| format!("device {position}: {key:?} must be {what}");
        let int = |key: &str| -> Result<Option<i64>, String> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| bad(key, "an integer")),
            }
        };
        let string = |key: &str| -> Result<Option<String>, String> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .map(|s| Some(s.to_owned()))
                    .ok_or_else(|| bad(key, "a string")),
            }
        };
        let port = |key: &str, v: i64| -> Result<u16, String> {
            u16::try_from(v).map_err(|_| bad(key, "a port number (0-65535)"))
        };
        let id = int("id")?.ok_or_else(|| missing("id"))?;
        if usize::try_from(id).ok() != Some(position) {
            return Err(format!(
                "device at position {position} has id {id}: a ring's device ids are their positions"
            ));
        }
        let ip = string("ip")?.ok_or_else(|| missing("ip"))?;
        let port_value = port("port", int("port")?.ok_or_else(|| missing("port"))?)?;
        let replication_port = match int("replication_port")? {
            Some(v) => port("replication_port", v)?,
            None => port_value,
        };
        let weight = match obj.get("weight") {
            None => 0.0,
            Some(v) => v.as_f64().ok_or_else(|| bad("weight", "a number"))?,
        };
        Ok(Device {
            id: u32::try_from(id).map_err(|_| bad("id", "a device id"))?,
            region: int("region")?.ok_or_else(|| missing("region"))?,
            zone: int("zone")?.ok_or_else(|| missing("zone"))?,
            replication_ip: string("replication_ip")?.unwrap_or_else(|| ip.clone()),
            ip,
            port: port_value,
            replication_port,
            device: string("device")?.ok_or_else(|| missing("device"))?,
            weight,
            meta: string("meta")?.unwrap_or_default(),
        })
    }
}

/// Where a node stands for its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    /// A primary; the value is Swift's `index`, its position in the primaries.
    Primary(usize),
    /// A handoff; the value is Swift's `handoff_index`, its position in the
    /// handoff sequence.
    Handoff(usize),
}

/// A device chosen for a partition, as `get_part_nodes` and
/// `get_more_nodes` return it: the device (reachable through `Deref`, so
/// `node.ip`, `node.port`, `node.device`) and its role.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    dev: Rc<Device>,
    /// Primary with its `index`, or handoff with its `handoff_index`.
    pub role: NodeRole,
}

impl Node {
    pub(crate) fn new(dev: Rc<Device>, role: NodeRole) -> Self {
        Node { dev, role }
    }

    /// The device.
    pub fn dev(&self) -> &Rc<Device> {
        &self.dev
    }

    /// Swift's `node['index']`: the position among the primaries, for a primary.
    pub fn index(&self) -> Option<usize> {
        match self.role {
            NodeRole::Primary(i) => Some(i),
            NodeRole::Handoff(_) => None,
        }
    }

    /// Swift's `node['handoff_index']`, for a handoff.
    pub fn handoff_index(&self) -> Option<usize> {
        match self.role {
            NodeRole::Handoff(i) => Some(i),
            NodeRole::Primary(_) => None,
        }
    }

    /// Whether this node is a handoff.
    pub fn is_handoff(&self) -> bool {
        matches!(self.role, NodeRole::Handoff(_))
    }
}

impl Deref for Node {
    type Target = Device;
    fn deref(&self) -> &Device {
        &self.dev
    }
}

/// Swift's `replica2part2dev_id`: one row per replica, each a device id per
/// partition; the last row may be shorter (a fractional replica count).
/// Ids are kept at the width the file used, as Swift's arrays do.
#[derive(Clone, Debug, PartialEq)]
pub enum Table {
    /// 2-byte ids (every v1 ring, most v2 rings); `0xffff` is unassigned.
    Narrow(Vec<Vec<u16>>),
    /// 4-byte ids (v2 rings with device ids past 65534); `0xffffffff` is
    /// unassigned.
    Wide(Vec<Vec<u32>>),
}

impl Table {
    /// Number of replica rows.
    pub fn rows(&self) -> usize {
        match self {
            Table::Narrow(t) => t.len(),
            Table::Wide(t) => t.len(),
        }
    }

    /// Length of one row (0 past the last row).
    pub fn row_len(&self, row: usize) -> usize {
        match self {
            Table::Narrow(t) => t.get(row).map_or(0, Vec::len),
            Table::Wide(t) => t.get(row).map_or(0, Vec::len),
        }
    }

    /// The width of an id in bytes (2 or 4).
    pub fn dev_id_bytes(&self) -> u8 {
        match self {
            Table::Narrow(_) => 2,
            Table::Wide(_) => 4,
        }
    }

    /// The device assigned to `part` in `row`: `None` past the row's end or
    /// where the id is the "unassigned" value (`none_dev_id`).
    #[inline]
    pub fn get(&self, row: usize, part: usize) -> Option<u32> {
        match self {
            Table::Narrow(t) => match t.get(row)?.get(part) {
                Some(&u16::MAX) | None => None,
                Some(&id) => Some(u32::from(id)),
            },
            Table::Wide(t) => match t.get(row)?.get(part) {
                Some(&u32::MAX) | None => None,
                Some(&id) => Some(id),
            },
        }
    }

    /// Every assigned id with its row and partition.
    fn assigned(&self) -> Box<dyn Iterator<Item = (usize, usize, u32)> + '_> {
        match self {
            Table::Narrow(t) => Box::new(t.iter().enumerate().flat_map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .filter(|&(_, &id)| id != u16::MAX)
                    .map(move |(p, &id)| (r, p, u32::from(id)))
            })),
            Table::Wide(t) => Box::new(t.iter().enumerate().flat_map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .filter(|&(_, &id)| id != u32::MAX)
                    .map(move |(p, &id)| (r, p, id))
            })),
        }
    }
}

/// A device's failure domains as small ids: `(region)`, `(region, zone)`,
/// `(region, zone, ip)` each numbered, so the handoff walk compares
/// integers (the numbering is a bijection with Swift's tuples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tiers {
    pub region: u32,
    pub zone: u32,
    pub ip: u32,
}

/// A loaded ring. Built only through validation, so every assigned id in
/// the table names a device that exists.
#[derive(Debug)]
pub struct RingData {
    devs: Vec<Option<Rc<Device>>>,
    tiers: Vec<Option<Tiers>>,
    table: Table,
    part_shift: u32,
    version: Option<u64>,
    next_part_power: Option<u32>,
    format_version: u16,
    num_devs: usize,
    num_weighted_devs: usize,
    pub(crate) num_assigned_devs: usize,
    pub(crate) num_regions: usize,
    pub(crate) num_zones: usize,
    pub(crate) num_ips: usize,
}

/// What a file (or a test) provides to build a [`RingData`].
#[derive(Clone, Debug)]
pub struct RingParts {
    /// `devs`, `None` for a removed device.
    pub devs: Vec<Option<Device>>,
    pub table: Table,
    /// `32 - part_power`.
    pub part_shift: u32,
    pub version: Option<u64>,
    pub next_part_power: Option<u32>,
    /// 1 or 2, the file format it came from (informational).
    pub format_version: u16,
}

impl RingData {
    /// Validate `parts` and derive the lookup data. `Err` says what is
    /// wrong: a `part_shift` past 32, no rows, a row of the wrong length, or
    /// an assignment to a device that does not exist.
    pub fn new(parts: RingParts) -> Result<RingData, String> {
        let RingParts {
            devs,
            table,
            part_shift,
            version,
            next_part_power,
            format_version,
        } = parts;
        if part_shift > 32 {
            return Err(format!("part_shift {part_shift} is out of range (0-32)"));
        }
        let partition_count = 1usize << (32 - part_shift);
        let rows = table.rows();
        if rows == 0 || table.row_len(0) == 0 {
            return Err("the ring assigns no partitions (no replica rows)".to_owned());
        }
        for row in 0..rows {
            let len = table.row_len(row);
            let full = len == partition_count;
            if !full && (row + 1 < rows || len == 0 || len > partition_count) {
                return Err(format!(
                    "replica row {row} has {len} partitions, expected {partition_count} \
                     (part_shift {part_shift})"
                ));
            }
        }
        let mut assigned = vec![false; devs.len()];
        for (row, part, id) in table.assigned() {
            let slot = usize::try_from(id).ok().filter(|&i| i < devs.len());
            match slot {
                None => {
                    return Err(format!(
                        "replica {row} of partition {part} is assigned to device {id}, \
                         which is out of range ({} devices)",
                        devs.len()
                    ));
                }
                Some(i) if devs[i].is_none() => {
                    return Err(format!(
                        "replica {row} of partition {part} is assigned to device {id}, \
                         which was removed from the ring"
                    ));
                }
                Some(i) => assigned[i] = true,
            }
        }
        // Swift's _update_bookkeeping: only devices that own partitions
        // count towards the regions, zones and ips the handoff walk can reach.
        let mut regions: HashMap<i64, u32> = HashMap::new();
        let mut zones: HashMap<(i64, i64), u32> = HashMap::new();
        let mut ips: HashMap<(i64, i64, &str), u32> = HashMap::new();
        let mut counted: [HashSet<u32>; 3] = Default::default();
        let mut tiers = Vec::with_capacity(devs.len());
        let (mut num_devs, mut num_weighted_devs, mut num_assigned_devs) = (0, 0, 0);
        for (i, dev) in devs.iter().enumerate() {
            let Some(dev) = dev else {
                tiers.push(None);
                continue;
            };
            num_devs += 1;
            if dev.weight > 0.0 {
                num_weighted_devs += 1;
            }
            let t = Tiers {
                region: number(&mut regions, dev.region),
                zone: number(&mut zones, (dev.region, dev.zone)),
                ip: number(&mut ips, (dev.region, dev.zone, dev.ip.as_str())),
            };
            if assigned[i] {
                num_assigned_devs += 1;
                counted[0].insert(t.region);
                counted[1].insert(t.zone);
                counted[2].insert(t.ip);
            }
            tiers.push(Some(t));
        }
        Ok(RingData {
            devs: devs.into_iter().map(|d| d.map(Rc::new)).collect(),
            tiers,
            table,
            part_shift,
            version,
            next_part_power,
            format_version,
            num_devs,
            num_weighted_devs,
            num_assigned_devs,
            num_regions: counted[0].len(),
            num_zones: counted[1].len(),
            num_ips: counted[2].len(),
        })
    }

    /// The partition of a `hash_path` digest: its first four bytes, big
    /// endian, shifted right by `part_shift`.
    pub fn part_for_hash(&self, digest: &[u8; 16]) -> usize {
        let top = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        // A shift of 32 (part power 0) is legal: every name is partition 0.
        usize::try_from(u64::from(top) >> self.part_shift).unwrap_or(0)
    }

    /// Swift's `_get_part_nodes`: the primaries of `part`, one per row that
    /// covers it, each device once, with `index` their position. Empty for
    /// a partition past the ring's end.
    pub fn get_part_nodes(&self, part: usize) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::with_capacity(self.table.rows());
        for row in 0..self.table.rows() {
            let Some(id) = self.table.get(row, part) else {
                continue;
            };
            if nodes.iter().any(|n| n.id == id) {
                continue;
            }
            if let Some(dev) = self.device(id) {
                let index = nodes.len();
                nodes.push(Node::new(Rc::clone(dev), NodeRole::Primary(index)));
            }
        }
        nodes
    }

    /// Swift's `get_more_nodes`: the handoffs of `part`, lazily, in Swift's
    /// exact order (see [`MoreNodes`]).
    pub fn get_more_nodes(self: &Rc<Self>, part: usize) -> MoreNodes {
        MoreNodes::new(Rc::clone(self), part)
    }

    /// The device with this id, if it exists (not removed).
    pub fn device(&self, id: u32) -> Option<&Rc<Device>> {
        self.devs.get(usize::try_from(id).ok()?)?.as_ref()
    }

    pub(crate) fn tiers(&self, id: u32) -> Option<Tiers> {
        *self.tiers.get(usize::try_from(id).ok()?)?
    }

    /// Swift's `devs`: every device by id, `None` where one was removed.
    pub fn devs(&self) -> &[Option<Rc<Device>>] {
        &self.devs
    }

    /// The replica-to-partition-to-device table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Swift's `replica_count`: full rows plus the fraction of the last one
    /// (2.5 for two full rows and a half one).
    pub fn replica_count(&self) -> f64 {
        let rows = self.table.rows();
        let first = self.table.row_len(0);
        let last = self.table.row_len(rows.saturating_sub(1));
        // Row lengths are at most 2**32, exactly representable in an f64.
        #[allow(clippy::cast_precision_loss)]
        let extra = last as f64 / first as f64;
        #[allow(clippy::cast_precision_loss)]
        let base = rows.saturating_sub(1) as f64;
        base + extra
    }

    /// Swift's `partition_count`: the length of the first row.
    pub fn partition_count(&self) -> usize {
        self.table.row_len(0)
    }

    /// `32 - part_shift`.
    pub fn part_power(&self) -> u32 {
        32 - self.part_shift
    }

    /// The shift that turns a hash into a partition.
    pub fn part_shift(&self) -> u32 {
        self.part_shift
    }

    /// The builder's version counter, if the file has one.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The part power a partition power increase is moving to, if any.
    pub fn next_part_power(&self) -> Option<u32> {
        self.next_part_power
    }

    /// The file format the ring came from (1 or 2).
    pub fn format_version(&self) -> u16 {
        self.format_version
    }

    /// 2 or 4: the width of the device ids in the table.
    pub fn dev_id_bytes(&self) -> u8 {
        self.table.dev_id_bytes()
    }

    /// Swift's `device_count`: devices present (not removed).
    pub fn device_count(&self) -> usize {
        self.num_devs
    }

    /// Swift's `weighted_device_count`: devices with a weight above 0.
    pub fn weighted_device_count(&self) -> usize {
        self.num_weighted_devs
    }

    /// Swift's `assigned_device_count`: devices owning at least one partition.
    pub fn assigned_device_count(&self) -> usize {
        self.num_assigned_devs
    }
}

/// The number of `key` in `ids`, numbering new keys in order of appearance.
fn number<K: Eq + Hash>(ids: &mut HashMap<K, u32>, key: K) -> u32 {
    let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    *ids.entry(key).or_insert(next)
}
