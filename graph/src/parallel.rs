//! Work split over the machine's cores, for the few large, pure loops
//! (effective access, Cedar, hashing a sync's rows). Results never depend
//! on the thread count: work is cut into contiguous runs and joined in order.

use std::ops::Range;

/// Threads for `work` units: one below `per_thread_minimum` units a thread
/// (spawning would cost more than it saves), else one a core, at most 8.
pub fn worker_threads(work: usize, per_thread_minimum: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(8);
    (work / per_thread_minimum.max(1)).clamp(1, cores)
}

/// Splits `0..weights.len()` into at most `count` contiguous, non-empty runs
/// of about equal total weight (one empty run when there are no weights).
pub fn balanced_runs(weights: &[usize], count: usize) -> Vec<Range<usize>> {
    let total: usize = weights.iter().sum();
    let count = count.max(1);
    let mut runs = Vec::with_capacity(count);
    let mut start = 0;
    let mut carried = 0;
    for (i, weight) in weights.iter().enumerate() {
        carried += weight;
        // Close a run once the runs so far hold their share of the total.
        if runs.len() + 1 < count && carried * count >= total * (runs.len() + 1) {
            runs.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < weights.len() || runs.is_empty() {
        runs.push(start..weights.len());
    }
    runs
}

/// `0..len` in at most `count` contiguous runs of about equal length.
pub fn even_runs(len: usize, count: usize) -> Vec<Range<usize>> {
    let count = count.clamp(1, len.max(1));
    (0..count).map(|i| len * i / count..len * (i + 1) / count).collect()
}

/// `work` over each run, the first on this thread and the others on their
/// own; results in run order. A panic in any run is raised here.
pub fn map_runs<T: Send>(runs: Vec<Range<usize>>, work: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let mut runs = runs.into_iter();
    let Some(first) = runs.next() else { return Vec::new() };
    let work = &work;
    std::thread::scope(|scope| {
        let others: Vec<_> = runs.map(|run| scope.spawn(move || work(run))).collect();
        let mut out = Vec::with_capacity(others.len() + 1);
        out.push(work(first));
        for handle in others {
            out.push(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_runs_cover_every_index_once_in_order_and_balance_the_weight() {
        assert_eq!(balanced_runs(&[], 4), vec![0..0]);
        assert_eq!(balanced_runs(&[5], 4), vec![0..1]);
        assert_eq!(balanced_runs(&[1, 1, 1, 1], 2), vec![0..2, 2..4]);
        assert_eq!(balanced_runs(&[10, 1, 1, 1, 1], 2), vec![0..1, 1..5]);
        let weights: Vec<usize> = (0..1000).map(|i| (i * 7919) % 97).collect();
        let total: usize = weights.iter().sum();
        for count in 1..6 {
            let runs = balanced_runs(&weights, count);
            assert!(runs.len() <= count);
            assert_eq!(runs.first().map(|r| r.start), Some(0));
            assert_eq!(runs.last().map(|r| r.end), Some(weights.len()));
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start && w[0].start < w[0].end));
            for run in &runs {
                let share: usize = weights[run.clone()].iter().sum();
                assert!(share <= total / runs.len() + 97, "run {run:?} holds {share} of {total}");
            }
        }
    }

    #[test]
    fn even_runs_cover_every_index_once() {
        assert_eq!(even_runs(0, 3), vec![0..0]);
        assert_eq!(even_runs(2, 3), vec![0..1, 1..2]);
        assert_eq!(even_runs(10, 3), vec![0..3, 3..6, 6..10]);
    }

    #[test]
    fn map_runs_keeps_run_order_and_raises_panics() {
        let out = map_runs(even_runs(100, 4), |run| run.sum::<usize>());
        assert_eq!(out.iter().sum::<usize>(), (0..100).sum::<usize>());
        assert_eq!(out.len(), 4);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        let raised = std::panic::catch_unwind(|| map_runs(even_runs(4, 2), |run| assert!(run.start == 0)));
        assert!(raised.is_err());
    }
}
