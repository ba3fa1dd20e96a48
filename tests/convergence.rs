//! Seeded random interleavings of customer actions, technician actions on the fake SDP, SDP faults
//! and appliance restarts. After each batch settles, both sides agree: every public change is on
//! the other side exactly once, the portal status is what SDP's status maps to, nothing private
//! reached the portal, and the outbox is empty.
//!
//! `DESKBRIDGE_CONVERGENCE_RUNS=<n>`: seeds per profile (default [`DEFAULT_RUNS`]);
//! `DESKBRIDGE_CONVERGENCE_SEED=<seed>`: replay one seed (a failure prints it).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fake_sdp::{FakeSdp, Fault, Op, Profile};
use crate::common::{Api, Desk};

both_profiles!(both_sides_agree_after_random_interleavings);

/// Seeds per profile in a default run; each seed is one ticket's story.
const DEFAULT_RUNS: u64 = 120;
/// Stories played at once, so their calls interleave in the sync too.
const BATCH: u64 = 8;
const SETTLE: Duration = Duration::from_mins(2);

/// `SplitMix64`: a seed replays the same story on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One ticket's story and what each side must show for it afterwards.
struct Story {
    seed: u64,
    rng: Rng,
    number: String,
    request: String,
    /// Texts and file names the customer sent: each in SDP exactly once.
    to_sdp: Vec<String>,
    files_to_sdp: Vec<String>,
    /// Texts and file names the team made public: each in the portal exactly once.
    to_portal: Vec<String>,
    files_to_portal: Vec<String>,
    log: String,
}

impl Story {
    fn token(&self, kind: &str, step: usize) -> String {
        format!("[cv-{}-{kind}-{step}]", self.seed)
    }
}

fn runs() -> Vec<u64> {
    if let Some(seed) = std::env::var("DESKBRIDGE_CONVERGENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let n = std::env::var("DESKBRIDGE_CONVERGENCE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    (0..n).collect()
}

async fn both_sides_agree_after_random_interleavings(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    // This test is about interleavings, not SDP's patience (the budget tests are): a bigger
    // budget on both sides lets a few hundred stories settle within a CI run. Throttling is
    // still one of the faults drawn below.
    fake.set_budget(None);
    let mut desk = Desk::start_with(fake, |c| c.sdp.max_requests_per_minute = 6000).await;
    let mut alice = desk.app.customer("alice@example.com").await;
    let seeds = runs();
    for batch in seeds.chunks(usize::try_from(BATCH).expect("small")) {
        let mut stories = Vec::new();
        for &seed in batch {
            stories.push(begin(&desk, &alice, seed).await);
        }
        let mut batch_rng = Rng(batch[0] ^ 0xA5A5);
        let steps = 4 + batch_rng.below(6);
        let restart_at = (batch_rng.below(3) == 0).then(|| batch_rng.below(steps));
        for step in 0..steps {
            if restart_at == Some(step) {
                for s in &mut stories {
                    let _ = writeln!(s.log, "  restart before step {step}");
                }
                desk.app.restart().await;
                alice = rebased(&alice, &desk);
                desk.admin = rebased(&desk.admin, &desk);
            }
            for story in &mut stories {
                act(&desk, &alice, story, usize::try_from(step).expect("small")).await;
            }
        }
        settle(&desk, &alice, &stories, profile).await;
    }
}

/// A client of the same identity on the restarted appliance's new address.
fn rebased(api: &Api, desk: &Desk) -> Api {
    Api {
        base: desk.app.url(""),
        http: api.http.clone(),
        token: api.token.clone(),
        headers: api.headers.clone(),
    }
}

async fn begin(desk: &Desk, alice: &Api, seed: u64) -> Story {
    let t = alice.ticket(&format!("Story {seed}")).await;
    let number = t["number"].as_str().expect("number").to_owned();
    let request = desk.synced(alice, &number).await;
    Story {
        seed,
        rng: Rng(seed),
        number,
        request,
        to_sdp: Vec::new(),
        files_to_sdp: Vec::new(),
        to_portal: Vec::new(),
        files_to_portal: Vec::new(),
        log: String::new(),
    }
}

/// One step of a story: a customer action, a technician action, a fault, a hint, or a pause.
async fn act(desk: &Desk, alice: &Api, story: &mut Story, step: usize) {
    let fake = &desk.fake;
    let request = story.request.clone();
    let choice = story.rng.below(14);
    let _ = writeln!(story.log, "  step {step}: action {choice}");
    match choice {
        0..=2 => {
            let text = story.token("c", step);
            let (status, body) = alice
                .post(
                    &format!("/api/v1/tickets/{}/messages", story.number),
                    &json!({"body": format!("Customer says {text}")}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "seed {}: {body}", story.seed);
            story.to_sdp.push(text);
        }
        3 => {
            let name = format!("cv-{}-cf-{step}.txt", story.seed);
            let (status, body) = alice
                .upload(&story.number, &name, name.clone().into_bytes())
                .await;
            assert_eq!(status, StatusCode::CREATED, "seed {}: {body}", story.seed);
            story.files_to_sdp.push(name);
        }
        4 | 5 => {
            let text = story.token("t", step);
            fake.add_note(&request, &format!("<p>Team says {text}</p>"), true);
            story.to_portal.push(text);
        }
        6 => {
            let text = story.token("e", step);
            fake.email_requester(&request, "Tech One", &format!("<p>Mail {text}</p>"));
            story.to_portal.push(text);
        }
        7 => {
            let secret = story.token("secret", step);
            if story.rng.below(2) == 0 {
                fake.add_note(&request, &format!("<p>Internal {secret}</p>"), false);
            } else {
                fake.email_team(&request, "Tech One", "vendor@example.net", &secret);
            }
        }
        8 => {
            let status = ["Open", "In Progress", "On Hold", "Resolved"]
                [usize::try_from(story.rng.below(4)).expect("small")];
            let _ = writeln!(story.log, "    status {status}");
            fake.set_status(&request, status, None);
        }
        9 => fake.assign_technician(&request, "Tech One"),
        10 => {
            let name = format!("cv-{}-tf-{step}.txt", story.seed);
            fake.attach_file(&request, &name, name.as_bytes());
            story.files_to_portal.push(name);
        }
        11 => {
            let fault = match story.rng.below(3) {
                0 => Fault::Down503,
                1 => Fault::CommitThenDrop {
                    op: Op::AddNote,
                    times: 1,
                },
                _ => Fault::RateLimit {
                    every_nth: 3,
                    retry_after_secs: Some(1),
                },
            };
            let _ = writeln!(story.log, "    fault {fault:?}");
            fake.set_fault(fault);
        }
        12 => fake.clear_faults(),
        _ => desk.webhook(&request).await,
    }
}

/// What SDP's status and technician map to in the portal (the default mapping).
fn expected_status(request: &Value) -> &'static str {
    let assigned = request["technician"].is_object();
    match request["status"]["name"].as_str().unwrap_or_default() {
        "Open" if assigned => "assigned",
        "Open" => "new",
        "Assigned" => "assigned",
        "In Progress" => "in_progress",
        "On Hold" => "pending",
        "Resolved" => "resolved",
        "Closed" => "closed",
        _ => "?",
    }
}

/// Clears the faults and hints every request until both sides agree, or fails with the seeds.
async fn settle(desk: &Desk, alice: &Api, stories: &[Story], profile: Profile) {
    desk.fake.clear_faults();
    let deadline = Instant::now() + SETTLE;
    let mut next_hint = Instant::now();
    loop {
        if Instant::now() >= next_hint {
            for s in stories {
                desk.webhook(&s.request).await;
            }
            next_hint = Instant::now() + Duration::from_secs(3);
        }
        let health = desk.health().await;
        let mut problems = Vec::new();
        if health["queue_depth"] != 0 {
            problems.push(format!("outbox: {}", health["queue_depth"]));
        }
        if health["dead_letters"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            problems.push(format!("dead letters: {}", health["dead_letters"]));
        }
        for s in stories {
            if let Some(problem) = disagreement(desk, alice, s).await {
                problems.push(format!(
                    "seed {} ({profile:?}) {problem}; replay with DESKBRIDGE_CONVERGENCE_SEED={}\n{}",
                    s.seed, s.seed, s.log
                ));
            }
        }
        if problems.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sides never agreed:\n{}",
            problems.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the two sides disagree on for one story, if anything.
async fn disagreement(desk: &Desk, alice: &Api, s: &Story) -> Option<String> {
    let fake = &desk.fake;
    let notes = fake.notes(&s.request);
    for text in &s.to_sdp {
        let n = notes
            .iter()
            .filter(|n| n.description.contains(text))
            .count();
        if n != 1 {
            return Some(format!("{text} is in SDP {n} times"));
        }
    }
    let sdp_files = fake.attachments(&s.request);
    for name in &s.files_to_sdp {
        let n = sdp_files.iter().filter(|a| &a.name == name).count();
        if n != 1 {
            return Some(format!("file {name} is in SDP {n} times"));
        }
    }
    let (_, ticket) = alice.get(&format!("/api/v1/tickets/{}", s.number)).await;
    let (_, messages) = alice
        .get(&format!(
            "/api/v1/tickets/{}/messages?per_page=500",
            s.number
        ))
        .await;
    let (_, files) = alice
        .get(&format!("/api/v1/tickets/{}/attachments", s.number))
        .await;
    let all = format!("{ticket}{messages}{files}");
    if all.contains("-secret-") {
        return Some("something private reached the portal".into());
    }
    let bodies: Vec<&str> = messages["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["body"].as_str())
        .collect();
    for text in s.to_portal.iter().chain(&s.to_sdp) {
        let n = bodies.iter().filter(|b| b.contains(text.as_str())).count();
        if n != 1 {
            return Some(format!("{text} is in the portal {n} times"));
        }
    }
    let names: Vec<&str> = files["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["filename"].as_str())
        .collect();
    for name in s.files_to_portal.iter().chain(&s.files_to_sdp) {
        let n = names.iter().filter(|f| *f == name).count();
        if n != 1 {
            return Some(format!("file {name} is in the portal {n} times"));
        }
    }
    let Some(request) = fake.request(&s.request) else {
        return Some("the request is gone from SDP".into());
    };
    let expected = expected_status(&request);
    if ticket["status"] != expected {
        return Some(format!(
            "portal status {} while SDP shows {} (→ {expected})",
            ticket["status"], request["status"]["name"]
        ));
    }
    None
}
