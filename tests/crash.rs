//! kill -9 of the real binary while customers create tickets: after each restart every ticket that
//! was acknowledged (201) is there exactly once, and every ticket the store holds reaches the fake
//! SDP exactly once. `DESKBRIDGE_CRASH_ROUNDS` sets the rounds (default 1; `scripts/crash-soak.sh`
//! runs 10), `DESKBRIDGE_CRASH_BIN` another binary (the release build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::{
    ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, binary_command, deskbridge_command, eventually,
};

/// Concurrent creators.
const WORKERS: usize = 4;

/// The binary running as its own process on a data dir that outlives it.
struct Process {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Process {
    async fn start(dir: &Path, fake: &FakeSdp) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("deskbridge.toml");
        let text = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n[storage]\ndata_dir = {data}\ncache_mb = 16\n\
             [sdp]\nbase_url = \"{sdp}\"\napi_key = \"{key}\"\npoll_interval_secs = 3600\n\
             max_requests_per_minute = 6000\nrequest_timeout_secs = 3\n\
             [bootstrap]\nadmin_email = \"{ADMIN_EMAIL}\"\nadmin_password = \"{ADMIN_PASSWORD}\"\n\
             [log]\nlevel = \"warn\"\n",
            data = toml::Value::String(dir.join("data").display().to_string()),
            sdp = fake.base_url(),
            key = fake.api_key(),
        );
        std::fs::write(&config, text).expect("config written");
        let log = dir.join("deskbridge.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = std::env::var_os("DESKBRIDGE_CRASH_BIN")
            .map_or_else(deskbridge_command, binary_command);
        let child = cmd
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("the binary starts");
        let mut process = Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        process.ready().await;
        process
    }

    async fn ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            if let Some(status) = self.child.try_wait().expect("child state") {
                panic!("deskbridge exited with {status}: {}", self.log_tail());
            }
            let url = format!("{}/readyz", self.base);
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready in time: {}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no drain, no flush.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("reaped");
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn token(http: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let body: Value = http
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sign-in answered")
        .json()
        .await
        .expect("token JSON");
    body["token"].as_str().expect("a token").to_owned()
}

/// Every ticket as the admin sees it: subject → numbers (more than one would be a duplicate).
async fn listed(http: &reqwest::Client, base: &str, admin: &str) -> BTreeMap<String, Vec<String>> {
    let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for page in 1.. {
        let body: Value = http
            .get(format!("{base}/api/v1/tickets?per_page=100&page={page}"))
            .bearer_auth(admin)
            .send()
            .await
            .expect("list answered")
            .json()
            .await
            .expect("list JSON");
        let items = body["items"].as_array().expect("items");
        for t in items {
            let subject = t["subject"].as_str().expect("subject").to_owned();
            let number = t["number"].as_str().expect("number").to_owned();
            all.entry(subject).or_default().push(number);
        }
        if items.len() < 100 {
            break;
        }
    }
    all
}

/// Creates tickets until the server goes away; records each acknowledged one.
async fn creator(
    http: reqwest::Client,
    base: String,
    customer: String,
    name: String,
    acked: &Mutex<Vec<(String, String)>>,
    count: &AtomicUsize,
) -> Vec<String> {
    let mut unexpected = Vec::new();
    for i in 0.. {
        let subject = format!("{name}-{i}");
        let sent = http
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(&customer)
            .json(&json!({"kind": "problem_report", "subject": subject, "description": "Load."}))
            .send()
            .await;
        let Ok(response) = sent else { break };
        if response.status() != StatusCode::CREATED {
            unexpected.push(format!("{subject}: {}", response.status()));
            break;
        }
        let Ok(body) = response.json::<Value>().await else {
            break;
        };
        let number = body["number"].as_str().expect("number").to_owned();
        acked.lock().expect("not poisoned").push((subject, number));
        count.fetch_add(1, Ordering::SeqCst);
    }
    unexpected
}

#[actix_web::test]
async fn kill_9_during_creation_loses_no_acknowledged_ticket_and_sends_each_once() {
    let rounds: usize = std::env::var("DESKBRIDGE_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let fake = FakeSdp::start(Profile::OnPrem).await;
    // Each restart is a new process with a fresh budget, so SDP's per-minute limit would soon
    // block the soak; it is about crashes, and the budget has its own tests.
    fake.set_budget(None);
    // A call cut off by the kill is looked up once a request timeout has passed (`request_timeout_secs`
    // + 1), so a short timeout keeps each round short.
    let dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut process = Process::start(dir.path(), &fake).await;
    let admin = token(&http, &process.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = http
        .post(format!("{}/api/v1/admin/users", process.base))
        .bearer_auth(&admin)
        .json(
            &json!({"email": "load@example.com", "name": "Load", "password": PASSWORD,
            "role": "customer", "organization": "Acme"}),
        )
        .send()
        .await
        .expect("user created");
    assert_eq!(created.status(), StatusCode::CREATED);
    let customer = token(&http, &process.base, "load@example.com", PASSWORD).await;

    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for round in 1..=rounds {
        // A different moment in the load each round.
        let kill_after = 10 + (round * 7) % 25;
        let acked = Mutex::new(Vec::new());
        let count = AtomicUsize::new(0);
        let base = process.base.clone();
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                creator(
                    http.clone(),
                    base.clone(),
                    customer.clone(),
                    format!("crash-r{round}-w{w}"),
                    &acked,
                    &count,
                )
            })
            .collect();
        let killer = async {
            eventually(Duration::from_mins(1), || async {
                (count.load(Ordering::SeqCst) >= kill_after).then_some(())
            })
            .await;
            process.kill();
        };
        let (unexpected, ()) =
            futures_util::future::join(futures_util::future::join_all(workers), killer).await;
        let unexpected: Vec<String> = unexpected.into_iter().flatten().collect();
        assert!(unexpected.is_empty(), "round {round}: {unexpected:?}");
        acknowledged.extend(acked.into_inner().expect("not poisoned"));

        process = Process::start(dir.path(), &fake).await;
        let round_started = Instant::now();
        let stored = listed(&http, &process.base, &admin).await;
        for (subject, number) in &acknowledged {
            assert_eq!(
                stored.get(subject),
                Some(&vec![number.clone()]),
                "round {round}: {subject} acknowledged as {number}"
            );
        }
        for (subject, numbers) in &stored {
            assert_eq!(
                numbers.len(),
                1,
                "round {round}: {subject} twice: {numbers:?}"
            );
        }
        // Every stored ticket, acknowledged or cut off before its answer, reaches SDP once.
        let in_sdp = || {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for r in fake.requests() {
                let sdp_subject = r["subject"].as_str().unwrap_or_default().to_owned();
                if let Some(subject) = stored
                    .keys()
                    .find(|s| sdp_subject.ends_with(&format!(" {s}")))
                {
                    *seen.entry(subject.clone()).or_default() += 1;
                }
            }
            seen
        };
        let deadline = Instant::now() + Duration::from_mins(1);
        while in_sdp().len() < stored.len() {
            if Instant::now() > deadline {
                let seen = in_sdp();
                let missing: Vec<&String> =
                    stored.keys().filter(|s| !seen.contains_key(*s)).collect();
                let health: Value = http
                    .get(format!("{}/api/v1/admin/sync", process.base))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .expect("health answered")
                    .json()
                    .await
                    .expect("health JSON");
                panic!(
                    "round {round}: not in SDP within a minute: {missing:?}\nsync: {health}\nlog: {}",
                    process.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "round {round}: {} tickets, in SDP after {:?}",
            stored.len(),
            round_started.elapsed()
        );
        let seen = in_sdp();
        assert!(seen.values().all(|n| *n == 1), "round {round}: {seen:?}");
        assert_eq!(fake.requests().len(), stored.len(), "round {round}");
    }
    fake.stop().await;
}
