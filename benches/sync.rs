//! The sync's economy, measured against the fake SDP of the integration tests: what each kind of
//! change costs in SDP calls, the lags both ways at the default budget, the backfill, an outage.
//! See BENCHMARKS.md ("Sync").
//!
//! `cargo bench --bench sync` runs every part; `cargo bench --bench sync -- <part> [<part> …]`
//! runs some. Parts:
//!
//! - `calls`: SDP calls of an idle poll, of one poll after a team change (status, assignee, public
//!   note, file), of each customer change (what the outbox sends), and per request of the
//!   backfill's first pass; with `sdp.import_requester_requests` on (the default) and off;
//! - `outbound`: portal → SDP lag of a customer's messages while 100 tickets change in SDP faster
//!   than the budget can read them;
//! - `poll`: SDP → portal lag by polling with 100 active tickets, at `poll_interval_secs` 5 and 30;
//! - `webhook`: the same lag when SDP's trigger calls the webhook after each change;
//! - `backfill`: the first pass over 100,000 requests of 1,000 portal customers unthrottled and at
//!   60 calls a minute, then the details (`DESKBRIDGE_BENCH_IMPORT=<n>`: another number);
//! - `outage`: 200 customer messages queued while SDP answers 503 for 5 minutes, then the drain.
//!
//! Unless a part says otherwise the appliance runs with its default `sdp.*` settings (60 calls a
//! minute, a poll every 30 s, imports on) and the fake with its default budget (60 calls per
//! sliding 60 s) and 20 ms of latency on every API answer. `DESKBRIDGE_BENCH_QUICK=1` shortens
//! every part, to try the bench; its figures are not the ones BENCHMARKS.md compares.
//!
//! Everything runs in this one process, in one actix System, as the integration tests do: the
//! appliance through `deskbridge::app::start` (what `deskbridge serve` runs) and the fake SDP
//! (`crates/fake-sdp`), a real HTTP server on 127.0.0.1 with its own worker thread. Each part
//! stops its servers when it ends; the temporary data dirs go when the bench ends or fails.

#![allow(
    unreachable_pub,
    reason = "a test or bench binary's modules share helpers; their visibility is no API"
)]

#[path = "common/mod.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use common::{create_customer, login, ms, per_sec, percentile};
use deskbridge::actors::TicketEventKind;
use deskbridge::actors::broadcaster::{Published, Subscribe};
use deskbridge::app::Running;
use deskbridge::config::{Config, Secret};
use deskbridge::domain::{Role, Status, User, UserId};
use deskbridge::sync::BackfillProgress;
use fake_sdp::{CallRecord, DEFAULT_BUDGET, FakeSdp, Fault, Profile};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

const ADMIN_EMAIL: &str = "admin@bench.test";
const ADMIN_PASSWORD: &str = "bench-admin-password";
/// Owns the active tickets the team changes.
const CUSTOMER_EMAIL: &str = "customer@bench.test";
/// Writes on a ticket of their own while the team works on the others.
const WRITER_EMAIL: &str = "writer@bench.test";
const CUSTOMER_PASSWORD: &str = "bench-customer-password";
const HOOK_SECRET: &str = "bench-hook-secret";

/// SDP's latency on every API answer, unless a part says otherwise.
const FAKE_LATENCY: Duration = Duration::from_millis(20);
/// A budget no part reaches: "unthrottled".
const UNTHROTTLED: u32 = 100_000_000;
/// Active tickets the team changes in the lag parts.
const ACTIVE_TICKETS: usize = 100;

/// Times each team or customer change is counted.
const CALL_REPS: usize = 3;
const IDLE_POLLS: usize = 5;
/// The first pass counted in `calls`: requests and their customers.
const FIRST_PASS_REQUESTS: usize = 1_000;
const FIRST_PASS_CUSTOMERS: usize = 10;

/// Inbound saturated: a status change this often is more than the budget can read (one read
/// each, about 54 background calls a minute).
const SATURATING_CHANGES: Duration = Duration::from_millis(500);
const OUTBOUND_MESSAGES: usize = 24;
const MESSAGE_EVERY: Duration = Duration::from_secs(5);
/// The poll must be behind before the messages start: this many calls in the budget's window.
const SATURATED_IN_WINDOW: u64 = 45;

/// The team's pace in the `poll` part: within the budget at both intervals.
const POLL_CHANGES: Duration = Duration::from_secs(5);
const WEBHOOK_CHANGES: Duration = Duration::from_secs(2);
const WEBHOOK_SAMPLES: usize = 50;

const IMPORT_REQUESTS: usize = 100_000;
const IMPORT_CUSTOMERS: usize = 1_000;
/// The paced first pass gives up here and reports how far it got.
const PACED_DEADLINE: Duration = Duration::from_mins(40);

const OUTAGE: Duration = Duration::from_mins(5);
const OUTAGE_TICKETS: usize = 20;
const OUTAGE_CHANGES: usize = 200;

/// Targets, as stated in BENCHMARKS.md.
const TARGET_IDLE_IMPORTS: f64 = 2.0;
const TARGET_IDLE_NO_IMPORTS: f64 = 1.0;
const TARGET_STATUS_OR_ASSIGNEE: f64 = 3.0;
const TARGET_NOTE: f64 = 4.0;
const TARGET_OUTBOUND_P99: Duration = Duration::from_secs(1);
/// Polling: p99 ≤ the interval plus this.
const TARGET_POLL_SLACK: Duration = Duration::from_secs(1);
const TARGET_FIRST_PASS_PER_SEC: f64 = 5_000.0;
const TARGET_PACED_FIRST_PASS: Duration = Duration::from_mins(20);
const TARGET_OUTAGE_GAP: Duration = Duration::from_secs(2);
const TARGET_FIRST_DELIVERY: Duration = Duration::from_secs(5);
const TARGET_DRAIN: Duration = Duration::from_secs(210);

/// How long each part measures; `DESKBRIDGE_BENCH_QUICK=1` shortens them to try the bench.
struct Plan {
    quick: bool,
    import_requests: usize,
    outbound_messages: usize,
    poll_fast: Duration,
    poll_default: Duration,
    webhook_samples: usize,
    details_window: Duration,
    outage: Duration,
}

impl Plan {
    fn from_env() -> anyhow::Result<Plan> {
        let quick = std::env::var("DESKBRIDGE_BENCH_QUICK").is_ok_and(|v| v == "1");
        let import_requests = match std::env::var("DESKBRIDGE_BENCH_IMPORT") {
            Ok(n) => n
                .parse()
                .context("DESKBRIDGE_BENCH_IMPORT must be a number")?,
            Err(_) if quick => 5_000,
            Err(_) => IMPORT_REQUESTS,
        };
        Ok(if quick {
            Plan {
                quick,
                import_requests,
                outbound_messages: 6,
                poll_fast: Duration::from_secs(40),
                poll_default: Duration::from_secs(70),
                webhook_samples: 10,
                details_window: Duration::from_secs(30),
                outage: Duration::from_secs(30),
            }
        } else {
            Plan {
                quick,
                import_requests,
                outbound_messages: OUTBOUND_MESSAGES,
                poll_fast: Duration::from_mins(4),
                poll_default: Duration::from_mins(6),
                webhook_samples: WEBHOOK_SAMPLES,
                details_window: Duration::from_mins(3),
                outage: OUTAGE,
            }
        })
    }
}

const PARTS: [&str; 6] = ["calls", "outbound", "poll", "webhook", "backfill", "outage"];

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; anything else not starting with `-` selects parts.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(unknown) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
        bail!("no part {unknown}; the parts are {}", PARTS.join(", "));
    }
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let plan = Plan::from_env()?;
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
         one process; data under {}{}",
        cpus(),
        work.path().display(),
        if plan.quick {
            "; QUICK run (shortened parts)"
        } else {
            ""
        }
    );
    let started = Instant::now();
    let mut summary = Summary::default();
    actix_web::rt::System::new().block_on(async {
        if wants("calls") {
            summary.calls = Some(calls(work.path()).await?);
        }
        if wants("outbound") {
            summary.outbound = Some(outbound(work.path(), &plan).await?);
        }
        if wants("poll") {
            for (interval, span) in [(5, plan.poll_fast), (30, plan.poll_default)] {
                let lag = inbound(work.path(), Inbound::Poll(interval), span, 0).await?;
                summary.inbound.push(lag);
            }
        }
        if wants("webhook") {
            let lag = inbound(
                work.path(),
                Inbound::Webhook,
                Duration::ZERO,
                plan.webhook_samples,
            )
            .await?;
            summary.inbound.push(lag);
        }
        if wants("backfill") {
            summary.backfill = Some(backfill(work.path(), &plan).await?);
        }
        if wants("outage") {
            summary.outage = Some(outage(work.path(), &plan).await?);
        }
        anyhow::Ok(())
    })?;
    summary.print();
    println!(
        "\nbench finished in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
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

/// Points the appliance at the fake; every other `sdp.*` setting keeps its default.
fn connect(config: &mut Config, fake: &FakeSdp) {
    config.sdp.base_url = fake.base_url();
    config.sdp.api_key = Secret::new(fake.api_key());
    config.sdp.webhook_secret = Secret::new(HOOK_SECRET.into());
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn data_dir(work: &Path, label: &str) -> anyhow::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("{label}-"))
        .tempdir_in(work)?
        .keep()
        .join("data"))
}

/// A ticket and the SDP request it is linked to.
#[derive(Clone)]
struct Linked {
    number: String,
    request_id: String,
}

/// The fake SDP and the appliance connected to it, with a signed-in admin and two customers.
struct Env {
    fake: FakeSdp,
    running: Running,
    base: String,
    http: reqwest::Client,
    admin: String,
    customer: String,
    writer: String,
    /// The customer's tickets, linked to SDP requests.
    tickets: Vec<Linked>,
    /// The writer's one ticket.
    own: Option<Linked>,
}

impl Env {
    /// The appliance connected to a new fake, with `active` tickets of the customer and one of the
    /// writer already in SDP. They are made with both budgets lifted (setting up takes seconds,
    /// not minutes); then the appliance restarts on the same data dir with its default settings
    /// changed by `adjust`, and the fake takes its default budget and [`FAKE_LATENCY`] again.
    async fn start(
        work: &Path,
        label: &str,
        active: usize,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Env> {
        let fake = FakeSdp::start(Profile::OnPrem).await;
        fake.set_budget(None);
        let dir = data_dir(work, label)?;
        let mut setup = base_config(dir.clone());
        connect(&mut setup, &fake);
        setup.sdp.max_requests_per_minute = UNTHROTTLED;
        setup.sdp.poll_interval_secs = 3600;
        let running = deskbridge::app::start(setup).await?;
        let base = format!("http://{}", running.addr);
        let http = http_client()?;
        let made = async {
            let admin = login(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
            for (email, name) in [(CUSTOMER_EMAIL, "Bench Customer"), (WRITER_EMAIL, "Writer")] {
                create_customer(&http, &base, &admin, email, name, CUSTOMER_PASSWORD).await?;
            }
            let customer = login(&http, &base, CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await?;
            let writer = login(&http, &base, WRITER_EMAIL, CUSTOMER_PASSWORD).await?;
            let numbers: Vec<anyhow::Result<String>> =
                futures_util::stream::iter((0..active).map(|i| {
                    let (http, base, customer) = (&http, &base, &customer);
                    async move {
                        create_ticket(http, base, customer, &format!("Active ticket {i}")).await
                    }
                }))
                .buffered(8)
                .collect()
                .await;
            let own = create_ticket(&http, &base, &writer, "The writer's ticket").await?;
            let mut tickets = Vec::with_capacity(active);
            for number in numbers {
                tickets.push(linked(&http, &base, &customer, &number?).await?);
            }
            let own = linked(&http, &base, &writer, &own).await?;
            anyhow::Ok((tickets, own))
        }
        .await;
        running.stop().await;
        let (tickets, own) = made?;
        fake.set_budget(Some(DEFAULT_BUDGET));
        fake.set_latency(FAKE_LATENCY);
        fake.reset_calls();
        let mut config = base_config(dir);
        connect(&mut config, &fake);
        adjust(&mut config);
        let running = deskbridge::app::start(config).await?;
        let base = format!("http://{}", running.addr);
        let signed_in = async {
            let admin = login(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
            let customer = login(&http, &base, CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await?;
            let writer = login(&http, &base, WRITER_EMAIL, CUSTOMER_PASSWORD).await?;
            anyhow::Ok((admin, customer, writer))
        }
        .await;
        let (admin, customer, writer) = match signed_in {
            Ok(tokens) => tokens,
            Err(e) => {
                running.stop().await;
                fake.stop().await;
                return Err(e);
            }
        };
        Ok(Env {
            fake,
            running,
            base,
            http,
            admin,
            customer,
            writer,
            tickets,
            own: Some(own),
        })
    }

    async fn stop(self) {
        self.running.stop().await;
        self.fake.stop().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, token: &str, path: &str) -> anyhow::Result<Value> {
        get_json(&self.http, &self.url(path), token).await
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// Sync health as an admin sees it (`GET /api/v1/admin/sync`).
    async fn health(&self) -> anyhow::Result<Value> {
        self.get(&self.admin, "/api/v1/admin/sync").await
    }

    /// Waits for the first poll and the backfill's first pass.
    async fn settled(&self) -> anyhow::Result<Value> {
        eventually(
            "the first poll and first pass",
            Duration::from_mins(5),
            || async {
                let health = self.health().await?;
                Ok((!health["stats"]["last_poll_ok"].is_null()
                    && health["backfill"]["first_pass_done"] == true)
                    .then_some(health))
            },
        )
        .await
    }

    /// Asks for a poll now and waits until it has finished; only when no other poll runs (the
    /// interval is an hour).
    async fn poll_once(&self) -> anyhow::Result<()> {
        let before = self.health().await?["stats"]["last_poll_ok"].clone();
        self.post(&self.admin, "/api/v1/admin/sync/run", &json!({}))
            .await?;
        eventually("a poll", Duration::from_mins(2), || async {
            let last = self.health().await?["stats"]["last_poll_ok"].clone();
            Ok((!last.is_null() && last != before).then_some(()))
        })
        .await
    }

    /// Waits until nothing is left to deliver.
    async fn drained(&self) -> anyhow::Result<()> {
        eventually("an empty outbox", Duration::from_mins(2), || async {
            Ok((self.health().await?["queue_depth"] == 0).then_some(()))
        })
        .await
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

    fn hook_url(&self) -> String {
        self.url(&format!("/api/v1/hooks/sdp?secret={HOOK_SECRET}"))
    }
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status == StatusCode::OK, "GET {url}: {status} {body}");
    Ok(body)
}

async fn create_ticket(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    subject: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(token)
        .json(&json!({
            "kind": "problem_report",
            "subject": subject,
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
    Ok(body["number"].as_str().context("number")?.to_owned())
}

/// Waits until the ticket is in SDP; its request.
async fn linked(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    number: &str,
) -> anyhow::Result<Linked> {
    let url = format!("{base}/api/v1/tickets/{number}");
    eventually(
        &format!("{number} in SDP"),
        Duration::from_mins(2),
        || async {
            let t = get_json(http, &url, token).await?;
            Ok((t["sdp"]["sync_state"] == "synced")
                .then(|| t["sdp"]["request_id"].as_str().map(str::to_owned))
                .flatten()
                .map(|request_id| Linked {
                    number: number.to_owned(),
                    request_id,
                }))
        },
    )
    .await
}

/// Polls `check` every 20 ms until it gives a value; fails after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        ensure!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The API calls the fake logged (not the token endpoint), by endpoint, in arrival order.
fn api_calls(calls: &[CallRecord]) -> Vec<&CallRecord> {
    calls.iter().filter(|c| c.is_api()).collect()
}

fn endpoints(calls: &[CallRecord]) -> Vec<String> {
    api_calls(calls)
        .iter()
        .map(|c| c.endpoint.clone())
        .collect()
}

fn by_endpoint<'a>(calls: impl IntoIterator<Item = &'a CallRecord>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.endpoint.clone()).or_default() += 1;
    }
    out
}

fn endpoint_list(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(e, n)| format!("`{e}` {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Calls per lane from sync health's `budget.calls`.
fn lane_calls(health: &Value) -> BTreeMap<String, u64> {
    health["budget"]["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["lane"].as_str()?.to_owned(), l["calls"].as_u64()?)))
        .collect()
}

fn lane_delta(before: &Value, after: &Value) -> BTreeMap<String, u64> {
    let before = lane_calls(before);
    lane_calls(after)
        .into_iter()
        .map(|(lane, n)| {
            let d = n.saturating_sub(before.get(&lane).copied().unwrap_or(0));
            (lane, d)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn lane_list(lanes: &BTreeMap<String, u64>) -> String {
    if lanes.is_empty() {
        return "none".into();
    }
    lanes
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A small deterministic generator (xorshift), so every run picks the same tickets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        f64::from(u32::try_from(self.next() >> 40).unwrap_or(0)) / f64::from(1u32 << 24)
    }
}

// ---------------------------------------------------------------------------------------------
// `calls`: SDP calls per poll, per change, per imported request.

/// One counted kind of work.
struct CallRow {
    what: String,
    imports: bool,
    /// API calls of each repetition.
    samples: Vec<usize>,
    /// The endpoints of the first repetition.
    example: Vec<String>,
    /// At most this many calls, when a target says so.
    target: Option<f64>,
}

struct FirstPassCalls {
    requests: usize,
    imported: u64,
    list_calls: usize,
    api_calls: usize,
    took: Duration,
}

struct Calls {
    rows: Vec<CallRow>,
    first_pass: Option<FirstPassCalls>,
    cpu: Option<CpuUse>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TeamChange {
    Status,
    Assignee,
    Note,
    File,
    /// A status change on a request that has notes (after [`TeamChange::Note`]).
    StatusWithNotes,
}

impl TeamChange {
    /// In this order on the same requests: the file before the first note, so that its poll
    /// reads no notes list; the last status change after it.
    const ALL: [TeamChange; 5] = [
        TeamChange::Status,
        TeamChange::Assignee,
        TeamChange::File,
        TeamChange::Note,
        TeamChange::StatusWithNotes,
    ];

    fn label(self) -> &'static str {
        match self {
            TeamChange::Status => "team: status change, one poll",
            TeamChange::Assignee => "team: assignee change, one poll",
            TeamChange::Note => "team: new public note, one poll",
            TeamChange::File => "team: new file, one poll",
            TeamChange::StatusWithNotes => "team: status change of a request with notes, one poll",
        }
    }

    fn target(self) -> Option<f64> {
        match self {
            TeamChange::Status | TeamChange::Assignee | TeamChange::StatusWithNotes => {
                Some(TARGET_STATUS_OR_ASSIGNEE)
            }
            TeamChange::Note => Some(TARGET_NOTE),
            TeamChange::File => None,
        }
    }
}

async fn calls(work: &Path) -> anyhow::Result<Calls> {
    println!(
        "\n== calls: SDP calls per idle poll, per team change (one poll each), per customer \
         change and per request of the first pass; fake budget 60/60 s, {} ms latency, \
         appliance at 60 calls a minute",
        FAKE_LATENCY.as_millis()
    );
    let meter = CpuMeter::start();
    let mut rows = Vec::new();
    for imports in [true, false] {
        // Polls only when asked, so each poll counted is the only thing going on.
        let env = Env::start(work, "calls", CALL_REPS + 1, |c| {
            c.sdp.poll_interval_secs = 3600;
            c.sdp.import_requester_requests = imports;
        })
        .await?;
        let result = async {
            let mut rows = poll_calls(&env, imports).await?;
            if imports {
                rows.extend(customer_calls(&env).await?);
            }
            anyhow::Ok(rows)
        }
        .await;
        env.stop().await;
        rows.extend(result?);
    }
    let first_pass = first_pass_calls(work).await?;
    let cpu = meter.finish();
    for row in &rows {
        println!(
            "{} (imports {}): {:?} calls; e.g. {}",
            row.what,
            if row.imports { "on" } else { "off" },
            row.samples,
            row.example.join(", ")
        );
    }
    println!(
        "first pass: {} list calls (of {} API calls) for {} imported requests in {:.1} s",
        first_pass.list_calls,
        first_pass.api_calls,
        first_pass.imported,
        first_pass.took.as_secs_f64()
    );
    Ok(Calls {
        rows,
        first_pass: Some(first_pass),
        cpu,
    })
}

/// Idle polls, then each team change followed by one poll.
async fn poll_calls(env: &Env, imports: bool) -> anyhow::Result<Vec<CallRow>> {
    env.settled().await?;
    let mut rows = Vec::new();
    let mut idle = CallRow {
        what: "idle poll".into(),
        imports,
        samples: Vec::new(),
        example: Vec::new(),
        target: Some(if imports {
            TARGET_IDLE_IMPORTS
        } else {
            TARGET_IDLE_NO_IMPORTS
        }),
    };
    for _ in 0..IDLE_POLLS {
        env.fake.reset_calls();
        env.poll_once().await?;
        let seen = endpoints(&env.fake.calls());
        idle.samples.push(seen.len());
        if idle.example.is_empty() {
            idle.example = seen;
        }
    }
    rows.push(idle);
    let mut sdp_status: HashMap<String, &str> = HashMap::new();
    for kind in TeamChange::ALL {
        let mut row = CallRow {
            what: kind.label().into(),
            imports,
            samples: Vec::new(),
            example: Vec::new(),
            target: kind.target(),
        };
        for rep in 0..CALL_REPS {
            let ticket = &env.tickets[rep];
            let id = &ticket.request_id;
            let marker = format!("Team change {rep} of {}", kind.label());
            match kind {
                TeamChange::Status | TeamChange::StatusWithNotes => {
                    let to = toggled(sdp_status.get(id).copied());
                    sdp_status.insert(id.clone(), to);
                    env.fake.set_status(id, to, None);
                }
                TeamChange::Assignee => {
                    let who = if rep % 2 == 0 { "Tech Two" } else { "Tech One" };
                    env.fake.assign_technician(id, who);
                }
                TeamChange::Note => {
                    env.fake.add_note(id, &marker, true);
                }
                TeamChange::File => {
                    env.fake
                        .attach_file(id, &format!("team-{rep}.txt"), marker.as_bytes());
                }
            }
            env.fake.reset_calls();
            env.poll_once().await?;
            let seen = endpoints(&env.fake.calls());
            ensure!(
                seen.iter().any(|e| e == "GET /requests/{id}"),
                "{}: the poll did not read the changed request: {seen:?}",
                kind.label()
            );
            row.samples.push(seen.len());
            if row.example.is_empty() {
                row.example = seen;
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The status the team sets next on a request: back and forth between two that map to
/// different portal statuses.
fn toggled(current: Option<&str>) -> &'static str {
    if current == Some("In Progress") {
        "On Hold"
    } else {
        "In Progress"
    }
}

fn portal_status(sdp: &str) -> Status {
    match sdp {
        "On Hold" => Status::Pending,
        _ => Status::InProgress,
    }
}

/// What the outbox sends for each kind of customer change.
async fn customer_calls(env: &Env) -> anyhow::Result<Vec<CallRow>> {
    let row = |what: &str| CallRow {
        what: format!("customer: {what}"),
        imports: true,
        samples: Vec::new(),
        example: Vec::new(),
        target: None,
    };
    let (mut create, mut message, mut file, mut confirm, mut reopen) = (
        row("new ticket"),
        row("message"),
        row("file"),
        row("confirm"),
        row("reopen"),
    );
    let count = |row: &mut CallRow, calls: &[CallRecord]| {
        let seen = endpoints(calls);
        row.samples.push(seen.len());
        if row.example.is_empty() {
            row.example = seen;
        }
    };
    let mine = &env.tickets[0];
    for rep in 0..CALL_REPS {
        env.fake.reset_calls();
        let number = create_ticket(
            &env.http,
            &env.base,
            &env.customer,
            &format!("Customer change {rep}"),
        )
        .await?;
        linked(&env.http, &env.base, &env.customer, &number).await?;
        env.drained().await?;
        count(&mut create, &env.fake.calls());

        env.fake.reset_calls();
        let text = format!("Customer message {rep}: the node still reports errors");
        env.post(
            &env.customer,
            &format!("/api/v1/tickets/{}/messages", mine.number),
            &json!({"body": text}),
        )
        .await?;
        eventually("the note in SDP", Duration::from_mins(1), || async {
            Ok(env
                .fake
                .notes(&mine.request_id)
                .iter()
                .any(|n| n.description.contains(&text))
                .then_some(()))
        })
        .await?;
        env.drained().await?;
        count(&mut message, &env.fake.calls());

        env.fake.reset_calls();
        let files = env.fake.attachments(&mine.request_id).len();
        let name = format!("customer-{rep}.log");
        let part = reqwest::multipart::Part::bytes(format!("log {rep}\n").into_bytes())
            .file_name(name.clone());
        let response = env
            .http
            .post(env.url(&format!("/api/v1/tickets/{}/attachments", mine.number)))
            .bearer_auth(&env.customer)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await?;
        ensure!(
            response.status() == StatusCode::CREATED,
            "upload: {}",
            response.status()
        );
        eventually("the file in SDP", Duration::from_mins(1), || async {
            Ok((env.fake.attachments(&mine.request_id).len() > files).then_some(()))
        })
        .await?;
        env.drained().await?;
        count(&mut file, &env.fake.calls());

        let (closed, reopened) = confirm_and_reopen(env, &env.tickets[rep + 1]).await?;
        count(&mut confirm, &closed);
        count(&mut reopen, &reopened);
    }
    Ok(vec![create, message, file, confirm, reopen])
}

/// The team resolves the ticket (read by a poll, not counted); the customer confirms it, then
/// reopens it. The calls each sent.
async fn confirm_and_reopen(
    env: &Env,
    ticket: &Linked,
) -> anyhow::Result<(Vec<CallRecord>, Vec<CallRecord>)> {
    env.fake.set_status(&ticket.request_id, "Resolved", None);
    env.poll_once().await?;
    let path = format!("/api/v1/tickets/{}", ticket.number);
    let t = env.get(&env.customer, &path).await?;
    ensure!(t["status"] == "resolved", "not resolved: {t}");
    env.fake.reset_calls();
    env.post(&env.customer, &format!("{path}/confirm"), &json!({}))
        .await?;
    sdp_status_is(env, &ticket.request_id, "Closed").await?;
    env.drained().await?;
    let closed = env.fake.calls();

    env.fake.reset_calls();
    env.post(
        &env.customer,
        &format!("{path}/reopen"),
        &json!({"reason": "It failed again after the reboot."}),
    )
    .await?;
    sdp_status_is(env, &ticket.request_id, "Open").await?;
    env.drained().await?;
    Ok((closed, env.fake.calls()))
}

async fn sdp_status_is(env: &Env, request_id: &str, status: &str) -> anyhow::Result<()> {
    eventually(
        &format!("SDP status {status}"),
        Duration::from_mins(1),
        || async {
            let request = env.fake.request(request_id).context("request")?;
            Ok((request["status"]["name"] == status).then_some(()))
        },
    )
    .await
}

/// The first pass over requests raised before SDP was connected: its list calls per request.
async fn first_pass_calls(work: &Path) -> anyhow::Result<FirstPassCalls> {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    raise_backlog(&fake, FIRST_PASS_REQUESTS, FIRST_PASS_CUSTOMERS);
    fake.set_latency(FAKE_LATENCY);
    let dir = data_dir(work, "first-pass")?;
    create_import_customers(&dir, FIRST_PASS_CUSTOMERS).await?;
    let mut config = base_config(dir);
    connect(&mut config, &fake);
    let t0 = Instant::now();
    let running = deskbridge::app::start(config).await?;
    let watched = watch_first_pass(&running, FIRST_PASS_REQUESTS, Duration::from_mins(5)).await;
    let took = t0.elapsed();
    running.stop().await;
    let calls = fake.calls();
    fake.stop().await;
    let watched = watched?;
    Ok(FirstPassCalls {
        requests: FIRST_PASS_REQUESTS,
        imported: watched.imported,
        list_calls: calls.iter().filter(|c| is_first_pass_list(c)).count(),
        api_calls: api_calls(&calls).len(),
        took,
    })
}

/// A list call of the first pass: it asks for the fields a ticket needs, the request type among
/// them (as `tests/sync_budget.rs` tells them apart).
fn is_first_pass_list(c: &CallRecord) -> bool {
    c.endpoint == "GET /requests"
        && c.input_data
            .as_deref()
            .is_some_and(|i| i.contains("request_type"))
}

// ---------------------------------------------------------------------------------------------
// The team's work on the active tickets, timed until the portal shows each change.

/// Changes made and not yet shown, and the lags of those shown.
#[derive(Default)]
struct ChangeLog {
    /// The status each request has in SDP.
    sdp_status: HashMap<String, &'static str>,
    /// Ticket number → (when SDP changed, the portal status it must show).
    pending: HashMap<String, (Instant, Status)>,
    lags: Vec<Duration>,
    /// Change → webhook answered (webhook mode).
    hook: Vec<Duration>,
    made: usize,
    /// Turns skipped because every ticket had a change not shown yet.
    skipped: usize,
    /// Events the subscription lost (the broadcaster's channel overflowed).
    lost_events: u64,
}

/// A status change on a random ticket with no change pending, every `every`, until `stop`; with
/// `hook`, SDP's trigger calls it after each change.
async fn team_changes(
    env: &Env,
    every: Duration,
    hook: Option<&str>,
    log: &RefCell<ChangeLog>,
    stop: &Cell<bool>,
) -> anyhow::Result<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut next = Instant::now();
    while !stop.get() {
        let free: Vec<&Linked> = {
            let log = log.borrow();
            env.tickets
                .iter()
                .filter(|t| !log.pending.contains_key(&t.number))
                .collect()
        };
        if free.is_empty() {
            log.borrow_mut().skipped += 1;
        } else {
            let ticket = free[rng.below(free.len())];
            let to = toggled(log.borrow().sdp_status.get(&ticket.request_id).copied());
            let t0 = Instant::now();
            env.fake.set_status(&ticket.request_id, to, None);
            {
                let mut log = log.borrow_mut();
                log.sdp_status.insert(ticket.request_id.clone(), to);
                log.pending
                    .insert(ticket.number.clone(), (t0, portal_status(to)));
                log.made += 1;
            }
            if let Some(url) = hook {
                let status = env.fake.fire_webhook(url, &ticket.request_id).await?;
                ensure!(status == StatusCode::ACCEPTED, "webhook: {status}");
                log.borrow_mut().hook.push(t0.elapsed());
            }
        }
        // Spread over half to one and a half periods: a fixed period would lock the changes to
        // one phase of the poll's cycle and measure the same lag every time.
        next += every.mul_f64(0.5 + rng.unit());
        tokio::time::sleep_until(next.into()).await;
    }
    Ok(())
}

/// Times each pending change until its `StatusChanged` event (published once durable) shows the
/// new status; until `done`.
async fn watch_changes(
    mut events: Receiver<Published>,
    log: &RefCell<ChangeLog>,
    done: &Cell<bool>,
) -> anyhow::Result<()> {
    while !done.get() {
        match tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
            Ok(Ok(p)) if p.event.kind == TicketEventKind::StatusChanged => {
                let mut log = log.borrow_mut();
                if let Some((t0, want)) = log.pending.get(&p.event.number).copied()
                    && want == p.event.status
                {
                    log.pending.remove(&p.event.number);
                    log.lags.push(t0.elapsed());
                }
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(RecvError::Lagged(n))) => log.borrow_mut().lost_events += n,
            Ok(Err(RecvError::Closed)) => bail!("the broadcaster stopped"),
        }
    }
    Ok(())
}

/// What sync health said while a part ran, sampled every second.
#[derive(Default)]
struct HealthTrace {
    samples: usize,
    /// `stats.poll_period_secs` → samples showing it.
    periods: BTreeMap<u64, usize>,
    /// Samples with `stats.polls_stretched`.
    stretched: usize,
    in_window_max: u64,
    /// Most calls waiting in the poll lane.
    poll_waiting_max: u64,
    /// When a sample first showed a new `stats.last_poll_ok`: polls ending (to the second).
    poll_ends: Vec<Instant>,
    first: Option<Value>,
    last: Option<Value>,
}

impl HealthTrace {
    fn add(&mut self, health: Value) {
        self.samples += 1;
        let stats = &health["stats"];
        if let Some(p) = stats["poll_period_secs"].as_u64() {
            *self.periods.entry(p).or_default() += 1;
        }
        if stats["polls_stretched"] == true {
            self.stretched += 1;
        }
        let budget = &health["budget"];
        self.in_window_max = self
            .in_window_max
            .max(budget["in_window"].as_u64().unwrap_or(0));
        let poll_waiting = budget["waiting"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["lane"] == "poll")
            .and_then(|w| w["calls"].as_u64())
            .unwrap_or(0);
        self.poll_waiting_max = self.poll_waiting_max.max(poll_waiting);
        let ended = &health["stats"]["last_poll_ok"];
        if !ended.is_null()
            && self
                .last
                .as_ref()
                .is_some_and(|l| l["stats"]["last_poll_ok"] != *ended)
        {
            self.poll_ends.push(Instant::now());
        }
        if self.first.is_none() {
            self.first = Some(health.clone());
        }
        self.last = Some(health);
    }

    /// `poll_period_secs` seen (value × samples) and `polls_stretched`.
    fn polls(&self) -> String {
        let periods = self
            .periods
            .iter()
            .map(|(p, n)| format!("{p} s ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let gaps: Vec<Duration> = self.poll_ends.windows(2).map(|w| w[1] - w[0]).collect();
        let ends = match (gaps.iter().min(), gaps.iter().max()) {
            (Some(lo), Some(hi)) => format!(
                "{} polls ended, {:.0}–{:.0} s apart",
                self.poll_ends.len(),
                lo.as_secs_f64(),
                hi.as_secs_f64()
            ),
            _ => format!("{} polls ended", self.poll_ends.len()),
        };
        format!(
            "poll_period_secs {}; polls_stretched true in {} of {} samples; {ends}",
            if periods.is_empty() {
                "never set".into()
            } else {
                periods
            },
            self.stretched,
            self.samples
        )
    }

    fn lanes(&self) -> BTreeMap<String, u64> {
        match (&self.first, &self.last) {
            (Some(a), Some(b)) => lane_delta(a, b),
            _ => BTreeMap::new(),
        }
    }
}

async fn trace_health(env: &Env, trace: &RefCell<HealthTrace>, done: &Cell<bool>) {
    while !done.get() {
        if let Ok(health) = env.health().await {
            trace.borrow_mut().add(health);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// `outbound`: portal → SDP while inbound is saturated.

struct OutboundLag {
    /// The 201 of `POST .../messages` → the note in the fake.
    lags: Vec<Duration>,
    /// The same status changes' SDP → portal lags meanwhile (the inbound backlog).
    inbound: ChangeLog,
    health: HealthTrace,
    throttled: usize,
    span: Duration,
    cpu: Option<CpuUse>,
}

async fn outbound(work: &Path, plan: &Plan) -> anyhow::Result<OutboundLag> {
    println!(
        "\n== outbound: portal → SDP, a message every {} s while {ACTIVE_TICKETS} tickets change \
         in SDP every {} ms (more than the budget reads); defaults: 60 calls a minute, poll \
         every 30 s; {} ms SDP latency",
        MESSAGE_EVERY.as_secs(),
        SATURATING_CHANGES.as_millis(),
        FAKE_LATENCY.as_millis()
    );
    let env = Env::start(work, "outbound", ACTIVE_TICKETS, |_| {}).await?;
    let result = outbound_samples(&env, plan).await;
    env.stop().await;
    let lag = result?;
    print_lags("message 201 → note in SDP", &lag.lags);
    print_lags(
        "meanwhile, status change in SDP → portal",
        &lag.inbound.lags,
    );
    println!(
        "changes made {}, shown {}, still pending at the end {}, turns skipped (all pending) {}",
        lag.inbound.made,
        lag.inbound.lags.len(),
        lag.inbound.pending.len(),
        lag.inbound.skipped
    );
    println!(
        "health: {}; in_window max {}; poll lane waiting max {}; calls by lane {}",
        lag.health.polls(),
        lag.health.in_window_max,
        lag.health.poll_waiting_max,
        lane_list(&lag.health.lanes())
    );
    println!("calls the fake refused for its budget: {}", lag.throttled);
    if let Some(cpu) = &lag.cpu {
        println!("CPU: {cpu}");
    }
    Ok(lag)
}

async fn outbound_samples(env: &Env, plan: &Plan) -> anyhow::Result<OutboundLag> {
    let own = env.own.clone().context("the writer's ticket")?;
    env.settled().await?;
    let events = env.subscribe().await?;
    let log = RefCell::new(ChangeLog::default());
    let trace = RefCell::new(HealthTrace::default());
    let (stop, done) = (Cell::new(false), Cell::new(false));
    let lags = RefCell::new(Vec::new());
    let meter = RefCell::new(None);
    let began = Instant::now();
    let steps = async {
        let result = async {
            eventually(
                "the poll falling behind",
                Duration::from_mins(3),
                || async {
                    let health = env.health().await?;
                    Ok(
                        (health["budget"]["in_window"].as_u64() >= Some(SATURATED_IN_WINDOW))
                            .then_some(()),
                    )
                },
            )
            .await?;
            println!(
                "inbound saturated after {:.0} s ({} changes made, {} shown); messages start",
                began.elapsed().as_secs_f64(),
                log.borrow().made,
                log.borrow().lags.len()
            );
            *meter.borrow_mut() = Some((CpuMeter::start(), Instant::now()));
            let mut next = Instant::now();
            for i in 0..plan.outbound_messages {
                tokio::time::sleep_until(next.into()).await;
                let text = format!("Portal message {i}: the node still reports errors");
                let lag = portal_message(env, &own, &text).await?;
                lags.borrow_mut().push(lag);
                next += MESSAGE_EVERY;
            }
            anyhow::Ok(())
        }
        .await;
        stop.set(true);
        done.set(true);
        result
    };
    let (driven, changed, watched, ()) = tokio::join!(
        steps,
        team_changes(env, SATURATING_CHANGES, None, &log, &stop),
        watch_changes(events, &log, &done),
        trace_health(env, &trace, &done),
    );
    driven?;
    changed?;
    watched?;
    let (meter, span) = meter
        .into_inner()
        .map(|(m, at)| (m.finish(), at.elapsed()))
        .unwrap_or_default();
    let mut lags = lags.into_inner();
    lags.sort_unstable();
    let mut inbound = log.into_inner();
    inbound.lags.sort_unstable();
    Ok(OutboundLag {
        lags,
        inbound,
        health: trace.into_inner(),
        throttled: env.fake.calls().iter().filter(|c| c.throttled).count(),
        span,
        cpu: meter,
    })
}

/// Posts a message as the writer; the time from its 201 until the fake holds the note.
async fn portal_message(env: &Env, ticket: &Linked, text: &str) -> anyhow::Result<Duration> {
    env.post(
        &env.writer,
        &format!("/api/v1/tickets/{}/messages", ticket.number),
        &json!({"body": text}),
    )
    .await?;
    let answered = Instant::now();
    let deadline = answered + Duration::from_mins(2);
    loop {
        if env
            .fake
            .notes(&ticket.request_id)
            .iter()
            .any(|n| n.description.contains(text))
        {
            return Ok(answered.elapsed());
        }
        ensure!(
            Instant::now() < deadline,
            "the message did not reach SDP within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// `poll` and `webhook`: SDP → portal with 100 active tickets.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// The poll alone, at this interval (s).
    Poll(u64),
    /// SDP's trigger after each change; polls every hour.
    Webhook,
}

struct InboundLag {
    mode: Inbound,
    every: Duration,
    log: ChangeLog,
    health: HealthTrace,
    throttled: usize,
    span: Duration,
    cpu: Option<CpuUse>,
}

async fn inbound(
    work: &Path,
    mode: Inbound,
    span: Duration,
    samples: usize,
) -> anyhow::Result<InboundLag> {
    let (label, every, interval) = match mode {
        Inbound::Poll(secs) => ("poll", POLL_CHANGES, secs),
        Inbound::Webhook => ("webhook", WEBHOOK_CHANGES, 3600),
    };
    match mode {
        Inbound::Poll(secs) => println!(
            "\n== poll: SDP → portal by polling every {secs} s, a status change every {} s on \
             one of {ACTIVE_TICKETS} tickets, for {:.0} s; 60 calls a minute, {} ms latency",
            every.as_secs(),
            span.as_secs_f64(),
            FAKE_LATENCY.as_millis()
        ),
        Inbound::Webhook => println!(
            "\n== webhook: SDP → portal, a status change every {} s on one of {ACTIVE_TICKETS} \
             tickets and SDP's trigger after each, {samples} samples, poll every hour; 60 calls \
             a minute, {} ms latency",
            every.as_secs(),
            FAKE_LATENCY.as_millis()
        ),
    }
    let env = Env::start(work, label, ACTIVE_TICKETS, |c| {
        c.sdp.poll_interval_secs = interval;
    })
    .await?;
    let result = inbound_samples(&env, mode, every, span, samples).await;
    env.stop().await;
    let lag = result?;
    print_lags("status change in SDP → portal event", &lag.log.lags);
    if mode == Inbound::Webhook {
        print_lags("status change → webhook answered", &lag.log.hook);
    }
    println!(
        "changes {}, shown {}, lost events {}; health: {}; calls by lane {}; refused by the \
         fake's budget {}",
        lag.log.made,
        lag.log.lags.len(),
        lag.log.lost_events,
        lag.health.polls(),
        lane_list(&lag.health.lanes()),
        lag.throttled
    );
    if let Some(cpu) = &lag.cpu {
        println!("CPU: {cpu}");
    }
    Ok(lag)
}

async fn inbound_samples(
    env: &Env,
    mode: Inbound,
    every: Duration,
    span: Duration,
    samples: usize,
) -> anyhow::Result<InboundLag> {
    env.settled().await?;
    let events = env.subscribe().await?;
    let log = RefCell::new(ChangeLog::default());
    let trace = RefCell::new(HealthTrace::default());
    let (stop, done) = (Cell::new(false), Cell::new(false));
    let hook = (mode == Inbound::Webhook).then(|| env.hook_url());
    let meter = CpuMeter::start();
    let began = Instant::now();
    let steps = async {
        let result = async {
            if mode == Inbound::Webhook {
                eventually("webhook samples", Duration::from_mins(10), || async {
                    Ok((log.borrow().made >= samples).then_some(()))
                })
                .await?;
            } else {
                tokio::time::sleep(span).await;
            }
            stop.set(true);
            // Every change made is waited for: its lag counts however long it is.
            eventually(
                "the last changes in the portal",
                Duration::from_mins(5),
                || async { Ok(log.borrow().pending.is_empty().then_some(())) },
            )
            .await
        }
        .await;
        stop.set(true);
        done.set(true);
        result
    };
    let (driven, changed, watched, ()) = tokio::join!(
        steps,
        team_changes(env, every, hook.as_deref(), &log, &stop),
        watch_changes(events, &log, &done),
        trace_health(env, &trace, &done),
    );
    driven?;
    changed?;
    watched?;
    let mut log = log.into_inner();
    log.lags.sort_unstable();
    log.hook.sort_unstable();
    Ok(InboundLag {
        mode,
        every,
        log,
        health: trace.into_inner(),
        throttled: env.fake.calls().iter().filter(|c| c.throttled).count(),
        span: began.elapsed(),
        cpu: meter.finish(),
    })
}

// ---------------------------------------------------------------------------------------------
// `backfill`: 100,000 requests of 1,000 portal customers.

struct FirstPass {
    label: String,
    /// `app::start` → the first pass done, on disk.
    elapsed: Duration,
    /// The first list call of the pass → its last one, at the fake.
    walk: Option<Duration>,
    imported: u64,
    complete: bool,
    list_calls: usize,
    api_calls: BTreeMap<String, usize>,
    throttled: usize,
    first_ticket: Option<Duration>,
    threads: Vec<(String, f64)>,
    cpu: Option<CpuUse>,
}

impl FirstPass {
    fn rate(&self) -> f64 {
        per_sec(usize::try_from(self.imported).unwrap_or(0), self.elapsed)
    }
}

struct Details {
    window: Duration,
    /// Single-request reads (`GET /requests/{id}`) in the window.
    reads: usize,
    api_calls: BTreeMap<String, usize>,
    /// `backfill.details_fetched` at the start and the end of the window (saved every 20).
    fetched: (u64, u64),
    lanes: BTreeMap<String, u64>,
    remaining: u64,
}

impl Details {
    fn per_minute(&self) -> f64 {
        per_sec(self.reads, self.window) * 60.0
    }

    /// The time the remaining details take at the measured rate.
    fn remaining_time(&self) -> Duration {
        let rate = self.per_minute();
        if rate <= 0.0 {
            return Duration::MAX;
        }
        let remaining = f64::from(u32::try_from(self.remaining).unwrap_or(u32::MAX));
        Duration::from_secs_f64(remaining / rate * 60.0)
    }
}

struct Backfill {
    requests: usize,
    customers: usize,
    raise: Duration,
    unthrottled: Vec<FirstPass>,
    paced: Option<FirstPass>,
    details: Option<Details>,
    /// One page of 100 from the fake at the end of the backlog, with a new bound (its own cost).
    fake_page: Duration,
}

async fn backfill(work: &Path, plan: &Plan) -> anyhow::Result<Backfill> {
    let requests = plan.import_requests;
    let customers = IMPORT_CUSTOMERS.min(requests).max(1);
    println!(
        "\n== backfill: {requests} SDP requests of {customers} portal customers that exist \
         before SDP is connected"
    );
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let started = Instant::now();
    raise_backlog(&fake, requests, customers);
    let raise = started.elapsed();
    println!(
        "raised {requests} requests in the fake in {:.1} s",
        raise.as_secs_f64()
    );
    let result = backfill_runs(work, plan, &fake, requests, customers).await;
    fake.stop().await;
    let (unthrottled, paced, details, fake_page) = result?;
    Ok(Backfill {
        requests,
        customers,
        raise,
        unthrottled,
        paced,
        details,
        fake_page,
    })
}

type BackfillRuns = (Vec<FirstPass>, Option<FirstPass>, Option<Details>, Duration);

async fn backfill_runs(
    work: &Path,
    plan: &Plan,
    fake: &FakeSdp,
    requests: usize,
    customers: usize,
) -> anyhow::Result<BackfillRuns> {
    // The backlog is only read, so each run starts on the same fake with a new appliance. The
    // judged run (20 ms) goes first, with the fake's caches cold.
    let mut unthrottled = Vec::new();
    for latency in [FAKE_LATENCY, Duration::ZERO] {
        fake.set_budget(None);
        fake.set_latency(latency);
        fake.reset_calls();
        let label = format!("unthrottled, {} ms SDP latency", latency.as_millis());
        println!("-- first pass {label}");
        let (pass, running) = first_pass(
            work,
            fake,
            requests,
            customers,
            &label,
            Duration::from_mins(10),
            |c| {
                c.sdp.max_requests_per_minute = UNTHROTTLED;
            },
        )
        .await?;
        running.stop().await;
        pass.print();
        unthrottled.push(pass);
    }
    let fake_page = fake_page(fake, requests).await?;
    fake.set_budget(Some(DEFAULT_BUDGET));
    fake.set_latency(FAKE_LATENCY);
    fake.reset_calls();
    let label = "at 60 calls a minute (defaults)".to_owned();
    println!("-- first pass {label}");
    let (pass, running) = first_pass(
        work,
        fake,
        requests,
        customers,
        &label,
        PACED_DEADLINE,
        |_| {},
    )
    .await?;
    pass.print();
    let details = if pass.complete {
        let details = details(&running, fake, plan.details_window).await;
        running.stop().await;
        Some(details?)
    } else {
        running.stop().await;
        None
    };
    if let Some(d) = &details {
        println!(
            "details: {} reads in {:.0} s = {:.1} a minute ({} by the saved progress); calls \
             {}; by lane {}; {} left: about {:.1} h at this rate (extrapolated)",
            d.reads,
            d.window.as_secs_f64(),
            d.per_minute(),
            d.fetched.1 - d.fetched.0,
            endpoint_list(&d.api_calls),
            lane_list(&d.lanes),
            d.remaining,
            d.remaining_time().as_secs_f64() / 3600.0
        );
    }
    Ok((unthrottled, Some(pass), details, fake_page))
}

/// Raises `requests` requests, round-robin over `customers` requesters, as the team's history.
fn raise_backlog(fake: &FakeSdp, requests: usize, customers: usize) {
    for i in 0..requests {
        fake.raise_request_with(json!({
            "subject": format!("VM {i} does not boot after maintenance"),
            "description": format!("<p>The VM <b>vm-{i}</b> stays in the boot loader since the host was patched.</p>"),
            "requester": {"email_id": import_email(i % customers)},
            "priority": {"name": if i % 4 == 0 { "High" } else { "Medium" }},
            "request_type": {"name": "Incident"},
        }));
    }
}

fn import_email(i: usize) -> String {
    format!("customer{i:04}@import.bench.test")
}

/// Creates the portal customers with sync off, so they exist before the first poll.
async fn create_import_customers(data_dir: &Path, customers: usize) -> anyhow::Result<()> {
    let running = deskbridge::app::start(base_config(data_dir.to_owned())).await?;
    let made = async {
        for i in 0..customers {
            // They never sign in here, so no password (an argon2 hash each would take a minute).
            let user = User {
                id: UserId::new(),
                email: import_email(i),
                name: format!("Import Customer {i}"),
                role: Role::Customer,
                organization: "Bench Org".into(),
                org: None,
                password_hash: String::new(),
                disabled: false,
                created_at: time::OffsetDateTime::now_utc(),
            };
            running.state.store.create_user(&user)?;
        }
        running.state.store.durable().await?;
        anyhow::Ok(())
    }
    .await;
    running.stop().await;
    made
}

/// Starts an appliance on a new data dir with the customers in it and SDP connected, and watches
/// the first pass; the appliance is left running.
async fn first_pass(
    work: &Path,
    fake: &FakeSdp,
    requests: usize,
    customers: usize,
    label: &str,
    deadline: Duration,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<(FirstPass, Running)> {
    let dir = data_dir(work, "backfill")?;
    create_import_customers(&dir, customers).await?;
    let mut config = base_config(dir);
    connect(&mut config, fake);
    adjust(&mut config);
    let fake_threads: HashSet<u32> = thread_ticks().into_iter().map(|t| t.tid).collect();
    let threads_before = thread_ticks();
    let meter = CpuMeter::start();
    let t0 = Instant::now();
    let running = deskbridge::app::start(config).await?;
    let watched = watch_first_pass(&running, requests, deadline).await;
    let elapsed = t0.elapsed();
    let threads = thread_cores(&threads_before, &thread_ticks(), &fake_threads, elapsed);
    let cpu = meter.finish();
    let watched = match watched {
        Ok(w) => w,
        Err(e) => {
            running.stop().await;
            return Err(e);
        }
    };
    let calls = fake.calls();
    let lists: Vec<&CallRecord> = calls.iter().filter(|c| is_first_pass_list(c)).collect();
    let walk = lists
        .first()
        .zip(lists.last())
        .map(|(a, b)| b.at.duration_since(a.at));
    let pass = FirstPass {
        label: label.to_owned(),
        elapsed,
        walk,
        imported: watched.imported,
        complete: watched.complete,
        list_calls: lists.len(),
        api_calls: by_endpoint(api_calls(&calls)),
        throttled: calls.iter().filter(|c| c.throttled).count(),
        first_ticket: watched.first,
        threads,
        cpu,
    };
    Ok((pass, running))
}

struct Watch {
    imported: u64,
    complete: bool,
    first: Option<Duration>,
}

/// Watches the store until the first pass is done on disk (or the deadline).
async fn watch_first_pass(
    running: &Running,
    requests: usize,
    deadline: Duration,
) -> anyhow::Result<Watch> {
    let store = &running.state.store;
    let target = u64::try_from(requests)?;
    let t0 = Instant::now();
    let mut first = None;
    let mut next_report = Duration::from_mins(1);
    loop {
        let count = store.ticket_count()?;
        let elapsed = t0.elapsed();
        if count > 0 && first.is_none() {
            first = Some(elapsed);
        }
        let progress: BackfillProgress = store.sync_value("backfill")?.unwrap_or_default();
        if progress.first_pass_done {
            ensure!(
                progress.tickets_created == target,
                "the first pass ended with {} of {target} imported: {progress:?}",
                progress.tickets_created
            );
            return Ok(Watch {
                imported: progress.tickets_created,
                complete: true,
                first,
            });
        }
        if elapsed >= deadline {
            println!("deadline: {count} of {requests} imported after {elapsed:?}");
            return Ok(Watch {
                imported: count,
                complete: false,
                first,
            });
        }
        if elapsed >= next_report {
            println!(
                "  {:.0} s: {count} tickets ({:.0}/s)",
                elapsed.as_secs_f64(),
                per_sec(usize::try_from(count)?, elapsed)
            );
            next_report += Duration::from_mins(1);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The details after the first pass, for `window`.
async fn details(running: &Running, fake: &FakeSdp, window: Duration) -> anyhow::Result<Details> {
    let http = http_client()?;
    let base = format!("http://{}", running.addr);
    let admin = login(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let url = format!("{base}/api/v1/admin/sync");
    let health = || get_json(&http, &url, &admin);
    let before = health().await?;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let t1 = Instant::now();
    let after = health().await?;
    let calls = fake.calls_between(t0, t1);
    let api: Vec<&CallRecord> = api_calls(&calls);
    let fetched = |h: &Value| h["backfill"]["details_fetched"].as_u64().unwrap_or(0);
    let created = after["backfill"]["tickets_created"].as_u64().unwrap_or(0);
    Ok(Details {
        window: t1 - t0,
        reads: api
            .iter()
            .filter(|c| c.endpoint == "GET /requests/{id}")
            .count(),
        api_calls: by_endpoint(api),
        fetched: (fetched(&before), fetched(&after)),
        lanes: lane_delta(&before, &after),
        remaining: created.saturating_sub(fetched(&after)),
    })
}

impl FirstPass {
    fn print(&self) {
        println!(
            "{}: {} of {} in {:.1} s = {:.0} requests/s{}; first ticket after {:.0} ms; {} \
             first-pass list calls (walk {:.1} s); calls {}; refused by the fake's budget {}",
            self.label,
            self.imported,
            if self.complete { "all" } else { "NOT all" },
            self.elapsed.as_secs_f64(),
            self.rate(),
            if self.complete { "" } else { " (stopped)" },
            self.first_ticket.map_or(0.0, ms),
            self.list_calls,
            self.walk.unwrap_or_default().as_secs_f64(),
            endpoint_list(&self.api_calls),
            self.throttled
        );
        if let Some(cpu) = &self.cpu {
            println!("CPU: {cpu}");
        }
        for (role, c) in &self.threads {
            println!("  thread {role}: {c:.2} cores");
        }
    }
}

/// One page of 100 rows from the fake at the end of the backlog, with a bound it has not seen:
/// what a first-pass page costs the fake itself.
async fn fake_page(fake: &FakeSdp, requests: usize) -> anyhow::Result<Duration> {
    fake.set_budget(None);
    let newest = fake
        .requests()
        .get(requests.saturating_sub(100))
        .and_then(|r| r["created_time"]["value"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let list_info = json!({
        "row_count": 100,
        "start_index": 1,
        "sort_field": "created_time",
        "sort_order": "asc",
        "search_criteria": {"field": "created_time", "condition": "greater or equal", "value": newest},
    });
    let http = http_client()?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let response = http
            .get(fake.api_url("/requests"))
            .header("authtoken", fake.api_key())
            .header("Accept", "application/vnd.manageengine.sdp.v3+json")
            .query(&[("input_data", json!({"list_info": list_info}).to_string())])
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        ensure!(status == StatusCode::OK, "fake GET /requests: {status}");
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(percentile(&times, 500))
}

// ---------------------------------------------------------------------------------------------
// `outage`: 200 customer messages while SDP answers 503 for 5 minutes.

struct Outage {
    span: Duration,
    changes: usize,
    /// API calls that reached the fake while it was down.
    during: usize,
    during_by_endpoint: BTreeMap<String, usize>,
    /// Most calls in any 2 s of the outage, and the shortest gap between two.
    max_in_2s: usize,
    min_gap: Option<Duration>,
    /// Health at the end of the outage.
    state_during: String,
    queue_during: u64,
    /// SDP's return → the first note delivered / the last one (arrival at the fake).
    first_delivery: Option<Duration>,
    last_delivery: Option<Duration>,
    /// SDP's return → the bench saw all 200 notes and an empty queue.
    drained: Duration,
    after_by_endpoint: BTreeMap<String, usize>,
    throttled_after: usize,
    dead_letters: usize,
    state_after: String,
    /// Messages found in SDP exactly once, missing, more than once.
    once: usize,
    missing: usize,
    repeated: usize,
    cpu: Option<CpuUse>,
}

async fn outage(work: &Path, plan: &Plan) -> anyhow::Result<Outage> {
    println!(
        "\n== outage: {OUTAGE_CHANGES} customer messages on {OUTAGE_TICKETS} tickets while the \
         fake answers every API call with HTTP 503 for {:.0} s; then SDP returns; defaults: 60 \
         calls a minute, poll every 30 s; {} ms latency",
        plan.outage.as_secs_f64(),
        FAKE_LATENCY.as_millis()
    );
    let env = Env::start(work, "outage", OUTAGE_TICKETS, |_| {}).await?;
    let result = outage_run(&env, plan.outage).await;
    env.stop().await;
    let o = result?;
    println!(
        "during the outage: {} API calls ({}), at most {} in any 2 s, shortest gap {:.2} s; \
         health said {} with {} queued",
        o.during,
        endpoint_list(&o.during_by_endpoint),
        o.max_in_2s,
        o.min_gap.unwrap_or_default().as_secs_f64(),
        o.state_during,
        o.queue_during
    );
    println!(
        "after SDP's return: first delivery {:.2} s, last {:.1} s, all seen and the queue empty \
         {:.1} s; calls {}; refused by the fake's budget {}; dead letters {}; health {}; in SDP \
         once {}, missing {}, more than once {}",
        o.first_delivery.unwrap_or_default().as_secs_f64(),
        o.last_delivery.unwrap_or_default().as_secs_f64(),
        o.drained.as_secs_f64(),
        endpoint_list(&o.after_by_endpoint),
        o.throttled_after,
        o.dead_letters,
        o.state_after,
        o.once,
        o.missing,
        o.repeated
    );
    if let Some(cpu) = &o.cpu {
        println!("CPU: {cpu}");
    }
    Ok(o)
}

async fn outage_run(env: &Env, span: Duration) -> anyhow::Result<Outage> {
    env.settled().await?;
    let meter = CpuMeter::start();
    env.fake.set_fault(Fault::Down503);
    let down = Instant::now();
    let mut texts = Vec::with_capacity(OUTAGE_CHANGES);
    for i in 0..OUTAGE_CHANGES {
        let ticket = &env.tickets[i % env.tickets.len()];
        let text = format!("Queued message {i} during the outage");
        env.post(
            &env.customer,
            &format!("/api/v1/tickets/{}/messages", ticket.number),
            &json!({"body": text}),
        )
        .await?;
        texts.push((ticket.request_id.clone(), text));
    }
    println!(
        "{OUTAGE_CHANGES} messages accepted (201) in {:.1} s of the outage",
        down.elapsed().as_secs_f64()
    );
    // The outage lasts its measured span, whatever the appliance does meanwhile.
    tokio::time::sleep_until((down + span).into()).await;
    let health = env.health().await?;
    let state_during = health["budget"]["sdp"]["state"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let queue_during = health["queue_depth"].as_u64().unwrap_or(0);
    env.fake.clear_faults();
    let up = Instant::now();
    let during_calls = env.fake.calls_between(down, up);
    let during = api_calls(&during_calls);
    let times: Vec<Instant> = during.iter().map(|c| c.at).collect();
    let max_in_2s = most_within(&times, TARGET_OUTAGE_GAP);
    let min_gap = times.windows(2).map(|w| w[1] - w[0]).min();
    let all_in = || in_sdp(&env.fake, &texts);
    eventually(
        "every queued message in SDP",
        Duration::from_mins(15),
        || async {
            let (_, missing, _) = all_in();
            Ok((missing == 0 && env.health().await?["queue_depth"] == 0).then_some(()))
        },
    )
    .await?;
    let drained = up.elapsed();
    let cpu = meter.finish();
    let health = env.health().await?;
    let after = env.fake.calls_between(up, Instant::now());
    let notes: Vec<&CallRecord> = after
        .iter()
        .filter(|c| {
            c.endpoint == "POST /requests/{id}/notes"
                && c.status.is_some_and(|s| (200..300).contains(&s))
        })
        .collect();
    let (once, missing, repeated) = all_in();
    Ok(Outage {
        span,
        changes: OUTAGE_CHANGES,
        during: during.len(),
        during_by_endpoint: by_endpoint(during),
        max_in_2s,
        min_gap,
        state_during,
        queue_during,
        first_delivery: notes.first().map(|c| c.at.duration_since(up)),
        last_delivery: notes.last().map(|c| c.at.duration_since(up)),
        drained,
        after_by_endpoint: by_endpoint(api_calls(&after)),
        throttled_after: after.iter().filter(|c| c.throttled).count(),
        dead_letters: health["dead_letters"]
            .as_array()
            .map_or(usize::MAX, Vec::len),
        state_after: health["budget"]["sdp"]["state"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        once,
        missing,
        repeated,
        cpu,
    })
}

/// Most of `times` (in order) within any `span`.
fn most_within(times: &[Instant], span: Duration) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) < span)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Of `(request, text)` messages: how many are in SDP once, missing, more than once.
fn in_sdp(fake: &FakeSdp, texts: &[(String, String)]) -> (usize, usize, usize) {
    let (mut once, mut missing, mut repeated) = (0, 0, 0);
    let mut notes: HashMap<&str, Vec<String>> = HashMap::new();
    for (request, text) in texts {
        let held = notes.entry(request.as_str()).or_insert_with(|| {
            fake.notes(request)
                .into_iter()
                .map(|n| n.description)
                .collect()
        });
        // No message's text is part of another's.
        match held.iter().filter(|d| d.contains(text.as_str())).count() {
            0 => missing += 1,
            1 => once += 1,
            _ => repeated += 1,
        }
    }
    (once, missing, repeated)
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

impl CpuUse {
    /// Cores busy outside this process: other work on the machine.
    fn others(&self) -> f64 {
        (self.machine - self.process).max(0.0)
    }
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bench process (appliance + fake SDP + driver) {:.2} cores, whole machine {:.2} of \
             {} (others {:.2})",
            self.process,
            self.machine,
            cpus(),
            self.others()
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
/// starts short-lived I/O threads) are not counted.
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

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `p50 a s, p99 b s, max c s (n samples)`
fn spread(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s ({} samples)",
        secs(percentile(sorted, 500)),
        secs(percentile(sorted, 900)),
        secs(percentile(sorted, 990)),
        secs(sorted.last().copied().unwrap_or_default()),
        sorted.len()
    )
}

fn print_lags(what: &str, sorted: &[Duration]) {
    println!("{what}: {}", spread(sorted));
}

fn median(samples: &[usize]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => f64::from(u32::try_from(v[n / 2]).unwrap_or(u32::MAX)),
        n => {
            let a = f64::from(u32::try_from(v[n / 2 - 1]).unwrap_or(u32::MAX));
            let b = f64::from(u32::try_from(v[n / 2]).unwrap_or(u32::MAX));
            f64::midpoint(a, b)
        }
    }
}

#[derive(Default)]
struct Summary {
    calls: Option<Calls>,
    outbound: Option<OutboundLag>,
    inbound: Vec<InboundLag>,
    backfill: Option<Backfill>,
    outage: Option<Outage>,
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
    let ratio = ratio.map_or_else(String::new, |r| format!("{r:.2}"));
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

/// p50 / p99 / max in seconds.
fn lag_cell(sorted: &[Duration]) -> String {
    format!(
        "p99 {:.2} s (p50 {:.2}, max {:.2}; n = {})",
        secs(percentile(sorted, 990)),
        secs(percentile(sorted, 500)),
        secs(sorted.last().copied().unwrap_or_default()),
        sorted.len()
    )
}

impl Summary {
    fn print(&self) {
        let mut out = String::new();
        out.push_str("\n== Summary (ratio = measured / target)\n\n");
        out.push_str("| Measure | Result | Target | Ratio | Met |\n");
        out.push_str("|---|---|---|---|---|\n");
        self.call_rows(&mut out);
        self.lag_rows(&mut out);
        self.backfill_rows(&mut out);
        self.outage_rows(&mut out);
        self.conditions(&mut out);
        print!("{out}");
    }

    fn call_rows(&self, out: &mut String) {
        let Some(c) = &self.calls else { return };
        for r in &c.rows {
            let m = median(&r.samples);
            let max = r.samples.iter().max().copied().unwrap_or(0);
            let what = format!(
                "SDP calls, {} (imports {})",
                r.what,
                if r.imports { "on" } else { "off" }
            );
            let measured = format!("{m} (max {max}, n = {})", r.samples.len());
            match r.target {
                Some(t) => row(
                    out,
                    &what,
                    &measured,
                    &format!("≤ {t}"),
                    Some(m / t),
                    Some(f64::from(u32::try_from(max).unwrap_or(u32::MAX)) <= t),
                ),
                None => row(out, &what, &measured, "(record)", None, None),
            }
        }
        if let Some(f) = &c.first_pass {
            let per = f64::from(u32::try_from(f.list_calls).unwrap_or(u32::MAX))
                / f64::from(u32::try_from(f.imported.max(1)).unwrap_or(u32::MAX));
            row(
                out,
                &format!(
                    "SDP list calls per imported request, first pass of {}",
                    f.requests
                ),
                &format!("{per:.3} ({} calls, {} imported)", f.list_calls, f.imported),
                "(record; 100 rows a call = 0.010)",
                None,
                None,
            );
        }
    }

    fn lag_rows(&self, out: &mut String) {
        if let Some(o) = &self.outbound {
            let p99 = percentile(&o.lags, 990);
            row(
                out,
                "Portal → SDP while inbound is saturated (201 → note in SDP)",
                &lag_cell(&o.lags),
                &format!("p99 < {:.0} s", secs(TARGET_OUTBOUND_P99)),
                Some(secs(p99) / secs(TARGET_OUTBOUND_P99)),
                Some(p99 < TARGET_OUTBOUND_P99),
            );
            row(
                out,
                "… meanwhile SDP → portal of the saturating changes",
                &lag_cell(&o.inbound.lags),
                "(record)",
                None,
                None,
            );
        }
        for lag in &self.inbound {
            match lag.mode {
                Inbound::Poll(interval) => {
                    let target = Duration::from_secs(interval) + TARGET_POLL_SLACK;
                    let p99 = percentile(&lag.log.lags, 990);
                    row(
                        out,
                        &format!(
                            "SDP → portal by polling every {interval} s, {ACTIVE_TICKETS} active \
                             tickets, a change every {} s",
                            lag.every.as_secs()
                        ),
                        &lag_cell(&lag.log.lags),
                        &format!("p99 ≤ {:.0} s", secs(target)),
                        Some(secs(p99) / secs(target)),
                        Some(p99 <= target),
                    );
                    row(
                        out,
                        &format!("… sync health while polling every {interval} s"),
                        &lag.health.polls(),
                        "stretched only when the budget cannot keep up",
                        None,
                        None,
                    );
                }
                Inbound::Webhook => row(
                    out,
                    &format!(
                        "SDP → portal by webhook, {ACTIVE_TICKETS} active tickets, a change \
                         every {} s",
                        lag.every.as_secs()
                    ),
                    &lag_cell(&lag.log.lags),
                    "(record)",
                    None,
                    None,
                ),
            }
        }
    }

    fn backfill_rows(&self, out: &mut String) {
        let Some(b) = &self.backfill else { return };
        for pass in &b.unthrottled {
            let rate = pass.rate();
            row(
                out,
                &format!("Backfill first pass of {}, {}", b.requests, pass.label),
                &format!(
                    "{rate:.0} requests/s ({} in {:.1} s)",
                    pass.imported,
                    secs(pass.elapsed)
                ),
                &format!("≥ {TARGET_FIRST_PASS_PER_SEC:.0} requests/s"),
                Some(rate / TARGET_FIRST_PASS_PER_SEC),
                Some(pass.complete && rate >= TARGET_FIRST_PASS_PER_SEC),
            );
        }
        if let Some(pass) = &b.paced {
            // The target is for 100,000; a smaller backlog is judged pro rata.
            let target = TARGET_PACED_FIRST_PASS
                .mul_f64(f64::from(u32::try_from(b.requests).unwrap_or(u32::MAX)) / 100_000.0);
            row(
                out,
                &format!("Backfill first pass of {}, {}", b.requests, pass.label),
                &format!(
                    "{:.1} min ({} imported{})",
                    secs(pass.elapsed) / 60.0,
                    pass.imported,
                    if pass.complete { "" } else { ", stopped" }
                ),
                &format!("< {:.1} min", secs(target) / 60.0),
                Some(secs(pass.elapsed) / secs(target)),
                Some(pass.complete && pass.elapsed < target),
            );
        }
        if let Some(d) = &b.details {
            row(
                out,
                "Backfill details at 60 calls a minute",
                &format!(
                    "{:.1} requests/min over {:.0} s; the remaining {} take about {:.1} h \
                     (extrapolated)",
                    d.per_minute(),
                    secs(d.window),
                    d.remaining,
                    secs(d.remaining_time()) / 3600.0
                ),
                "(record)",
                None,
                None,
            );
        }
    }

    fn outage_rows(&self, out: &mut String) {
        let Some(o) = &self.outage else { return };
        let minutes = format!("{:.0} s outage", secs(o.span));
        let allowed = secs(o.span) / secs(TARGET_OUTAGE_GAP);
        let during = f64::from(u32::try_from(o.during).unwrap_or(u32::MAX));
        row(
            out,
            &format!("Outage ({minutes}, HTTP 503): API calls while SDP is down"),
            &format!("{} calls", o.during),
            &format!("≤ 1 every 2 s (≤ {allowed:.0})"),
            Some(during / allowed),
            Some(during <= allowed),
        );
        let most = f64::from(u32::try_from(o.max_in_2s).unwrap_or(u32::MAX));
        row(
            out,
            "Outage: most API calls in any 2 s while down",
            &format!(
                "{} (shortest gap {:.2} s)",
                o.max_in_2s,
                secs(o.min_gap.unwrap_or_default())
            ),
            "≤ 1",
            Some(most),
            Some(o.max_in_2s <= 1),
        );
        match o.first_delivery {
            Some(first) => row(
                out,
                "Outage: SDP's return → first delivery",
                &format!("{:.2} s", secs(first)),
                &format!("≤ {:.0} s", secs(TARGET_FIRST_DELIVERY)),
                Some(secs(first) / secs(TARGET_FIRST_DELIVERY)),
                Some(first <= TARGET_FIRST_DELIVERY),
            ),
            None => row(out, "Outage: first delivery", "none", "", None, Some(false)),
        }
        let last = o.last_delivery.unwrap_or(o.drained);
        row(
            out,
            &format!("Outage: SDP's return → all {} delivered", o.changes),
            &format!(
                "{:.0} s = {:.1} min (queue seen empty at {:.0} s)",
                secs(last),
                secs(last) / 60.0,
                secs(o.drained)
            ),
            &format!("≤ {:.0} s", secs(TARGET_DRAIN)),
            Some(secs(last) / secs(TARGET_DRAIN)),
            Some(last <= TARGET_DRAIN),
        );
        row(
            out,
            "Outage: dead letters afterwards",
            &o.dead_letters.to_string(),
            "0",
            None,
            Some(o.dead_letters == 0),
        );
        row(
            out,
            "Outage: changes in SDP exactly once",
            &format!(
                "{} of {} (missing {}, more than once {})",
                o.once, o.changes, o.missing, o.repeated
            ),
            &format!("{} of {}", o.changes, o.changes),
            None,
            Some(o.once == o.changes),
        );
    }

    /// What else ran, and what the process and the machine spent, part by part.
    fn conditions(&self, out: &mut String) {
        out.push_str("\nConditions\n\n");
        let cpu = |what: &str, cpu: &Option<CpuUse>, out: &mut String| {
            if let Some(cpu) = cpu {
                let _ = writeln!(out, "- {what}: CPU {cpu}");
            }
        };
        if let Some(c) = &self.calls {
            cpu("calls", &c.cpu, out);
        }
        if let Some(o) = &self.outbound {
            cpu("outbound", &o.cpu, out);
            let _ = writeln!(
                out,
                "- outbound: {:.0} s of messages; inbound: {} changes made, {} shown, {} pending \
                 at the end; health {}; in_window max {}; poll lane waiting max {}; calls by \
                 lane {}; refused by the fake's budget {}",
                secs(o.span),
                o.inbound.made,
                o.inbound.lags.len(),
                o.inbound.pending.len(),
                o.health.polls(),
                o.health.in_window_max,
                o.health.poll_waiting_max,
                lane_list(&o.health.lanes()),
                o.throttled
            );
        }
        for lag in &self.inbound {
            let name = match lag.mode {
                Inbound::Poll(i) => format!("poll every {i} s"),
                Inbound::Webhook => "webhook".into(),
            };
            cpu(&name, &lag.cpu, out);
            let _ = writeln!(
                out,
                "- {name}: {:.0} s, {} changes; calls by lane {}; refused by the fake's budget \
                 {}",
                secs(lag.span),
                lag.log.made,
                lane_list(&lag.health.lanes()),
                lag.throttled
            );
            if !lag.log.hook.is_empty() {
                let _ = writeln!(
                    out,
                    "- {name}: change → webhook answered {}",
                    spread(&lag.log.hook)
                );
            }
        }
        if let Some(b) = &self.backfill {
            let _ = writeln!(
                out,
                "- backfill: {} requests raised in {:.1} s for {} customers; one fake page of \
                 100 with a new bound {:.1} ms",
                b.requests,
                secs(b.raise),
                b.customers,
                ms(b.fake_page)
            );
            for pass in b.unthrottled.iter().chain(&b.paced) {
                cpu(&format!("backfill, {}", pass.label), &pass.cpu, out);
                let _ = writeln!(
                    out,
                    "- backfill, {}: calls {}; refused by the fake's budget {}",
                    pass.label,
                    endpoint_list(&pass.api_calls),
                    pass.throttled
                );
            }
            if let Some(d) = &b.details {
                let _ = writeln!(
                    out,
                    "- backfill details: calls {}; by lane {}",
                    endpoint_list(&d.api_calls),
                    lane_list(&d.lanes)
                );
            }
        }
        if let Some(o) = &self.outage {
            cpu("outage", &o.cpu, out);
            let _ = writeln!(
                out,
                "- outage: calls while down {}; after the return {}; refused by the fake's \
                 budget after the return {}",
                endpoint_list(&o.during_by_endpoint),
                endpoint_list(&o.after_by_endpoint),
                o.throttled_after
            );
        }
    }
}
