//! The process's own memory figures, for debug logs and the scale bench:
//! at 100k people an analysis is gigabytes, and which step holds them is
//! what an operator sizing a host (or a developer) needs to see.

/// A memory field of `/proc/self/status` (`VmRSS`: resident now, `VmHWM`:
/// the peak), in MiB. None where the kernel does not give it (not Linux).
pub fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// Resident memory now, in whole MiB (0 where unknown).
pub fn resident_mib() -> u64 {
    status_mib("VmRSS").unwrap_or(0.0) as u64
}

/// The process's allocator: mimalloc instead of the system's. A profile
/// of the first store write at 100k people had glibc's allocator in 45 % of
/// the samples (`_int_malloc` searching bins fragmented by millions of
/// short strings beside a gigabyte of long-lived graph and fragments), and
/// mimalloc hands freed pages back to the kernel by itself. Every binary
/// linking this crate (the daemon, the bench, the tests) uses it. The
/// daemon at 100k people, one analysis from the store (previous snapshot
/// rebuilt): 17.0 s, peak 1.46 GiB, 500 MiB held after it; with glibc's
/// allocator 19.2 s, 1.74 GiB and 740 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands the heap freed since back to the kernel: after an analysis at 100k
/// people the daemon would otherwise keep pages of the analysis's peak
/// (gigabytes) until the next one, though it holds a fraction of that (the
/// baseline and the latest report). mimalloc's own heap is collected, and
/// glibc's, which SQLite's page caches and other C code still use, trimmed.
pub fn release_free_heap() {
    // SAFETY: mi_collect frees only what mimalloc holds unused; it takes no
    // pointers and may be called from any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    trim_system_heap();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_system_heap() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim only returns free heap pages to the
    // kernel; it takes no pointers and is safe to call at any time.
    unsafe {
        malloc_trim(0);
    }
}

/// Other system allocators return freed memory on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_system_heap() {}

#[cfg(test)]
mod tests {
    /// What this crate allocates comes from mimalloc (the allocator above
    /// is in force, not commented out or shadowed).
    #[test]
    fn allocations_come_from_mimalloc() {
        let boxed = Box::new([7u8; 64]);
        // SAFETY: only compares the address with mimalloc's own regions.
        let ours = unsafe { libmimalloc_sys::mi_is_in_heap_region(boxed.as_ptr().cast()) };
        assert!(ours, "the global allocator is not mimalloc");
        super::release_free_heap();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process_memory() {
        let resident = super::status_mib("VmRSS").expect("VmRSS on Linux");
        let peak = super::status_mib("VmHWM").expect("VmHWM on Linux");
        assert!(resident > 0.0 && peak >= resident, "{resident} {peak}");
        assert_eq!(super::status_mib("VmNothing"), None);
    }
}
