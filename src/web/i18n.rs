//! The pages' two languages. Messages are Fluent files under `web/i18n/<lang>/`, compiled into the
//! binary; the language comes from the user's choice (a cookie), else from `Accept-Language`.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use rust_embed::RustEmbed;
use unic_langid::LanguageIdentifier;

#[derive(RustEmbed)]
#[folder = "web/i18n"]
struct Messages;

pub(crate) const LANG_COOKIE: &str = "deskbridge_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Id,
}

impl Lang {
    pub(crate) const ALL: [Lang; 2] = [Lang::En, Lang::Id];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Id => "id",
        }
    }

    pub(crate) fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The best of ours for an `Accept-Language` header; English when nothing matches.
    pub(crate) fn negotiate(accept_language: &str) -> Lang {
        let requested = fluent_langneg::accepted_languages::parse(accept_language);
        let available: Vec<fluent_langneg::LanguageIdentifier> = Lang::ALL
            .iter()
            .map(|l| l.code().parse().expect("our codes are valid language tags"))
            .collect();
        let default: fluent_langneg::LanguageIdentifier = "en".parse().expect("valid tag");
        let chosen = fluent_langneg::negotiate_languages(
            &requested,
            &available,
            Some(&default),
            fluent_langneg::NegotiationStrategy::Lookup,
        );
        chosen
            .first()
            .and_then(|id| Lang::parse(id.language.as_str()))
            .unwrap_or(Lang::En)
    }

    pub(crate) fn tr(self) -> &'static Bundle {
        match self {
            Lang::En => &BUNDLES.0,
            Lang::Id => &BUNDLES.1,
        }
    }
}

pub(crate) struct Bundle {
    bundle: FluentBundle<FluentResource>,
    lang: Lang,
}

static BUNDLES: LazyLock<(Bundle, Bundle)> = LazyLock::new(|| (load(Lang::En), load(Lang::Id)));

fn load(lang: Lang) -> Bundle {
    let id: LanguageIdentifier = lang.code().parse().expect("valid tag");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Isolation marks would show up inside form values and attribute text.
    bundle.set_use_isolating(false);
    let prefix = format!("{}/", lang.code());
    let mut files: Vec<_> = Messages::iter()
        .filter(|f| f.starts_with(&prefix))
        .collect();
    files.sort();
    for file in files {
        let content = Messages::get(&file).expect("listed by iter");
        let text = String::from_utf8(content.data.into_owned()).expect("message files are UTF-8");
        let resource = FluentResource::try_new(text)
            .unwrap_or_else(|(_, errors)| panic!("{file} does not parse: {errors:?}"));
        bundle
            .add_resource(resource)
            .unwrap_or_else(|errors| panic!("{file} repeats a message: {errors:?}"));
    }
    Bundle { bundle, lang }
}

/// Numbers stay numbers so plural rules can select on them.
fn set(args: &mut FluentArgs<'_>, name: &str, value: &impl std::fmt::Display) {
    let value = value.to_string();
    match value.parse::<f64>() {
        Ok(n) => args.set(name.to_owned(), FluentValue::from(n)),
        Err(_) => args.set(name.to_owned(), FluentValue::from(value)),
    }
}

impl Bundle {
    pub(crate) fn lang(&self) -> Lang {
        self.lang
    }

    /// The message for `key`; the key itself when missing (a unit test keeps that from shipping).
    pub(crate) fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message for `key` with one named argument.
    pub(crate) fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        set(&mut args, name, &value);
        self.format(key, Some(&args))
    }

    /// The message for `key` with two named arguments.
    pub(crate) fn t2(
        &self,
        key: &str,
        (a, av): (&str, impl std::fmt::Display),
        (b, bv): (&str, impl std::fmt::Display),
    ) -> String {
        let mut args = FluentArgs::new();
        set(&mut args, a, &av);
        set(&mut args, b, &bv);
        self.format(key, Some(&args))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let Some(pattern) = self.bundle.get_message(key).and_then(|m| m.value()) else {
            return key.to_owned();
        };
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.bundle.has_message(key)
    }

    #[cfg(test)]
    fn keys(&self) -> Vec<String> {
        let prefix = format!("{}/", self.lang.code());
        let mut keys = Vec::new();
        for file in Messages::iter().filter(|f| f.starts_with(&prefix)) {
            let content = Messages::get(&file).expect("listed by iter");
            for line in String::from_utf8_lossy(&content.data).lines() {
                if let Some((key, _)) = line.split_once(" =")
                    && !key.starts_with(['#', ' ', '-'])
                    && !key.is_empty()
                {
                    keys.push(key.trim().to_owned());
                }
            }
        }
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_messages() {
        let en = Lang::En.tr().keys();
        let id = Lang::Id.tr().keys();
        assert!(en.len() > 50, "English messages load ({})", en.len());
        let missing_in_id: Vec<_> = en.iter().filter(|k| !id.contains(k)).collect();
        let missing_in_en: Vec<_> = id.iter().filter(|k| !en.contains(k)).collect();
        assert!(
            missing_in_id.is_empty(),
            "not translated: {missing_in_id:?}"
        );
        assert!(
            missing_in_en.is_empty(),
            "only in Bahasa: {missing_in_en:?}"
        );
    }

    /// Every `t("…")`/`t1("…"` a template or page handler uses exists in both languages.
    #[test]
    fn every_key_used_exists() {
        use crate::config::ConsoleKey;
        use crate::domain::{EventKind, Kind, Priority, Role, Status};
        use crate::web::format::{event_key, kind_key, priority_key, status_key};
        let mut used = Vec::new();
        let mut sources = Vec::new();
        for dir in ["web/templates", "src/web"] {
            collect(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
                &mut sources,
            );
        }
        // Keys built at run time, from the closed sets they name.
        for s in Status::ALL {
            used.push(format!("{}-hint", status_key(s)));
            used.push(status_key(s));
        }
        for k in Kind::ALL {
            used.push(format!("{}-hint", kind_key(k)));
            used.push(kind_key(k));
        }
        used.extend(Priority::ALL.map(priority_key));
        used.extend(EventKind::ALL.map(event_key));
        // Every console setting is labelled by its field name.
        used.extend(ConsoleKey::ALL.map(|k| k.field().to_owned()));
        used.extend(Role::ALL.map(|r| r.as_str().to_owned()));
        for family in [
            "delivery-pending delivery-delivered delivery-failed",
            "sync-pending sync-synced sync-retrying sync-failed",
            "check-configured check-auth check-statuses check-read",
            "flash-setup-done flash-sdp-saved flash-mapping-saved flash-sync-started flash-sync-off \
             flash-dead-letter-retried flash-dead-letter-discarded flash-user-created \
             flash-user-disabled flash-user-enabled flash-password-reset flash-token-issued \
             flash-token-revoked",
            "flash-signed-out flash-ticket-created flash-ticket-created-file-failed flash-reply-sent \
             flash-reply-sent-files flash-confirmed flash-reopened",
        ] {
            used.extend(family.split_whitespace().map(str::to_owned));
        }
        for key in [
            "error-not-found",
            "error-internal",
            "error-csrf",
            "error-bad-form",
            "error-form-too-large",
            "error-unavailable",
            "error-customers-only",
            "error-admins-only",
            "error-self-disable",
        ] {
            used.push(key.to_owned());
            used.push(format!("{key}-detail"));
        }
        for text in &sources {
            for marker in [".t(\"", ".t1(\"", "{ t(\""] {
                for piece in text.split(marker).skip(1) {
                    if let Some(key) = piece.split('"').next()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
                        && !key.is_empty()
                    {
                        used.push(key.to_owned());
                    }
                }
            }
        }
        assert!(used.len() > 50, "keys found in sources ({})", used.len());
        for lang in Lang::ALL {
            let missing: Vec<_> = used.iter().filter(|k| !lang.tr().has(k)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
        }
    }

    fn collect(dir: std::path::PathBuf, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                collect(path, out);
            } else if !path.ends_with("i18n.rs") {
                // This file's own tests name keys that must not exist.
                out.push(std::fs::read_to_string(path).expect("source is UTF-8"));
            }
        }
    }

    #[test]
    fn accept_language_picks_bahasa_or_falls_back() {
        assert_eq!(Lang::negotiate("id-ID,id;q=0.9,en;q=0.8"), Lang::Id);
        assert_eq!(Lang::negotiate("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::negotiate("fr-FR"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
        assert_eq!(Lang::negotiate("ms;q=0.9, id;q=0.5"), Lang::Id);
    }

    #[test]
    fn arguments_and_missing_keys() {
        assert_eq!(Lang::En.tr().t("no-such-message"), "no-such-message");
        assert!(
            Lang::Id
                .tr()
                .t1("dashboard-total", "count", 3)
                .contains('3')
        );
    }
}
