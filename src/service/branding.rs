//! The portal's brand, saved by an admin from the console: the fields are checked by
//! `domain::brand`, the logo must sniff as PNG, JPEG or WebP, and each save or reset is audited.

use crate::domain::brand::{BrandText, Branding, LOGO_MAX_BYTES, LOGO_TYPES, Logo};
use crate::domain::{DomainError, Validation};
use crate::error::{ApiError, ErrorCode};
use crate::service::{AppState, Caller};
use crate::store::{OpError, StagedBlob};

/// What a save does with the logo.
pub(crate) enum LogoChange {
    Keep,
    Remove,
    Replace(StagedBlob),
}

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "only an admin may brand the portal",
        ))
    }
}

/// The error for a logo past [`LOGO_MAX_BYTES`], from the blob writer's refusal.
pub(crate) fn logo_too_large(e: OpError) -> ApiError {
    match e {
        OpError::Rule(DomainError::AttachmentTooLarge { .. }) => ApiError::field(
            ErrorCode::PayloadTooLarge,
            "logo",
            format!("must be at most {} KiB", LOGO_MAX_BYTES / 1024),
        ),
        other => other.into(),
    }
}

/// Checks and saves the brand, keeping, removing or replacing the logo. Nothing is saved when
/// any field is refused.
pub(crate) async fn save(
    state: &AppState,
    caller: &Caller,
    text: &BrandText,
    logo: LogoChange,
) -> Result<Branding, ApiError> {
    admin_only(caller)?;
    let before = state.store.branding()?;
    let mut refused = Validation::default();
    let mut brand = text.validate().unwrap_or_else(|v| {
        refused = v;
        Branding::default()
    });
    let mut logo_refused = false;
    if let LogoChange::Replace(staged) = &logo {
        let sniffed = staged.content_type();
        if !LOGO_TYPES.contains(&sniffed.as_str()) {
            logo_refused = true;
            refused.add("logo", "must be a PNG, JPEG or WebP image");
        }
    }
    if !refused.fields.is_empty() {
        let only_logo = logo_refused && refused.fields.len() == 1;
        let code = if only_logo {
            ErrorCode::UnsupportedMediaType
        } else {
            ErrorCode::InvalidField
        };
        return Err(ApiError::new(code, refused.to_string()).with_fields(refused.fields));
    }
    brand.logo = match logo {
        LogoChange::Keep => before.logo.clone(),
        LogoChange::Remove => None,
        LogoChange::Replace(staged) => {
            let stored = state.store.commit_blob(staged).await?;
            Some(Logo {
                sha256: stored.sha256,
                content_type: stored.content_type,
                size: stored.size,
            })
        }
    };
    state.store.put_branding(&brand)?;
    audit(state, caller, "branding.saved", &changed(&before, &brand)).await?;
    Ok(brand)
}

/// Forgets the brand: the portal looks like deskbridge again.
pub(crate) async fn reset(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    admin_only(caller)?;
    state.store.put_branding(&Branding::default())?;
    audit(state, caller, "branding.reset", "").await
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    detail: &str,
) -> Result<(), ApiError> {
    state.store.audit(&caller.user.email, action, detail)?;
    state.store.durable().await?;
    tracing::info!(admin = %caller.user.email, action, detail, "portal brand saved");
    Ok(())
}

/// The names of the parts that changed, for the audit log.
fn changed(before: &Branding, after: &Branding) -> String {
    let parts = [
        ("name", before.name != after.name),
        ("colour", before.colour != after.colour),
        ("footer", before.footer != after.footer),
        ("support", before.support != after.support),
        ("logo", before.logo != after.logo),
    ];
    let names: Vec<_> = parts.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
    if names.is_empty() {
        "nothing changed".to_owned()
    } else {
        names.join(", ")
    }
}
