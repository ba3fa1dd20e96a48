//! `deskbridge demo` as a newcomer runs it: the binary as a child process, with what it prints on
//! start (the portal, the service desk page, the sample accounts) read from its standard output.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// One sample account line: role, e-mail, password.
#[derive(Clone, Debug)]
pub struct SampleAccount {
    pub role: String,
    pub email: String,
    pub password: String,
}

pub struct DemoRun {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub portal: String,
    pub desk: String,
    pub accounts: Vec<SampleAccount>,
    /// Everything printed up to "Stop with Ctrl+C."
    pub banner: String,
    stderr: Arc<Mutex<String>>,
}

impl DemoRun {
    /// Starts `deskbridge demo` on free loopback ports and waits for its banner.
    pub fn start() -> DemoRun {
        let mut child = super::deskbridge_command()
            .args([
                "demo",
                "--bind",
                "127.0.0.1:0",
                "--desk-bind",
                "127.0.0.1:0",
            ])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the deskbridge binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&text);
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Keeps draining after the banner, so the demo never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut run = DemoRun {
            child: Some(child),
            portal: String::new(),
            desk: String::new(),
            accounts: Vec::new(),
            banner: String::new(),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "the demo printed no banner:\n{}\n{}",
                    run.banner,
                    run.stderr()
                );
            };
            run.banner.push_str(&line);
            run.banner.push('\n');
            let words: Vec<&str> = line.split_whitespace().collect();
            let url = |w: &str| w.trim_end_matches('/').to_owned();
            match words.as_slice() {
                ["Customer", "portal", address] => run.portal = url(address),
                ["Service", "desk", address, ..] => run.desk = url(address),
                [role, email, "password", password, ..] if email.contains('@') => {
                    run.accounts.push(SampleAccount {
                        role: (*role).to_owned(),
                        email: (*email).to_owned(),
                        password: (*password).to_owned(),
                    });
                }
                ["Stop", "with", ..] => break,
                _ => {}
            }
        }
        run
    }

    pub fn account(&self, role: &str) -> &SampleAccount {
        self.accounts
            .iter()
            .find(|a| a.role == role)
            .unwrap_or_else(|| panic!("no {role} account in\n{}", self.banner))
    }

    /// The printed account of `role`, signed in to the portal's API.
    pub async fn api(&self, role: &str) -> super::Api {
        let account = self.account(role);
        let api = super::Api {
            base: self.portal.clone(),
            http: reqwest::Client::new(),
            token: None,
            headers: Vec::new(),
        };
        let body = serde_json::json!({"email": account.email, "password": account.password});
        let (status, answer) = api.post("/api/v1/auth/token", &body).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{role} signs in: {answer}");
        super::Api {
            token: answer["token"].as_str().map(str::to_owned),
            ..api
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGTERM, as Ctrl+C would; returns how the demo ended.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        terminate(&mut child, Duration::from_secs(30))
    }
}

impl Drop for DemoRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
    }
}

fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    let pid = child.id().to_string();
    let signal = |name: &str| {
        let _ = std::process::Command::new("kill")
            .args([name, "--", &pid])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-KILL");
    child.wait().expect("the demo is reaped")
}
