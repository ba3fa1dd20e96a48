//! Quoted mail history found in the laid-out text, and the final tidying.

use super::render::starts_with_ignore_case;

/// Trailing spaces off each line, at most one blank line in a row, trimmed.
pub(super) fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if out.is_empty() {
            out.push_str(line.trim_start());
        } else {
            out.push_str(if blank { "\n\n" } else { "\n" });
            out.push_str(line);
        }
        blank = false;
    }
    out
}

/// Lines that a reply header may span between "From:" and "Sent:".
pub(super) const HEADER_LINES: usize = 5;

/// Cuts quoted history that is left as text: from a line "On …, … wrote:" (which may wrap onto
/// a second line), "-----Original Message-----", or a "From:" line followed within a few lines
/// by "Sent:" or "Date:" (Outlook's reply header), to the end. Only after some text, so a
/// message with nothing above its header is kept whole, and not at a forwarded message.
pub(super) fn strip_history(text: &str) -> &str {
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .scan(0, |at, line| {
            let start = *at;
            *at += line.len() + 1;
            Some((start, line.trim()))
        })
        .collect();
    let mut above = None;
    for (i, &(start, line)) in lines.iter().enumerate() {
        let next = || lines[i + 1..].iter().map(|&(_, l)| l);
        if above.is_some()
            && starts_history(line, next())
            && !is_forward(above, lines[i..].iter().map(|&(_, l)| l))
        {
            // A rule of underscores or dashes above the header belongs to it.
            let mut head = text[..start].trim_end();
            while let Some((rest, last)) = head.rsplit_once('\n') {
                if !is_rule(last) {
                    break;
                }
                head = rest.trim_end();
            }
            return head;
        }
        if !line.is_empty() {
            above = Some(line);
        }
    }
    text
}

pub(super) fn starts_history<'a>(line: &str, mut next: impl Iterator<Item = &'a str>) -> bool {
    const LONGEST: usize = 400;
    if line.starts_with("On ") && line.len() < LONGEST {
        return line.ends_with("wrote:")
            || next
                .next()
                .is_some_and(|n| n.ends_with("wrote:") && line.len() + n.len() < LONGEST);
    }
    if line.starts_with("-----") && line.len() < LONGEST {
        return line.to_ascii_lowercase().contains("original message");
    }
    starts_with_ignore_case(line, "from:")
        && next
            .take(HEADER_LINES)
            .any(|l| starts_with_ignore_case(l, "sent:") || starts_with_ignore_case(l, "date:"))
}

/// Lines read after a history marker to tell a forward from a reply.
pub(super) const FORWARD_LINES: usize = 3;

/// A forwarded message is what the sender wants read, so it is kept. Gmail, Apple Mail and
/// Thunderbird say "Forwarded message" above the header (or just inside the quote); Outlook
/// writes a forward's header just like a reply's, so it cannot be told apart.
pub(super) fn is_forward<'a>(above: Option<&str>, below: impl Iterator<Item = &'a str>) -> bool {
    let forwarded = |line: &str| {
        let line = line.trim();
        line.len() < 200 && line.to_ascii_lowercase().contains("forwarded message")
    };
    above.is_some_and(forwarded)
        || below
            .filter(|l| !l.trim().is_empty())
            .take(FORWARD_LINES)
            .any(forwarded)
}

pub(super) fn is_rule(line: &str) -> bool {
    let line = line.trim();
    line.len() >= 5 && line.chars().all(|c| matches!(c, '_' | '-' | '='))
}
