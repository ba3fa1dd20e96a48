//! Uploads: streamed, capped, named safely, sniffed, deduplicated, and returned byte for byte.

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::common::{TestApp, error_code};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[actix_web::test]
async fn an_upload_is_listed_and_downloads_identically() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Files").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (status, a) = alice
        .upload(&n, "..\\..\\logs/dump.bin", content.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["filename"], "dump.bin", "path parts are dropped");
    assert_eq!(a["size"], content.len());
    assert_eq!(a["sha256"], hex::encode(Sha256::digest(&content)));
    assert_eq!(
        (a["origin"].as_str(), a["delivery"].as_str()),
        (Some("portal"), Some("pending"))
    );

    let (_, list) = alice.get(&format!("/api/v1/tickets/{n}/attachments")).await;
    assert_eq!(list["items"][0], a);
    let response = alice
        .request(
            Method::GET,
            &format!("/api/v1/tickets/{n}/attachments/{}", a["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("dump.bin"),
        "{disposition}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.bytes().await.unwrap().as_ref(), content.as_slice());

    let (_, png) = alice.upload(&n, "screenshot.txt", PNG.to_vec()).await;
    assert_eq!(
        png["content_type"], "image/png",
        "the type comes from the bytes, not the name"
    );
    let response = alice
        .request(
            Method::GET,
            &format!("/api/v1/tickets/{n}/attachments/{}", png["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "image/png");

    let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "attachment_added");
    assert_eq!(last["detail"], "screenshot.txt");
}

#[actix_web::test]
async fn equal_content_is_stored_once() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Dedup").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, a) = alice.upload(&n, "one.txt", b"same bytes".to_vec()).await;
    let (_, b) = alice.upload(&n, "two.txt", b"same bytes".to_vec()).await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["sha256"], b["sha256"]);
    let blobs = app.config.storage.data_dir.join("blobs");
    let files: usize = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(files, 1);
}

#[actix_web::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let app = TestApp::start_with(|c| c.portal.max_attachment_bytes = 64 * 1024).await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Limits").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/tickets/{n}/attachments");

    let (status, err) = alice.upload(&n, "big.bin", vec![7u8; 64 * 1024 + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&err), "attachment-too-large");
    let (status, _) = alice.upload(&n, "exact.bin", vec![7u8; 64 * 1024]).await;
    assert_eq!(status, StatusCode::CREATED, "the limit itself is allowed");

    // Far over the limit: refused from Content-Length before the body is read.
    let (status, err) = alice
        .upload(&n, "huge.bin", vec![0u8; 2 * 1024 * 1024])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&err), "attachment-too-large");

    let (status, err) = alice
        .send(
            alice
                .request(Method::POST, &path)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&err), "unsupported-media-type");

    let form = reqwest::multipart::Form::new().text("note", "no file here");
    let (status, err) = alice
        .send(alice.request(Method::POST, &path).multipart(form))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err["error"]["fields"]["file"].is_string(), "{err}");

    let (status, err) = alice
        .send(
            alice
                .request(Method::POST, &path)
                .header("content-type", "multipart/form-data; boundary=xyz")
                .body("garbage"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    let (_, list) = alice.get(&path).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "only the accepted upload is recorded"
    );
    let tmp = app.config.storage.data_dir.join("tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "refused uploads leave no temporary files"
    );

    for bad in [format!("{path}/999"), format!("{path}/abc")] {
        let (status, err) = alice.get(&bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&err), "attachment-not-found");
    }
}

#[actix_web::test]
async fn an_empty_or_unnamed_file_gets_a_safe_name() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Names").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, a) = alice.upload(&n, "../", Vec::new()).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["filename"], "attachment");
    assert_eq!(a["size"], 0);
    let (_, b) = alice
        .upload(&n, "<img src=x onerror=alert(1)>.png", b"x".to_vec())
        .await;
    assert_eq!(b["filename"], "_img src=x onerror=alert(1)_.png");
}

#[actix_web::test]
async fn an_upload_with_an_idempotency_key_is_stored_once() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Retry").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let keyed = alice.with_header("Idempotency-Key", "upload-1");
    let (s1, a) = keyed.upload(&n, "a.txt", b"abc".to_vec()).await;
    let (s2, b) = keyed.upload(&n, "a.txt", b"abc".to_vec()).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a, b);
    let (_, list) = alice.get(&format!("/api/v1/tickets/{n}/attachments")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}
