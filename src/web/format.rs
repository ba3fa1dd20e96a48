//! How values read on a page: times (UTC on the server, the browser's zone once `app.js` runs),
//! sizes, and the customer-friendly names of statuses and kinds.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::domain::{EventKind, Kind, Priority, Status};

/// A time as `<time datetime="…">text</time>` wants it.
pub(crate) struct When {
    pub iso: String,
    pub text: String,
}

pub(crate) fn when(at: OffsetDateTime) -> When {
    let at = at.to_offset(time::UtcOffset::UTC);
    let iso = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = at
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    When { iso, text }
}

/// Bytes in the unit a person reads best.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes;
    let mut tenths = 0;
    let mut unit = 0;
    while value >= 1024 && unit + 1 < UNITS.len() {
        tenths = (value % 1024) * 10 / 1024;
        value /= 1024;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} {}", UNITS[0])
    } else {
        format!("{value}.{tenths} {}", UNITS[unit])
    }
}

/// Message key of a status's customer-facing label.
pub(crate) fn status_key(status: Status) -> String {
    format!("status-{}", status.as_str().replace('_', "-"))
}

pub(crate) fn kind_key(kind: Kind) -> String {
    format!("kind-{}", kind.as_str().replace('_', "-"))
}

pub(crate) fn priority_key(priority: Priority) -> String {
    format!("priority-{}", priority.as_str())
}

/// Message key of a history event's line (`event-status-changed`).
pub(crate) fn event_key(kind: EventKind) -> String {
    format!("event-{}", kind.as_str().replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KB");
        assert_eq!(size(25 * 1024 * 1024), "25.0 MB");
        let w = when(time::macros::datetime!(2026-11-23 14:05:09 +07:00));
        assert_eq!(w.text, "2026-11-23 07:05 UTC");
        assert_eq!(w.iso, "2026-11-23T07:05:09Z");
    }
}
