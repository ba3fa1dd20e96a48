//! Between the portal's plain text and SDP's HTML fields.
//!
//! [`from_html`] reads SDP HTML (technicians' notes and resolutions, e-mails, often replies
//! written in Outlook or Gmail) with html5ever's tokenizer and lays the text out as follows:
//! - a block (`<div>`, `<tr>`, `<li>`, …) or `<br>` starts a new line; paragraphs, headings,
//!   `<pre>` and top-level lists are set off by a blank line, except Outlook's `Mso…`
//!   paragraphs (Outlook styles them without margins and writes an empty paragraph where it
//!   wants a gap) and paragraphs inside list items;
//! - list items start with "- ", or "1. ", "2. ", … in an ordered list; nested lists are
//!   indented by two spaces a level; Outlook's own list paragraphs get the same markers;
//! - a table row is one line, its non-empty cells joined by " | ";
//! - a link shows its address in angle brackets after its text unless the text already says it;
//! - whitespace collapses as in a browser (`&nbsp;` becomes a plain space that does not
//!   collapse), at most one blank line in a row, no trailing spaces, trimmed;
//! - comments, `<head>` matter (`<title>`, `<style>`, `<script>`, …), `<noscript>` and
//!   `<template>` are dropped.
//!
//! Quoted mail history is dropped too: the content of `<blockquote>`, and everything from
//! Gmail's quote, Outlook's reply header (by its markup, or as text: "From:" followed by
//! "Sent:" or "Date:"), "-----Original Message-----" or a line "On …, … wrote:" to the end.
//! Such a marker only counts after some text, and not where the mail says it forwards a
//! message; if nothing is left, the whole text is shown instead.

mod history;
mod render;
mod scan;
#[cfg(test)]
mod tests;

use history::{is_forward, strip_history, tidy};
use render::render;
use scan::cap_attributes;

/// Plain text → SDP HTML: escaped, line breaks kept as `<br>`.
pub fn to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// SDP bodies are at most a few MB; anything past this is cut off before parsing so the work
/// per body stays bounded.
const MAX_INPUT: usize = 4 << 20;

/// SDP HTML → plain text (see the module docs for the layout). The result is shown escaped
/// like any other text. Linear in the input, never panics.
pub fn from_html(html: &str) -> String {
    let mut end = html.len().min(MAX_INPUT);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let html = cap_attributes(&html[..end]);
    let rendered = render(&html, true);
    // A history marker only counts after some text, so cutting there never empties the result.
    let kept = rendered
        .history
        .iter()
        .filter_map(|&at| rendered.out.get(..at).zip(rendered.out.get(at..)))
        .find(|(_, rest)| !is_forward(None, rest.split('\n')))
        .map_or(&*rendered.out, |(head, _)| head);
    let text = tidy(kept);
    let text = strip_history(&text);
    if text.is_empty() {
        // All of it was quoted (or it is empty anyway): show it all rather than nothing.
        tidy(&render(&html, false).out)
    } else {
        text.to_owned()
    }
}

/// SDP HTML → plain text like [`from_html`], keeping quoted history: a request's description is
/// often a forwarded mail, whose forwarded part is the request itself.
pub fn from_html_whole(html: &str) -> String {
    let mut end = html.len().min(MAX_INPUT);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    tidy(&render(&cap_attributes(&html[..end]), false).out)
}
