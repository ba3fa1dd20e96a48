//! Sync targets of deskbridge, measured against the fake SDP of the integration tests. See
//! BENCHMARKS.md ("Sync").
//!
//! Run everything with `cargo bench --bench sync`; `cargo bench --bench sync -- webhook` (or `poll`,
//! `outbound`, `import`) runs one part. Parts:
//!
//! 1. SDP → portal lag with the webhook: a public note is added in SDP and SDP's trigger fires;
//! 2. SDP → portal lag by polling (`sdp.poll_interval_secs = 1`, no webhook);
//! 3. portal → SDP lag of a customer message, with 20 ms of latency on every SDP answer, sequential
//!    and on several tickets at once;
//! 4. importing a backlog of 100,000 SDP requests raised for 1,000 portal customers
//!    (`DESKBRIDGE_BENCH_IMPORT=<n>` imports another number, for quick runs).
//!
//! Everything runs in this one process, in one actix System, as the integration tests do: the
//! appliance through `deskbridge::app::start` (what `deskbridge serve` runs) and the fake SDP
//! (`tests/common/fake_sdp`), a real HTTP server on 127.0.0.1 with its own worker thread. No child
//! process is started. Each part stops its servers when it ends; the temporary data dirs go when
//! the bench ends or fails.

#![allow(
    unreachable_pub,
    reason = "a test or bench binary's modules share helpers; their visibility is no API"
)]

#[path = "../tests/common/fake_sdp/mod.rs"]
#[expect(dead_code, reason = "the bench drives only part of the fake's API")]
mod fake_sdp;

#[path = "common/mod.rs"]
mod common;

use common::{create_customer, login, ms, per_sec, percentile};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use deskbridge::actors::TicketEventKind;
use deskbridge::actors::broadcaster::Published;
use deskbridge::actors::broadcaster::Subscribe;
use deskbridge::app::Running;
use deskbridge::config::{Config, Secret};
use deskbridge::domain::{Role, User, UserId};
use deskbridge::sync::BackfillProgress;
use fake_sdp::{FakeSdp, Profile};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

const ADMIN_EMAIL: &str = "admin@bench.test";
const ADMIN_PASSWORD: &str = "bench-admin-password";
const CUSTOMER_EMAIL: &str = "customer@bench.test";
const CUSTOMER_PASSWORD: &str = "bench-customer-password";
const HOOK_SECRET: &str = "bench-hook-secret";

/// Tickets created (and synced) per part; samples go round them.
const TICKETS: usize = 5;
/// Samples taken first and not counted (connections, caches).
const WARM_UP: usize = 3;
const WEBHOOK_SAMPLES: usize = 50;
const POLL_SAMPLES: usize = 50;
const OUTBOUND_SAMPLES: usize = 100;
/// Tickets messaged at once in the concurrent round, each with this many messages in sequence.
const CONCURRENT_TICKETS: usize = 4;
const CONCURRENT_SAMPLES: usize = 25;
/// Fixed pause between samples, so one sample's tail (its read-back, its commit) is not the
/// next one's start.
const PACING: Duration = Duration::from_millis(50);
const FAKE_LATENCY: Duration = Duration::from_millis(20);
/// How often the fake's in-memory notes are looked at while waiting for a portal message.
const NOTE_CHECK: Duration = Duration::from_millis(1);
const SAMPLE_DEADLINE: Duration = Duration::from_secs(20);

const IMPORT_REQUESTS: usize = 100_000;
const IMPORT_CUSTOMERS: usize = 1_000;
/// The import part gives up here and reports the rate so far, to keep the bench bounded.
const IMPORT_DEADLINE: Duration = Duration::from_mins(6);
const IMPORT_CHECK: Duration = Duration::from_millis(10);
const COMMIT_PROBES: usize = 200;

/// Targets, as stated in BENCHMARKS.md.
const TARGET_WEBHOOK_P50_MS: f64 = 1_000.0;
const TARGET_OUTBOUND_P50_MS: f64 = 300.0;
const TARGET_IMPORT_PER_SEC: f64 = 1_000.0;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; anything else not starting with `-` selects parts.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let import_requests = match std::env::var("DESKBRIDGE_BENCH_IMPORT") {
        Ok(n) => n
            .parse()
            .context("DESKBRIDGE_BENCH_IMPORT must be a number")?,
        Err(_) => IMPORT_REQUESTS,
    };
    // As `deskbridge serve` with `log.level = "warn"`: sync failures show on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let work = tempfile::Builder::new()
        .prefix("deskbridge-sync-bench-")
        .tempdir()
        .context("temp dir")?;
    println!(
        "deskbridge sync benchmark: {} CPUs; the appliance, the fake SDP and this driver share \
         one process; data under {}",
        cpus(),
        work.path().display()
    );
    let mut summary = Summary::default();
    actix_web::rt::System::new().block_on(async {
        if wants("webhook") {
            summary.webhook = Some(inbound(work.path(), Inbound::Webhook).await?);
        }
        if wants("poll") {
            summary.poll = Some(inbound(work.path(), Inbound::Poll).await?);
        }
        if wants("outbound") {
            summary.outbound = Some(outbound(work.path()).await?);
        }
        if wants("import") {
            summary.import = Some(import(work.path(), import_requests).await?);
        }
        anyhow::Ok(())
    })?;
    summary.print();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The appliance and the fake SDP, in-process.

fn base_config(data_dir: PathBuf) -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".into();
    config.storage.data_dir = data_dir;
    config.bootstrap.admin_email = ADMIN_EMAIL.into();
    config.bootstrap.admin_password = Secret::new(ADMIN_PASSWORD.into());
    config.log.level = "warn".into();
    config
}

/// Points the appliance at the fake, as `Env::start_with` in tests/sync.rs does.
fn connect(config: &mut Config, fake: &FakeSdp) {
    config.sdp.base_url = fake.base_url();
    config.sdp.api_key = Secret::new(fake.api_key());
    // Only the webhook (or an explicit poll) brings changes, unless a part says otherwise.
    config.sdp.poll_interval_secs = 3600;
    config.sdp.max_requests_per_minute = 100_000;
    config.sdp.retry_base_ms = 20;
    config.sdp.retry_max_secs = 1;
    config.sdp.request_timeout_secs = 5;
    config.sdp.webhook_secret = Secret::new(HOOK_SECRET.into());
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// A ticket and the SDP request it is linked to.
struct Linked {
    number: String,
    request_id: String,
}

/// The fake SDP and the appliance connected to it, with a signed-in admin and customer.
struct Env {
    fake: FakeSdp,
    running: Running,
    base: String,
    http: reqwest::Client,
    customer: String,
}

impl Env {
    async fn start(
        work: &Path,
        label: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Env> {
        let fake = FakeSdp::start(Profile::OnPrem).await;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{label}-"))
            .tempdir_in(work)?
            .keep();
        let mut config = base_config(dir.join("data"));
        connect(&mut config, &fake);
        adjust(&mut config);
        let running = deskbridge::app::start(config).await?;
        let base = format!("http://{}", running.addr);
        let http = http_client()?;
        let admin = login(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        create_customer(
            &http,
            &base,
            &admin,
            CUSTOMER_EMAIL,
            "Bench Customer",
            CUSTOMER_PASSWORD,
        )
        .await?;
        let customer = login(&http, &base, CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await?;
        Ok(Env {
            fake,
            running,
            base,
            http,
            customer,
        })
    }

    async fn stop(self) {
        self.running.stop().await;
        self.fake.stop().await;
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        get_json(&self.http, &format!("{}{path}", self.base), &self.customer).await
    }

    /// Creates tickets as the customer and waits until each is linked to its SDP request.
    async fn synced_tickets(&self, n: usize) -> anyhow::Result<Vec<Linked>> {
        let mut numbers = Vec::with_capacity(n);
        for i in 0..n {
            let response = self
                .http
                .post(format!("{}/api/v1/tickets", self.base))
                .bearer_auth(&self.customer)
                .json(&json!({
                    "kind": "problem_report",
                    "subject": format!("Storage node {i} reports failing disks"),
                    "description": "Two disks in the array report SMART errors since last night.",
                }))
                .send()
                .await?;
            let status = response.status();
            let body: Value = response.json().await?;
            ensure!(
                status == StatusCode::CREATED,
                "create ticket: {status} {body}"
            );
            numbers.push(body["number"].as_str().context("number")?.to_owned());
        }
        let mut linked = Vec::with_capacity(n);
        for number in numbers {
            let deadline = Instant::now() + SAMPLE_DEADLINE;
            let request_id = loop {
                let t = self.get(&format!("/api/v1/tickets/{number}")).await?;
                if t["sdp"]["sync_state"] == "synced"
                    && let Some(id) = t["sdp"]["request_id"].as_str()
                {
                    break id.to_owned();
                }
                ensure!(Instant::now() < deadline, "{number} was not synced: {t}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            linked.push(Linked { number, request_id });
        }
        Ok(linked)
    }

    async fn subscribe(&self) -> anyhow::Result<Receiver<Published>> {
        Ok(self
            .running
            .state
            .actors
            .broadcaster
            .send(Subscribe::default())
            .await?
            .receiver)
    }

    /// Whether the customer's `GET .../messages` shows a message with this body.
    async fn shows_message(&self, number: &str, body: &str) -> anyhow::Result<bool> {
        let list = self
            .get(&format!("/api/v1/tickets/{number}/messages"))
            .await?;
        let items = list["items"].as_array().context("items")?;
        Ok(items.iter().any(|m| m["body"] == body))
    }
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status == StatusCode::OK, "GET {url}: {status} {body}");
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// 1. and 2. SDP → portal.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Inbound {
    Webhook,
    Poll,
}

struct InboundLag {
    mode: Inbound,
    /// From the note's creation in SDP to the `Message` event on the broadcaster (published once
    /// the message is durable).
    event: Vec<Duration>,
    /// From the note's creation to a `GET .../messages` (sent after the event) that shows it.
    visible: Vec<Duration>,
    /// From the note's creation until the webhook call was answered (webhook only).
    hook: Vec<Duration>,
    cpu: Option<CpuUse>,
}

async fn inbound(work: &Path, mode: Inbound) -> anyhow::Result<InboundLag> {
    let (label, samples) = match mode {
        Inbound::Webhook => {
            println!(
                "\n== 1. SDP → portal with the webhook: {WEBHOOK_SAMPLES} notes over {TICKETS} \
                 tickets, polling off (interval 1 h)"
            );
            ("webhook", WEBHOOK_SAMPLES)
        }
        Inbound::Poll => {
            println!(
                "\n== 2. SDP → portal by polling: {POLL_SAMPLES} notes over {TICKETS} tickets, \
                 poll interval 1 s, no webhook"
            );
            ("poll", POLL_SAMPLES)
        }
    };
    let env = Env::start(work, label, |c| {
        if mode == Inbound::Poll {
            c.sdp.poll_interval_secs = 1;
        }
    })
    .await?;
    let result = inbound_samples(&env, mode, samples).await;
    env.stop().await;
    let lag = result?;
    print_lags("note → Message event", &lag.event);
    print_lags("note → visible in GET .../messages", &lag.visible);
    if mode == Inbound::Webhook {
        print_lags("note → webhook answered 202", &lag.hook);
    }
    if let Some(cpu) = &lag.cpu {
        println!("CPU during the samples: {cpu}");
    }
    Ok(lag)
}

async fn inbound_samples(env: &Env, mode: Inbound, samples: usize) -> anyhow::Result<InboundLag> {
    let tickets = env.synced_tickets(TICKETS).await?;
    let mut events = env.subscribe().await?;
    let hook = format!("{}/api/v1/hooks/sdp?secret={HOOK_SECRET}", env.base);
    let mut lag = InboundLag {
        mode,
        event: Vec::with_capacity(samples),
        visible: Vec::with_capacity(samples),
        hook: Vec::with_capacity(samples),
        cpu: None,
    };
    let meter = CpuMeter::start();
    for i in 0..WARM_UP + samples {
        let ticket = &tickets[i % tickets.len()];
        let text = format!("Inbound sample {i}: we replaced the failed disk");
        // Only events from this sample count.
        while matches!(events.try_recv(), Ok(_) | Err(TryRecvError::Lagged(_))) {}
        let t0 = Instant::now();
        env.fake.add_note(&ticket.request_id, &text, true);
        let mut hook_answered = None;
        if mode == Inbound::Webhook {
            let status = env.fake.fire_webhook(&hook, &ticket.request_id).await?;
            ensure!(status == StatusCode::ACCEPTED, "webhook: {status}");
            hook_answered = Some(t0.elapsed());
        }
        let deadline = t0 + SAMPLE_DEADLINE;
        let event_at = loop {
            message_event(&mut events, &ticket.number, deadline).await?;
            let at = t0.elapsed();
            if env.shows_message(&ticket.number, &text).await? {
                break at;
            }
        };
        let visible_at = t0.elapsed();
        if i >= WARM_UP {
            lag.event.push(event_at);
            lag.visible.push(visible_at);
            lag.hook.extend(hook_answered);
        }
        tokio::time::sleep(match mode {
            Inbound::Webhook => PACING,
            Inbound::Poll => poll_pacing(i),
        })
        .await;
    }
    lag.cpu = meter.finish();
    for v in [&mut lag.event, &mut lag.visible, &mut lag.hook] {
        v.sort_unstable();
    }
    Ok(lag)
}

/// The pause after poll sample `i`: 200 ms plus a spread over one poll interval (a golden-ratio
/// sequence). A fixed pause would start every sample at the same point of the poll cycle, right
/// after the poll that delivered the previous note, and the lag would be about one interval each
/// time; spreading the start over the cycle measures what a note added at a random moment sees.
fn poll_pacing(i: usize) -> Duration {
    let phase = (f64::from(u32::try_from(i + 1).unwrap_or(u32::MAX)) * 0.618_034).fract();
    Duration::from_millis(200) + Duration::from_secs(1).mul_f64(phase)
}

/// Waits for a `Message` event of ticket `number`.
async fn message_event(
    events: &mut Receiver<Published>,
    number: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let next = tokio::time::timeout_at(deadline.into(), events.recv()).await;
        match next {
            Err(_) => bail!("no message event for {number} within {SAMPLE_DEADLINE:?}"),
            Ok(Ok(p)) if p.event.number == number && p.event.kind == TicketEventKind::Message => {
                return Ok(());
            }
            Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => bail!("the broadcaster stopped"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Portal → SDP.

struct OutboundLag {
    /// From `POST .../messages` until the note is in the fake's store, one message at a time.
    sequential: Vec<Duration>,
    /// The `POST`'s own answer time (a 201 means durable) in the sequential round.
    answered: Vec<Duration>,
    /// The same with `CONCURRENT_TICKETS` tickets messaged at once.
    concurrent: Vec<Duration>,
    cpu: Option<CpuUse>,
}

async fn outbound(work: &Path) -> anyhow::Result<OutboundLag> {
    println!(
        "\n== 3. Portal → SDP with {} ms of SDP latency: {OUTBOUND_SAMPLES} messages one at a \
         time over {TICKETS} tickets, then {CONCURRENT_TICKETS} tickets at once \
         ({CONCURRENT_SAMPLES} messages each)",
        FAKE_LATENCY.as_millis()
    );
    let env = Env::start(work, "outbound", |_| {}).await?;
    let result = outbound_samples(&env).await;
    env.stop().await;
    let lag = result?;
    print_lags("POST → note in SDP, sequential", &lag.sequential);
    print_lags("POST answered (201)", &lag.answered);
    print_lags(
        &format!("POST → note in SDP, {CONCURRENT_TICKETS} tickets at once"),
        &lag.concurrent,
    );
    if let Some(cpu) = &lag.cpu {
        println!("CPU during the samples: {cpu}");
    }
    Ok(lag)
}

async fn outbound_samples(env: &Env) -> anyhow::Result<OutboundLag> {
    let tickets = env.synced_tickets(TICKETS).await?;
    env.fake.set_latency(FAKE_LATENCY);
    let meter = CpuMeter::start();
    let mut lag = OutboundLag {
        sequential: Vec::with_capacity(OUTBOUND_SAMPLES),
        answered: Vec::with_capacity(OUTBOUND_SAMPLES),
        concurrent: Vec::with_capacity(CONCURRENT_TICKETS * CONCURRENT_SAMPLES),
        cpu: None,
    };
    for i in 0..WARM_UP + OUTBOUND_SAMPLES {
        let text = format!("Portal sample {i}: the node still reports errors");
        let (answered, in_sdp) = portal_message(env, &tickets[i % tickets.len()], &text).await?;
        if i >= WARM_UP {
            lag.answered.push(answered);
            lag.sequential.push(in_sdp);
        }
        tokio::time::sleep(PACING).await;
    }
    let rounds = tickets[..CONCURRENT_TICKETS]
        .iter()
        .enumerate()
        .map(|(t, ticket)| async move {
            let mut lags = Vec::with_capacity(CONCURRENT_SAMPLES);
            for i in 0..CONCURRENT_SAMPLES {
                let text = format!("Concurrent sample {t}.{i}: the node still reports errors");
                lags.push(portal_message(env, ticket, &text).await?.1);
            }
            anyhow::Ok(lags)
        });
    for lags in futures_util::future::join_all(rounds).await {
        lag.concurrent.extend(lags?);
    }
    lag.cpu = meter.finish();
    for v in [&mut lag.sequential, &mut lag.answered, &mut lag.concurrent] {
        v.sort_unstable();
    }
    Ok(lag)
}

/// Posts a customer message; returns when it was answered and when the fake SDP held the note.
async fn portal_message(
    env: &Env,
    ticket: &Linked,
    text: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let response = env
        .http
        .post(format!(
            "{}/api/v1/tickets/{}/messages",
            env.base, ticket.number
        ))
        .bearer_auth(&env.customer)
        .json(&json!({"body": text}))
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status == StatusCode::CREATED,
        "post message: {status} {body}"
    );
    let answered = t0.elapsed();
    let deadline = t0 + SAMPLE_DEADLINE;
    loop {
        let notes = env.fake.notes(&ticket.request_id);
        if notes.iter().any(|n| n.description.contains(text)) {
            return Ok((answered, t0.elapsed()));
        }
        ensure!(
            Instant::now() < deadline,
            "the message did not reach SDP within {SAMPLE_DEADLINE:?}"
        );
        tokio::time::sleep(NOTE_CHECK).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Importing a backlog.

struct Import {
    requests: usize,
    customers: usize,
    /// Raising the requests in the fake (setup, not measured against the target).
    raise: Duration,
    /// Sync start (`app::start`) → the last request imported and the progress on disk, or the
    /// deadline.
    elapsed: Duration,
    imported: u64,
    complete: bool,
    /// Sync start → the first ticket.
    first: Option<Duration>,
    /// Rate between 10 % and 90 % of the backlog.
    steady: Option<f64>,
    evidence: Evidence,
}

/// What the import spent its time on.
struct Evidence {
    /// `(endpoint, calls)` received by the fake during the import.
    calls: Vec<(String, usize)>,
    /// Time between consecutive calls arriving at the fake, by `(this call, next call)`.
    gaps: Vec<Gap>,
    /// Group-commit flushes during the import.
    flushes: Option<u32>,
    /// A one-key transaction plus `Store::durable`, on the imported store (median).
    commit: Duration,
    /// One `GET /requests` page from the fake, as the import sends it (cached order), and with a
    /// criterion it has not seen (filters and sorts every request).
    list_cached: Duration,
    list_uncached: Duration,
    /// `(thread, cores)` averaged over the import.
    threads: Vec<(String, f64)>,
    cpu: Option<CpuUse>,
}

struct Gap {
    from: String,
    to: String,
    count: usize,
    total: Duration,
    p50: Duration,
}

async fn import(work: &Path, requests: usize) -> anyhow::Result<Import> {
    println!(
        "\n== 4. Import of {requests} SDP requests raised for {IMPORT_CUSTOMERS} portal customers"
    );
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let started = Instant::now();
    for i in 0..requests {
        fake.raise_request_with(json!({
            "subject": format!("VM {i} does not boot after maintenance"),
            "description": format!("<p>The VM <b>vm-{i}</b> stays in the boot loader since the host was patched.</p>"),
            "requester": {"email_id": import_email(i % IMPORT_CUSTOMERS)},
            "priority": {"name": if i % 4 == 0 { "High" } else { "Medium" }},
            "request_type": {"name": "Incident"},
        }));
    }
    let raise = started.elapsed();
    println!(
        "raised {requests} requests in the fake in {:.1} s ({:.0}/s)",
        raise.as_secs_f64(),
        per_sec(requests, raise)
    );
    // The fake's threads (its HTTP worker runs once it answered), before the appliance starts.
    fake_get(&http_client()?, &fake, "/statuses", None).await?;
    let fake_threads: HashSet<u32> = thread_ticks().into_iter().map(|t| t.tid).collect();
    let data_dir = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(work)?
        .keep()
        .join("data");
    create_import_customers(&data_dir).await?;

    let mut config = base_config(data_dir);
    connect(&mut config, &fake);
    config.sdp.import_requester_requests = true;
    // SDP does not throttle here, and deskbridge's own budget must not either.
    config.sdp.max_requests_per_minute = 100_000_000;
    // The fake's first page sorts the whole backlog.
    config.sdp.request_timeout_secs = 30;
    let threads_before = thread_ticks();
    let meter = CpuMeter::start();
    let t0 = Instant::now();
    let running = deskbridge::app::start(config).await?;
    let result = import_watch(&running, requests, t0).await;
    let elapsed = t0.elapsed();
    let threads_after = thread_ticks();
    let cpu = meter.finish();
    let result = match result {
        Ok(watch) => {
            let threads = thread_cores(&threads_before, &threads_after, &fake_threads, elapsed);
            let evidence = import_evidence(&running, &fake, t0, threads, cpu).await;
            evidence.map(|evidence| (watch, evidence))
        }
        Err(e) => Err(e),
    };
    running.stop().await;
    fake.stop().await;
    let (watch, evidence) = result?;
    Ok(Import {
        requests,
        customers: IMPORT_CUSTOMERS,
        raise,
        elapsed: watch.elapsed,
        imported: watch.imported,
        complete: watch.complete,
        first: watch.first,
        steady: watch.steady,
        evidence,
    })
}

fn import_email(i: usize) -> String {
    format!("customer{i:04}@import.bench.test")
}

/// Creates the portal customers with sync off, so they exist before the first poll walks SDP.
async fn create_import_customers(data_dir: &Path) -> anyhow::Result<()> {
    let running = deskbridge::app::start(base_config(data_dir.to_owned())).await?;
    for i in 0..IMPORT_CUSTOMERS {
        // They never sign in here, so no password (an argon2 hash each would take a minute).
        let user = User {
            id: UserId::new(),
            email: import_email(i),
            name: format!("Import Customer {i}"),
            role: Role::Customer,
            organization: "Bench Org".into(),
            password_hash: String::new(),
            disabled: false,
            created_at: time::OffsetDateTime::now_utc(),
        };
        running.state.store.create_user(&user)?;
    }
    running.state.store.durable().await?;
    running.stop().await;
    println!("{IMPORT_CUSTOMERS} portal customers created (sync off), appliance stopped");
    Ok(())
}

struct Watch {
    elapsed: Duration,
    imported: u64,
    complete: bool,
    first: Option<Duration>,
    steady: Option<f64>,
}

/// Watches the store until every request is imported and the import's progress is on disk.
async fn import_watch(running: &Running, requests: usize, t0: Instant) -> anyhow::Result<Watch> {
    let store = &running.state.store;
    let target = u64::try_from(requests)?;
    let (lo, hi) = (target / 10, target * 9 / 10);
    let (mut first, mut at_lo, mut at_hi) = (None, None, None);
    let mut next_report = Duration::from_secs(15);
    loop {
        let count = store.ticket_count()?;
        let elapsed = t0.elapsed();
        if count > 0 && first.is_none() {
            first = Some(elapsed);
        }
        if count >= lo.max(1) && at_lo.is_none() {
            at_lo = Some((elapsed, count));
        }
        if count >= hi.max(1) && at_hi.is_none() {
            at_hi = Some((elapsed, count));
        }
        let progress: BackfillProgress = store.sync_value("backfill")?.unwrap_or_default();
        if progress.first_pass_done {
            ensure!(
                progress.tickets_created == target && count == target,
                "the first pass ended with {} of {target} imported ({count} tickets): {progress:?}",
                progress.tickets_created
            );
        }
        let complete = progress.tickets_created >= target;
        if complete || elapsed >= IMPORT_DEADLINE {
            let steady = at_lo.zip(at_hi).and_then(|((t1, c1), (t2, c2))| {
                let span = t2.checked_sub(t1).filter(|d| !d.is_zero())?;
                Some(per_sec(usize::try_from(c2 - c1).unwrap_or(0), span))
            });
            if !complete {
                println!("deadline: {count} of {requests} imported after {elapsed:?}");
            }
            return Ok(Watch {
                elapsed,
                imported: if complete {
                    progress.tickets_created
                } else {
                    count
                },
                complete,
                first,
                steady,
            });
        }
        if elapsed >= next_report {
            println!(
                "  {:.0} s: {count} tickets ({:.0}/s)",
                elapsed.as_secs_f64(),
                per_sec(usize::try_from(count)?, elapsed)
            );
            next_report += Duration::from_secs(15);
        }
        tokio::time::sleep(IMPORT_CHECK).await;
    }
}

async fn import_evidence(
    running: &Running,
    fake: &FakeSdp,
    t0: Instant,
    threads: Vec<(String, f64)>,
    cpu: Option<CpuUse>,
) -> anyhow::Result<Evidence> {
    let calls: Vec<_> = fake.calls().into_iter().filter(|c| c.at >= t0).collect();
    let mut per_endpoint: BTreeMap<String, usize> = BTreeMap::new();
    for c in &calls {
        *per_endpoint.entry(c.endpoint.clone()).or_default() += 1;
    }
    let mut by_pair: BTreeMap<(String, String), Vec<Duration>> = BTreeMap::new();
    for pair in calls.windows(2) {
        by_pair
            .entry((pair[0].endpoint.clone(), pair[1].endpoint.clone()))
            .or_default()
            .push(pair[1].at - pair[0].at);
    }
    drop(calls);
    let mut gaps: Vec<Gap> = by_pair
        .into_iter()
        .map(|((from, to), mut v)| {
            v.sort_unstable();
            Gap {
                from,
                to,
                count: v.len(),
                total: v.iter().sum(),
                p50: percentile(&v, 500),
            }
        })
        .collect();
    gaps.sort_by_key(|g| std::cmp::Reverse(g.total));
    let http = http_client()?;
    let base = format!("http://{}", running.addr);
    let flushes = metric(&http, &base, "deskbridge_store_commit_batches_total").await;
    let store = &running.state.store;
    let mut commits = Vec::with_capacity(COMMIT_PROBES);
    for i in 0..COMMIT_PROBES {
        let started = Instant::now();
        store.put_sync_values(&[("bench_probe", serde_json::json!(i))])?;
        store.durable().await?;
        commits.push(started.elapsed());
    }
    commits.sort_unstable();
    let mut cached = Vec::new();
    for _ in 0..5 {
        cached.push(fake_list(&http, fake, 0).await?);
    }
    cached.sort_unstable();
    let list_uncached = fake_list(&http, fake, 1).await?;
    let mut calls: Vec<(String, usize)> = per_endpoint.into_iter().collect();
    calls.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    Ok(Evidence {
        calls,
        gaps,
        flushes,
        commit: percentile(&commits, 500),
        list_cached: percentile(&cached, 500),
        list_uncached,
        threads,
        cpu,
    })
}

/// One `GET /requests` page from the middle of the backlog, with the poll's `list_info` and
/// `last_updated_time > since`.
async fn fake_list(http: &reqwest::Client, fake: &FakeSdp, since: i64) -> anyhow::Result<Duration> {
    let list_info = json!({
        "row_count": 100,
        "start_index": 50_001,
        "sort_field": "last_updated_time",
        "sort_order": "asc",
        "get_total_count": false,
        "search_criteria": [{"field": "last_updated_time", "condition": "greater than", "value": since.to_string()}],
        "fields_required": ["id", "subject", "requester", "status", "technician", "last_updated_time"],
    });
    let started = Instant::now();
    fake_get(
        http,
        fake,
        "/requests",
        Some(json!({"list_info": list_info})),
    )
    .await?;
    Ok(started.elapsed())
}

/// A `GET` to the fake's API as deskbridge sends it; fails unless it answers 200.
async fn fake_get(
    http: &reqwest::Client,
    fake: &FakeSdp,
    path: &str,
    input: Option<Value>,
) -> anyhow::Result<()> {
    let mut request = http
        .get(fake.api_url(path))
        .header("authtoken", fake.api_key())
        .header("Accept", "application/vnd.manageengine.sdp.v3+json");
    if let Some(input) = input {
        request = request.query(&[("input_data", input.to_string())]);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(status == StatusCode::OK, "fake GET {path}: {status} {body}");
    Ok(())
}

/// A counter from `/metrics`.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<u32> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// CPU: the process (appliance, fake and driver together), its threads, and the machine.

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
}

/// utime + stime from a `/proc/.../stat` line, in clock ticks (`USER_HZ`, 100 on Linux).
fn stat_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name start at field 3 (state); utime and stime are
    // fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(ticks(11)? + ticks(12)?)
}

fn process_ticks() -> Option<u64> {
    stat_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Busy CPU time of the whole machine, in clock ticks: everything in `/proc/stat` but idle and
/// iowait.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(v.get(..8)?.iter().sum::<u64>() - v[3] - v[4])
}

fn cores(ticks: u64, wall: Duration) -> f64 {
    f64::from(u32::try_from(ticks).unwrap_or(u32::MAX)) / 100.0 / wall.as_secs_f64()
}

/// Average cores busy over an interval: this process and the whole machine.
struct CpuUse {
    process: f64,
    machine: f64,
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bench process (appliance + fake SDP + driver) {:.2} cores, whole machine {:.2} of {}",
            self.process,
            self.machine,
            cpus()
        )
    }
}

struct CpuMeter {
    started: Instant,
    ticks: Option<(u64, u64)>,
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            started: Instant::now(),
            ticks: process_ticks().zip(machine_busy_ticks()),
        }
    }

    fn finish(&self) -> Option<CpuUse> {
        let wall = self.started.elapsed();
        let (p0, m0) = self.ticks?;
        let (p1, m1) = process_ticks().zip(machine_busy_ticks())?;
        Some(CpuUse {
            process: cores(p1.saturating_sub(p0), wall),
            machine: cores(m1.saturating_sub(m0), wall),
        })
    }
}

struct ThreadTicks {
    tid: u32,
    name: String,
    ticks: u64,
}

/// CPU time of every live thread of this process.
fn thread_ticks() -> Vec<ThreadTicks> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let tid = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let name = stat.split_once('(')?.1.rsplit_once(')')?.0.to_owned();
            Some(ThreadTicks {
                tid,
                name,
                ticks: stat_ticks(&stat)?,
            })
        })
        .collect()
}

/// Cores used per thread role over `wall`, busiest first. Threads that ended meanwhile (sled
/// starts short-lived I/O threads) are counted from the process total.
fn thread_cores(
    before: &[ThreadTicks],
    after: &[ThreadTicks],
    fake_threads: &HashSet<u32>,
    wall: Duration,
) -> Vec<(String, f64)> {
    let pid = std::process::id();
    let mut by_role: BTreeMap<String, u64> = BTreeMap::new();
    for t in after {
        let start = before
            .iter()
            .find(|b| b.tid == t.tid)
            .map_or(0, |b| b.ticks);
        // HTTP workers run an actix arbiter each (`actix-rt|system:N|arbiter:M`, cut to 15
        // characters); the fake's started before the appliance's.
        let http = t.name.starts_with("actix-rt|system") || t.name.starts_with("actix-server");
        let role = if t.tid == pid {
            "main (actix System: sync workers, actors, bench driver)".to_owned()
        } else if http && fake_threads.contains(&t.tid) {
            "fake SDP HTTP worker".to_owned()
        } else if http {
            "deskbridge HTTP workers".to_owned()
        } else if t.name.starts_with("sled-io") {
            "sled I/O pool (sled-io-N)".to_owned()
        } else {
            t.name.clone()
        };
        *by_role.entry(role).or_default() += t.ticks.saturating_sub(start);
    }
    let mut roles: Vec<(String, f64)> = by_role
        .into_iter()
        .map(|(role, ticks)| (role, cores(ticks, wall)))
        .filter(|(_, c)| *c >= 0.005)
        .collect();
    roles.sort_by(|a, b| b.1.total_cmp(&a.1));
    roles
}

// ---------------------------------------------------------------------------------------------
// Statistics and the summary.

/// `p50 a ms, p90 b ms, p99 c ms, max d ms (n samples)`
fn spread(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        ms(percentile(sorted, 500)),
        ms(percentile(sorted, 900)),
        ms(percentile(sorted, 990)),
        ms(sorted.last().copied().unwrap_or_default()),
        sorted.len()
    )
}

fn print_lags(what: &str, sorted: &[Duration]) {
    println!("{what}: {}", spread(sorted));
}

#[derive(Default)]
struct Summary {
    webhook: Option<InboundLag>,
    poll: Option<InboundLag>,
    outbound: Option<OutboundLag>,
    import: Option<Import>,
}

/// One row: what, measured, target, measured/target, met.
fn row(
    out: &mut String,
    what: &str,
    measured: &str,
    target: &str,
    ratio: Option<f64>,
    met: Option<bool>,
) {
    let ratio = ratio.map_or_else(String::new, |r| format!("{r:.3}"));
    let verdict = match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "(no target)",
    };
    let _ = writeln!(
        out,
        "| {what} | {measured} | {target} | {ratio} | {verdict} |"
    );
}

impl Summary {
    fn print(&self) {
        let mut out = String::new();
        self.targets(&mut out);
        self.details(&mut out);
        print!("{out}");
    }

    fn targets(&self, out: &mut String) {
        out.push_str("\n== Summary (ratio = measured / target)\n\n");
        out.push_str("| Measure | Result | Target | Ratio | Met |\n");
        out.push_str("|---|---|---|---|---|\n");
        for lag in [&self.webhook, &self.poll].into_iter().flatten() {
            let p50 = ms(percentile(&lag.event, 500));
            let measured = format!(
                "p50 {p50:.1} ms (p90 {:.1}, p99 {:.1})",
                ms(percentile(&lag.event, 900)),
                ms(percentile(&lag.event, 990))
            );
            match lag.mode {
                Inbound::Webhook => row(
                    out,
                    "1. SDP → portal, webhook",
                    &measured,
                    &format!("p50 < {TARGET_WEBHOOK_P50_MS:.0} ms"),
                    Some(p50 / TARGET_WEBHOOK_P50_MS),
                    Some(p50 < TARGET_WEBHOOK_P50_MS),
                ),
                Inbound::Poll => row(
                    out,
                    "2. SDP → portal, polling every 1 s",
                    &measured,
                    "(record only)",
                    None,
                    None,
                ),
            }
        }
        if let Some(o) = &self.outbound {
            for (what, v) in [
                (
                    "3. Portal → SDP, 20 ms SDP latency, sequential",
                    &o.sequential,
                ),
                ("3. Portal → SDP, same, 4 tickets at once", &o.concurrent),
            ] {
                let p50 = ms(percentile(v, 500));
                row(
                    out,
                    what,
                    &format!("p50 {p50:.1} ms (p99 {:.1})", ms(percentile(v, 990))),
                    &format!("p50 < {TARGET_OUTBOUND_P50_MS:.0} ms"),
                    Some(p50 / TARGET_OUTBOUND_P50_MS),
                    Some(p50 < TARGET_OUTBOUND_P50_MS),
                );
            }
        }
        if let Some(i) = &self.import {
            let rate = per_sec(usize::try_from(i.imported).unwrap_or(0), i.elapsed);
            let measured = if i.complete {
                format!(
                    "{rate:.0} requests/s ({} in {:.1} s)",
                    i.imported,
                    i.elapsed.as_secs_f64()
                )
            } else {
                format!(
                    "{rate:.0} requests/s (only {} of {} in {:.0} s, stopped)",
                    i.imported,
                    i.requests,
                    i.elapsed.as_secs_f64()
                )
            };
            row(
                out,
                &format!("4. Import of {} SDP requests", i.requests),
                &measured,
                &format!(">= {TARGET_IMPORT_PER_SEC:.0} requests/s"),
                Some(rate / TARGET_IMPORT_PER_SEC),
                Some(i.complete && rate >= TARGET_IMPORT_PER_SEC),
            );
        }
    }

    fn details(&self, out: &mut String) {
        out.push_str("\nOther measurements\n\n");
        for lag in [&self.webhook, &self.poll].into_iter().flatten() {
            let name = match lag.mode {
                Inbound::Webhook => "webhook",
                Inbound::Poll => "polling",
            };
            let _ = writeln!(out, "- {name}: note → Message event {}", spread(&lag.event));
            let _ = writeln!(
                out,
                "- {name}: note → visible over HTTP {}",
                spread(&lag.visible)
            );
            if !lag.hook.is_empty() {
                let _ = writeln!(out, "- {name}: note → hook answered {}", spread(&lag.hook));
            }
            if let Some(cpu) = &lag.cpu {
                let _ = writeln!(out, "- {name}: CPU {cpu}");
            }
        }
        if let Some(o) = &self.outbound {
            let _ = writeln!(out, "- portal → SDP sequential: {}", spread(&o.sequential));
            let _ = writeln!(out, "- portal → SDP POST answered: {}", spread(&o.answered));
            let _ = writeln!(out, "- portal → SDP concurrent: {}", spread(&o.concurrent));
            if let Some(cpu) = &o.cpu {
                let _ = writeln!(out, "- portal → SDP: CPU {cpu}");
            }
        }
        if let Some(i) = &self.import {
            i.details(out);
        }
    }
}

impl Import {
    fn details(&self, out: &mut String) {
        let imported = usize::try_from(self.imported).unwrap_or(0).max(1);
        let _ = writeln!(
            out,
            "- import setup: {} requests raised in the fake in {:.1} s; {} portal customers",
            self.requests,
            self.raise.as_secs_f64(),
            self.customers
        );
        if let Some(first) = self.first {
            let _ = writeln!(
                out,
                "- import: first ticket {:.0} ms after the start",
                ms(first)
            );
        }
        if let Some(steady) = self.steady {
            let _ = writeln!(
                out,
                "- import: {steady:.0} requests/s between 10 % and 90 %"
            );
        }
        let e = &self.evidence;
        if let Some(cpu) = &e.cpu {
            let _ = writeln!(out, "- import: CPU {cpu}");
        }
        for (role, c) in &e.threads {
            let _ = writeln!(out, "  - thread {role}: {c:.2} cores");
        }
        let per = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX)) / per_count(imported);
        out.push_str("- import: SDP calls per imported request:");
        for (endpoint, n) in &e.calls {
            let _ = write!(out, " `{endpoint}` {:.3};", per(*n));
        }
        out.push('\n');
        if let Some(f) = e.flushes {
            let _ = writeln!(
                out,
                "- import: {f} group-commit flushes, {:.2} per imported request",
                per(usize::try_from(f).unwrap_or(0))
            );
        }
        let _ = writeln!(
            out,
            "- import: one-key transaction + durable on that store: p50 {:.2} ms",
            ms(e.commit)
        );
        let _ = writeln!(
            out,
            "- fake `GET /requests` page at {} rows: {:.1} ms with the import's criteria (cached \
             order), {:.1} ms with new criteria (filters and sorts everything)",
            self.requests,
            ms(e.list_cached),
            ms(e.list_uncached)
        );
        let total: Duration = e.gaps.iter().map(|g| g.total).sum();
        out.push_str(
            "- import: time between consecutive calls arriving at the fake (this call → next \
             call: count, p50, mean, share of the import):\n",
        );
        for g in e.gaps.iter().take(8) {
            let mean = g.total / u32::try_from(g.count).unwrap_or(u32::MAX).max(1);
            let _ = writeln!(
                out,
                "  - `{}` → `{}`: {}, p50 {:.3} ms, mean {:.3} ms, {:.1} %",
                g.from,
                g.to,
                g.count,
                ms(g.p50),
                ms(mean),
                g.total.as_secs_f64() / total.as_secs_f64().max(1e-9) * 100.0
            );
        }
    }
}

fn per_count(n: usize) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}
