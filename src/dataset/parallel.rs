//! Work over a data set's pages on rayon's worker threads, with the results handed back
//! in the pages' own order, so that what is built from them (the training sample order,
//! the lists `check` prints) is the same whatever the thread count.

use rayon::prelude::*;

/// Items handed to the workers at a time, per thread: enough to keep every thread busy
/// between hand-overs, few enough that only this many results wait in memory.
const ITEMS_PER_THREAD: usize = 8;

/// Runs `work` on every item on the current rayon pool and calls `each` with the item's
/// index and result, in the items' order, on the calling thread.
pub fn map_ordered<I, T>(items: &[I], work: impl Fn(&I) -> T + Sync, mut each: impl FnMut(usize, T))
where
    I: Sync,
    T: Send,
{
    let chunk = ITEMS_PER_THREAD * rayon::current_num_threads();
    for (c, group) in items.chunks(chunk).enumerate() {
        // An indexed parallel collect keeps the order of `group`.
        let results: Vec<T> = group.par_iter().map(&work).collect();
        for (i, result) in results.into_iter().enumerate() {
            each(c * chunk + i, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_from_many_threads() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let items: Vec<u64> = (0..1000).collect();
        let mut seen = Vec::new();
        let threads = std::sync::Mutex::new(std::collections::HashSet::new());
        pool.install(|| {
            map_ordered(
                &items,
                |&x| {
                    threads.lock().unwrap().insert(std::thread::current().id());
                    // Uneven work, so that finishing order differs from item order.
                    std::thread::sleep(std::time::Duration::from_micros((x * 7919) % 300));
                    x * x
                },
                |i, square| seen.push((i, square)),
            )
        });
        let expected: Vec<(usize, u64)> = items.iter().map(|&x| (x as usize, x * x)).collect();
        assert_eq!(seen, expected);
        assert!(threads.into_inner().unwrap().len() > 1, "the work was spread over threads");
    }
}
