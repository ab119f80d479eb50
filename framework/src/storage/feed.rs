//! Change feeds: how a cache above a store learns, without re-reading every object, exactly
//! which keys were written or deleted since it last looked.
//!
//! Every write of a store with a feed is numbered: one sequence number per committed
//! transaction (a group commit is one transaction), assigned in commit order, with the keys
//! it touched. A reader remembers the number it has seen through and asks
//! [`Storage::changes_since`](super::Storage::changes_since) for what came after:
//! PostgreSQL answers from a change table written in the same transaction as the data (one
//! indexed query, so a write answered by one node is seen by the next request of every other
//! node); SQLite and the in-memory store answer from [`LocalFeed`], in this process's memory,
//! since this process is their only writer.

use std::collections::VecDeque;
use std::sync::Mutex;

/// What changed in a store after a point of its change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// The store keeps no change feed: a cache above it must read every value through.
    Unknown,
    /// The keys written or deleted after the point asked (a key may repeat), through the
    /// point `through` (the newest sequence number).
    Keys {
        /// The newest sequence number these changes reach.
        through: u64,
        /// The keys changed.
        keys: Vec<String>,
    },
    /// The feed no longer reaches back to the point asked (or was reset): anything may
    /// have changed up to `through`.
    Everything {
        /// The newest sequence number.
        through: u64,
    },
}

/// How many changed keys [`LocalFeed`] remembers; a reader further behind is told
/// [`Changes::Everything`].
pub const LOCAL_FEED_KEYS: usize = 65_536;

/// A change feed kept in this process's memory, for stores that only this process writes
/// (SQLite, whose file the server locks, and the in-memory store). Bounded: it remembers
/// the last [`LOCAL_FEED_KEYS`] keys.
#[derive(Default)]
pub struct LocalFeed {
    state: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    /// The newest sequence number.
    head: u64,
    /// Every change after `trimmed` is in `log`.
    trimmed: u64,
    log: VecDeque<(u64, String)>,
}

impl LocalFeed {
    /// An empty feed at sequence number 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one committed transaction that touched `keys` (call after the commit, before
    /// the writer is answered).
    pub fn record<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.head += 1;
        let seq = state.head;
        for key in keys {
            state.log.push_back((seq, key.to_string()));
        }
        while state.log.len() > LOCAL_FEED_KEYS {
            if let Some((dropped, _)) = state.log.pop_front() {
                state.trimmed = state.trimmed.max(dropped);
            }
        }
    }

    /// Records one committed transaction that may have touched any key (a restore): every
    /// reader that asks for changes after an earlier point is told [`Changes::Everything`].
    pub fn record_everything(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.head += 1;
        state.trimmed = state.head;
        state.log.clear();
    }

    /// The changes after `since`.
    pub fn since(&self, since: u64) -> Changes {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let through = state.head;
        if since > through || since < state.trimmed {
            return Changes::Everything { through };
        }
        let start = state.log.partition_point(|(seq, _)| *seq <= since);
        let keys = state.log.range(start..).map(|(_, k)| k.clone()).collect();
        Changes::Keys { through, keys }
    }
}

/// The smallest string greater than every string that starts with `prefix`, in byte
/// (= code point) order: the end of a prefix's range scan. `None` when there is none
/// (an empty prefix, or one of only `char::MAX`).
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000; // surrogates are not chars
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_feed_tells_exactly_what_changed_and_when_it_forgot() {
        let feed = LocalFeed::new();
        assert_eq!(
            feed.since(0),
            Changes::Keys {
                through: 0,
                keys: vec![]
            }
        );
        feed.record(["a", "b"]);
        feed.record(["c"]);
        assert_eq!(
            feed.since(0),
            Changes::Keys {
                through: 2,
                keys: vec!["a".into(), "b".into(), "c".into()]
            }
        );
        assert_eq!(
            feed.since(1),
            Changes::Keys {
                through: 2,
                keys: vec!["c".into()]
            }
        );
        assert_eq!(feed.since(9), Changes::Everything { through: 2 });
        for i in 0..LOCAL_FEED_KEYS {
            feed.record([format!("k{i}").as_str()]);
        }
        assert!(matches!(feed.since(1), Changes::Everything { .. }));
        let head = LOCAL_FEED_KEYS as u64 + 2;
        assert_eq!(
            feed.since(head - 1),
            Changes::Keys {
                through: head,
                keys: vec![format!("k{}", LOCAL_FEED_KEYS - 1)]
            }
        );
    }

    #[test]
    fn the_prefix_successor_bounds_exactly_the_keys_under_the_prefix() {
        assert_eq!(prefix_successor("auth/x/").as_deref(), Some("auth/x0"));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        let end = prefix_successor("p/").unwrap();
        for inside in ["p/", "p/a", "p/\u{10FFFF}\u{10FFFF}", "p/zzz/"] {
            assert!(inside >= "p/" && inside < end.as_str(), "{inside:?}");
        }
        for outside in ["p", "p0", "q", "p.x"] {
            assert!(!(outside >= "p/" && outside < end.as_str()), "{outside:?}");
        }
    }
}
