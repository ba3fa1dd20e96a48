//! Keeps deskbridge under SDP's request budget: never more than `per_minute` calls in any 60-second
//! window (a sliding log, so a burst is allowed only while the window has room), and silence for as
//! long as SDP asked after a 429.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_mins(1);

pub struct Pacer {
    per_minute: usize,
    state: Mutex<State>,
}

struct State {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub fn new(per_minute: u32) -> Pacer {
        let per_minute = usize::try_from(per_minute.max(1)).unwrap_or(usize::MAX);
        Pacer {
            per_minute,
            state: Mutex::new(State {
                sent: VecDeque::new(),
                paused_until: None,
            }),
        }
    }

    /// Waits until one more call fits, then records it. Callers queue fairly on the lock.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            if let Some(until) = state.paused_until {
                if until > now {
                    tokio::time::sleep_until(until).await;
                    continue;
                }
                state.paused_until = None;
            }
            while state
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                state.sent.pop_front();
            }
            if state.sent.len() < self.per_minute {
                state.sent.push_back(now);
                return;
            }
            let oldest = *state
                .sent
                .front()
                .expect("the window is full, so not empty");
            tokio::time::sleep_until(oldest + WINDOW).await;
        }
    }

    /// Stops all calls for `wait` (after a 429).
    pub async fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.state.lock().await;
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_budget_in_any_window() {
        let pacer = Pacer::new(5);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            pacer.acquire().await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times
                .iter()
                .filter(|u| **u >= *t && **u < *t + WINDOW)
                .count();
            assert!(
                in_window <= 5,
                "call {i} at {t:?}: {in_window} in its window"
            );
        }
        assert!(
            times[4] < Duration::from_secs(1),
            "the first five go at once"
        );
        assert!(times[5] >= WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_call() {
        let pacer = Pacer::new(100);
        let start = Instant::now();
        pacer.pause(Duration::from_secs(7)).await;
        pacer.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }
}
