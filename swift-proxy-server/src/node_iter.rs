//! Which storage nodes a request goes to, in which order: Swift's
//! `NodeIter` (the partition's primaries, shuffled, then its handoffs in
//! ring order, skipping error-limited nodes, at most `request_node_count`
//! of them) and `ErrorLimiter` (a node with more than
//! `error_suppression_limit` errors, the last one less than
//! `error_suppression_interval` ago, is skipped; a 507 limits at once).
//!
//! The limiter is per worker and shared by all its connections; logging
//! what happened to a node is the caller's job (it knows the request),
//! which may also ask to hear of handoffs beyond the expected ones
//! (Swift's `log_handoffs`).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::rc::Rc;
use std::time::Instant;

use swift_common::http::trans_id::random_u64;
use swift_common::ring::{Device, Node as RingNode, Ring};

/// A storage node as a request sees it: the ring's device (shared with the
/// ring, not copied per request; its fields through `Deref`, so `node.ip`,
/// `node.device`) and the node's position for this partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    dev: Rc<Device>,
    /// Position among the primaries; `None` for a handoff.
    pub index: Option<usize>,
    /// Position among the handoffs; `None` for a primary.
    pub handoff_index: Option<usize>,
}

impl Deref for Node {
    type Target = Device;
    fn deref(&self) -> &Device {
        &self.dev
    }
}

impl Node {
    /// Swift's `node_to_string`: `ip:port/device` (the error limiter's key
    /// and what logs name).
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            swift_common::http::client::host_port(&self.ip, self.port),
            self.device
        )
    }

    /// `ip:port` as the `X-*-Host` headers carry it.
    pub fn host(&self) -> String {
        use std::fmt::Write as _;
        let mut host = String::with_capacity(self.ip.len() + 6);
        host.push_str(&self.ip);
        host.push(':');
        let _ = write!(host, "{}", self.port);
        host
    }

    pub fn is_handoff(&self) -> bool {
        self.handoff_index.is_some()
    }

    fn from_ring(n: &RingNode) -> Node {
        Node {
            dev: n.dev().clone(),
            index: n.index(),
            handoff_index: n.handoff_index(),
        }
    }
}

/// The primaries of `part` in `ring`, in ring order.
pub fn primaries(ring: &Ring, part: usize) -> Vec<Node> {
    ring.get_part_nodes(part)
        .iter()
        .map(Node::from_ring)
        .collect()
}

/// The handoffs of `part` in `ring`, in ring order.
pub fn handoffs(ring: &Ring, part: usize) -> Box<dyn Iterator<Item = Node>> {
    Box::new(ring.get_more_nodes(part).map(|n| Node::from_ring(&n)))
}

/// Per-node error counts (Swift's `ErrorLimiter`).
#[derive(Debug)]
pub struct ErrorLimiter {
    interval: f64,
    limit: u32,
    stats: RefCell<HashMap<String, (u32, Instant)>>,
}

impl ErrorLimiter {
    /// How long a limited node stays limited, in seconds.
    pub fn interval(&self) -> f64 {
        self.interval
    }

    pub fn new(interval_secs: f64, limit: u32) -> ErrorLimiter {
        ErrorLimiter {
            interval: interval_secs,
            limit,
            stats: RefCell::new(HashMap::new()),
        }
    }

    /// Whether `node` is skipped now.
    pub fn is_limited(&self, node: &Node) -> bool {
        // Most of the time no node has an error: no key to make.
        if self.stats.borrow().is_empty() {
            return false;
        }
        let key = node.key();
        let mut stats = self.stats.borrow_mut();
        let Some((errors, last)) = stats.get(&key).copied() else {
            return false;
        };
        if last.elapsed().as_secs_f64() > self.interval {
            stats.remove(&key);
            return false;
        }
        errors > self.limit
    }

    /// Limit `node` at once (507 Insufficient Storage).
    pub fn limit(&self, node: &Node) {
        self.stats
            .borrow_mut()
            .insert(node.key(), (self.limit + 1, Instant::now()));
    }

    /// Count an error; true when this one crosses the limit (the moment to
    /// log "Node error limited").
    pub fn increment(&self, node: &Node) -> bool {
        let mut stats = self.stats.borrow_mut();
        let entry = stats.entry(node.key()).or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
        entry.0 == self.limit + 1
    }
}

/// `request_node_count`: `N`, or `N * replicas`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RequestNodeCount {
    Fixed(usize),
    TimesReplicas(usize),
}

impl RequestNodeCount {
    /// Parse Swift's `config_request_node_count_value`.
    pub fn parse(value: &str) -> Result<RequestNodeCount, String> {
        let words: Vec<&str> = value.split_whitespace().collect();
        let bad = || format!("Invalid request_node_count value: {value:?}");
        match words.as_slice() {
            [n] => n.parse().map(RequestNodeCount::Fixed).map_err(|_| bad()),
            [n, "*", r] if r.eq_ignore_ascii_case("replicas") => n
                .parse()
                .map(RequestNodeCount::TimesReplicas)
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    pub fn for_replicas(&self, replicas: usize) -> usize {
        match *self {
            RequestNodeCount::Fixed(n) => n,
            RequestNodeCount::TimesReplicas(n) => n * replicas,
        }
    }
}

/// Swift's `NodeIter`. Shared by the concurrent requests of one client
/// request (behind `Rc<RefCell<..>>`); never borrowed across an await.
pub struct NodeIter {
    primaries: VecDeque<Node>,
    handoffs: Box<dyn Iterator<Item = Node>>,
    nodes_left: usize,
    /// The node handed out last, counted against `nodes_left` when the next
    /// is asked for, unless it got error-limited meanwhile.
    pending: Option<Node>,
    limiter: Rc<ErrorLimiter>,
    pub num_primaries: usize,
    /// Handoffs handed out so far.
    pub handoffs_used: usize,
    /// Handoffs a request normally asks for (`request_node_count` minus
    /// the primaries); more means primaries were skipped.
    expected_handoffs: usize,
    /// Told the number of handoffs handed out when it goes past
    /// `expected_handoffs` (Swift's `log_handoffs`).
    on_extra_handoff: Option<Box<dyn Fn(usize)>>,
}

impl NodeIter {
    /// The nodes of `part`: `primaries` shuffled, then `handoffs`.
    pub fn new(
        mut primaries: Vec<Node>,
        handoffs: Box<dyn Iterator<Item = Node>>,
        request_node_count: usize,
        limiter: Rc<ErrorLimiter>,
    ) -> NodeIter {
        shuffle(&mut primaries);
        NodeIter::ordered(primaries, handoffs, request_node_count, limiter)
    }

    /// As [`NodeIter::new`], keeping the primaries' order.
    pub fn ordered(
        primaries: Vec<Node>,
        handoffs: Box<dyn Iterator<Item = Node>>,
        request_node_count: usize,
        limiter: Rc<ErrorLimiter>,
    ) -> NodeIter {
        NodeIter {
            num_primaries: primaries.len(),
            expected_handoffs: request_node_count.saturating_sub(primaries.len()),
            primaries: primaries.into(),
            handoffs,
            nodes_left: request_node_count,
            pending: None,
            limiter,
            handoffs_used: 0,
            on_extra_handoff: None,
        }
    }

    /// Call `f` with the number of handoffs handed out whenever one goes
    /// past those a request normally uses (Swift logs `Handoff requested
    /// (N)` then).
    pub fn on_extra_handoff(&mut self, f: Box<dyn Fn(usize)>) {
        self.on_extra_handoff = Some(f);
    }

    /// The primaries not handed out yet.
    pub fn primaries_left(&self) -> usize {
        self.primaries.len()
    }

    /// Take up to `n` handoffs straight from the ring order, bypassing the
    /// count (Swift's `islice(node_iter.handoff_iter, n)`).
    pub fn take_handoffs(&mut self, n: usize) -> Vec<Node> {
        self.handoffs.by_ref().take(n).collect()
    }

    fn settle_pending(&mut self) -> bool {
        if let Some(prev) = self.pending.take()
            && !self.limiter.is_limited(&prev)
        {
            self.nodes_left = self.nodes_left.saturating_sub(1);
        }
        self.nodes_left > 0
    }
}

impl Iterator for NodeIter {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        if !self.settle_pending() {
            return None;
        }
        while let Some(node) = self.primaries.pop_front() {
            if !self.limiter.is_limited(&node) {
                self.pending = Some(node.clone());
                return Some(node);
            }
        }
        for node in self.handoffs.by_ref() {
            if !self.limiter.is_limited(&node) {
                self.handoffs_used += 1;
                if self.handoffs_used > self.expected_handoffs
                    && let Some(f) = &self.on_extra_handoff
                {
                    f(self.handoffs_used);
                }
                self.pending = Some(node.clone());
                return Some(node);
            }
        }
        None
    }
}

/// A shared node iterator.
pub type SharedNodes = Rc<RefCell<NodeIter>>;

/// The next node of a shared iterator.
pub fn next_node(nodes: &SharedNodes) -> Option<Node> {
    nodes.borrow_mut().next()
}

/// Fisher-Yates with the trans-id generator's randomness.
pub fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (random_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u32, handoff: bool) -> Node {
        Node {
            dev: Rc::new(Device {
                id: i,
                ip: "127.0.0.1".into(),
                port: 6000 + i as u16,
                replication_ip: "127.0.0.1".into(),
                replication_port: 6000 + i as u16,
                device: format!("d{i}"),
                region: 1,
                zone: 1,
                weight: 1.0,
                meta: String::new(),
            }),
            index: (!handoff).then_some(i as usize),
            handoff_index: handoff.then_some(i as usize),
        }
    }

    #[test]
    fn skips_limited_nodes_and_stops_at_the_count() {
        let limiter = Rc::new(ErrorLimiter::new(60.0, 1));
        let p = vec![node(0, false), node(1, false), node(2, false)];
        let h: Vec<Node> = (3..8).map(|i| node(i, true)).collect();
        limiter.limit(&p[1]);
        let it = NodeIter::ordered(p, Box::new(h.into_iter()), 4, limiter.clone());
        let ids: Vec<u32> = it.map(|n| n.id).collect();
        assert_eq!(ids, vec![0, 2, 3, 4]);
    }

    #[test]
    fn a_node_limited_after_use_gives_an_extra_one() {
        let limiter = Rc::new(ErrorLimiter::new(60.0, 0));
        let p = vec![node(0, false), node(1, false)];
        let h: Vec<Node> = (2..6).map(|i| node(i, true)).collect();
        let mut it = NodeIter::ordered(p, Box::new(h.into_iter()), 2, limiter.clone());
        let first = it.next().unwrap();
        assert!(limiter.increment(&first));
        assert_eq!(it.next().unwrap().id, 1);
        assert_eq!(it.next().unwrap().id, 2);
        assert!(it.next().is_none());
    }

    #[test]
    fn handoffs_past_the_expected_ones_are_reported() {
        let limiter = Rc::new(ErrorLimiter::new(60.0, 1));
        let p = vec![node(0, false), node(1, false), node(2, false)];
        let h: Vec<Node> = (3..6).map(|i| node(i, true)).collect();
        let seen = Rc::new(RefCell::new(Vec::new()));
        // request_node_count = replicas: no handoff expected.
        let mut it = NodeIter::ordered(
            p.clone(),
            Box::new(h.clone().into_iter()),
            3,
            limiter.clone(),
        );
        let s = seen.clone();
        it.on_extra_handoff(Box::new(move |n| s.borrow_mut().push(n)));
        limiter.limit(&p[1]);
        let ids: Vec<u32> = it.map(|n| n.id).collect();
        assert_eq!(ids, vec![0, 2, 3]);
        assert_eq!(*seen.borrow(), vec![1]);
        // 2 * replicas: three handoffs are expected, the first is not news.
        seen.borrow_mut().clear();
        let mut it = NodeIter::ordered(p, Box::new(h.into_iter()), 6, limiter);
        let s = seen.clone();
        it.on_extra_handoff(Box::new(move |n| s.borrow_mut().push(n)));
        assert_eq!(it.count(), 5);
        assert!(seen.borrow().is_empty());
    }

    #[test]
    fn request_node_count_parses_like_swift() {
        assert_eq!(
            RequestNodeCount::parse("2 * replicas")
                .unwrap()
                .for_replicas(3),
            6
        );
        assert_eq!(RequestNodeCount::parse("5").unwrap().for_replicas(3), 5);
        assert!(RequestNodeCount::parse("x * replicas").is_err());
    }
}
