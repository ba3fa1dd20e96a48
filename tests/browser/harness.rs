//! What the browser tests stand on: the tools (Chromium, chromedriver, axe-core), the appliance as
//! a child process configured by environment variables, one chromedriver per test, and a browser
//! session whose waits all have a deadline.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::oidc_provider::OidcProvider;
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, PASSWORD, eventually};

/// How long any one thing may take to show up.
pub const WAIT: Duration = Duration::from_secs(30);
pub const HOOK_SECRET: &str = "browser-hook-secret";

// ---- tools ----

/// The programs a test drives.
pub struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Tools {
    /// Chromium and chromedriver from PATH. Without them: a failure under CI, a loud notice and
    /// `None` elsewhere, so `cargo test` passes on a machine without a browser.
    pub fn find(test: &str) -> Option<Tools> {
        let chromium = ["chromium", "chromium-browser"]
            .into_iter()
            .find_map(on_path);
        if let (Some(chromium), Some(chromedriver)) = (chromium, on_path("chromedriver")) {
            Some(Tools {
                chromium,
                chromedriver,
            })
        } else {
            missing(test, "Chromium and chromedriver");
            None
        }
    }
}

fn missing(test: &str, what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what} not found and CI is set: apt-get install chromium chromium-driver nodejs npm \
         (.ci/run does so when run as root)"
    );
    let bar = "!".repeat(78);
    // Straight to stderr: the test harness would capture `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\n  SKIPPED {test}: {what} not found.\n  The browser tests need \
         `apt-get install chromium chromium-driver` and npm (for axe-core).\n{bar}\n"
    );
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// axe-core's script, installed from `tests/browser/package-lock.json` (`npm ci`) when missing.
pub fn axe_source(test: &str) -> Option<String> {
    // Tests run in parallel: one installs, the others wait for it.
    static INSTALL: Mutex<()> = Mutex::new(());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let script = dir.join("node_modules/axe-core/axe.min.js");
    let _installing = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    if !script.is_file() {
        if on_path("npm").is_none() {
            missing(test, "npm (to install axe-core)");
            return None;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci --prefix tests/browser: {status}");
    }
    Some(std::fs::read_to_string(&script).expect("axe.min.js is readable"))
}

/// Sends a signal with kill(1); `target` is a pid, or `-pgid` for a process group.
fn signal(signal: &str, target: &str) {
    // A process that is already gone is not an error here.
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM, then waits up to `grace` before SIGKILL; returns how the process ended.
fn terminate(child: &mut Child, target: &str, grace: Duration) -> ExitStatus {
    signal("-TERM", target);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-KILL", target);
    child.wait().expect("the process is reaped")
}

// ---- the appliance ----

/// How the appliance starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// A bootstrap admin and SDP (the fake) configured by environment variables.
    Configured,
    /// Nothing configured: no admin yet (a setup token in the log) and no SDP.
    FirstRun,
    /// As `Configured`, with single sign-on at the test identity provider, for customers only.
    SingleSignOn,
}

/// The real `deskbridge` binary on a temporary data dir, listening on 127.0.0.1.
pub struct Appliance {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub base: String,
    pub setup_token: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Appliance {
    /// Starts the binary and waits for its "deskbridge ready" log line (JSON on stderr).
    pub async fn start(setup: Setup, fake: &FakeSdp, extra: &[(String, String)]) -> Appliance {
        let dir = tempfile::tempdir().expect("temp dir");
        // An empty file, so neither /etc/deskbridge nor DESKBRIDGE_CONFIG is read.
        let config = dir.path().join("deskbridge.toml");
        std::fs::write(&config, "# every setting comes from the environment\n")
            .expect("write the config file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskbridge"));
        cmd.arg("serve").arg("--config").arg(&config);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DESKBRIDGE") {
                cmd.env_remove(name);
            }
        }
        cmd.env_remove("RUST_LOG")
            .env(
                "DESKBRIDGE__STORAGE__DATA_DIR",
                dir.path().join("data").as_os_str(),
            )
            .env("DESKBRIDGE__STORAGE__CACHE_MB", "16")
            .env("DESKBRIDGE__SERVER__BIND", "127.0.0.1:0")
            .env("DESKBRIDGE__SERVER__SHUTDOWN_TIMEOUT_SECS", "5")
            .env("DESKBRIDGE__LOG__FORMAT", "json")
            .env("DESKBRIDGE__LOG__LEVEL", "info");
        cmd.envs(extra.iter().map(|(k, v)| (k, v)));
        if setup != Setup::FirstRun {
            cmd.env("DESKBRIDGE__BOOTSTRAP__ADMIN_EMAIL", ADMIN_EMAIL)
                .env("DESKBRIDGE__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("DESKBRIDGE__SDP__BASE_URL", fake.base_url())
                .env("DESKBRIDGE__SDP__API_KEY", fake.api_key())
                .env("DESKBRIDGE__SDP__WEBHOOK_SECRET", HOOK_SECRET)
                // Only the webhook brings the team's changes, so the page updates because of it.
                .env("DESKBRIDGE__SDP__POLL_INTERVAL_SECS", "3600")
                .env("DESKBRIDGE__SDP__MAX_REQUESTS_PER_MINUTE", "100000")
                .env("DESKBRIDGE__SDP__RETRY_BASE_MS", "20")
                .env("DESKBRIDGE__SDP__RETRY_MAX_SECS", "1")
                .env("DESKBRIDGE__SDP__REQUEST_TIMEOUT_SECS", "5");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the deskbridge binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(entry);
                }
                lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        let mut app = Appliance {
            child: Some(child),
            _dir: dir,
            base: String::new(),
            setup_token: None,
            log,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("http client"),
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        let wants_token = setup == Setup::FirstRun;
        while app.base.is_empty() || (wants_token && app.setup_token.is_none()) {
            let entry = tokio::time::timeout_at(deadline, rx.recv()).await;
            let Ok(Some(entry)) = entry else {
                panic!("deskbridge did not get ready:\n{}", app.log_tail(40));
            };
            let fields = &entry["fields"];
            if fields["message"] == "deskbridge ready" {
                let addr = fields["addr"].as_str().expect("the ready line has addr");
                app.base = format!("http://{addr}");
            }
            if let Some(token) = fields["setup_token"].as_str() {
                app.setup_token = Some(token.to_owned());
            }
        }
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Where the fake SDP's trigger posts, with the secret in the query as SDP allows.
    pub fn hook_url(&self) -> String {
        self.url(&format!("/api/v1/hooks/sdp?secret={HOOK_SECRET}"))
    }

    /// An API client signed in with a token.
    pub async fn login(&self, email: &str, password: &str) -> Api {
        let anonymous = Api {
            base: self.base.clone(),
            http: self.http.clone(),
            token: None,
            headers: Vec::new(),
        };
        let (status, body) = anonymous
            .post(
                "/api/v1/auth/token",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "sign in {email}: {body}");
        Api {
            token: Some(body["token"].as_str().expect("a token").to_owned()),
            ..anonymous
        }
    }

    /// Creates a customer (password [`PASSWORD`]) as `admin` and returns their API client.
    pub async fn customer_by(&self, admin: &Api, email: &str, name: &str) -> Api {
        let (status, body) = admin
            .post(
                "/api/v1/admin/users",
                &json!({"email": email, "name": name, "password": PASSWORD, "role": "customer", "organization": "Acme"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create {email}: {body}");
        self.login(email, PASSWORD).await
    }

    /// Creates a customer as the bootstrap admin.
    pub async fn customer(&self, email: &str, name: &str) -> Api {
        let admin = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        self.customer_by(&admin, email, name).await
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// SIGTERM and a graceful exit.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let target = child.id().to_string();
            let status = terminate(&mut child, &target, WAIT);
            assert!(
                status.success(),
                "deskbridge stopped with {status}:\n{}",
                self.log_tail(20)
            );
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let target = child.id().to_string();
            terminate(&mut child, &target, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!(
                "---- deskbridge log (last lines) ----\n{}",
                self.log_tail(60)
            );
        }
    }
}

// ---- chromedriver and the browser ----

/// One chromedriver on 127.0.0.1 and a free port, in its own process group so that the Chromium
/// it starts ends with it.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start(tools: &Tools) -> Driver {
        let mut child = Command::new(&tools.chromedriver)
            .arg("--port=0")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Reads the port, then keeps draining so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, rest)| rest.trim_end_matches('.').parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let Ok(port) = rx.recv_timeout(WAIT) else {
            let target = format!("-{}", child.id());
            terminate(&mut child, &target, Duration::from_secs(5));
            panic!("chromedriver did not say which port it listens on");
        };
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        terminate(&mut self.child, &group, Duration::from_secs(5));
        // Chromium processes left in the group (when the session was not closed) go too.
        signal("-KILL", &group);
    }
}

/// A headless Chromium session on a fresh profile, with deadline-bound waits.
pub struct Browser {
    pub client: Client,
    base: String,
    test: &'static str,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn open(tools: &Tools, driver: &Driver, base: &str, test: &'static str) -> Browser {
        let profile = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--lang=en-US",
            "--window-size=1280,1000",
        ]
        .map(str::to_owned)
        .into();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": tools.chromium, "args": args},
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through {}: {e}", driver.url));
        Browser {
            client,
            base: base.to_owned(),
            test,
            _profile: profile,
        }
    }

    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The element once it exists, or a failure naming it and the page.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` on {} within {WAIT:?}: {e}", self.path().await),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("clear the input");
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Clicks something that loads a page (a link, a form's button) and waits until the new page
    /// has loaded, even when it has the same address.
    pub async fn click_and_load(&self, css: &str) {
        self.js("window.__deskbridgeOldPage = true;", Vec::new())
            .await;
        self.click(css).await;
        self.until(
            "window.__deskbridgeOldPage === undefined && document.readyState === 'complete'",
            &format!("a new page after clicking `{css}`"),
        )
        .await;
    }

    /// Runs a script (its `return` value comes back as JSON).
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls a JS expression until it is truthy and returns its value. A page in the middle of
    /// navigating counts as "not yet".
    pub async fn until(&self, expression: &str, what: &str) -> Value {
        let script = format!("return ({expression});");
        let deadline = Instant::now() + WAIT;
        loop {
            let last = self.client.execute(&script, Vec::new()).await;
            if let Ok(value) = &last
                && truthy(value)
            {
                return value.clone();
            }
            if Instant::now() >= deadline {
                let path = self.client.current_url().await.map(|u| u.to_string());
                panic!("{what}: not within {WAIT:?} (`{expression}` gave {last:?} on {path:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the browser shows `path` (a navigation after a click or a submit).
    pub async fn until_at(&self, path: &str) {
        let expected = serde_json::to_string(path).expect("a string");
        self.until(
            &format!(
                "document.readyState !== 'loading' && location.pathname + location.search === {expected}"
            ),
            &format!("the browser at {path}"),
        )
        .await;
    }

    /// The visible text of the element.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of `{css}`: {e}"))
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.js("return document.body.innerText;", Vec::new())
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves the viewport as `target/screenshots/<test>-<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        if let Err(e) = self.try_screenshot(name).await {
            panic!("screenshot {name}: {e}");
        }
    }

    async fn try_screenshot(&self, name: &str) -> Result<(), String> {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        let file = dir.join(format!("{}-{name}.png", self.test));
        std::fs::write(&file, png).map_err(|e| e.to_string())
    }

    /// Signs in through the form and waits to leave the sign-in page.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/sign-in").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click_and_load("form[action='/sign-in'] button[type=submit]")
            .await;
        let path = self.path().await;
        assert!(
            !path.starts_with("/sign-in"),
            "{email} not signed in: at {path}"
        );
    }

    /// Switches the page language with the language menu (it submits itself on change).
    pub async fn switch_language(&self, lang: &str) {
        self.find("#lang-switch")
            .await
            .select_by_value(lang)
            .await
            .expect("choose a language");
        // Choosing does not navigate by itself (no change of context on input); the button applies it.
        self.find("form[action='/language'] button")
            .await
            .click()
            .await
            .expect("apply the language");
        self.until(
            &format!(
                "document.documentElement.lang === '{lang}' && document.readyState !== 'loading'"
            ),
            &format!("the page in {lang}"),
        )
        .await;
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("screenshots")
}

// ---- one test's world ----

/// The fake SDP, the appliance and a browser, stopped in order when the test ends, failed or not.
pub struct Session {
    pub fake: FakeSdp,
    pub app: Appliance,
    pub browser: Browser,
    /// The identity provider, with [`Setup::SingleSignOn`].
    pub oidc: Option<OidcProvider>,
}

impl Session {
    /// Waits until the portal ticket is linked to an SDP request; returns the request id.
    pub async fn sdp_request(&self, customer: &Api, number: &str) -> String {
        eventually(WAIT, || async {
            let (_, t) = customer.get(&format!("/api/v1/tickets/{number}")).await;
            t["sdp"]["request_id"].as_str().map(str::to_owned)
        })
        .await
    }

    /// The team moves the request in SDP and SDP's trigger calls the webhook; waits until the
    /// portal shows `portal_status`.
    pub async fn team_sets(
        &self,
        customer: &Api,
        number: &str,
        request: &str,
        (sdp_status, portal_status): (&str, &str),
    ) {
        self.fake.set_status(request, sdp_status, None);
        self.webhook(request).await;
        eventually(WAIT, || async {
            let (_, t) = customer.get(&format!("/api/v1/tickets/{number}")).await;
            (t["status"] == portal_status).then_some(())
        })
        .await;
    }

    /// SDP's trigger for `request` calls the appliance's webhook.
    pub async fn webhook(&self, request: &str) {
        let status = self
            .fake
            .fire_webhook(&self.app.hook_url(), request)
            .await
            .expect("the webhook answers");
        assert!(status.is_success(), "webhook: {status}");
    }

    /// Waits until SDP has closed the request (a confirmation or a retried close arrived).
    pub async fn until_closed_in_sdp(&self, request: &str) {
        eventually(WAIT, || async {
            self.fake
                .status_changes(request)
                .iter()
                .any(|c| c.to == "Closed")
                .then_some(())
        })
        .await;
    }
}

/// One world at a time, however many test threads: each runs its own appliance, chromedriver and
/// Chromium, and what a page does in time (live updates, axe) should not depend on others.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `body` in a fresh world; a failure saves a screenshot of the page it ended on.
#[allow(
    clippy::await_holding_lock,
    reason = "each test runs on its own thread and runtime: waiting for the turn blocks only it"
)]
pub async fn run(test: &'static str, setup: Setup, body: impl AsyncFnOnce(&Session)) {
    let _turn = turn();
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let oidc = if setup == Setup::SingleSignOn {
        Some(OidcProvider::start().await)
    } else {
        None
    };
    let extra = oidc.as_ref().map(OidcProvider::env).unwrap_or_default();
    let app = Appliance::start(setup, &fake, &extra).await;
    let driver = Driver::start(&tools);
    let browser = Browser::open(&tools, &driver, &app.base, test).await;
    let session = Session {
        fake,
        app,
        browser,
        oidc,
    };
    let outcome = AssertUnwindSafe(body(&session)).catch_unwind().await;
    let Session {
        fake,
        app,
        browser,
        oidc,
    } = session;
    if let Some(oidc) = oidc {
        oidc.stop().await;
    }
    if outcome.is_err() {
        // Best effort: the browser may be what failed.
        let _ = browser.try_screenshot("failure").await;
    }
    let _ = browser.client.close().await;
    drop(driver);
    match outcome {
        Ok(()) => app.stop(),
        Err(panic) => {
            drop(app);
            fake.stop().await;
            std::panic::resume_unwind(panic);
        }
    }
    fake.stop().await;
}
