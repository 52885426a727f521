//! Background work on a timer: the server's housekeeping tasks (outbox
//! discard, nonce purge, rate-limit sync, audit checkpoints) share it.

use std::future::Future;
use std::time::Duration;

/// Runs `round` now and then every `period` until the task is aborted. A
/// round that overruns delays the next tick instead of bunching them.
pub(crate) async fn every<F, Fut>(period: Duration, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        round().await;
    }
}
