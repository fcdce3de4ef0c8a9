//! The handoff walk: Swift's `Ring.get_more_nodes` as a lazy iterator, in
//! its exact deterministic order. No randomness, no I/O.
//!
//! Swift walks the partitions from a start derived from `md5(str(part))`
//! (stepping by `parts // 65536`, at least 1, wrapping around) four times.
//! For each partition of the walk and each replica row, the first pass takes
//! a device in a region no chosen device is in, the second one in a new
//! (region, zone), the third one on a new (region, zone, ip), the fourth any
//! device not chosen yet. A pass stops as soon as every region (zone, ip,
//! device) that owns partitions has been chosen.

use std::collections::HashSet;
use std::rc::Rc;

use md5::{Digest, Md5};

use super::data::{Node, NodeRole, RingData};

/// The four passes of the walk, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Regions,
    Zones,
    Ips,
    Devices,
    Done,
}

impl Pass {
    fn next(self) -> Pass {
        match self {
            Pass::Regions => Pass::Zones,
            Pass::Zones => Pass::Ips,
            Pass::Ips => Pass::Devices,
            Pass::Devices | Pass::Done => Pass::Done,
        }
    }
}

/// The partitions one pass visits: `range(start, parts, inc)` then
/// `range(inc - ((parts - start) % inc), start, inc)`.
#[derive(Clone, Debug)]
struct Walk {
    start: usize,
    parts: usize,
    inc: usize,
    /// The partition the walk is at; `None` once it is over.
    at: Option<usize>,
    /// Whether the walk is in its second range (the wrap-around).
    wrapped: bool,
}

impl Walk {
    fn new(start: usize, parts: usize, inc: usize) -> Walk {
        let mut walk = Walk {
            start,
            parts,
            inc,
            at: Some(start),
            wrapped: false,
        };
        if start >= parts {
            walk.wrap();
        }
        walk
    }

    fn wrap(&mut self) {
        self.wrapped = true;
        let first = self.inc - (self.parts.saturating_sub(self.start) % self.inc);
        self.at = (first < self.start).then_some(first);
    }

    fn advance(&mut self) {
        let Some(at) = self.at else { return };
        let next = at + self.inc;
        if self.wrapped {
            self.at = (next < self.start).then_some(next);
        } else if next < self.parts {
            self.at = Some(next);
        } else {
            self.wrap();
        }
    }
}

/// The handoffs of one partition, in Swift's order, each a [`Node`] with
/// its `handoff_index`. Holds the ring it was made from, so a reload does
/// not change a walk under way. At most every assigned device is yielded,
/// and each pass visits every partition at most once, so it always ends.
#[derive(Debug)]
pub struct MoreNodes {
    ring: Rc<RingData>,
    used: HashSet<u32>,
    same_regions: HashSet<u32>,
    same_zones: HashSet<u32>,
    same_ips: HashSet<u32>,
    pass: Pass,
    walk: Walk,
    /// The replica row to look at next, at the walk's partition.
    row: usize,
    next_index: usize,
    /// The partition whose walk is set up on the first `next` (most
    /// requests never ask for a handoff); `None` once it is.
    unstarted: Option<usize>,
}

impl MoreNodes {
    pub(crate) fn new(ring: Rc<RingData>, part: usize) -> MoreNodes {
        MoreNodes {
            used: HashSet::new(),
            same_regions: HashSet::new(),
            same_zones: HashSet::new(),
            same_ips: HashSet::new(),
            pass: Pass::Regions,
            walk: Walk::new(0, 0, 1),
            row: 0,
            next_index: 0,
            unstarted: Some(part),
            ring,
        }
    }

    /// The primaries' domains marked as chosen, and the walk's start.
    fn start(&mut self, part: usize) {
        for node in self.ring.get_part_nodes(part) {
            self.choose(node.id);
        }
        let parts = self.ring.partition_count();
        let digest = Md5::digest(part.to_string().as_bytes());
        let start = self.ring.part_for_hash(&digest.into());
        let inc = (parts / 65536).max(1);
        self.walk = Walk::new(start, parts, inc);
        self.start_pass(Pass::Regions);
    }

    /// Mark `id` and its failure domains as chosen.
    fn choose(&mut self, id: u32) {
        self.used.insert(id);
        if let Some(t) = self.ring.tiers(id) {
            self.same_regions.insert(t.region);
            self.same_zones.insert(t.zone);
            self.same_ips.insert(t.ip);
        }
    }

    /// Whether every domain this pass looks for has been chosen (Swift's
    /// `hit_all_regions` and friends).
    fn exhausted(&self, pass: Pass) -> bool {
        let ring = &self.ring;
        match pass {
            Pass::Regions => self.same_regions.len() == ring.num_regions,
            Pass::Zones => self.same_zones.len() == ring.num_zones,
            Pass::Ips => self.same_ips.len() == ring.num_ips,
            Pass::Devices => self.used.len() == ring.num_assigned_devs,
            Pass::Done => true,
        }
    }

    /// Begin `pass` (or a later one, skipping those with nothing left).
    fn start_pass(&mut self, mut pass: Pass) {
        while pass != Pass::Done && self.exhausted(pass) {
            pass = pass.next();
        }
        self.pass = pass;
        self.walk = Walk::new(self.walk.start, self.walk.parts, self.walk.inc);
        self.row = 0;
    }

    /// Whether device `id` is wanted by the current pass.
    fn wanted(&self, id: u32) -> bool {
        if self.used.contains(&id) {
            return false;
        }
        let Some(t) = self.ring.tiers(id) else {
            return false;
        };
        match self.pass {
            Pass::Regions => !self.same_regions.contains(&t.region),
            Pass::Zones => !self.same_zones.contains(&t.zone),
            Pass::Ips => !self.same_ips.contains(&t.ip),
            Pass::Devices => true,
            Pass::Done => false,
        }
    }
}

impl Iterator for MoreNodes {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        if let Some(part) = self.unstarted.take() {
            self.start(part);
        }
        while self.pass != Pass::Done {
            let Some(part) = self.walk.at else {
                self.start_pass(self.pass.next());
                continue;
            };
            let rows = self.ring.table().rows();
            while self.row < rows {
                let row = self.row;
                self.row += 1;
                let Some(id) = self.ring.table().get(row, part) else {
                    continue;
                };
                if !self.wanted(id) {
                    continue;
                }
                let Some(dev) = self.ring.device(id).map(Rc::clone) else {
                    continue;
                };
                self.choose(id);
                let node = Node::new(dev, NodeRole::Handoff(self.next_index));
                self.next_index += 1;
                if self.exhausted(self.pass) {
                    self.start_pass(self.pass.next());
                }
                return Some(node);
            }
            self.walk.advance();
            self.row = 0;
        }
        None
    }
}

impl std::iter::FusedIterator for MoreNodes {}
