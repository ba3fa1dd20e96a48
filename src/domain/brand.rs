//! The portal's brand: name, logo, primary colour, footer and support contact, as the console
//! saves them, and the rules each must meet. The colour rule is WCAG 2's contrast ratio.

use serde::{Deserialize, Serialize};

use super::validate::{self, Validation};

pub const PORTAL_NAME_MAX_CHARS: usize = 60;
pub const FOOTER_MAX_CHARS: usize = 500;
pub const SUPPORT_MAX_CHARS: usize = 200;
/// A logo is shown small in the header; a larger file is a mistake, not a better logo.
pub const LOGO_MAX_BYTES: u64 = 512 * 1024;
/// The only logo types: raster formats a browser shows without running anything (no SVG).
pub const LOGO_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/webp"];
/// WCAG 2 level AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;
/// The portal's page background (`--bg` in app.css), which links in the brand colour sit on.
pub const PORTAL_BACKGROUND: Rgb = Rgb(0xf5, 0xf7, 0xfa);
pub const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);

/// What the console saved; every part is optional and absent means the portal's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branding {
    pub name: Option<String>,
    pub colour: Option<Rgb>,
    pub footer: Option<String>,
    pub support: Option<String>,
    pub logo: Option<Logo>,
}

/// A logo's content in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logo {
    pub sha256: String,
    pub content_type: String,
    pub size: u64,
}

/// The text fields as an admin typed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BrandText {
    pub name: String,
    pub colour: String,
    pub footer: String,
    pub support: String,
}

impl Branding {
    /// The text fields as the form shows them.
    pub fn text(&self) -> BrandText {
        BrandText {
            name: self.name.clone().unwrap_or_default(),
            colour: self.colour.map(|c| c.to_string()).unwrap_or_default(),
            footer: self.footer.clone().unwrap_or_default(),
            support: self.support.clone().unwrap_or_default(),
        }
    }

    /// Whether anything is set.
    pub fn is_default(&self) -> bool {
        *self == Branding::default()
    }

    /// The support contact as an e-mail address, when it is exactly one whose characters need no
    /// escaping in a `mailto:` link (so `?` or `&` cannot add headers to the mail).
    pub fn support_email(&self) -> Option<&str> {
        let support = self.support.as_deref()?;
        let mut v = Validation::default();
        validate::email(&mut v, "support", support);
        let plain = support
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.+-_".contains(c));
        (plain && v.into_result().is_ok()).then_some(support)
    }
}

impl BrandText {
    /// Checks the fields and returns them as saved (trimmed; empty optional fields absent), without
    /// a logo. The portal name is required once anything is branded.
    pub fn validate(&self) -> Result<Branding, Validation> {
        let mut v = Validation::default();
        let name = self.name.trim();
        validate::required_line(&mut v, "name", name, PORTAL_NAME_MAX_CHARS);
        let colour = match self.colour.trim() {
            "" => None,
            raw => match Rgb::parse(raw) {
                None => {
                    v.add("colour", "must be a colour written #rrggbb");
                    None
                }
                Some(c) if !c.readable() => {
                    v.add(
                        "colour",
                        format!(
                            "is too light: white text on it and links in it need a contrast of at least {MIN_CONTRAST}:1"
                        ),
                    );
                    None
                }
                Some(c) => Some(c),
            },
        };
        let footer = self.footer.trim();
        if footer.chars().count() > FOOTER_MAX_CHARS {
            v.add(
                "footer",
                format!("must be at most {FOOTER_MAX_CHARS} characters"),
            );
        } else if footer.chars().any(|c| c.is_control() && c != '\n') {
            v.add("footer", "must be plain text without control characters");
        }
        let support = self.support.trim();
        validate::optional_line(&mut v, "support", Some(support), SUPPORT_MAX_CHARS);
        v.into_result()?;
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(Branding {
            name: some(name),
            colour,
            footer: some(footer),
            support: some(support),
            logo: None,
        })
    }
}

/// An sRGB colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn parse(raw: &str) -> Option<Rgb> {
        let hex = raw.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Rgb(byte(0)?, byte(2)?, byte(4)?))
    }

    /// WCAG 2's relative luminance: each sRGB channel linearised, then weighted.
    pub fn luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }

    /// WCAG 2's contrast ratio, from 1 (none) to 21 (black on white).
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (light, dark) = if a > b { (a, b) } else { (b, a) };
        (light + 0.05) / (dark + 0.05)
    }

    /// Readable as the portal uses it: white text on it (header, buttons) and as link text on
    /// the page background.
    pub fn readable(self) -> bool {
        self.contrast(WHITE) >= MIN_CONTRAST && self.contrast(PORTAL_BACKGROUND) >= MIN_CONTRAST
    }
}

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

impl TryFrom<String> for Rgb {
    type Error = String;

    fn try_from(raw: String) -> Result<Rgb, String> {
        Rgb::parse(&raw).ok_or_else(|| format!("not a #rrggbb colour: {raw}"))
    }
}

impl From<Rgb> for String {
    fn from(c: Rgb) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(s: &str) -> Rgb {
        Rgb::parse(s).unwrap()
    }

    #[test]
    fn luminance_and_contrast_follow_wcag() {
        assert!(rgb("#000000").luminance().abs() < 1e-9);
        assert!((WHITE.luminance() - 1.0).abs() < 1e-9);
        assert!((rgb("#000000").contrast(WHITE) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
        // Figures from WebAIM's contrast checker.
        assert!((rgb("#777777").contrast(WHITE) - 4.48).abs() < 0.01);
        assert!((rgb("#0b5cad").contrast(WHITE) - 6.6).abs() < 0.1);
        // Symmetric.
        assert!((rgb("#123456").contrast(WHITE) - WHITE.contrast(rgb("#123456"))).abs() < 1e-12);
    }

    #[test]
    fn only_colours_readable_both_ways_pass() {
        assert!(rgb("#0b5cad").readable(), "the default brand colour");
        assert!(rgb("#1e6b34").readable());
        assert!(
            !rgb("#ffff00").readable(),
            "yellow: white text on it is unreadable"
        );
        assert!(
            !rgb("#767676").readable(),
            "4.54 on white, but under 4.5 on the page background"
        );
        assert!(!rgb("#777777").readable());
    }

    #[test]
    fn colours_parse_only_as_rrggbb() {
        assert_eq!(Rgb::parse("#0B5cAd"), Some(Rgb(0x0b, 0x5c, 0xad)));
        assert_eq!(rgb("#0B5CAD").to_string(), "#0b5cad");
        for bad in [
            "0b5cad", "#0b5ca", "#0b5cadd", "#gg0000", "#+1+2+3", "red", "",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_are_trimmed_checked_and_named() {
        let text = BrandText {
            name: "  Cloudeka Support ".into(),
            colour: "#0b5cad".into(),
            footer: String::new(),
            support: " help@cloudeka.example ".into(),
        };
        let saved = text.validate().unwrap();
        assert_eq!(saved.name.as_deref(), Some("Cloudeka Support"));
        assert_eq!(saved.colour, Some(Rgb(0x0b, 0x5c, 0xad)));
        assert_eq!(saved.footer, None);
        assert_eq!(saved.support.as_deref(), Some("help@cloudeka.example"));
        assert_eq!(saved.text().name, "Cloudeka Support");

        let bad = BrandText {
            name: "x".repeat(61),
            colour: "#ffff00".into(),
            footer: "y".repeat(501),
            support: "z".repeat(201),
        };
        let fields = bad.validate().unwrap_err().fields;
        let names: Vec<_> = fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["colour", "footer", "name", "support"]);
        assert!(
            BrandText::default()
                .validate()
                .unwrap_err()
                .fields
                .contains_key("name")
        );
    }

    #[test]
    fn support_is_a_mail_link_only_when_it_is_an_address() {
        let with = |s: &str| Branding {
            support: Some(s.into()),
            ..Branding::default()
        };
        assert_eq!(
            with("help@cloudeka.example").support_email(),
            Some("help@cloudeka.example")
        );
        assert_eq!(with("+62 21 555 0100").support_email(), None);
        assert_eq!(with("mail help@x.example or call").support_email(), None);
        assert_eq!(with("a?cc=b@x.example").support_email(), None);
    }
}
