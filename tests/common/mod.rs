//! The harness: boots the real appliance (the same `app::start` that `deskbridge serve` uses) on a
//! temporary data dir and 127.0.0.1:0, and talks to it over HTTP.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

#[macro_use]
#[allow(
    unused_macros,
    reason = "not every binary that shares the harness has both-profile tests"
)]
mod macros {
    /// Generates one test per profile for a scenario `async fn name(profile: Profile)`; the module
    /// using it imports `Profile`.
    macro_rules! both_profiles {
        ($($name:ident),+ $(,)?) => {$(
            mod $name {
                #[actix_web::test]
                async fn on_prem() {
                    super::$name(super::Profile::OnPrem).await;
                }
                #[actix_web::test]
                async fn cloud() {
                    super::$name(super::Profile::Cloud).await;
                }
            }
        )+};
    }
}

pub mod demo;
pub use fake_sdp;
pub mod oidc_provider;
pub mod visitor;

use fake_sdp::{FakeSdp, Profile};

use std::time::{Duration, Instant};

use deskbridge::app::Running;
use deskbridge::config::{Config, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@deskbridge.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "customer-password-123";

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub running: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".into();
    config.storage.data_dir = dir.join("data");
    config.storage.cache_mb = 16;
    config.bootstrap.admin_email = ADMIN_EMAIL.into();
    config.bootstrap.admin_password = Secret::new(ADMIN_PASSWORD.into());
    config.log.level = "warn".into();
    config
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut app = TestApp {
            dir,
            config,
            running: None,
            base: String::new(),
            http,
        };
        app.boot().await;
        app
    }

    async fn boot(&mut self) {
        let running = deskbridge::app::start(self.config.clone())
            .await
            .expect("the app starts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// Stops the appliance, changes its configuration and starts it again on the same data dir.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        self.stop().await;
        adjust(&mut self.config);
        self.boot().await;
    }

    /// Stops the appliance gracefully and starts it again on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    pub fn state(&self) -> &deskbridge::service::AppState {
        &self.running.as_ref().expect("running").state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client with no credentials.
    pub fn anonymous(&self) -> Api {
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
            token: None,
            headers: Vec::new(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Api {
        let (status, body) = self
            .anonymous()
            .post(
                "/api/v1/auth/token",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {email}: {body}");
        let token = body["token"].as_str().expect("token").to_owned();
        Api {
            token: Some(token),
            ..self.anonymous()
        }
    }

    pub async fn admin(&self) -> Api {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates an account through the admin API and signs it in.
    pub async fn user(&self, email: &str, role: &str) -> Api {
        let admin = self.admin().await;
        let (status, body) = admin
            .post(
                "/api/v1/admin/users",
                &json!({"email": email, "name": format!("User {email}"), "password": PASSWORD, "role": role, "organization": "Acme"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create {email}: {body}");
        self.login(email, PASSWORD).await
    }

    pub async fn customer(&self, email: &str) -> Api {
        self.user(email, "customer").await
    }

    /// A customer of `organization`, created by the admin and signed in to the API.
    pub async fn member(&self, email: &str, organization: &str) -> Api {
        let (status, body) = self
            .admin()
            .await
            .post(
                "/api/v1/admin/users",
                &json!({"email": email, "name": format!("User {email}"), "password": PASSWORD,
                        "role": "customer", "organization": organization}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create {email}: {body}");
        self.login(email, PASSWORD).await
    }

    /// The text `/metrics` shows now.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await;
        response.expect("metrics").text().await.expect("text")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Dropping a running app without `stop` is fine in tests: the temp dir goes with it.
        self.running.take();
    }
}

/// An HTTP client bound to one identity.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Api {
    pub fn with_header(&self, name: &str, value: &str) -> Api {
        let mut api = self.clone();
        api.headers.push((name.to_owned(), value.to_owned()));
        api
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = req.send().await.expect("request reaches the app");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// The id of the account with this e-mail, as an admin lists it.
    pub async fn user_id(&self, email: &str) -> String {
        let (_, users) = self.get("/api/v1/admin/users").await;
        let found = users["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|u| u["email"] == email)
                .and_then(|u| u["id"].as_str())
        });
        found
            .unwrap_or_else(|| panic!("no account {email}: {users}"))
            .to_owned()
    }

    /// Creates a ticket and returns its JSON.
    pub async fn ticket(&self, subject: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/tickets",
                &json!({"kind": "problem_report", "subject": subject, "description": "It broke."}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Downloads an attachment's bytes (asserting 200).
    pub async fn download(&self, number: &str, id: &Value) -> Vec<u8> {
        let response = self
            .request(
                Method::GET,
                &format!("/api/v1/tickets/{number}/attachments/{id}"),
            )
            .send()
            .await
            .expect("request reaches the app");
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.expect("body").to_vec()
    }

    pub async fn upload(
        &self,
        number: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        self.send(
            self.request(
                Method::POST,
                &format!("/api/v1/tickets/{number}/attachments"),
            )
            .multipart(form),
        )
        .await
    }
}

/// Every way to reach ticket `n` (and attachment `att` through `via`, another ticket) answers
/// `outsider` 404, exactly like a missing ticket or file; an upload too.
pub async fn unreachable(outsider: &Api, n: &str, via: &str, att: u64) {
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/tickets/{n}"), None),
        (Method::GET, format!("/api/v1/tickets/{n}/events"), None),
        (Method::GET, format!("/api/v1/tickets/{n}/messages"), None),
        (
            Method::POST,
            format!("/api/v1/tickets/{n}/messages"),
            Some(json!({"body": "hi"})),
        ),
        (
            Method::GET,
            format!("/api/v1/tickets/{n}/attachments"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/tickets/{n}/attachments/{att}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/tickets/{via}/attachments/{att}"),
            None,
        ),
        (Method::POST, format!("/api/v1/tickets/{n}/confirm"), None),
        (
            Method::POST,
            format!("/api/v1/tickets/{n}/reopen"),
            Some(json!({"reason": "mine now"})),
        ),
    ];
    for (method, path, body) in attempts {
        let mut req = outsider.request(method.clone(), &path);
        if let Some(body) = &body {
            req = req.json(body);
        }
        let (status, err) = outsider.send(req).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {err}");
        let code = error_code(&err);
        assert!(
            code == "ticket-not-found" || code == "attachment-not-found",
            "{method} {path}: {code}"
        );
    }
    let (status, upload) = outsider.upload(n, "x.txt", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{upload}");
}

/// The `deskbridge` binary, blind to any configuration of the machine the tests run on.
pub fn deskbridge_command() -> std::process::Command {
    binary_command(env!("CARGO_BIN_EXE_deskbridge"))
}

/// A deskbridge binary (this build's, or another such as the release build) with none of the
/// caller's deskbridge environment.
pub fn binary_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_remove("DESKBRIDGE_CONFIG")
        .env_remove("DESKBRIDGE_TOKEN");
    for (key, _) in std::env::vars() {
        if key.starts_with("DESKBRIDGE__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Asserts the common error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    let error = &body["error"];
    assert!(error["message"].is_string(), "error has a message: {body}");
    error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error has a code: {body}"))
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The webhook secret the connected harness configures.
pub const HOOK_SECRET: &str = "hook-secret-for-tests";

/// Points a configuration at a fake SDP, as an operator would for its profile. Cloud reads its
/// secrets from files, as the README recommends.
pub fn connect(c: &mut Config, fake: &FakeSdp) {
    c.sdp.base_url = fake.base_url();
    c.sdp.webhook_secret = Secret::new(HOOK_SECRET.into());
    match fake.profile() {
        Profile::OnPrem => c.sdp.api_key = Secret::new(fake.api_key()),
        Profile::Cloud => {
            let creds = fake.oauth();
            c.sdp.deployment = deskbridge::config::Deployment::Cloud;
            c.sdp.oauth_accounts_url = fake.accounts_url();
            c.sdp.oauth_client_id = creds.client_id;
            let dir = c.storage.data_dir.parent().expect("the test's temp dir");
            let secret = dir.join("oauth-client-secret");
            let refresh = dir.join("oauth-refresh-token");
            std::fs::write(&secret, format!("{}\n", creds.client_secret)).unwrap();
            std::fs::write(&refresh, format!("{}\n", creds.refresh_token)).unwrap();
            c.sdp.oauth_client_secret_file = secret;
            c.sdp.oauth_refresh_token_file = refresh;
            c.resolve_secret_files().expect("the secret files are read");
        }
    }
}

/// [`connect`], with polls only when a test asks: changes reach the portal through the webhook, as
/// with an SDP trigger, and no poll interferes with the order of a test's steps.
fn connect_quietly(c: &mut Config, fake: &FakeSdp) {
    connect(c, fake);
    c.sdp.poll_interval_secs = 3600;
}

/// The SDP status name the team picks for a portal status (the default mapping).
pub fn sdp_status(portal: &str) -> &'static str {
    match portal {
        "new" => "Open",
        "assigned" => "Assigned",
        "in_progress" => "In Progress",
        "pending" => "On Hold",
        "resolved" => "Resolved",
        "closed" => "Closed",
        other => panic!("no portal status {other}"),
    }
}

/// An appliance connected to a fake SDP where the team works.
pub struct Desk {
    pub fake: FakeSdp,
    pub app: TestApp,
    /// Signed in once: signing in at every look would trip the sign-in throttle.
    pub admin: Api,
}

impl Desk {
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Desk {
        Desk::start_with(FakeSdp::start(Profile::OnPrem).await, adjust).await
    }

    /// An appliance connected to `fake` (which may already hold requests).
    pub async fn start_with(fake: FakeSdp, adjust: impl FnOnce(&mut Config)) -> Desk {
        let app = TestApp::start_with(|c| {
            connect_quietly(c, &fake);
            adjust(c);
        })
        .await;
        let admin = app.admin().await;
        Desk { fake, app, admin }
    }

    /// An appliance whose customers exist before it is connected to `fake`, as when an admin
    /// creates the accounts and then connects SDP: the backfill finds their history.
    pub async fn start_with_customers(
        fake: FakeSdp,
        customers: &[&str],
        adjust: impl FnOnce(&mut Config),
    ) -> Desk {
        let mut app = TestApp::start().await;
        for email in customers {
            app.customer(email).await;
        }
        app.restart_with(|c| {
            connect_quietly(c, &fake);
            adjust(c);
        })
        .await;
        let admin = app.admin().await;
        Desk { fake, app, admin }
    }

    /// Sync health as an admin sees it.
    pub async fn health(&self) -> Value {
        self.admin.get("/api/v1/admin/sync").await.1
    }

    /// Waits until the start-up work is done: the first poll, and the backfill's first pass.
    /// Polls then run only when asked (the interval is an hour).
    pub async fn settled(&self) -> Value {
        eventually(Duration::from_mins(5), || async {
            let health = self.health().await;
            (!health["stats"]["last_poll_ok"].is_null()
                && health["backfill"]["first_pass_done"] == true)
                .then_some(health)
        })
        .await
    }

    /// Asks for a poll now and waits until it has finished. Call it once [`Desk::settled`]: no
    /// other poll runs then.
    pub async fn poll_once(&self) {
        let admin = &self.admin;
        let before = admin.get("/api/v1/admin/sync").await.1["stats"]["last_poll_ok"].clone();
        let (status, body) = admin.post("/api/v1/admin/sync/run", &json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        eventually(Duration::from_mins(1), || async {
            let health = admin.get("/api/v1/admin/sync").await.1;
            let last = &health["stats"]["last_poll_ok"];
            (!last.is_null() && *last != before).then_some(())
        })
        .await;
    }

    /// Asks for a reconciliation sweep ("Reconcile now"); it runs in the background.
    pub async fn sweep(&self) {
        let (status, body) = self
            .admin
            .post("/api/v1/admin/sync/sweep", &json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    pub fn hook_url(&self) -> String {
        self.app
            .url(&format!("/api/v1/hooks/sdp?secret={HOOK_SECRET}"))
    }

    /// Waits until the ticket is in SDP with nothing left to deliver; returns its request id.
    pub async fn synced(&self, customer: &Api, number: &str) -> String {
        eventually(Duration::from_secs(20), || async {
            let (_, t) = customer.get(&format!("/api/v1/tickets/{number}")).await;
            (t["sdp"]["sync_state"] == "synced")
                .then(|| t["sdp"]["request_id"].as_str().map(str::to_owned))
                .flatten()
        })
        .await
    }

    /// SDP's trigger for `request` calls the appliance's webhook.
    pub async fn webhook(&self, request: &str) {
        let status = self
            .fake
            .fire_webhook(&self.hook_url(), request)
            .await
            .expect("the webhook answers");
        assert!(status.is_success(), "webhook: {status}");
    }

    /// The team moves the ticket's request in SDP to what `portal` maps from, once SDP has
    /// everything the customer did; waits until the portal shows it.
    pub async fn team_sets(&self, customer: &Api, number: &str, portal: &str) {
        let request = self.synced(customer, number).await;
        self.fake.set_status(&request, sdp_status(portal), None);
        self.until(customer, number, &request, |t| t["status"] == portal)
            .await;
    }

    /// Hints the request to the appliance (as SDP's trigger would) and waits until the portal
    /// ticket satisfies `check`; hints again every few seconds, as a later trigger would.
    pub async fn until(
        &self,
        customer: &Api,
        number: &str,
        request: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.webhook(request).await;
            let next_hint = Instant::now() + Duration::from_secs(3);
            while Instant::now() < next_hint {
                let (_, t) = customer.get(&format!("/api/v1/tickets/{number}")).await;
                if check(&t) {
                    return t;
                }
                assert!(Instant::now() < deadline, "{number} never got there: {t}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
