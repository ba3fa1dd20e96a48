use super::*;

#[tokio::test(start_paused = true)]
async fn never_more_than_the_budget_in_any_window() {
    let budget = Budget::new(5);
    let start = Instant::now();
    let mut times = Vec::new();
    for _ in 0..12 {
        budget.acquire(Lane::Outbox).await.answered();
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
    assert!(times[4] < Duration::from_secs(1), "urgent calls go at once");
    assert!(times[5] >= WINDOW);
}

#[tokio::test(start_paused = true)]
async fn background_lanes_are_spaced_and_leave_the_reserve() {
    let budget = Budget::new(60);
    let start = Instant::now();
    for _ in 0..54 {
        budget.acquire(Lane::Poll).await.answered();
    }
    // Spread over the window rather than burst.
    assert!(start.elapsed() >= budget.spacing * 53);
    // The reserve is left: an urgent call goes at once.
    let before = Instant::now();
    budget.acquire(Lane::Outbox).await.answered();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn an_urgent_call_overtakes_waiting_background_calls() {
    let budget = std::sync::Arc::new(Budget::new(2));
    budget.acquire(Lane::Outbox).await.answered();
    budget.acquire(Lane::Outbox).await.answered();
    let order = std::sync::Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for lane in [Lane::Backfill, Lane::Poll, Lane::Outbox] {
        let (b, o) = (budget.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            b.acquire(lane).await.answered();
            o.lock().unwrap().push(lane);
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(order.lock().unwrap()[0], Lane::Outbox);
}

#[tokio::test(start_paused = true)]
async fn an_outage_stops_every_lane_but_one_probe_every_few_seconds() {
    let budget = Budget::new(1000);
    let down = SdpError::Connect("refused".into());
    budget.acquire(Lane::Outbox).await.unavailable(&down);
    assert!(budget.is_down());
    let start = Instant::now();
    let mut probes = Vec::new();
    for _ in 0..5 {
        let permit = budget.acquire(Lane::Outbox).await;
        probes.push(start.elapsed());
        permit.unavailable(&down);
    }
    for pair in probes.windows(2) {
        let gap = pair[1].saturating_sub(pair[0]);
        assert!(gap >= PROBE_FIRST && gap <= PROBE_MAX, "{probes:?}");
    }
    budget.acquire(Lane::Poll).await.answered();
    assert!(!budget.is_down());
    assert!(matches!(budget.view().sdp, Reachability::Reachable));
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_every_call_until_resumed() {
    let budget = std::sync::Arc::new(Budget::new(100));
    budget.pause();
    let b = budget.clone();
    let call = tokio::spawn(async move { b.acquire(Lane::Outbox).await.answered() });
    tokio::time::sleep(Duration::from_mins(10)).await;
    assert!(!call.is_finished());
    assert!(matches!(budget.view().sdp, Reachability::Paused));
    budget.resume();
    call.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_throttle_with_retry_after_silences_every_lane() {
    let budget = Budget::new(100);
    let throttled = SdpError::RateLimited {
        status: 429,
        retry_after: Some(Duration::from_secs(7)),
    };
    let start = Instant::now();
    budget.acquire(Lane::Outbox).await.unavailable(&throttled);
    budget.acquire(Lane::Outbox).await.answered();
    assert!(start.elapsed() >= Duration::from_secs(7));
}
