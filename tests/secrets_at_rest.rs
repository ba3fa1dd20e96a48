//! Secrets saved in the console are sealed in the store and in backups; a backup download is on the
//! audit log; a new SDP address needs the credential again.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::visitor::Visitor;
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

const HOOK_SECRET: &str = "hook-secret-Zq81vKp3";

/// Whether any file under `dir` holds `needle`.
fn found_in_files(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            hits.extend(found_in_files(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

async fn save_sdp(admin: &mut Visitor, fields: &[(&str, &str)]) -> crate::common::visitor::Page {
    let csrf = admin.csrf("/admin/sdp").await;
    let mut form = vec![("csrf", csrf.as_str()), ("deployment", "on_prem")];
    form.extend_from_slice(fields);
    admin.post("/admin/sdp", &form).await
}

/// Saves and expects the redirect that says it was saved.
async fn save_sdp_ok(admin: &mut Visitor, fields: &[(&str, &str)]) {
    let page = save_sdp(admin, fields).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/admin/sdp"),
        "{}",
        page.body
    );
}

#[actix_web::test]
async fn console_secrets_are_sealed_in_the_store_files_and_in_backups() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let mut app = TestApp::start().await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let key = fake.api_key();
    save_sdp_ok(
        &mut admin,
        &[
            ("base_url", &fake.base_url()),
            ("api_key", &key),
            ("webhook_secret", HOOK_SECRET),
        ],
    )
    .await;
    let data = app.config.storage.data_dir.clone();
    for secret in [key.as_str(), HOOK_SECRET] {
        let hits = found_in_files(&data, secret.as_bytes());
        assert!(hits.is_empty(), "{secret} in clear in {hits:?}");
    }

    let api = app.admin().await;
    let response = api
        .request(Method::GET, "/api/v1/admin/backup")
        .send()
        .await
        .expect("the app answers");
    assert_eq!(response.status(), StatusCode::OK);
    let archive = response.bytes().await.expect("archive");
    for secret in [key.as_str(), HOOK_SECRET] {
        assert!(
            !archive
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} in clear in the backup"
        );
    }
    let text = String::from_utf8_lossy(&archive);
    assert!(text.contains("\"secrets\": \"console-saved secrets are sealed"));
    let page = admin.get("/admin/audit").await;
    assert!(page.body.contains("backup.downloaded"), "{}", page.body);
    assert!(page.body.contains("to 127.0.0.1"), "{}", page.body);

    // The sealed values open after a restart, and the key file is the owner's alone.
    app.restart().await;
    assert_eq!(app.state().sync.sdp().api_key.expose(), key);
    assert_eq!(app.state().sync.sdp().webhook_secret.expose(), HOOK_SECRET);
    for secret in [key.as_str(), HOOK_SECRET] {
        assert!(found_in_files(&data, secret.as_bytes()).is_empty());
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("secret.key"))
            .expect("the key file was created")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    fake.stop().await;
}

#[actix_web::test]
async fn secrets_an_earlier_version_kept_in_clear_are_sealed_on_start() {
    let mut app = TestApp::start().await;
    app.state()
        .store
        .put_setting(
            "sdp",
            &json!({"base_url": "http://127.0.0.1:9", "api_key": "clear-key-4471"}),
        )
        .expect("stored");
    app.restart().await;
    let raw: Value = app.state().store.setting("sdp").unwrap().unwrap();
    let stored = raw["api_key"].as_str().unwrap();
    assert!(stored.starts_with("sealed:v1:"), "{stored}");
    assert_eq!(app.state().sync.sdp().api_key.expose(), "clear-key-4471");
}

#[actix_web::test]
async fn a_new_sdp_address_needs_the_credential_again() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let app = TestApp::start().await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let key = fake.api_key();
    save_sdp_ok(
        &mut admin,
        &[("base_url", &fake.base_url()), ("api_key", &key)],
    )
    .await;

    let elsewhere = "http://127.0.0.2:9";
    let page = save_sdp(&mut admin, &[("base_url", elsewhere), ("api_key", "")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("enter the credential again"),
        "{}",
        page.body
    );
    assert_eq!(app.state().sync.sdp().base_url, fake.base_url());
    assert_eq!(app.state().sync.sdp().api_key.expose(), key);

    // Other settings still save without the key while the address stays.
    save_sdp_ok(
        &mut admin,
        &[
            ("base_url", &fake.base_url()),
            ("poll_interval_secs", "120"),
        ],
    )
    .await;

    save_sdp_ok(
        &mut admin,
        &[
            ("base_url", elsewhere),
            ("api_key", "a-new-key-for-elsewhere"),
        ],
    )
    .await;
    assert_eq!(app.state().sync.sdp().base_url, elsewhere);
    assert_eq!(
        app.state().sync.sdp().api_key.expose(),
        "a-new-key-for-elsewhere"
    );
    fake.stop().await;
}
