//! The portal's brand over HTTP: saved in the console, worn by portal pages and the sign-in page
//! (name, logo, colour, footer, support), never by the console; refused for a colour too light to
//! read, a logo that is not a PNG, JPEG or WebP image, or one too large; out of customers' reach.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS};
use reqwest::multipart::{Form, Part};

use crate::common::visitor::{Visitor, signed_in};
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

/// A 1×1 PNG.
const LOGO: &[u8] = include_bytes!("fixtures/logo.png");

async fn admin(app: &TestApp) -> Visitor {
    let mut v = Visitor::new(app);
    let page = v.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    v
}

fn brand_form(csrf: &str, name: &str, colour: &str) -> Form {
    Form::new()
        .text("csrf", csrf.to_owned())
        .text("name", name.to_owned())
        .text("colour", colour.to_owned())
        .text("footer", "Cloudeka <b>Care</b>\nJakarta".to_owned())
        .text("support", "help@cloudeka.example".to_owned())
}

fn logo(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes).file_name(name.to_owned())
}

/// What the store holds, seen as anyone sees it: the sign-in page.
async fn sign_in_page(app: &TestApp) -> String {
    Visitor::new(app).get("/sign-in").await.body
}

#[actix_web::test]
async fn the_brand_dresses_the_portal_and_the_sign_in_page_but_not_the_console() {
    let app = TestApp::start().await;
    app.customer("ann@example.com").await;
    let mut admin = admin(&app).await;
    let page = admin.get("/admin").await;
    assert!(
        page.body.contains("href=\"/admin/branding\""),
        "linked in the console's navigation"
    );
    let csrf = admin.csrf("/admin/branding").await;
    let form = brand_form(&csrf, "  Cloudeka Care ", "#1e6b34")
        .part("logo", logo(LOGO.to_vec(), "logo.png"));
    let page = admin.post_multipart("/admin/branding", form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/admin/branding"));

    let sign_in = sign_in_page(&app).await;
    let mut ann = signed_in(&app, "ann@example.com").await;
    let dashboard = ann.get("/tickets").await.body;
    for body in [&sign_in, &dashboard] {
        assert!(body.contains(" · Cloudeka Care</title>"), "{body}");
        assert!(body.contains("href=\"/brand.css?v=1e6b34\""));
        let logo_tag = body
            .split("<img class=\"brand-logo\" src=\"")
            .nth(1)
            .expect("a logo in the header");
        assert!(logo_tag.starts_with("/brand/logo?v="), "{logo_tag}");
        assert!(logo_tag.contains("alt=\"Cloudeka Care\""));
        // Footer text is plain text, escaped; the support address is a mail link.
        assert!(
            body.contains("Cloudeka &#60;b&#62;Care&#60;/b&#62;"),
            "{body}"
        );
        assert!(!body.contains("<b>Care</b>"));
        assert!(
            body.contains("<a href=\"mailto:help@cloudeka.example\">help@cloudeka.example</a>")
        );
    }

    let http = reqwest::Client::new();
    let css = http.get(app.url("/brand.css")).send().await.unwrap();
    assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("--brand: #1e6b34;"));
    let served = http.get(app.url("/brand/logo")).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(served.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    let etag = served.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(served.bytes().await.unwrap().as_ref(), LOGO);
    let again = http
        .get(app.url("/brand/logo"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // The console keeps deskbridge's own look.
    let console = admin.get("/admin/branding").await.body;
    assert!(console.contains(" · deskbridge</title>"));
    assert!(!console.contains("/brand.css") && !console.contains("brand-logo"));
    assert!(
        console.contains("value=\"Cloudeka Care\""),
        "the form shows what is saved"
    );
    assert!(
        admin
            .get("/admin/audit")
            .await
            .body
            .contains("branding.saved")
    );

    // Saved again without a new file, the logo stays; then it can be removed on its own.
    let csrf = admin.csrf("/admin/branding").await;
    let page = admin
        .post_multipart(
            "/admin/branding",
            brand_form(&csrf, "Cloudeka Care", "#1e6b34"),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(sign_in_page(&app).await.contains("brand-logo"));
    let form = brand_form(&csrf, "Cloudeka Care", "#1e6b34").text("remove_logo", "1");
    admin.post_multipart("/admin/branding", form).await;
    let body = sign_in_page(&app).await;
    assert!(!body.contains("brand-logo") && body.contains(" · Cloudeka Care</title>"));
    let gone = http.get(app.url("/brand/logo")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // Reset: the portal looks as it did before any brand.
    let page = admin
        .post("/admin/branding/reset", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let body = sign_in_page(&app).await;
    assert!(body.contains(" · deskbridge</title>") && !body.contains("/brand.css"));
    assert!(!body.contains("mailto:"));
    assert!(
        admin
            .get("/admin/audit")
            .await
            .body
            .contains("branding.reset")
    );
}

#[actix_web::test]
async fn a_refused_brand_names_its_field_keeps_what_was_typed_and_saves_nothing() {
    let app = TestApp::start().await;
    let mut admin = admin(&app).await;
    let csrf = admin.csrf("/admin/branding").await;

    // Yellow: white text on it is unreadable.
    let page = admin
        .post_multipart(
            "/admin/branding",
            brand_form(&csrf, "Typed name", "#ffff00"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"error-summary\""), "{}", page.body);
    assert!(page.body.contains("href=\"#colour\"") && page.body.contains("id=\"colour-error\""));
    assert!(page.body.contains("value=\"Typed name\"") && page.body.contains("value=\"#ffff00\""));

    let refused_logos: [(&str, Vec<u8>, StatusCode); 3] = [
        (
            "logo.png",
            b"just some text, named like an image".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "logo.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        // A PNG's first bytes, then more than the 512 KiB a logo may have.
        (
            "big.png",
            [LOGO, &vec![0; 600 * 1024]].concat(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (name, bytes, status) in refused_logos {
        let form = brand_form(&csrf, "Typed name", "#1e6b34").part("logo", logo(bytes, name));
        let page = admin.post_multipart("/admin/branding", form).await;
        assert_eq!(page.status, status, "{name}: {}", page.body);
        assert!(
            page.body.contains("href=\"#logo\"") && page.body.contains("id=\"logo-error\""),
            "{name}"
        );
        assert!(
            page.body.contains("value=\"Typed name\""),
            "{name}: what was typed comes back"
        );
    }

    let page = admin
        .post_multipart("/admin/branding", brand_form(&csrf, "   ", ""))
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("href=\"#name\""));

    let after = sign_in_page(&app).await;
    assert!(after.contains(" · deskbridge</title>") && !after.contains("/brand.css"));
    assert!(!after.contains("Typed name"));
    assert!(
        !admin
            .get("/admin/audit")
            .await
            .body
            .contains("branding.saved")
    );
    let logo = reqwest::get(app.url("/brand/logo")).await.unwrap();
    assert_eq!(logo.status(), StatusCode::NOT_FOUND, "no logo was kept");
}

#[actix_web::test]
async fn customers_cannot_reach_the_branding_page_or_its_actions() {
    let app = TestApp::start().await;
    app.customer("ann@example.com").await;
    let mut ann = signed_in(&app, "ann@example.com").await;
    assert_eq!(
        ann.get("/admin/branding").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = ann.csrf("/tickets").await;
    let page = ann
        .post_multipart("/admin/branding", brand_form(&csrf, "Mine now", "#1e6b34"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = ann.post("/admin/branding/reset", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut stranger = Visitor::new(&app);
    let page = stranger.get("/admin/branding").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "sent to sign in");
    assert!(!sign_in_page(&app).await.contains("Mine now"));
}

#[actix_web::test]
async fn the_logo_survives_a_backup_and_a_restore() {
    let app = TestApp::start().await;
    let mut admin = admin(&app).await;
    let csrf = admin.csrf("/admin/branding").await;
    let form =
        brand_form(&csrf, "Cloudeka Care", "#1e6b34").part("logo", logo(LOGO.to_vec(), "logo.png"));
    let page = admin.post_multipart("/admin/branding", form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    let archive = app.dir.path().join("backup.tar");
    let out = crate::backup::backup(&app, &app.admin().await, &archive).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = tempfile::tempdir().unwrap();
    let data_dir = target.path().join("data");
    let out = crate::backup::restore(&archive, &data_dir).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let restored = TestApp::start_with(|c| c.storage.data_dir = data_dir.clone()).await;
    assert!(
        sign_in_page(&restored)
            .await
            .contains(" · Cloudeka Care</title>")
    );
    let served = reqwest::get(restored.url("/brand/logo")).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().as_ref(), LOGO);
}
