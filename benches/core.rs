//! Performance targets of deskbridge, measured against the real release binary. See BENCHMARKS.md.
//!
//! Run everything with `cargo bench --bench core`; `cargo bench --bench core -- throughput` or
//! `-- listing` runs one part. Parts:
//!
//! 1. durable ticket creation with 64 concurrent HTTP clients, and the server's RSS;
//! 2. start-up time and RSS on a store of 1,000,000 tickets (generated once, in-process, and cached
//!    under `target/bench-data/`);
//! 3. latency of one customer listing their 1,000 tickets in that store.
//!
//! The load generator runs on the same machine as the server; every child process is stopped when
//! the bench ends, fails or panics.

#![allow(
    unreachable_pub,
    reason = "a test or bench binary's modules share helpers; their visibility is no API"
)]

#[path = "common/mod.rs"]
mod common;
#[path = "common/server.rs"]
#[allow(dead_code, reason = "each bench uses part of the server helpers")]
mod server;

use common::{create_customer, login, ms, per_sec, percentile};
use server::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, binary};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use deskbridge::actors::tickets::CreateTicket;
use deskbridge::config::{Config, Secret};
use deskbridge::domain::{Actor, Kind, Priority, Role, User, UserId};
use deskbridge::tickets::NewTicket;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CUSTOMER_PASSWORD: &str = "bench-customer-password";
/// The customer whose 1,000 tickets are listed in the 1M-ticket store.
const LIST_CUSTOMER_EMAIL: &str = "lister@bench.test";

/// Concurrent clients creating tickets, each with its own account and keep-alive connection.
const CLIENTS: usize = 64;
const ROUNDS: usize = 3;
const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);

/// Bump when the generated data set changes shape; a cached one under another version is ignored.
const DATASET_VERSION: u32 = 1;
const TOTAL_TICKETS: usize = 1_000_000;
const CUSTOMER_TICKETS: usize = 1_000;
const OTHER_REQUESTERS: usize = 10_000;
/// Creations in flight during generation, so group commit batches the flushes.
const IN_FLIGHT: usize = 256;

const STARTS: usize = 5;
const LIST_WARM_UP: usize = 100;
const LIST_SAMPLES: usize = 2_000;
const LIST_QUERIES: [(&str, usize); 4] = [
    ("/api/v1/tickets", 20),
    ("/api/v1/tickets?per_page=100", 100),
    ("/api/v1/tickets?per_page=100&page=10", 100),
    ("/api/v1/tickets?status=new&per_page=100", 100),
];

/// Targets, as stated in BENCHMARKS.md.
const TARGET_TICKETS_PER_SEC: f64 = 5_000.0;
const TARGET_IDLE_RSS_MIB: f64 = 30.0;
const TARGET_LIST_P99_MS: f64 = 5.0;
const TARGET_START_MS: f64 = 500.0;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; anything else not starting with `-` selects parts.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let work = tempfile::Builder::new()
        .prefix("deskbridge-bench-")
        .tempdir()
        .context("temp dir")?;
    println!(
        "deskbridge benchmark: {} CPUs, binary {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        binary().display()
    );

    let mut summary = Summary::default();
    if wants("throughput") {
        summary.throughput = Some(throughput(work.path())?);
    }
    if wants("listing") {
        let dataset = dataset()?;
        summary.listing = Some(listing(&dataset, work.path())?);
        summary.dataset = Some(dataset);
    }
    summary.print();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Durable ticket creation throughput.

struct Throughput {
    rounds: Vec<f64>,
    create_p50: Duration,
    create_p99: Duration,
    idle_rss_mib: f64,
    setup_rss_mib: f64,
    loaded_rss_mib: f64,
    tickets_per_flush: Option<f64>,
    /// CPU use during the rounds.
    cpu: Option<CpuUse>,
}

fn throughput(work: &Path) -> anyhow::Result<Throughput> {
    println!(
        "\n== 1. Ticket creation: {CLIENTS} clients, {ROUNDS} rounds of {}s after {}s warm-up",
        MEASURE.as_secs(),
        WARM_UP.as_secs()
    );
    let data = tempfile::Builder::new()
        .prefix("throughput-")
        .tempdir_in(work)?;
    let server = Server::start(data.path(), work, "throughput", "")?;
    let idle_rss_mib = server.rss_mib()?;
    println!(
        "server ready in {:.0} ms, idle RSS {idle_rss_mib:.1} MiB",
        ms(server.startup)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS * 2)
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = server.base();
        let admin = login(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let mut tokens = Vec::with_capacity(CLIENTS);
        for i in 0..CLIENTS {
            let email = format!("load{i:02}@bench.test");
            create_customer(
                &http,
                &base,
                &admin,
                &email,
                &format!("Load client {email}"),
                CUSTOMER_PASSWORD,
            )
            .await?;
            tokens.push(login(&http, &base, &email, CUSTOMER_PASSWORD).await?);
        }
        let setup_rss_mib = server.rss_mib()?;
        println!("{CLIENTS} customers created and signed in; RSS {setup_rss_mib:.1} MiB");

        let before = flush_counters(&http, &base).await;
        let meter = CpuMeter::start(server.pid());
        let mut rounds = Vec::with_capacity(ROUNDS);
        let mut latencies = Vec::new();
        for round_no in 1..=ROUNDS {
            let (created, mut lat) = create_round(&http, &base, &tokens).await?;
            let per_sec = f64::from(created) / MEASURE.as_secs_f64();
            lat.sort_unstable();
            println!(
                "round {round_no}: {created} tickets in {}s = {per_sec:.0} tickets/s \
                 (latency p50 {:.2} ms, p99 {:.2} ms)",
                MEASURE.as_secs(),
                ms(percentile(&lat, 500)),
                ms(percentile(&lat, 990)),
            );
            rounds.push(per_sec);
            latencies.extend(lat);
        }
        let cpu = meter.finish();
        if let Some(cpu) = &cpu {
            println!("CPU during the rounds: {cpu}");
        }
        let loaded_rss_mib = server.rss_mib()?;
        println!("RSS after the load {loaded_rss_mib:.1} MiB");
        let after = flush_counters(&http, &base).await;
        let tickets_per_flush = before.zip(after).and_then(|((t0, f0), (t1, f1))| {
            (f1 > f0).then(|| f64::from(t1 - t0) / f64::from(f1 - f0))
        });
        if let Some(n) = tickets_per_flush {
            println!("group commit: {n:.1} tickets per flush on average");
        }
        latencies.sort_unstable();
        anyhow::Ok(Throughput {
            rounds,
            create_p50: percentile(&latencies, 500),
            create_p99: percentile(&latencies, 990),
            idle_rss_mib,
            setup_rss_mib,
            loaded_rss_mib,
            tickets_per_flush,
            cpu,
        })
    })?;
    server.stop()?;
    Ok(result)
}

/// One round: every client posts tickets back to back; returns the 201s completed inside the
/// measured window and their latencies.
async fn create_round(
    http: &reqwest::Client,
    base: &str,
    tokens: &[String],
) -> anyhow::Result<(u32, Vec<Duration>)> {
    let measure_from = Instant::now() + WARM_UP;
    let until = measure_from + MEASURE;
    let url = format!("{base}/api/v1/tickets");
    let clients: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(client, token)| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut created = 0u32;
                let mut latencies = Vec::new();
                for seq in 0u64.. {
                    let sent = Instant::now();
                    if sent >= until {
                        break;
                    }
                    let body = json!({
                        "kind": "problem_report",
                        "subject": format!("Load client {client} ticket {seq}"),
                        "description": "The VPN drops every few minutes since this morning; \
                                        reconnecting works for a while.",
                    });
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    let status = response.status();
                    let text = response.text().await?;
                    ensure!(status == StatusCode::CREATED, "create: {status} {text}");
                    let done = Instant::now();
                    if done >= measure_from && done < until {
                        created += 1;
                        latencies.push(done - sent);
                    }
                }
                anyhow::Ok((created, latencies))
            })
        })
        .collect();
    let mut created = 0;
    let mut latencies = Vec::new();
    for client in clients {
        let (n, lat) = client.await??;
        created += n;
        latencies.extend(lat);
    }
    Ok((created, latencies))
}

/// CPU time (user + system) a process has used, in clock ticks (`USER_HZ`, 100 on Linux); `pid`
/// may be `self`.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (state); utime and stime are
    // fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(ticks(11)? + ticks(12)?)
}

/// Busy CPU time of the whole machine, in clock ticks: everything in `/proc/stat` but idle and
/// iowait. Shows whether something else ran during a measurement.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    Some(v.get(..8)?.iter().sum::<u64>() - v[3] - v[4])
}

/// Average cores busy over an interval: the server, this bench (the load generator), the machine.
struct CpuUse {
    server: f64,
    bench: f64,
    machine: f64,
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        write!(
            f,
            "server {:.2} cores, bench client {:.2}, whole machine {:.2} of {cpus} \
             (the rest is kernel work and other processes)",
            self.server, self.bench, self.machine
        )
    }
}

struct CpuMeter {
    pid: String,
    started: Instant,
    ticks: Option<(u64, u64, u64)>,
}

impl CpuMeter {
    fn start(pid: u32) -> CpuMeter {
        let pid = pid.to_string();
        let ticks = Self::read(&pid);
        CpuMeter {
            pid,
            started: Instant::now(),
            ticks,
        }
    }

    fn read(pid: &str) -> Option<(u64, u64, u64)> {
        Some((cpu_ticks(pid)?, cpu_ticks("self")?, machine_busy_ticks()?))
    }

    fn finish(&self) -> Option<CpuUse> {
        let wall = self.started.elapsed().as_secs_f64();
        let (s0, b0, m0) = self.ticks?;
        let (s1, b1, m1) = Self::read(&self.pid)?;
        let cores = |d: u64| f64::from(u32::try_from(d).unwrap_or(u32::MAX)) / 100.0 / wall;
        Some(CpuUse {
            server: cores(s1.saturating_sub(s0)),
            bench: cores(b1.saturating_sub(b0)),
            machine: cores(m1.saturating_sub(m0)),
        })
    }
}

/// `(tickets created, group-commit flushes)` from `/metrics`, if it answers.
async fn flush_counters(http: &reqwest::Client, base: &str) -> Option<(u32, u32)> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let counter = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u32>().ok())
    };
    Some((
        counter("deskbridge_tickets_created_total")?,
        counter("deskbridge_store_commit_batches_total")?,
    ))
}

// ---------------------------------------------------------------------------------------------
// The 1,000,000-ticket store, generated once in-process and cached.

struct Dataset {
    data_dir: PathBuf,
    generation: Duration,
    cached: bool,
    disk_mib: f64,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

fn dataset() -> anyhow::Result<Dataset> {
    let root = target_dir().join("bench-data").join(format!(
        "tickets-1m-v{DATASET_VERSION}-schema{}",
        deskbridge::store::SCHEMA_VERSION
    ));
    let data_dir = root.join("data");
    let marker = root.join("complete.json");
    println!(
        "\n== 2. The {TOTAL_TICKETS}-ticket store: {}",
        root.display()
    );
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let info: Value = serde_json::from_str(&text).context("read the data set marker")?;
        let generation = Duration::from_secs_f64(info["generation_secs"].as_f64().unwrap_or(0.0));
        println!(
            "cached (generated in {:.0} s); delete the directory to regenerate",
            generation.as_secs_f64()
        );
        return Ok(Dataset {
            disk_mib: dir_mib(&data_dir),
            data_dir,
            generation,
            cached: true,
        });
    }
    if root.exists() {
        // An interrupted generation: start over.
        std::fs::remove_dir_all(&root).context("remove an incomplete data set")?;
    }
    std::fs::create_dir_all(&root)?;
    println!(
        "generating {TOTAL_TICKETS} tickets ({CUSTOMER_TICKETS} for {LIST_CUSTOMER_EMAIL}, \
         the rest for {OTHER_REQUESTERS} other requesters), {IN_FLIGHT} in flight"
    );
    let started = Instant::now();
    actix_web::rt::System::new().block_on(generate(data_dir.clone()))?;
    let generation = started.elapsed();
    let info = json!({
        "tickets": TOTAL_TICKETS,
        "customer": LIST_CUSTOMER_EMAIL,
        "generation_secs": generation.as_secs_f64(),
    });
    std::fs::write(&marker, info.to_string())?;
    let disk_mib = dir_mib(&data_dir);
    println!(
        "generated in {:.0} s ({:.0} tickets/s); {disk_mib:.0} MiB on disk",
        generation.as_secs_f64(),
        per_sec(TOTAL_TICKETS, generation)
    );
    Ok(Dataset {
        data_dir,
        generation,
        cached: false,
        disk_mib,
    })
}

fn user(email: String, name: String, password_hash: String) -> User {
    User {
        id: UserId::new(),
        email,
        name,
        role: Role::Customer,
        organization: "Bench Org".into(),
        org: None,
        password_hash,
        disabled: false,
        created_at: time::OffsetDateTime::now_utc(),
    }
}

/// Boots the app in-process (as `deskbridge serve` does) and sends `CreateTicket` straight to the
/// ticket actor; every creation waits for group commit exactly as an HTTP request would.
async fn generate(data_dir: PathBuf) -> anyhow::Result<()> {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".into();
    config.storage.data_dir = data_dir;
    config.bootstrap.admin_email = ADMIN_EMAIL.into();
    config.bootstrap.admin_password = Secret::new(ADMIN_PASSWORD.into());
    config.log.level = "warn".into();
    let running = deskbridge::app::start(config).await?;

    let customer = user(
        LIST_CUSTOMER_EMAIL.into(),
        "Listing Customer".into(),
        deskbridge::auth::hash_password(CUSTOMER_PASSWORD),
    );
    running.state.store.create_user(&customer)?;
    running.state.store.durable().await?;
    // The other requesters need not have accounts: a ticket carries a copy of its requester.
    let others: Vec<User> = (0..OTHER_REQUESTERS)
        .map(|i| {
            user(
                format!("requester{i:05}@bench.test"),
                format!("Requester {i}"),
                String::new(),
            )
        })
        .collect();
    let tickets = running.state.actors.tickets.clone();
    let started = Instant::now();
    let mut results = futures_util::stream::iter(0..TOTAL_TICKETS)
        .map(|i| {
            let r = requester(i, &customer, &others);
            tickets.send(CreateTicket {
                requester: r.clone(),
                actor: Actor::user(r),
                input: NewTicket {
                    kind: if i % 3 == 0 {
                        Kind::InformationRequest
                    } else {
                        Kind::ProblemReport
                    },
                    subject: format!("Printer on floor {} prints blank pages ({i})", i % 40),
                    description: format!(
                        "Since the update on Monday the printer near room {} feeds paper but \
                         prints nothing. Restarting it did not help. Ticket {i}.",
                        i % 500
                    ),
                    priority: Priority::default(),
                    service: None,
                    author: None,
                    category: None,
                },
                idempotency: None,
                render: Box::new(|_| String::new()),
            })
        })
        .buffer_unordered(IN_FLIGHT);
    let mut done = 0usize;
    while let Some(result) = results.next().await {
        result??;
        done += 1;
        if done.is_multiple_of(100_000) {
            println!(
                "  {done} tickets, {:.0} s, {:.0} tickets/s",
                started.elapsed().as_secs_f64(),
                per_sec(done, started.elapsed())
            );
        }
    }
    drop(results);
    let stored = running.state.store.ticket_count()?;
    ensure!(
        usize::try_from(stored)? == TOTAL_TICKETS,
        "the store holds {stored} tickets"
    );
    running.stop().await;
    Ok(())
}

/// Every thousandth ticket is the listing customer's, so theirs interleave with everyone else's.
fn requester<'a>(i: usize, customer: &'a User, others: &'a [User]) -> &'a User {
    let every = TOTAL_TICKETS / CUSTOMER_TICKETS;
    if i % every == every / 2 {
        customer
    } else {
        // A fixed scatter (Fibonacci hashing), so each requester's tickets spread over time.
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        &others[usize::try_from(h).expect("24 bits fit") % others.len()]
    }
}

fn dir_mib(dir: &Path) -> f64 {
    fn bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    f64::from(u32::try_from(bytes(dir) / 1024).unwrap_or(u32::MAX)) / 1024.0
}

// ---------------------------------------------------------------------------------------------
// 2. Start-up on the 1M-ticket store, and 3. one customer's listing latency.

struct Listing {
    starts: Vec<Duration>,
    start_rss_mib: Vec<f64>,
    /// `(path, p50, p99)` per query.
    queries: Vec<(&'static str, Duration, Duration)>,
    /// CPU use during the listing requests.
    cpu: Option<CpuUse>,
    listed_rss_mib: f64,
}

fn listing(dataset: &Dataset, work: &Path) -> anyhow::Result<Listing> {
    println!("\n== 2. Start-up on {TOTAL_TICKETS} tickets: {STARTS} starts");
    let mut starts = Vec::with_capacity(STARTS);
    let mut start_rss_mib = Vec::with_capacity(STARTS);
    let mut server = None;
    for n in 1..=STARTS {
        let started = Server::start(&dataset.data_dir, work, &format!("start{n}"), "")?;
        let rss = started.rss_mib()?;
        println!(
            "start {n}: ready in {:.1} ms, RSS {rss:.1} MiB",
            ms(started.startup)
        );
        starts.push(started.startup);
        start_rss_mib.push(rss);
        if n < STARTS {
            started.stop()?;
        } else {
            server = Some(started);
        }
    }
    let server = server.expect("at least one start");

    println!(
        "\n== 3. Listing {CUSTOMER_TICKETS} tickets of {LIST_CUSTOMER_EMAIL}: \
         {LIST_SAMPLES} sequential requests per query after {LIST_WARM_UP} warm-up"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let meter = CpuMeter::start(server.pid());
    let queries = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = server.base();
        let token = login(&http, &base, LIST_CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await?;
        let mut queries = Vec::new();
        for (path, expected_items) in LIST_QUERIES {
            let url = format!("{base}{path}");
            let (http, url, token) = (&http, &url, &token);
            let get = || async move {
                let response = http.get(url).bearer_auth(token).send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                ensure!(status == StatusCode::OK, "{path}: {status}");
                anyhow::Ok(body)
            };
            let first: Value = serde_json::from_slice(&get().await?)?;
            let items = first["items"].as_array().map_or(0, Vec::len);
            ensure!(
                first["total"] == CUSTOMER_TICKETS && items == expected_items,
                "{path}: expected {expected_items} of {CUSTOMER_TICKETS} tickets, got {items} of {}",
                first["total"]
            );
            for _ in 0..LIST_WARM_UP {
                get().await?;
            }
            let mut samples = Vec::with_capacity(LIST_SAMPLES);
            for _ in 0..LIST_SAMPLES {
                let sent = Instant::now();
                get().await?;
                samples.push(sent.elapsed());
            }
            samples.sort_unstable();
            let (p50, p99) = (percentile(&samples, 500), percentile(&samples, 990));
            println!(
                "GET {path}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                ms(p50),
                ms(p99),
                ms(*samples.last().expect("samples"))
            );
            queries.push((path, p50, p99));
        }
        anyhow::Ok(queries)
    })?;
    let cpu = meter.finish();
    if let Some(cpu) = &cpu {
        println!("CPU during the listing requests: {cpu}");
    }
    let listed_rss_mib = server.rss_mib()?;
    println!("RSS after the listing requests {listed_rss_mib:.1} MiB");
    server.stop()?;
    Ok(Listing {
        starts,
        start_rss_mib,
        queries,
        cpu,
        listed_rss_mib,
    })
}

// ---------------------------------------------------------------------------------------------
// Statistics and the summary.

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

#[derive(Default)]
struct Summary {
    throughput: Option<Throughput>,
    dataset: Option<Dataset>,
    listing: Option<Listing>,
}

/// One row: what, measured, target, measured/target, met.
fn row(out: &mut String, what: &str, measured: &str, target: &str, ratio: f64, met: bool) {
    let verdict = if met { "yes" } else { "**no**" };
    let _ = writeln!(
        out,
        "| {what} | {measured} | {target} | {ratio:.2} | {verdict} |"
    );
}

impl Summary {
    fn print(&self) {
        let mut out = String::new();
        self.targets(&mut out);
        self.details(&mut out);
        print!("{out}");
    }

    /// The table of targets.
    fn targets(&self, out: &mut String) {
        out.push_str("\n== Summary (medians; ratio = measured / target)\n\n");
        out.push_str("| Measure | Result | Target | Ratio | Met |\n");
        out.push_str("|---|---|---|---|---|\n");
        if let Some(t) = &self.throughput {
            let rate = median(&t.rounds);
            let (lo, hi) = min_max(&t.rounds);
            row(
                out,
                &format!("Durable ticket creation, {CLIENTS} clients"),
                &format!("{rate:.0} tickets/s (min {lo:.0}, max {hi:.0})"),
                &format!(">= {TARGET_TICKETS_PER_SEC:.0} tickets/s"),
                rate / TARGET_TICKETS_PER_SEC,
                rate >= TARGET_TICKETS_PER_SEC,
            );
            row(
                out,
                "Server RSS, idle after start (empty store)",
                &format!("{:.1} MiB", t.idle_rss_mib),
                &format!("< {TARGET_IDLE_RSS_MIB:.0} MiB"),
                t.idle_rss_mib / TARGET_IDLE_RSS_MIB,
                t.idle_rss_mib < TARGET_IDLE_RSS_MIB,
            );
        }
        if let Some(l) = &self.listing {
            let mut starts: Vec<f64> = l.starts.iter().map(|d| ms(*d)).collect();
            starts.sort_by(f64::total_cmp);
            let start = median(&starts);
            row(
                out,
                &format!("Start-up to /readyz 200, {TOTAL_TICKETS} tickets"),
                &format!(
                    "{start:.0} ms (min {:.0}, max {:.0})",
                    starts[0],
                    starts[starts.len() - 1]
                ),
                &format!("< {TARGET_START_MS:.0} ms"),
                start / TARGET_START_MS,
                start < TARGET_START_MS,
            );
            for (path, _, p99) in &l.queries {
                let p99 = ms(*p99);
                row(
                    out,
                    &format!("p99 `GET {path}`, 1,000 of {TOTAL_TICKETS} tickets"),
                    &format!("{p99:.2} ms"),
                    &format!("< {TARGET_LIST_P99_MS:.0} ms"),
                    p99 / TARGET_LIST_P99_MS,
                    p99 < TARGET_LIST_P99_MS,
                );
            }
        }
    }

    /// What helps to read the targets.
    fn details(&self, out: &mut String) {
        out.push_str("\nOther measurements\n\n");
        if let Some(t) = &self.throughput {
            let _ = writeln!(
                out,
                "- ticket creation latency over all rounds: p50 {:.2} ms, p99 {:.2} ms",
                ms(t.create_p50),
                ms(t.create_p99)
            );
            if let Some(cpu) = &t.cpu {
                let _ = writeln!(out, "- CPU during the creation rounds: {cpu}");
            }
            if let Some(n) = t.tickets_per_flush {
                let _ = writeln!(out, "- group commit: {n:.1} tickets per flush");
            }
            let _ = writeln!(
                out,
                "- server RSS: idle {:.1} MiB, after creating and signing in {CLIENTS} accounts \
                 {:.1} MiB, after the load {:.1} MiB",
                t.idle_rss_mib, t.setup_rss_mib, t.loaded_rss_mib
            );
        }
        if let Some(d) = &self.dataset {
            let _ = writeln!(
                out,
                "- {TOTAL_TICKETS}-ticket store: {:.0} MiB on disk, generated in {:.0} s{}",
                d.disk_mib,
                d.generation.as_secs_f64(),
                if d.cached {
                    " (cached from an earlier run)"
                } else {
                    ""
                }
            );
        }
        if let Some(l) = &self.listing {
            let _ = writeln!(
                out,
                "- server RSS on {TOTAL_TICKETS} tickets: {:.1} MiB after start (median of {STARTS}), \
                 {:.1} MiB after the listing requests",
                median(&l.start_rss_mib),
                l.listed_rss_mib
            );
            for (path, p50, p99) in &l.queries {
                let _ = writeln!(
                    out,
                    "- `GET {path}`: p50 {:.2} ms, p99 {:.2} ms",
                    ms(*p50),
                    ms(*p99)
                );
            }
            if let Some(cpu) = &l.cpu {
                let _ = writeln!(out, "- CPU during the listing requests: {cpu}");
            }
        }
    }
}
