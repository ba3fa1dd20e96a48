#![allow(
    clippy::result_large_err,
    reason = "figment's Jail closures return figment::Error, which is large"
)]

use std::collections::BTreeSet;

use figment::Jail;

use super::*;

const REFERENCE: &str = include_str!("../../config/deskbridge.toml");

fn keys(prefix: &str, value: &toml::Value, out: &mut BTreeSet<String>) {
    if let toml::Value::Table(table) = value {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_table() {
                keys(&path, v, out);
            } else {
                out.insert(path);
            }
        }
    }
}

fn jail_config(jail: &mut Jail, toml_text: &str) -> Result<Config, ConfigError> {
    jail.create_file("deskbridge.toml", toml_text)
        .expect("write config");
    Config::load(Some(Path::new("deskbridge.toml")))
}

#[test]
fn reference_file_documents_every_key_with_its_default_and_env_name() {
    let documented: toml::Value = toml::from_str(REFERENCE).expect("reference config parses");
    let mut doc_keys = BTreeSet::new();
    keys("", &documented, &mut doc_keys);
    let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
    let mut field_keys = BTreeSet::new();
    keys("", &defaults, &mut field_keys);
    assert_eq!(
        doc_keys, field_keys,
        "config/deskbridge.toml and Config differ"
    );
    assert_eq!(
        documented, defaults,
        "config/deskbridge.toml must show the built-in defaults"
    );
    // Status names are free-form map keys; the section documents their env form once.
    for key in field_keys
        .iter()
        .filter(|k| !k.starts_with("sdp.mapping.statuses."))
    {
        let env = format!(
            "# env: DESKBRIDGE__{}",
            key.replace('.', "__").to_uppercase()
        );
        assert!(REFERENCE.contains(&env), "{key} lacks its env line `{env}`");
    }
}

#[test]
fn reference_file_loads_as_a_config() {
    Jail::expect_with(|jail| {
        let config = jail_config(jail, REFERENCE).expect("reference config is valid");
        assert_eq!(config.server.bind, "127.0.0.1:8080");
        Ok(())
    });
}

#[test]
fn layers_override_in_order_and_env_names_the_key() {
    Jail::expect_with(|jail| {
        jail.set_env("DESKBRIDGE__PORTAL__TICKET_PREFIX", "OPS");
        jail.set_env("DESKBRIDGE__SDP__API_KEY", "12345");
        let config = jail_config(
            jail,
            "[portal]\nticket_prefix = \"CS\"\nreopen_window_days = 7\n",
        )
        .unwrap();
        assert_eq!(config.portal.ticket_prefix, "OPS");
        assert_eq!(config.portal.reopen_window_days, 7);
        assert_eq!(
            config.sdp.api_key.expose(),
            "12345",
            "numeric env values are accepted as text"
        );
        Ok(())
    });
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    Jail::expect_with(|jail| {
        let err = jail_config(jail, "[server]\nbindd = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bindd"), "{err}");
        let err = jail_config(jail, "[nonsense]\na = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nonsense"), "{err}");
        jail.set_env("DESKBRIDGE__PORTAL__PREFIXX", "A");
        let err = jail_config(jail, "").unwrap_err().to_string();
        assert!(err.contains("prefixx"), "{err}");
        Ok(())
    });
}

#[test]
fn secrets_come_from_files_and_never_print() {
    Jail::expect_with(|jail| {
        jail.create_file("key.txt", "s3cr3t-key\n")?;
        jail.set_env("DESKBRIDGE__SDP__API_KEY_FILE", "key.txt");
        let config = jail_config(jail, "[sdp]\nwebhook_secret = \"hook-secret\"\n").unwrap();
        assert_eq!(config.sdp.api_key.expose(), "s3cr3t-key");
        let dump = format!("{}{config:?}", config.to_redacted_toml());
        assert!(
            !dump.contains("s3cr3t-key") && !dump.contains("hook-secret"),
            "{dump}"
        );
        assert!(dump.contains("[redacted]"));

        jail.set_env("DESKBRIDGE__SDP__API_KEY", "also");
        let err = jail_config(jail, "").unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        Ok(())
    });
}

#[test]
fn invalid_values_name_the_key() {
    let cases = [
        ("[server]\nbind = \"localhost\"\n", "server.bind"),
        ("[sdp]\nbase_url = \"ftp://x\"\n", "sdp.base_url"),
        (
            "[sdp]\nbase_url = \"https://sdp.example.com/api/v3\"\n",
            "sdp.base_url",
        ),
        ("[sdp]\npoll_interval_secs = 0\n", "sdp.poll_interval_secs"),
        (
            "[sdp]\nbase_url = \"https://sdp.example.com\"\n",
            "sdp.api_key",
        ),
        (
            "[sdp]\nbase_url = \"https://sdp.example.com\"\ndeployment = \"cloud\"\n",
            "sdp.oauth_client_id",
        ),
        (
            "[sdp]\nmax_requests_per_minute = 0\n",
            "sdp.max_requests_per_minute",
        ),
        ("[sdp]\ndeployment = \"hybrid\"\n", "deployment"),
        ("[portal]\nticket_prefix = \"db\"\n", "portal.ticket_prefix"),
        (
            "[portal]\nmax_attachment_bytes = 0\n",
            "portal.max_attachment_bytes",
        ),
        (
            "[bootstrap]\nadmin_email = \"a@b.co\"\n",
            "bootstrap.admin_password",
        ),
        (
            "[bootstrap]\nadmin_email = \"a@b.co\"\nadmin_password = \"short\"\n",
            "bootstrap.admin_password",
        ),
        ("[log]\nlevel = \"==\"\n", "log.level"),
        (
            "[portal]\nframe_ancestors = \"https://a.example; script-src *\"\n",
            "portal.frame_ancestors",
        ),
        (
            "[portal]\nframe_ancestors = \"https://a.example/path\"\n",
            "portal.frame_ancestors",
        ),
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "server.trusted_proxies",
        ),
        (
            "[server]\ntrusted_proxies = [\"proxy.local\"]\n",
            "server.trusted_proxies",
        ),
        (
            "[server]\ntls_cert_file = \"cert.pem\"\n",
            "server.tls_cert_file",
        ),
        ("[storage]\nsecret_key = \"abc\"\n", "storage.secret_key"),
        (
            "[oidc]\nissuer_url = \"http://id.example.com\"\nclient_id = \"d\"\n",
            "oidc.issuer_url: must be an https:// URL",
        ),
        (
            "[oidc]\nissuer_url = \"https://id.example.com\"\n",
            "oidc.client_id",
        ),
        (
            "[oidc]\nissuer_url = \"https://id.example.com\"\nclient_id = \"d\"\nscopes = \"email\"\n",
            "oidc.scopes",
        ),
        (
            "[oidc]\ncustomers_sso_only = true\n",
            "oidc.customers_sso_only",
        ),
        (
            "[oidc]\nissuer_url = \"https://id.example.com\"\nclient_id = \"d\"\norganization_claim = \"a b\"\n",
            "oidc.organization_claim",
        ),
    ];
    Jail::expect_with(|jail| {
        for (text, key) in cases {
            let err = jail_config(jail, text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err}");
        }
        Ok(())
    });
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let err = Config::load(Some(Path::new("/nonexistent/deskbridge.toml"))).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile(_)));
}

#[test]
fn the_packaged_config_is_the_reference_with_production_paths() {
    let packaged = include_str!("../../packaging/deb/deskbridge.toml");
    let expected = REFERENCE.replace(
        "data_dir = \"./data\"",
        "data_dir = \"/var/lib/deskbridge\"",
    );
    assert_eq!(
        packaged, expected,
        "regenerate: sed 's|^data_dir = \"./data\"$|data_dir = \"/var/lib/deskbridge\"|' config/deskbridge.toml > packaging/deb/deskbridge.toml"
    );
}

#[test]
fn every_documented_secret_file_is_read() {
    let documented: toml::Value = toml::from_str(REFERENCE).expect("reference config parses");
    let mut all = BTreeSet::new();
    keys("", &documented, &mut all);
    // Files that are not a secret's `…_file` twin: TLS (PEM, read by the server) and the sealing key
    // (created when missing, see `settings::seal`).
    let other_files = [
        "server.tls_cert_file",
        "server.tls_key_file",
        "storage.secret_key_file",
    ];
    let file_keys: Vec<&String> = all
        .iter()
        .filter(|k| k.ends_with("_file") && !other_files.contains(&k.as_str()))
        .collect();
    assert!(file_keys.len() >= 5, "{file_keys:?}");
    Jail::expect_with(|jail| {
        for file_key in &file_keys {
            let key = file_key.trim_end_matches("_file");
            let value = format!("from-the-file-{}", key.replace('.', "-"));
            jail.create_file("secret.txt", &format!("{value}\n"))?;
            let (section, name) = file_key.split_once('.').expect("section.key");
            // What the secret is needed with, so the configuration is valid.
            let companion = match section {
                "bootstrap" => "admin_email = \"admin@example.com\"\n",
                _ => "",
            };
            let text = format!("[{section}]\n{companion}{name} = \"secret.txt\"\n");
            let mut config = jail_config(jail, &text).unwrap_or_else(|e| panic!("{file_key}: {e}"));
            let used = config
                .secret_files()
                .into_iter()
                .find(|(k, _, _)| *k == key)
                .map_or_else(
                    || panic!("{file_key} is documented but never read"),
                    |(_, secret, _)| secret.expose().to_owned(),
                );
            assert_eq!(used, value, "{file_key}");
        }
        Ok(())
    });
}

#[test]
fn single_sign_on_takes_an_https_issuer_or_one_on_this_machine() {
    Jail::expect_with(|jail| {
        for issuer in [
            "https://id.example.com/realms/cloudeka",
            "http://127.0.0.1:8081/realms/test",
            "http://localhost:8081",
        ] {
            let text = format!("[oidc]\nissuer_url = \"{issuer}\"\nclient_id = \"deskbridge\"\n");
            let config = jail_config(jail, &text).unwrap_or_else(|e| panic!("{issuer}: {e}"));
            assert!(config.oidc.enabled());
        }
        jail.create_file("oidc-secret.txt", "from-a-file\n")?;
        let config = jail_config(
            jail,
            "[oidc]\nissuer_url = \"https://id.example.com\"\nclient_id = \"d\"\nclient_secret_file = \"oidc-secret.txt\"\n",
        )
        .expect("valid");
        assert_eq!(config.oidc.client_secret.expose(), "from-a-file");
        assert!(!config.to_redacted_toml().contains("from-a-file"));
        assert!(!format!("{config:?}").contains("from-a-file"));
        Ok(())
    });
}
