//! Pure per-document work of a page spread over the machine's cores, the results in input
//! order: the output is the same, byte for byte, as on one thread. Small pages stay on the
//! calling thread (a thread costs more than it saves there).

use std::num::NonZeroUsize;
use std::sync::OnceLock;

/// Below this many items a page is worked on the calling thread alone.
const MIN_PER_THREAD: usize = 64;

/// The threads a page may use: `FACTO_THREADS` when set (1: the run's own thread only),
/// otherwise the machine's cores, at most 8.
fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(NonZeroUsize::get)
            .unwrap_or(1)
            .min(8);
        match std::env::var("FACTO_THREADS") {
            Err(_) => cores,
            Ok(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    tracing::warn!(value = %v, cores, "FACTO_THREADS is not a number from 1 to 64; the machine's cores are used.");
                    cores
                }
            },
        }
    })
}

/// `f` applied to every item, in order; contiguous slices of `items` are worked on scoped
/// threads, the first on the caller's.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let n = threads().min(items.len() / MIN_PER_THREAD).max(1);
    if n == 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let per = items.len().div_ceil(n);
    let f = &f;
    let work = |start: usize, slice: &[T]| -> Vec<R> {
        slice
            .iter()
            .enumerate()
            .map(|(i, t)| f(start + i, t))
            .collect()
    };
    std::thread::scope(|s| {
        let mut chunks = items.chunks(per).enumerate();
        let first = chunks.next();
        let others: Vec<_> = chunks
            .map(|(k, slice)| s.spawn(move || work(k * per, slice)))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        if let Some((_, slice)) = first {
            out.extend(work(0, slice));
        }
        for h in others {
            match h.join() {
                Ok(v) => out.extend(v),
                // A panic in `f` is a bug: it surfaces here as it would have on one thread.
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_input_order_at_every_size() {
        for len in [0, 1, 63, 64, 129, 1000, 4097] {
            let items: Vec<u64> = (0..len).collect();
            let out = map(&items, |i, v| (i as u64, v * 3));
            assert_eq!(out.len(), items.len());
            for (i, (idx, v)) in out.iter().enumerate() {
                assert_eq!(*idx, i as u64);
                assert_eq!(*v, items[i] * 3);
            }
        }
    }
}
