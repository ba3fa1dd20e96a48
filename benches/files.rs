//! Files both ways at bounded memory: a 48 MiB file a customer uploads reaches SDP, and one the
//! team attaches in SDP reaches the customer, byte-identical, while the server's peak RSS grows
//! by less than 16 MiB each way. See BENCHMARKS.md ("Files").
//!
//! `cargo bench --bench files` (`DESKBRIDGE_BENCH_ROUNDS=<n>`: rounds, default 3). The server is the
//! release binary as a child process (its memory alone is measured); the fake SDP of the
//! integration tests runs in this process, on 127.0.0.1, at its default call budget.
//!
//! Each round starts a fresh server, creates a customer and a ticket synced to SDP, then resets
//! the kernel's peak-RSS mark (`/proc/<pid>/clear_refs`, 5) before each direction and reads it
//! (`VmHWM`) after: the growth is the peak minus the RSS at the reset.

#![allow(
    unreachable_pub,
    reason = "a test or bench binary's modules share helpers; their visibility is no API"
)]

#[path = "common/mod.rs"]
#[allow(dead_code, reason = "each bench uses part of the shared helpers")]
mod common;
#[path = "common/server.rs"]
#[allow(dead_code, reason = "each bench uses part of the server helpers")]
mod server;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use common::{create_customer, login};
use fake_sdp::{FakeSdp, Profile};
use server::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, peak_rss_mib};

const FILE_BYTES: usize = 48 << 20;
/// Above the file: the default cap (25 MiB) would refuse it.
const PORTAL_CAP: u64 = 64 << 20;
const TARGET_GROWTH_MIB: f64 = 16.0;
const CUSTOMER: &str = "files@bench.test";
const CUSTOMER_PASSWORD: &str = "bench-customer-password";
const HOOK_SECRET: &str = "bench-hook-secret";
const DEADLINE: Duration = Duration::from_mins(5);

struct Round {
    up_growth_mib: f64,
    up_secs: f64,
    down_growth_mib: f64,
    down_secs: f64,
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::var("DESKBRIDGE_BENCH_ROUNDS")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("DESKBRIDGE_BENCH_ROUNDS")?
        .unwrap_or(3);
    let work = tempfile::Builder::new()
        .prefix("deskbridge-files-bench-")
        .tempdir()
        .context("temp dir")?;
    println!(
        "deskbridge files benchmark: a {} MiB file each way, {rounds} rounds, binary {}",
        FILE_BYTES >> 20,
        server::binary().display()
    );
    let results = actix_web::rt::System::new().block_on(async {
        let mut results = Vec::new();
        for n in 0..rounds {
            let round = round(work.path(), n).await?;
            println!(
                "round {n}: up +{:.1} MiB peak in {:.1} s; down +{:.1} MiB peak in {:.1} s",
                round.up_growth_mib, round.up_secs, round.down_growth_mib, round.down_secs
            );
            results.push(round);
        }
        anyhow::Ok(results)
    })?;
    let median = |f: fn(&Round) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let up = median(|r| r.up_growth_mib);
    let down = median(|r| r.down_growth_mib);
    println!("\n| direction | peak RSS growth (median) | time (median) | target |");
    println!("|---|---|---|---|");
    println!(
        "| portal → SDP | {up:.1} MiB | {:.1} s | < {TARGET_GROWTH_MIB} MiB |",
        median(|r| r.up_secs)
    );
    println!(
        "| SDP → portal | {down:.1} MiB | {:.1} s | < {TARGET_GROWTH_MIB} MiB |",
        median(|r| r.down_secs)
    );
    ensure!(
        up < TARGET_GROWTH_MIB && down < TARGET_GROWTH_MIB,
        "peak RSS grew past the target"
    );
    Ok(())
}

async fn round(work: &Path, n: usize) -> anyhow::Result<Round> {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    // SDP's own upload limit is configurable; this one takes the file.
    fake.set_max_upload(FILE_BYTES + (1 << 20));
    let data = tempfile::Builder::new().prefix("data-").tempdir_in(work)?;
    let extra = format!(
        "\n[portal]\nmax_attachment_bytes = {PORTAL_CAP}\n\n\
         [sdp]\nbase_url = {}\napi_key = {}\nwebhook_secret = {}\n",
        toml::Value::String(fake.base_url()),
        toml::Value::String(fake.api_key()),
        toml::Value::String(HOOK_SECRET.into()),
    );
    let server = Server::start(data.path(), work, &format!("files{n}"), &extra)?;
    let base = server.base();
    let http = reqwest::Client::new();
    let admin = login(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    create_customer(&http, &base, &admin, CUSTOMER, "Files", CUSTOMER_PASSWORD).await?;
    let token = login(&http, &base, CUSTOMER, CUSTOMER_PASSWORD).await?;
    let api = |path: &str| format!("{base}{path}");

    let (status, ticket) = send(
        http.post(api("/api/v1/tickets"))
            .bearer_auth(&token)
            .json(&json!({"kind": "problem_report", "subject": "A large file", "description": "See the dump."})),
    )
    .await?;
    ensure!(status == StatusCode::CREATED, "create: {status} {ticket}");
    let number = ticket["number"].as_str().context("number")?.to_owned();
    let request = until("the ticket is synced", || async {
        let (_, t) = send(
            http.get(api(&format!("/api/v1/tickets/{number}")))
                .bearer_auth(&token),
        )
        .await?;
        Ok((t["sdp"]["sync_state"] == "synced")
            .then(|| t["sdp"]["request_id"].as_str().map(str::to_owned))
            .flatten())
    })
    .await?;

    let (up_growth_mib, up_secs) =
        send_out(&server, &http, &token, &number, &fake, &request).await?;
    let (down_growth_mib, down_secs) =
        take_in(&server, &http, &token, &number, &fake, &request).await?;
    let calls = fake.calls().len();
    println!("round {n}: {calls} SDP calls");
    server.stop()?;
    Ok(Round {
        up_growth_mib,
        up_secs,
        down_growth_mib,
        down_secs,
    })
}

/// Portal → SDP: the upload into the portal, then the sync's upload to SDP. Peak RSS growth
/// (MiB) and seconds.
async fn send_out(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    number: &str,
    fake: &FakeSdp,
    request: &str,
) -> anyhow::Result<(f64, f64)> {
    let api = |path: &str| format!("{}{path}", server.base());
    let up_bytes = content(1);
    let up_sha = sha(&up_bytes);
    let rss = reset_peak(server.pid())?;
    let started = Instant::now();
    let part = reqwest::multipart::Part::bytes(up_bytes).file_name("up.bin");
    let (status, body) = send(
        http.post(api(&format!("/api/v1/tickets/{number}/attachments")))
            .bearer_auth(token)
            .multipart(reqwest::multipart::Form::new().part("file", part)),
    )
    .await?;
    ensure!(status == StatusCode::CREATED, "upload: {status} {body}");
    let arrived = until("the file reaches SDP", || async {
        Ok(fake
            .attachments(request)
            .into_iter()
            .find(|a| a.name == "up.bin"))
    })
    .await?;
    let up_secs = started.elapsed().as_secs_f64();
    let up_growth_mib = peak_rss_mib(server.pid())? - rss;
    ensure!(
        sha(&arrived.bytes) == up_sha,
        "the file changed on its way to SDP"
    );
    Ok((up_growth_mib, up_secs))
}

/// SDP → portal: the sync's download into the store, then the customer's download. Peak RSS
/// growth (MiB) and seconds.
async fn take_in(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    number: &str,
    fake: &FakeSdp,
    request: &str,
) -> anyhow::Result<(f64, f64)> {
    let api = |path: &str| format!("{}{path}", server.base());
    let down_bytes = content(2);
    let down_sha = sha(&down_bytes);
    let rss = reset_peak(server.pid())?;
    let started = Instant::now();
    fake.attach_file(request, "down.bin", &down_bytes);
    drop(down_bytes);
    let hook = api(&format!("/api/v1/hooks/sdp?secret={HOOK_SECRET}"));
    fake.fire_webhook(&hook, request).await.context("webhook")?;
    let id = until("the file reaches the portal", || async {
        let (_, list) = send(
            http.get(api(&format!("/api/v1/tickets/{number}/attachments")))
                .bearer_auth(token),
        )
        .await?;
        Ok(list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["filename"] == "down.bin"))
            .map(|a| a["id"].clone()))
    })
    .await?;
    let mut response = http
        .get(api(&format!("/api/v1/tickets/{number}/attachments/{id}")))
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::OK,
        "download: {}",
        response.status()
    );
    let mut hasher = Sha256::new();
    while let Some(chunk) = response.chunk().await? {
        hasher.update(&chunk);
    }
    let down_secs = started.elapsed().as_secs_f64();
    let down_growth_mib = peak_rss_mib(server.pid())? - rss;
    ensure!(
        hex::encode(hasher.finalize()) == down_sha,
        "the file changed on its way to the portal"
    );
    Ok((down_growth_mib, down_secs))
}

/// Content that does not compress or repeat: a counter's sha256 chain.
fn content(seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(FILE_BYTES);
    let mut block = Sha256::digest([seed]);
    while out.len() < FILE_BYTES {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(FILE_BYTES);
    out
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Resets the server's peak-RSS mark to its current RSS; returns that RSS (MiB).
fn reset_peak(pid: u32) -> anyhow::Result<f64> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("reset the peak RSS")?;
    peak_rss_mib(pid)
}

async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Polls `check` until it gives a value, for at most [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
