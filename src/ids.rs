//! Identities: agents, processes and conversations, the maps keyed by them, and the hash
//! table of recently found values ([`RecentTable`]) that the caches of names build on.
//!
//! Agent and process identities are random UUIDs, unique without coordination and stable
//! across reconnections. Conversation ids are counters, unique within the requesting node.
//! Maps keyed by identities a peer sends use a keyed hasher ([`IdMap`]); only this node's
//! own conversation ids use the cheap unkeyed one ([`ConversationMap`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh random identity.
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// The identity as a UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }

            /// Wraps an existing UUID (for identities that arrive from elsewhere).
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// The unique identity of one service agent; stable across reconnections.
    AgentId
);
uuid_id!(
    /// The unique identity of one process (node).
    ProcessId
);

/// Correlates a request with its response or failure. Unique within the requesting node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ConversationId(pub(crate) u64);

impl ConversationId {
    /// The numeric value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A hasher for maps keyed by this node's own conversation ids: they are distinct counters,
/// so their bits need no mixing beyond a multiply, which avoids SipHash on every call. Not for
/// keys a peer can choose (agent ids and names come from the wire: see [`IdMap`]), since
/// colliding keys for it are trivial to compute.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64)
    }
}

/// A `HashMap` keyed by this node's conversation ids, with [`IdHasher`].
pub(crate) type ConversationMap<V> =
    std::collections::HashMap<ConversationId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A `HashMap` keyed by identities received from peers (agent ids): keyed SipHash with a
/// random key per map (std's `RandomState`), so that a peer cannot compute ids that collide
/// and turn the route tables into lists (a hash flood).
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V>;

/// A value that carries the agent id it is kept under in an [`AgentTable`].
pub(crate) trait ByAgent {
    /// The agent this value is about.
    fn agent_key(&self) -> AgentId;
}

/// A hash table of values keyed by the agent id each of them carries (a binding, or an
/// entry holding one), hashed as an [`IdMap`] is (keyed SipHash, random key per table).
///
/// It keeps no copy of the key: an [`IdMap`] of bindings spends 24 bytes a slot, this table
/// 8; a node holding a hundred thousand services keeps three such tables (routes, announcer,
/// registry). A lookup compares the ids of the values whose hash tag matches, which reads
/// through the binding's pointer.
pub(crate) struct AgentTable<V> {
    table: hashbrown::HashTable<V>,
    hasher: std::hash::RandomState,
}

impl<V> Default for AgentTable<V> {
    fn default() -> Self {
        AgentTable {
            table: hashbrown::HashTable::new(),
            hasher: std::hash::RandomState::new(),
        }
    }
}

impl<V: ByAgent> AgentTable<V> {
    fn hash(hasher: &std::hash::RandomState, agent: AgentId) -> u64 {
        std::hash::BuildHasher::hash_one(hasher, agent)
    }

    /// The value of `agent`.
    pub(crate) fn get(&self, agent: &AgentId) -> Option<&V> {
        let hash = Self::hash(&self.hasher, *agent);
        self.table.find(hash, |v| v.agent_key() == *agent)
    }

    /// The value of `agent`, to change (not its agent).
    pub(crate) fn get_mut(&mut self, agent: &AgentId) -> Option<&mut V> {
        let hash = Self::hash(&self.hasher, *agent);
        self.table.find_mut(hash, |v| v.agent_key() == *agent)
    }

    /// Whether `agent` has a value.
    pub(crate) fn contains(&self, agent: &AgentId) -> bool {
        self.get(agent).is_some()
    }

    /// Keeps `value` under its agent; returns the value it replaced.
    pub(crate) fn insert(&mut self, value: V) -> Option<V> {
        let agent = value.agent_key();
        let hasher = &self.hasher;
        let hash = Self::hash(hasher, agent);
        match self.table.entry(
            hash,
            |v| v.agent_key() == agent,
            |v| Self::hash(hasher, v.agent_key()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                Some(std::mem::replace(slot.get_mut(), value))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(value);
                None
            }
        }
    }

    /// Removes the value of `agent`.
    pub(crate) fn remove(&mut self, agent: &AgentId) -> Option<V> {
        let hash = Self::hash(&self.hasher, *agent);
        match self.table.find_entry(hash, |v| v.agent_key() == *agent) {
            Ok(slot) => Some(slot.remove().0),
            Err(_) => None,
        }
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.table.iter()
    }
}

/// A hash table that remembers where the value found last is and checks it first, without
/// hashing: a stream of frames or reports repeats its keys, one at a time or by turns. Keyed
/// SipHash with a random key per table by default (for keys a peer sends); a table of a
/// service's own keys may take a faster hasher. Values are found by a key and a test of the
/// value; where one is (a slot) stays valid until the next insertion or clearing.
pub(crate) struct RecentTable<T, S = std::hash::RandomState> {
    table: hashbrown::HashTable<T>,
    hasher: S,
    last: Option<usize>,
}

impl<T, S: Default> Default for RecentTable<T, S> {
    fn default() -> Self {
        RecentTable {
            table: hashbrown::HashTable::new(),
            hasher: S::default(),
            last: None,
        }
    }
}

impl<T, S: std::hash::BuildHasher> RecentTable<T, S> {
    /// The hash of `key`, as [`RecentTable::find`] computes it.
    #[inline]
    pub(crate) fn hash<K: std::hash::Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Where the value `is` picks is, among those whose key hashes as `key` does: the one
    /// found last is checked first, and `key` is hashed only if it is not that one.
    #[inline]
    pub(crate) fn find<K: std::hash::Hash + ?Sized>(
        &mut self,
        key: &K,
        is: impl Fn(&T) -> bool,
    ) -> Option<usize> {
        let at = match self.last {
            Some(at) if self.table.get_bucket(at).is_some_and(&is) => at,
            _ => self.table.find_bucket_index(self.hash(key), is)?,
        };
        self.last = Some(at);
        Some(at)
    }

    /// Keeps `value`, which no value kept is, under `hash`; `rehash` gives the hash of a kept
    /// value when the table grows. Where it is.
    pub(crate) fn insert(&mut self, hash: u64, value: T, rehash: impl Fn(&S, &T) -> u64) -> usize {
        let hasher = &self.hasher;
        let at = self
            .table
            .insert_unique(hash, value, |v| rehash(hasher, v))
            .bucket_index();
        self.last = Some(at);
        at
    }

    /// The value at `at`, from [`RecentTable::find`] or [`RecentTable::insert`].
    #[inline]
    pub(crate) fn get(&self, at: usize) -> &T {
        self.table.get_bucket(at).expect("a slot just found")
    }

    /// The value at `at`, to change (not its key).
    #[inline]
    pub(crate) fn get_mut(&mut self, at: usize) -> &mut T {
        self.table.get_bucket_mut(at).expect("a slot just found")
    }

    /// How many values are kept.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every value.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.table.iter()
    }

    /// Every value, to change (not its key).
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.table.iter_mut()
    }

    /// Forgets every value.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.last = None;
    }
}

/// Hands out conversation ids, one sequence per node. The ids are a keyed hash (SipHash
/// with a random key per node) of a counter: no two calls in flight get the same id but with
/// a negligible chance (about one in 2^64 per pair), and a peer that saw some ids cannot
/// predict the next, so an answer cannot be forged by guessing its conversation.
///
/// A call to a service of this process takes the count itself ([`ConversationIds::next_local`]):
/// its answer comes back through a channel of this process, never over a link, so there is
/// no answer to forge, and the hash (about a thirtieth of an in-process round trip's
/// instructions; BENCHMARKS.md) is saved. Counts and hashes share the same space without
/// meaning to, so they collide as rarely as two hashes do.
#[derive(Debug)]
pub(crate) struct ConversationIds {
    /// Identifies the node in the per-thread cache.
    owner: u128,
    /// The next block of the counter not yet handed to any thread.
    blocks: AtomicU64,
    /// The node's key.
    key: std::hash::RandomState,
}

/// Ids a thread takes from its node at once, so that a call costs no shared atomic operation.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's current block: (owner node, next count, end of block).
    static ID_CACHE: std::cell::Cell<(u128, u64, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
}

impl ConversationIds {
    pub(crate) fn new(owner: ProcessId) -> Self {
        ConversationIds {
            owner: owner.as_uuid().as_u128(),
            blocks: AtomicU64::new(0),
            key: std::hash::RandomState::new(),
        }
    }

    /// A fresh id: the keyed hash of the next count of this thread's block of the node's
    /// counter (never 0, which stands for "no conversation").
    pub(crate) fn next(&self) -> ConversationId {
        use std::hash::BuildHasher;
        ConversationId(self.key.hash_one(self.count()).max(1))
    }

    /// A fresh id for a call whose answer never crosses a link: the next count itself
    /// (never 0: counts start at 1). See the type's docs.
    pub(crate) fn next_local(&self) -> ConversationId {
        ConversationId(self.count())
    }

    /// The next count of this thread's block of the node's counter.
    fn count(&self) -> u64 {
        ID_CACHE.with(|cache| {
            let (owner, next, end) = cache.get();
            let (next, end) = if owner == self.owner && next < end {
                (next, end)
            } else {
                let start = self.blocks.fetch_add(ID_BLOCK, Ordering::Relaxed) + 1;
                (start, start + ID_BLOCK)
            };
            cache.set((self.owner, next + 1, end));
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(AgentId, &'static str);
    impl ByAgent for Named {
        fn agent_key(&self) -> AgentId {
            self.0
        }
    }

    #[test]
    fn an_agent_table_keeps_one_value_per_agent_through_growth() {
        let mut table = AgentTable::default();
        let agents: Vec<AgentId> = (0..1000).map(|_| AgentId::random()).collect();
        for &agent in &agents {
            assert!(table.insert(Named(agent, "first")).is_none());
        }
        // Replacing gives back the value replaced; the table still holds one per agent.
        let replaced = table.insert(Named(agents[7], "second")).map(|v| v.1);
        assert_eq!(replaced, Some("first"));
        assert_eq!(table.values().count(), agents.len());
        assert_eq!(table.get(&agents[7]).map(|v| v.1), Some("second"));
        if let Some(v) = table.get_mut(&agents[8]) {
            v.1 = "changed";
        }
        assert_eq!(table.get(&agents[8]).map(|v| v.1), Some("changed"));
        for &agent in &agents[..500] {
            assert_eq!(table.remove(&agent).map(|v| v.0), Some(agent));
            assert!(!table.contains(&agent));
        }
        assert!(table.remove(&agents[0]).is_none());
        assert!(!table.contains(&AgentId::random()));
        assert!(agents[500..].iter().all(|a| table.contains(a)));
        assert_eq!(table.values().count(), 500);
    }

    /// Agent ids a peer can compute to collide under an unkeyed multiply hash: the same first
    /// 8 bytes and the same low 32 bits of the last 8, so every one lands in the same bucket
    /// of a table of up to 2^32 entries.
    pub(crate) fn colliding_ids(n: u32) -> Vec<AgentId> {
        (0..n)
            .map(|i| {
                let mut bytes = [7u8; 16];
                bytes[12..16].copy_from_slice(&i.to_le_bytes());
                AgentId::from_uuid(uuid::Uuid::from_bytes(bytes))
            })
            .collect()
    }

    #[test]
    fn maps_keyed_by_received_ids_do_not_let_a_peer_choose_collisions() {
        use std::hash::BuildHasher;
        let ids = colliding_ids(10_000);
        let low = |h: u64| h & 0xffff_ffff;
        // The unkeyed hasher puts them all in one bucket: the flood the keyed map prevents.
        let unkeyed = std::hash::BuildHasherDefault::<IdHasher>::default();
        let buckets: std::collections::HashSet<u64> =
            ids.iter().map(|id| low(unkeyed.hash_one(id))).collect();
        assert_eq!(buckets.len(), 1);
        // The map received ids are kept in spreads them.
        let keyed = IdMap::<AgentId, ()>::default();
        let buckets: std::collections::HashSet<u64> = ids
            .iter()
            .map(|id| low(keyed.hasher().hash_one(id)))
            .collect();
        assert!(buckets.len() > 9_900, "{}", buckets.len());
    }

    #[test]
    fn conversation_ids_are_distinct_and_do_not_follow_a_pattern_a_peer_could_learn() {
        let (a, b) = (
            ConversationIds::new(ProcessId::random()),
            ConversationIds::new(ProcessId::random()),
        );
        let ids: Vec<u64> = (0..100_000).map(|_| a.next().get()).collect();
        let distinct: std::collections::HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(!distinct.contains(&0));
        // Neither a counter nor a fixed stride: the steps between ids are all different.
        let steps: std::collections::HashSet<u64> =
            ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(steps.len() > 99_000, "{}", steps.len());
        // Two nodes count the same way but give other ids.
        assert!((0..1000).all(|_| !distinct.contains(&b.next().get())));
    }

    #[test]
    fn local_conversation_ids_are_counts_never_handed_out_twice() {
        let ids = ConversationIds::new(ProcessId::random());
        let mut counts = Vec::new();
        let mut hashed = std::collections::HashSet::new();
        for i in 0..5_000 {
            // Interleaved with hashed ids, which take their counts from the same sequence.
            if i % 3 == 0 {
                assert!(hashed.insert(ids.next().get()));
            } else {
                counts.push(ids.next_local().get());
            }
        }
        assert!(counts.iter().all(|&c| c != 0));
        assert!(
            counts.windows(2).all(|w| w[0] < w[1]),
            "increasing, so distinct"
        );
        assert!(counts.iter().all(|c| !hashed.contains(c)));
    }
}
