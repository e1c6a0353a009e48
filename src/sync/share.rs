//! Workers sharing a ledger divide a run's work: each plans and delivers its own share of the
//! documents first (by a hash of the id over the live workers, [`crate::ledger::Ledger::workers`]),
//! and the others' shares after, when their owners have mostly delivered them.
//!
//! Only the order depends on the share, never what is done: a worker still settles every
//! document it read before its cursor moves past it (a document another worker delivered
//! meanwhile is found delivered, one it claimed is left to it, one it never got to is delivered
//! here), and each delivery is still guarded by its claim. So workers that see different
//! members (one starting, one stopping) or a worker gone mid-run lose nothing and send nothing
//! twice: at worst two workers plan the same documents, as if there were no shares.

use std::collections::VecDeque;

use crate::ledger::{Ledger, LedgerError};
use crate::model::Document;
use crate::problem::Problem;

/// The documents of other shares a run keeps at most before it plans the oldest of them.
pub(super) const DEFER_MAX: usize = 2_000;

/// The documents of other shares planned together (a page's worth).
pub(super) const DEFER_PAGE: usize = 500;

/// This worker's share of the documents: those whose id hashes to `index` modulo `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Share {
    index: u64,
    of: u64,
}

impl Default for Share {
    fn default() -> Self {
        Share { index: 0, of: 1 }
    }
}

/// FNV-1a over the id's bytes: the same on every worker, whatever its build or platform.
fn fnv1a(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Share {
    /// This worker's share among the live workers now; everything for a ledger held alone.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(super) fn now(ledger: &dyn Ledger) -> Result<Share, LedgerError> {
        let workers = ledger.workers()?;
        let me = ledger.worker();
        let index = me.and_then(|m| workers.iter().position(|w| *w == m));
        Ok(match (index, u64::try_from(workers.len())) {
            (Some(i), Ok(of)) if of > 1 => Share {
                index: u64::try_from(i).unwrap_or(0),
                of,
            },
            _ => Share::default(),
        })
    }

    /// Whether the document `id` is in this share.
    pub(super) fn mine(&self, id: &str) -> bool {
        self.of <= 1 || fnv1a(id) % self.of == self.index
    }
}

/// A document of another share, read and admitted (its number registered, its duplicates
/// found in read order, as every worker finds them) and planned later.
pub(super) struct Deferred {
    pub(super) doc: Box<Document>,
    pub(super) origin: String,
    pub(super) hash: String,
    /// The number's other owner, when the document duplicates it.
    pub(super) same_number: Option<Problem>,
}

/// The deferred documents of a run, oldest first.
pub(super) type Later = VecDeque<Deferred>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::store::MemStore;
    use crate::ledger::StoreLedger;

    #[test]
    fn each_live_worker_takes_one_share_and_together_they_take_everything() {
        let store = MemStore::default();
        let alone = StoreLedger::on(store.clone()).unwrap();
        assert_eq!(Share::now(&alone).unwrap(), Share::default());
        let (a, b, c) = (
            store.as_worker("a"),
            store.as_worker("b"),
            store.as_worker("c"),
        );
        let shares: Vec<Share> = [a, b, c]
            .into_iter()
            .map(|s| Share::now(&StoreLedger::on(s).unwrap()).unwrap())
            .collect();
        let ids: Vec<String> = (0..3000).map(|i| format!("inv-{i}")).collect();
        for id in &ids {
            assert_eq!(shares.iter().filter(|s| s.mine(id)).count(), 1, "{id}");
        }
        // Near a third each.
        for s in &shares {
            let n = ids.iter().filter(|id| s.mine(id)).count();
            assert!((850..1150).contains(&n), "{s:?}: {n}");
        }
        // One leaves: the two left share everything between them.
        store.leave("c");
        let a = Share::now(&StoreLedger::on(store.as_worker("a")).unwrap()).unwrap();
        assert_eq!(a, Share { index: 0, of: 2 });
        assert_eq!(
            fnv1a("a"),
            0xaf63_dc4c_8601_ec8c,
            "the published FNV-1a of \"a\""
        );
    }
}
