//! The server under test: the release binary as a child process, stopped when the bench ends,
//! fails or panics. Included with `#[path = "common/server.rs"] mod server;`.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

pub const ADMIN_EMAIL: &str = "admin@bench.test";
pub const ADMIN_PASSWORD: &str = "bench-admin-password";

const READY_POLL: Duration = Duration::from_millis(5);
const READY_DEADLINE: Duration = Duration::from_mins(2);
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test; `DESKBRIDGE_BENCH_BIN` names another build to compare with (before and after
/// a change, measured alternately on the same machine).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("DESKBRIDGE_BENCH_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_deskbridge").into(), Into::into)
}
pub struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
    /// From spawn until `/readyz` answered 200.
    pub startup: Duration,
}

impl Server {
    /// Spawns `deskbridge serve` on `data_dir` and a free loopback port; returns once it is ready.
    /// `extra` is appended to the configuration file (sections the bench adds).
    pub fn start(data_dir: &Path, work: &Path, label: &str, extra: &str) -> anyhow::Result<Server> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = work.join(format!("{label}.toml"));
        std::fs::write(&config, config_toml(addr, data_dir) + extra).context("write config")?;
        let log = work.join(format!("{label}.log"));
        let stderr = File::create(&log).context("create server log")?;
        let spawned = Instant::now();
        let child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawn {}", binary().display()))?;
        // From here on, `Drop` stops the child on every path.
        let mut server = Server {
            child: Some(child),
            addr,
            log,
            startup: Duration::ZERO,
        };
        server.startup = server.wait_ready(spawned)?;
        Ok(server)
    }

    fn wait_ready(&mut self, spawned: Instant) -> anyhow::Result<Duration> {
        let deadline = spawned + READY_DEADLINE;
        loop {
            if ready(self.addr) {
                return Ok(spawned.elapsed());
            }
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait()? {
                bail!("the server exited with {status}: {}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready within {READY_DEADLINE:?}: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        rss_mib(self.pid())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM (a graceful stop that flushes the store), then SIGKILL if it takes too long.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().expect("running");
        let status = terminate(&mut child).context("stop the server")?;
        ensure!(
            status.success(),
            "the server exited with {status}: {}",
            self.log_tail()
        );
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child);
        }
    }
}

fn terminate(child: &mut Child) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // std can only SIGKILL; SIGTERM lets the server drain and flush like a real shutdown. The pid
    // cannot be reused meanwhile: the child is not reaped until `try_wait` sees it exit.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_DEADLINE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?;
    child.wait()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn config_toml(addr: SocketAddr, data_dir: &Path) -> String {
    let data_dir = data_dir.to_str().expect("temp paths are UTF-8");
    // 65 sign-ins from one address would trip the default per-address throttle (30 a minute).
    format!(
        "[server]\nbind = \"{addr}\"\nshutdown_timeout_secs = 5\n\n\
         [storage]\ndata_dir = {}\n\n\
         [bootstrap]\nadmin_email = {}\nadmin_password = {}\n\n\
         [auth]\nlogin_attempts_per_address = 10000\n\n\
         [log]\nlevel = \"warn\"\n",
        toml_string(data_dir),
        toml_string(ADMIN_EMAIL),
        toml_string(ADMIN_PASSWORD),
    )
}

/// `GET /readyz` over a fresh connection: true when it answers 200.
fn ready(addr: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(100))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_nodelay(true)?;
        write!(
            stream,
            "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut status = [0u8; 12];
        stream.read_exact(&mut status)?;
        Ok(&status == b"HTTP/1.1 200")
    };
    probe().unwrap_or(false)
}

/// Resident set size of a process, from `/proc/<pid>/status`.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    proc_status_mib(pid, "VmRSS:")
}

/// Peak resident set size of a process so far (`VmHWM`).
pub fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    proc_status_mib(pid, "VmHWM:")
}

fn proc_status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kib: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} in /proc/{pid}/status"))?;
    Ok(f64::from(kib) / 1024.0)
}
