//! The harness: boots the real appliance (the same `app::start` that `deskbridge serve` uses) on a
//! temporary data dir and 127.0.0.1:0, and talks to it over HTTP.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

pub mod fake_sdp;

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

    pub fn state(&self) -> &deskbridge::http::AppState {
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

/// The `deskbridge` binary, blind to any configuration of the machine the tests run on.
pub fn deskbridge_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_deskbridge"));
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

/// Moves a ticket as the operations team would (the path SDP changes take).
pub async fn team_sets(app: &TestApp, number: &str, status: &str) {
    use deskbridge::actors::tickets::TeamUpdate;
    use deskbridge::domain::{Actor, Status};
    let ticket = app
        .state()
        .store
        .ticket_by_number(number)
        .unwrap()
        .expect("ticket exists");
    let update = TeamUpdate {
        ticket: ticket.id,
        actor: Actor::team("Tech One"),
        status: Some(Status::parse(status).expect("status name")),
        assignee: None,
    };
    app.state()
        .actors
        .tickets
        .send(update)
        .await
        .expect("actor")
        .expect("team update");
}
