//! Built-in TLS: the app serves https with the configured PEM files and takes renewed files on a
//! reload (the function SIGHUP calls), keeping the old certificate when the new files are bad.

use std::path::Path;

use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, deskbridge_command};

/// A self-signed certificate for 127.0.0.1, written as the PEM files the config names; its PEM.
fn write_certificate(dir: &Path) -> String {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let pem = issued.cert.pem();
    std::fs::write(dir.join("cert.pem"), &pem).expect("cert written");
    std::fs::write(dir.join("key.pem"), issued.signing_key.serialize_pem()).expect("key written");
    pem
}

/// A client that trusts only `pem`, on a fresh connection each time.
fn client(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM")])
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

fn https(app: &TestApp, path: &str) -> String {
    format!(
        "https://{}{path}",
        app.running.as_ref().expect("running").addr
    )
}

async fn healthz(app: &TestApp, pem: &str) -> Result<StatusCode, reqwest::Error> {
    let response = client(pem).get(https(app, "/healthz")).send().await;
    response.map(|r| r.status())
}

#[actix_web::test]
async fn the_app_serves_https_and_takes_a_renewed_certificate_on_reload() {
    let certs = tempfile::tempdir().expect("temp dir");
    let first = write_certificate(certs.path());
    let app = TestApp::start_with(|c| {
        c.server.tls_cert_file = certs.path().join("cert.pem");
        c.server.tls_key_file = certs.path().join("key.pem");
    })
    .await;
    assert_eq!(healthz(&app, &first).await.expect("https"), StatusCode::OK);
    // Over https the session cookie is Secure and HSTS is sent.
    let response = client(&first)
        .post(https(&app, "/api/v1/auth/session"))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("https");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(response.headers().contains_key("strict-transport-security"));

    let second = write_certificate(certs.path());
    // Until the reload, the first certificate is still served.
    assert!(healthz(&app, &second).await.is_err());
    let running = app.running.as_ref().expect("running");
    running.reload_tls().expect("reloaded");
    assert_eq!(healthz(&app, &second).await.expect("https"), StatusCode::OK);
    assert!(
        healthz(&app, &first).await.is_err(),
        "the old certificate is gone"
    );

    // `deskbridge healthcheck` finds the https listener from the same configuration.
    let config = certs.path().join("deskbridge.toml");
    let text = format!(
        "[server]\nbind = \"{}\"\ntls_cert_file = {}\ntls_key_file = {}\n",
        running.addr,
        toml::Value::String(certs.path().join("cert.pem").display().to_string()),
        toml::Value::String(certs.path().join("key.pem").display().to_string()),
    );
    std::fs::write(&config, text).expect("config written");
    let probe = deskbridge_command()
        .arg("healthcheck")
        .env("DESKBRIDGE_CONFIG", &config)
        .output()
        .expect("healthcheck runs");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // A half-written file is refused and the certificate in force stays.
    std::fs::write(
        certs.path().join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\n",
    )
    .expect("written");
    let err = running.reload_tls().expect_err("a broken key is refused");
    assert!(
        format!("{err:#}").contains("server.tls_key_file"),
        "{err:#}"
    );
    assert_eq!(healthz(&app, &second).await.expect("https"), StatusCode::OK);
}
