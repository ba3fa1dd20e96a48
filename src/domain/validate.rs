//! Input limits. Errors name the field so clients can point at it.

use std::collections::BTreeMap;

/// SDP's own limit for a request subject.
pub const SUBJECT_MAX_CHARS: usize = 250;
/// Descriptions, messages and reopen reasons.
pub const TEXT_MAX_BYTES: usize = 64 * 1024;
pub const SERVICE_MAX_CHARS: usize = 100;
pub const NAME_MAX_CHARS: usize = 200;
pub const EMAIL_MAX_CHARS: usize = 254;
pub const ORGANIZATION_MAX_CHARS: usize = 200;
pub const PASSWORD_MIN_CHARS: usize = 10;
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const FILENAME_MAX_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// One or more invalid fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", self.describe())]
pub struct Validation {
    pub fields: BTreeMap<String, String>,
}

impl Validation {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut v = Validation::default();
        v.add(field, message);
        v
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn into_result(self) -> Result<(), Validation> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    fn describe(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Checks a required single-line text: not blank, at most `max` characters, no control characters.
pub fn required_line(v: &mut Validation, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        v.add(field, "must not be empty");
    } else if value.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        v.add(field, "must be a single line without control characters");
    }
}

/// Checks an optional single-line text: when present, as [`required_line`] but may be empty.
pub fn optional_line(v: &mut Validation, field: &str, value: Option<&str>, max: usize) {
    if let Some(value) = value.filter(|s| !s.is_empty()) {
        required_line(v, field, value, max);
    }
}

/// Checks a multi-line text against the byte limit; `required` also rejects blank text.
pub fn text(v: &mut Validation, field: &str, value: &str, required: bool) {
    if required && value.trim().is_empty() {
        v.add(field, "must not be empty");
    } else if value.len() > TEXT_MAX_BYTES {
        v.add(field, format!("must be at most {TEXT_MAX_BYTES} bytes"));
    } else if value.contains('\0') {
        v.add(field, "must not contain NUL characters");
    }
}

/// A deliberately plain e-mail check: one `@`, something on both sides, a dot in the domain.
pub fn email(v: &mut Validation, field: &str, value: &str) {
    let value = value.trim();
    let ok = value.len() <= EMAIL_MAX_CHARS
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if !ok {
        v.add(field, "must be an e-mail address");
    }
}

pub fn password(v: &mut Validation, field: &str, value: &str) {
    if value.chars().count() < PASSWORD_MIN_CHARS {
        v.add(
            field,
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        );
    } else if value.len() > PASSWORD_MAX_BYTES {
        v.add(field, format!("must be at most {PASSWORD_MAX_BYTES} bytes"));
    }
}

/// Reduces an uploaded file name to a safe base name: the last path component (both `/` and `\`
/// separate), without control characters, never `.`/`..` or empty, at most [`FILENAME_MAX_CHARS`].
pub fn safe_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut name: String = trimmed.chars().take(FILENAME_MAX_CHARS).collect();
    if name.is_empty() {
        name = "attachment".into();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_reduced_to_a_safe_base_name() {
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(safe_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(safe_filename(".."), "attachment");
        assert_eq!(safe_filename(""), "attachment");
        assert_eq!(safe_filename("dir/"), "attachment");
        assert_eq!(safe_filename(".htaccess"), "htaccess");
        assert_eq!(safe_filename("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(safe_filename("<script>.png"), "_script_.png");
        assert_eq!(
            safe_filename(&"x".repeat(500)).chars().count(),
            FILENAME_MAX_CHARS
        );
        assert_eq!(
            safe_filename("laporan bulan ini.xlsx"),
            "laporan bulan ini.xlsx"
        );
    }

    #[test]
    fn lines_and_texts_have_limits() {
        let mut v = Validation::default();
        required_line(&mut v, "subject", &"é".repeat(250), SUBJECT_MAX_CHARS);
        assert!(v.fields.is_empty());
        required_line(&mut v, "subject", &"é".repeat(251), SUBJECT_MAX_CHARS);
        required_line(&mut v, "name", "  ", NAME_MAX_CHARS);
        text(
            &mut v,
            "description",
            &"a".repeat(TEXT_MAX_BYTES + 1),
            false,
        );
        assert_eq!(v.fields.len(), 3);
        assert!(v.into_result().is_err());
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.co.id"] {
            let mut v = Validation::default();
            email(&mut v, "email", ok);
            assert!(v.fields.is_empty(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a b@c.de",
            "a@b.c@d.e",
            "a@.com",
        ] {
            let mut v = Validation::default();
            email(&mut v, "email", bad);
            assert!(!v.fields.is_empty(), "{bad}");
        }
    }
}
