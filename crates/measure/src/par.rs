//! Running two independent computations at once where the platform has threads.
//!
//! The measurements hash tens of megabytes in a few independent streams (MRTD over the
//! firmware, the kernel's Authenticode digest, the SNP firmware pages and the kernel hashes),
//! and each stream is sequential by nature. [`join`] runs two of them on two threads; where no
//! thread can be started (`wasm32-unknown-unknown`, an exhausted process), it runs them one
//! after the other, so results never depend on whether threads were available.

use std::sync::Mutex;

/// Runs `a` and `b`, on two threads when one can be started, and returns both results.
///
/// A panic in either is propagated to the caller.
pub(crate) fn join<A, B, FA, FB>(a: FA, b: FB) -> (A, B)
where
    A: Send,
    FA: FnOnce() -> A + Send,
    FB: FnOnce() -> B,
{
    // `a` waits here so that it can still run inline if no thread starts.
    let pending = Mutex::new(Some(a));
    let take = || pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("secretvm-measure".into())
            .spawn_scoped(s, || take().map(|a| a()));
        let b = b();
        let a = match spawned {
            Ok(handle) => match handle.join() {
                Ok(a) => a,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(_) => None,
        };
        // `a` ran on the thread, or is still pending because no thread started.
        let a = a.or_else(|| take().map(|a| a())).expect("`a` runs exactly once");
        (a, b)
    })
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn join_returns_both_results_in_order() {
        let data: Vec<u64> = (0..1000).collect();
        let (sum, max) = join(|| data.iter().sum::<u64>(), || data.iter().max().copied());
        assert_eq!((sum, max), (499_500, Some(999)));
    }

    #[test]
    fn a_panic_in_the_spawned_half_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| join(|| panic!("boom"), || 1));
        let message = caught.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"boom"));
    }
}
