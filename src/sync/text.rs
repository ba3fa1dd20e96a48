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

use std::borrow::Cow;
use std::cell::RefCell;

use html5ever::LocalName;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

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

/// Elements the tokenizer reads as raw text, and whether that text is shown. `<script>` is read
/// as plain raw text rather than with the spec's script-data escapes, which only matter to a
/// browser running it, so that [`cap_attributes`] can find its end with a plain search.
const RAW_TEXT: [(&str, RawKind, bool); 9] = [
    ("script", RawKind::Rawtext, false),
    ("style", RawKind::Rawtext, false),
    ("noscript", RawKind::Rawtext, false),
    ("iframe", RawKind::Rawtext, false),
    ("noembed", RawKind::Rawtext, false),
    ("noframes", RawKind::Rawtext, false),
    ("xmp", RawKind::Rawtext, true),
    ("title", RawKind::Rcdata, false),
    ("textarea", RawKind::Rcdata, true),
];

fn raw_text(name: &[u8]) -> Option<(RawKind, bool)> {
    RAW_TEXT
        .iter()
        .find(|(n, ..)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(_, kind, shown)| (kind, shown))
}

/// More attributes on one tag than any real element has.
const MAX_ATTRIBUTES: usize = 64;

/// html5ever checks each attribute of a tag against the tag's earlier ones, so a tag with n
/// distinct attributes costs n² (a 4 MiB tag of them takes minutes). This pass follows the
/// tokenizer's rules for tags, comments and raw text just far enough to count each tag's
/// attributes, and drops those past the first [`MAX_ATTRIBUTES`]. Usually it changes nothing.
fn cap_attributes(html: &str) -> Cow<'_, str> {
    let b = html.as_bytes();
    let mut cuts = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let lt = i + off;
        i = match b.get(lt + 1) {
            Some(b'!') if b[lt..].starts_with(b"<!--") => comment_end(html, lt),
            // Doctype, CDATA (outside SVG/MathML) and bogus comments all end at the first `>`.
            Some(b'!' | b'?') => after_gt(html, lt + 2),
            Some(b'/') => match b.get(lt + 2) {
                Some(c) if c.is_ascii_alphabetic() => scan_tag(b, lt + 2, &mut cuts).0,
                Some(_) => after_gt(html, lt + 2),
                None => b.len(),
            },
            Some(c) if c.is_ascii_alphabetic() => match scan_tag(b, lt + 1, &mut cuts) {
                (end, Some(name)) if raw_text(name).is_some() => {
                    raw_text_end(html, end, name, &mut cuts)
                }
                (end, _) => end,
            },
            _ => lt + 1,
        };
    }
    if cuts.is_empty() {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut from = 0;
    for (start, end) in cuts {
        out.push_str(&html[from..start]);
        from = end;
    }
    out.push_str(&html[from..]);
    Cow::Owned(out)
}

fn after_gt(html: &str, from: usize) -> usize {
    html[from..]
        .find('>')
        .map_or(html.len(), |off| from + off + 1)
}

/// A comment that starts at `lt` ends at the first `-->` (its own dashes count, as in
/// `<!-->`) or `--!>` after the opening.
fn comment_end(html: &str, lt: usize) -> usize {
    let b = html.as_bytes();
    let mut i = lt + 2;
    while let Some(off) = html[i..].find("--") {
        let dashes = i + off;
        match b.get(dashes + 2) {
            Some(b'>') => return dashes + 3,
            Some(b'!') if dashes >= lt + 4 && b.get(dashes + 3) == Some(&b'>') => {
                return dashes + 4;
            }
            _ => i = dashes + 1,
        }
    }
    html.len()
}

/// Raw text ends at `</name` followed by whitespace, `/` or `>`; that end tag is then read as
/// a tag (it may carry attributes too).
fn raw_text_end(html: &str, from: usize, name: &[u8], cuts: &mut Vec<(usize, usize)>) -> usize {
    let b = html.as_bytes();
    let mut i = from;
    while let Some(off) = html[i..].find("</") {
        let start = i + off + 2;
        let end = start + name.len();
        if b.get(start..end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && b.get(end)
                .is_some_and(|&c| is_space(c) || c == b'/' || c == b'>')
        {
            return scan_tag(b, start, cuts).0;
        }
        i = start;
    }
    html.len()
}

fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Follows one tag from the first letter of its name to its closing `>`, as the tokenizer's
/// tag states do; records the attributes past the limit in `cuts`. Returns the position after
/// the tag and its name.
fn scan_tag<'a>(
    b: &'a [u8],
    name_start: usize,
    cuts: &mut Vec<(usize, usize)>,
) -> (usize, Option<&'a [u8]>) {
    let mut state = TagState::Name;
    let mut name = None;
    let mut attributes = 0;
    let mut cut_from = None;
    let mut j = name_start;
    let end = loop {
        let Some(&c) = b.get(j) else {
            break b.len();
        };
        let step = state.step(c);
        if name.is_none() && !matches!(step, Step::Next(TagState::Name)) {
            name = Some(&b[name_start..j]);
        }
        match step {
            Step::Next(next) => {
                state = next;
                j += 1;
            }
            Step::Again(next) => state = next,
            Step::Attribute => {
                attributes += 1;
                if attributes > MAX_ATTRIBUTES && cut_from.is_none() {
                    cut_from = Some(j);
                }
                state = TagState::Attr;
                j += 1;
            }
            Step::End => break j,
        }
    };
    if let Some(from) = cut_from {
        // What is kept before `from` leaves the tokenizer where a `>` ends the tag.
        cuts.push((from, end));
    }
    (end.saturating_add(1).min(b.len()), name)
}

/// The tokenizer's tag states, reduced to what decides where attributes start and where the
/// tag ends.
#[derive(Clone, Copy)]
enum TagState {
    Name,
    BeforeAttr,
    Attr,
    AfterAttr,
    BeforeValue,
    Quoted(u8),
    Unquoted,
    AfterQuoted,
    SelfClosing,
}

enum Step {
    /// Take the character and go on in this state.
    Next(TagState),
    /// Read the same character again in this state.
    Again(TagState),
    /// An attribute's name starts with this character.
    Attribute,
    /// This `>` ends the tag.
    End,
}

impl TagState {
    fn step(self, c: u8) -> Step {
        use TagState::{
            AfterAttr, AfterQuoted, Attr, BeforeAttr, BeforeValue, Name, Quoted, SelfClosing,
            Unquoted,
        };
        let space = is_space(c);
        match self {
            Name if c == b'>' => Step::End,
            Name if c == b'/' => Step::Next(SelfClosing),
            Name | Unquoted | AfterQuoted if space => Step::Next(BeforeAttr),
            BeforeAttr | Attr if c == b'/' || c == b'>' => Step::Again(AfterAttr),
            Attr if space => Step::Again(AfterAttr),
            Attr if c == b'=' => Step::Next(BeforeValue),
            BeforeAttr if !space => Step::Attribute,
            AfterAttr => match c {
                b'/' => Step::Next(SelfClosing),
                b'=' => Step::Next(BeforeValue),
                b'>' => Step::End,
                _ if space => Step::Next(AfterAttr),
                _ => Step::Attribute,
            },
            BeforeValue => match c {
                b'"' | b'\'' => Step::Next(Quoted(c)),
                b'>' => Step::End,
                _ if space => Step::Next(BeforeValue),
                _ => Step::Next(Unquoted),
            },
            Quoted(quote) if c == quote => Step::Next(AfterQuoted),
            Unquoted | AfterQuoted | SelfClosing if c == b'>' => Step::End,
            AfterQuoted if c == b'/' => Step::Next(SelfClosing),
            AfterQuoted | SelfClosing => Step::Again(BeforeAttr),
            // The name, an attribute's name or value goes on; whitespace before a name.
            state => Step::Next(state),
        }
    }
}

/// Renders the tokens; with `strip`, blockquotes are dropped and the places where other quoted
/// history may start are noted.
fn render(html: &str, strip: bool) -> Rendered {
    let tokenizer = Tokenizer::new(
        Sink(RefCell::new(Render {
            strip,
            ..Render::default()
        })),
        TokenizerOpts::default(),
    );
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The sink never asks the tokenizer to pause, so one feed reads everything.
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let mut render = tokenizer.sink.0.borrow_mut();
    Rendered {
        out: std::mem::take(&mut render.out),
        history: std::mem::take(&mut render.history),
    }
}

struct Rendered {
    out: String,
    /// Where quoted history may start, by markers in the HTML.
    history: Vec<usize>,
}

struct Sink(RefCell<Render>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut render = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => return render.tag(&tag),
            Token::CharacterTokens(text) => render.text(&text),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

enum List {
    Bullet,
    Ordered(i64),
}

#[derive(Default)]
struct Table {
    has_text: bool,
    row_has_text: bool,
    cell: Cell,
}

#[derive(Default, PartialEq)]
enum Cell {
    #[default]
    Outside,
    Empty,
    Filled,
}

/// What goes between the text written and the next, on the same line.
#[derive(Default, PartialEq)]
enum Gap {
    #[default]
    None,
    /// Collapsed whitespace.
    Space,
    /// The next cell of a table row.
    Separator,
}

/// The text of an Outlook list marker (`<span style="mso-list:Ignore">·&nbsp;&nbsp;</span>`).
struct MsoMarker {
    depth: u32,
    text: String,
}

/// Nested lists indent by two spaces a level, up to this many levels.
const MAX_INDENT: usize = 8;

/// The layout state. Elements are handled one token at a time with explicit counters and
/// stacks, so deep nesting costs no recursion.
#[derive(Default)]
struct Render {
    strip: bool,
    out: String,
    /// Some text has been written (not just spaces).
    has_text: bool,
    /// Where quoted history may start (a forwarded message is kept, so there may be several).
    history: Vec<usize>,
    /// Newlines owed before the next text: 1 ends the line, 2 leaves a blank line, more are
    /// `<br>`s (collapsed later).
    breaks: u8,
    gap: Gap,
    /// A list marker (with its indent) owed before the next text.
    marker: Option<String>,
    /// Inside raw text; whether it is shown.
    raw: Option<bool>,
    /// Inside an element whose content is dropped, and how deeply it nests in itself.
    skip: Option<(LocalName, u32)>,
    pre: u32,
    /// Just after `<pre>`, whose first newline does not count.
    pre_start: bool,
    /// The break the open `<p>` asked for.
    paragraph: u8,
    /// The Outlook list level of the open `<p>`.
    mso_level: usize,
    mso_marker: Option<MsoMarker>,
    lists: Vec<List>,
    tables: Vec<Table>,
    /// The open link's address and where its text starts.
    link: Option<(String, usize)>,
}

impl Render {
    fn tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let start = tag.kind == TagKind::StartTag;
        if let Some(shown) = self.raw.take() {
            // Only the end tag of the raw text element gets here.
            if shown {
                self.pre = self.pre.saturating_sub(1);
                self.block(1);
            }
            return TokenSinkResult::Continue;
        }
        let raw = if start {
            raw_text(tag.name.as_bytes())
        } else {
            None
        };
        if let Some((name, depth)) = &mut self.skip {
            if *name == tag.name {
                if start {
                    *depth += 1;
                } else {
                    *depth -= 1;
                    if *depth == 0 {
                        self.skip = None;
                        self.block(1);
                    }
                }
            }
        } else if raw.is_none() {
            self.element(tag, start);
        }
        let Some((kind, shown)) = raw else {
            return TokenSinkResult::Continue;
        };
        let shown = shown && self.skip.is_none();
        if shown {
            self.block(1);
            self.pre += 1;
            self.pre_start = true;
        }
        self.raw = Some(shown);
        TokenSinkResult::RawData(kind)
    }

    fn element(&mut self, tag: &Tag, start: bool) {
        let name = &*tag.name;
        self.pre_start = false;
        if self.mso_marker.is_some() && self.in_mso_marker(name, start) {
            return;
        }
        if start && self.starts_skip(tag) {
            self.block(1);
            self.skip = Some((tag.name.clone(), 1));
            return;
        }
        if start && self.strip && self.has_text && starts_history_block(tag) {
            let at = self.out.len();
            if self.history.len() < MAX_HISTORY_MARKERS && self.history.last() != Some(&at) {
                self.history.push(at);
            }
        }
        match name {
            "br" => self.line_break(),
            "p" => {
                if start {
                    let mso = attr(tag, "class").is_some_and(|c| {
                        c.split_whitespace()
                            .any(|c| starts_with_ignore_case(c, "mso"))
                    });
                    self.paragraph = if mso || !self.lists.is_empty() { 1 } else { 2 };
                    self.mso_level = attr(tag, "style").map_or(1, mso_list_level);
                }
                self.block(self.paragraph.max(1));
            }
            "div" | "section" | "article" | "header" | "footer" | "nav" | "aside" | "main"
            | "address" | "center" | "form" | "fieldset" | "legend" | "details" | "summary"
            | "figcaption" | "caption" | "dt" | "dd" | "option" => self.block(1),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "hr" | "dl" | "figure" | "blockquote" => {
                self.block(2);
            }
            "pre" | "listing" => {
                self.block(2);
                if start {
                    self.pre += 1;
                    self.pre_start = true;
                } else {
                    self.pre = self.pre.saturating_sub(1);
                }
            }
            "ul" | "ol" | "menu" | "dir" => self.list(tag, start),
            "li" => {
                self.block(1);
                self.marker = start.then(|| self.list_marker());
            }
            "table" | "tr" | "td" | "th" => self.table(name, start),
            "a" => self.link(tag, start),
            "span" if start => {
                let ignore =
                    attr(tag, "style").is_some_and(|s| squeeze(s).contains("mso-list:ignore"));
                if ignore {
                    self.mso_marker = Some(MsoMarker {
                        depth: 1,
                        text: String::new(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Content that is never shown, or (when stripping) is quoted history.
    fn starts_skip(&self, tag: &Tag) -> bool {
        match &*tag.name {
            "template" | "xml" => true,
            "blockquote" => self.strip,
            _ => false,
        }
    }

    fn list(&mut self, tag: &Tag, start: bool) {
        if start {
            self.block(if self.lists.is_empty() { 2 } else { 1 });
            self.lists.push(if &*tag.name == "ol" {
                let first = attr(tag, "start").and_then(|s| s.trim().parse().ok());
                List::Ordered(first.unwrap_or(1))
            } else {
                List::Bullet
            });
        } else {
            self.lists.pop();
            self.marker = None;
            self.block(if self.lists.is_empty() { 2 } else { 1 });
        }
    }

    fn list_marker(&mut self) -> String {
        let depth = self.lists.len().clamp(1, MAX_INDENT);
        let mut marker = "  ".repeat(depth - 1);
        match self.lists.last_mut() {
            Some(List::Ordered(n)) => {
                marker.push_str(&n.to_string());
                marker.push_str(". ");
                *n = n.saturating_add(1);
            }
            _ => marker.push_str("- "),
        }
        marker
    }

    fn table(&mut self, name: &str, start: bool) {
        if name == "table" {
            if start {
                self.block(1);
                self.tables.push(Table::default());
            } else if let Some(inner) = self.tables.pop() {
                if inner.has_text {
                    self.mark_text();
                }
                self.block(1);
            }
            return;
        }
        let Some(table) = self.tables.last_mut() else {
            // A cell outside a table: at least keep the words apart.
            self.gap_space();
            return;
        };
        if name == "tr" {
            table.cell = Cell::Outside;
            table.row_has_text = false;
            self.block(1);
            return;
        }
        if table.cell == Cell::Filled {
            // Breaks after a cell's text stay inside the cell.
            self.breaks = 0;
        }
        table.cell = if start { Cell::Empty } else { Cell::Outside };
        if start && table.row_has_text {
            self.gap = Gap::Separator;
        }
    }

    fn link(&mut self, tag: &Tag, start: bool) {
        if start {
            self.link = attr(tag, "href")
                .map(str::trim)
                .filter(|h| {
                    ["http://", "https://", "ftp://"]
                        .iter()
                        .any(|s| starts_with_ignore_case(h, s))
                })
                .map(|h| (h.to_owned(), self.out.len()));
            return;
        }
        let Some((href, from)) = self.link.take() else {
            return;
        };
        let Some(text) = self.out.get(from..) else {
            return;
        };
        let bare = href.split_once("://").map_or(&*href, |(_, rest)| rest);
        let bare = bare.trim_end_matches('/');
        if !text.trim().is_empty() && !text.contains(bare) {
            self.out.push_str(" <");
            self.out.push_str(&href);
            self.out.push('>');
        }
    }

    /// Tags inside an Outlook list marker; true if the marker goes on.
    fn in_mso_marker(&mut self, name: &str, start: bool) -> bool {
        if let Some(marker) = &mut self.mso_marker
            && name == "span"
        {
            if start {
                marker.depth += 1;
            } else {
                marker.depth -= 1;
            }
            if marker.depth > 0 {
                return true;
            }
            self.end_mso_marker();
            return true;
        }
        self.end_mso_marker();
        false
    }

    fn end_mso_marker(&mut self) {
        let Some(marker) = self.mso_marker.take() else {
            return;
        };
        let label = marker.text.trim();
        if label.chars().count() > 8 {
            // Not a list marker after all.
            self.chars(&marker.text);
            return;
        }
        if label.is_empty() {
            return;
        }
        let mut out = "  ".repeat(self.mso_level.clamp(1, MAX_INDENT) - 1);
        let numbered = label
            .strip_suffix(['.', ')'])
            .is_some_and(|n| !n.is_empty() && n.chars().all(char::is_alphanumeric));
        if numbered {
            out.push_str(label);
            out.push(' ');
        } else {
            out.push_str("- ");
        }
        self.marker = Some(out);
    }

    /// A block boundary: the next text starts a new line (1) or leaves a blank line (2).
    fn block(&mut self, breaks: u8) {
        if !self.in_empty_cell() {
            self.breaks = self.breaks.max(breaks);
        }
    }

    fn line_break(&mut self) {
        if !self.in_empty_cell() {
            self.breaks = self.breaks.saturating_add(1).min(3);
        }
    }

    /// Breaks before a cell's text would split its row.
    fn in_empty_cell(&self) -> bool {
        self.tables.last().is_some_and(|t| t.cell == Cell::Empty)
    }

    fn text(&mut self, text: &str) {
        if self.skip.is_some() || self.raw == Some(false) {
            return;
        }
        if let Some(marker) = &mut self.mso_marker {
            if marker.text.len() < 64 {
                marker.text.extend(text.chars().take(64));
            }
            return;
        }
        self.chars(text);
    }

    fn chars(&mut self, text: &str) {
        let pre = self.pre > 0;
        for c in text.chars() {
            let first_in_pre = std::mem::take(&mut self.pre_start);
            match c {
                '\n' if pre => {
                    if !first_in_pre {
                        self.line_break();
                    }
                }
                ' ' | '\t' | '\u{a0}' if pre => self.hard_space(),
                ' ' | '\t' | '\n' | '\r' | '\x0c' => self.gap_space(),
                '\u{a0}' => self.hard_space(),
                c if c.is_control() || c == '\u{feff}' => {}
                c => self.content(c),
            }
        }
    }

    fn gap_space(&mut self) {
        if self.gap == Gap::None {
            self.gap = Gap::Space;
        }
    }

    /// `&nbsp;` (or a space in `<pre>`): a space that does not collapse, but is not text
    /// either: it neither puts a separator out nor fills an empty cell, and a list item's
    /// line starts with its marker.
    fn hard_space(&mut self) {
        if self.in_empty_cell() || self.marker.is_some() {
            return;
        }
        self.flush_breaks();
        if self.gap == Gap::Space {
            self.gap = Gap::None;
            if !self.at_line_start() {
                self.out.push(' ');
            }
        }
        self.out.push(' ');
    }

    fn content(&mut self, c: char) {
        if self.breaks > 0 || self.gap != Gap::None || self.marker.is_some() {
            self.flush();
        }
        self.out.push(c);
        if !self.has_text || !self.tables.is_empty() {
            self.mark_text();
        }
    }

    fn mark_text(&mut self) {
        self.has_text = true;
        if let Some(table) = self.tables.last_mut() {
            table.has_text = true;
            table.row_has_text = true;
            if table.cell == Cell::Empty {
                table.cell = Cell::Filled;
            }
        }
    }

    fn flush_breaks(&mut self) {
        if self.breaks > 0 {
            if !self.out.is_empty() {
                for _ in 0..self.breaks {
                    self.out.push('\n');
                }
            }
            self.breaks = 0;
            self.gap = Gap::None;
        }
    }

    fn flush(&mut self) {
        self.flush_breaks();
        match std::mem::take(&mut self.gap) {
            Gap::Separator => {
                let kept = self.out.trim_end_matches(' ').len();
                self.out.truncate(kept);
                if !self.at_line_start() {
                    self.out.push_str(" | ");
                }
            }
            Gap::Space if !self.at_line_start() => self.out.push(' '),
            _ => {}
        }
        if let Some(marker) = self.marker.take() {
            self.out.push_str(&marker);
        }
    }

    fn at_line_start(&self) -> bool {
        self.out.is_empty() || self.out.ends_with('\n')
    }
}

fn attr<'a>(tag: &'a Tag, name: &str) -> Option<&'a str> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// A style attribute in lower case without whitespace, to look for declarations in.
fn squeeze(style: &str) -> String {
    style
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The level in an Outlook list paragraph's `mso-list:l0 level2 lfo1`.
fn mso_list_level(style: &str) -> usize {
    let style = style.to_ascii_lowercase();
    style
        .find("mso-list:")
        .and_then(|at| style[at..].split(';').next())
        .and_then(|list| list.split_once("level"))
        .and_then(|(_, rest)| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            rest[..digits].parse().ok()
        })
        .unwrap_or(1)
}

/// Checking each history marker for a forward reads a few lines, so only the first few count.
const MAX_HISTORY_MARKERS: usize = 16;

/// Where a mail client puts the quoted message: Gmail's (or Yahoo's) quote, Outlook's reply
/// header (the `<div>` with only a top border around "From: … Sent: …") or Outlook on the
/// web's `divRplyFwdMsg` (after an `appendonsend` placeholder).
fn starts_history_block(tag: &Tag) -> bool {
    if &*tag.name != "div" {
        return false;
    }
    let id = attr(tag, "id").unwrap_or_default();
    let class = attr(tag, "class").unwrap_or_default();
    id.eq_ignore_ascii_case("divRplyFwdMsg")
        || id.eq_ignore_ascii_case("appendonsend")
        || class
            .split_whitespace()
            .any(|c| c.starts_with("gmail_quote") || c == "yahoo_quoted")
        || attr(tag, "style").is_some_and(|s| {
            let s = squeeze(s);
            s.contains("border:none") && s.contains("border-top:solid")
        })
}

/// Trailing spaces off each line, at most one blank line in a row, trimmed.
fn tidy(text: &str) -> String {
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
const HEADER_LINES: usize = 5;

/// Cuts quoted history that is left as text: from a line "On …, … wrote:" (which may wrap onto
/// a second line), "-----Original Message-----", or a "From:" line followed within a few lines
/// by "Sent:" or "Date:" (Outlook's reply header), to the end. Only after some text, so a
/// message with nothing above its header is kept whole, and not at a forwarded message.
fn strip_history(text: &str) -> &str {
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

fn starts_history<'a>(line: &str, mut next: impl Iterator<Item = &'a str>) -> bool {
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
const FORWARD_LINES: usize = 3;

/// A forwarded message is what the sender wants read, so it is kept. Gmail, Apple Mail and
/// Thunderbird say "Forwarded message" above the header (or just inside the quote); Outlook
/// writes a forward's header just like a reply's, so it cannot be told apart.
fn is_forward<'a>(above: Option<&str>, below: impl Iterator<Item = &'a str>) -> bool {
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

fn is_rule(line: &str) -> bool {
    let line = line.trim();
    line.len() >= 5 && line.chars().all(|c| matches!(c, '_' | '-' | '='))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn text_becomes_escaped_html_with_breaks() {
        assert_eq!(
            to_html("a < b & \"c\"\r\nnext"),
            "a &lt; b &amp; &quot;c&quot;<br>next"
        );
    }

    #[test]
    fn html_becomes_text() {
        assert_eq!(
            from_html("<div>Rebooted the <b>VM</b>.<br>Works &amp; fast&nbsp;now</div>"),
            "Rebooted the VM.\nWorks & fast now"
        );
        // Paragraphs are set off by a blank line, as a browser's margins do.
        assert_eq!(from_html("<p>one</p><p>two</p>"), "one\n\ntwo");
        assert_eq!(
            from_html("x<script>alert(1)</script>y<style>p{}</style>z"),
            "xyz"
        );
        assert_eq!(
            from_html("&lt;script&gt; &#65;&#x42; & alone"),
            "<script> AB & alone"
        );
        assert_eq!(from_html("broken <b"), "broken");
    }

    #[test]
    fn round_trip_keeps_the_text() {
        let text = "Line 1\nLine <2> & 'three'";
        assert_eq!(from_html(&to_html(text)), text);
    }

    #[test]
    fn outlook_reply() {
        assert_eq!(
            from_html(include_str!("../../tests/fixtures/html/outlook_reply.html")),
            "Hi Bob,\n\
             \n\
             I’ve restarted the print spooler — the queue is moving again. What I did:\n\
             - Cleared the stuck jobs\n\
             - Restarted the “Print Spooler” service\n\
             \n\
             Regards,\n\
             Carol"
        );
    }

    #[test]
    fn gmail_reply() {
        assert_eq!(
            from_html(include_str!("../../tests/fixtures/html/gmail_reply.html")),
            "Hi Alice,\n\
             \n\
             Thanks, the VPN works again after the update.\n\
             \n\
             Best,\n\
             Dave"
        );
    }

    #[test]
    fn technician_note_with_lists_table_and_heading() {
        assert_eq!(
            from_html(include_str!("../../tests/fixtures/html/sdp_note.html")),
            "Hello,\n\
             \n\
             we have checked the mail server. Summary:\n\
             \n\
             Findings\n\
             \n\
             - Disk /var was 98% full\n\
             - Old logs were not rotated\n  \
               - mail.log was 30 GB\n\
             \n\
             1. Rotated the logs\n\
             2. Freed 40 GB\n\
             \n\
             Volume | Before | After\n\
             /var | 98% | 61%\n\
             /home | 45% | 45%\n\
             \n\
             See the KB article <https://kb.example.com/article/42> for details.\n\
             \n\
             Regards,\n\
             Support team"
        );
    }

    #[test]
    fn plain_note() {
        assert_eq!(
            from_html(include_str!("../../tests/fixtures/html/plain_note.html")),
            "Dear customer,\n\
             \n\
             your mailbox quota has been raised to 50 GB.\n\
             Please restart Outlook.\n\
             \n\
             Kind regards\n\
             IT Service Desk"
        );
    }

    #[test]
    fn scripts_titles_and_templates_are_dropped() {
        assert_eq!(
            from_html(include_str!("../../tests/fixtures/html/script_title.html")),
            "Your ticket has been updated.\n\nStatus: In progress"
        );
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            from_html(
                "&rsquo;&lsquo;&ldquo;&rdquo;&mdash;&ndash;&hellip;&euro;&eacute;&#x42;&#66;&#x1F600;"
            ),
            "’‘“”—–…€éBB😀"
        );
        // Without the semicolon where a browser allows it; Windows-1252 numbers; nonsense kept.
        assert_eq!(
            from_html("&copy 2024 &#128; &#0; &bogus; &amp;nbsp;"),
            "© 2024 € \u{fffd} &bogus; &nbsp;"
        );
        assert_eq!(from_html("a&nbsp;&nbsp;b&nbsp;"), "a  b");
    }

    #[test]
    fn whitespace_collapses() {
        assert_eq!(from_html("  a \n\t b  "), "a b");
        assert_eq!(from_html("<p>a</p>\n\n\n<p> b </p>"), "a\n\nb");
        assert_eq!(from_html("a<br><br><br><br>b<br>"), "a\n\nb");
        assert_eq!(from_html("<div>a<br></div><div>b</div>"), "a\nb");
        assert_eq!(
            from_html("<div>a</div><div><br></div><div>b</div>"),
            "a\n\nb"
        );
        assert_eq!(
            from_html("<p>Code:</p><pre>\nif x:\n    y()  \n</pre>after"),
            "Code:\n\nif x:\n    y()\n\nafter"
        );
        assert_eq!(from_html("<p>\u{a0}</p><p>\u{a0}</p>\u{a0}"), "");
    }

    #[test]
    fn comments_are_dropped() {
        assert_eq!(
            from_html(
                "a<!-- b -->c<!--[if gte mso 9]><xml><o:AllowPNG/></xml><![endif]-->d\
                 <![if !supportLists]>e<![endif]><!-->f<!--->g"
            ),
            "acdefg"
        );
        assert_eq!(from_html("a<!-- never closed <p>b</p>"), "a");
    }

    #[test]
    fn tables_and_lists() {
        // Outlook wraps each cell in a paragraph; spacer cells hold a `&nbsp;`.
        assert_eq!(
            from_html(
                "<table><tr><td><p class=MsoNormal>Name<o:p></o:p></p></td>\
                 <td width=10><p class=MsoNormal>&nbsp;</p></td>\
                 <td><p class=MsoNormal>Value</p></td></tr>\
                 <tr><td>a<br></td><td></td><td>c</td></tr></table>"
            ),
            "Name | Value\na | c"
        );
        assert_eq!(
            from_html("<ol start=9><li>nine<li>ten</ol><ul><li><p>para in item</p></li></ul>"),
            "9. nine\n10. ten\n\n- para in item"
        );
        assert_eq!(
            from_html("<ul><li>&nbsp; a</li><li>&nbsp;</li></ul>"),
            "- a"
        );
        // A layout table around the whole mail keeps its paragraphs.
        assert_eq!(
            from_html("<table><tr><td><p>Hi,</p><p>text</p></td></tr></table>"),
            "Hi,\n\ntext"
        );
    }

    #[test]
    fn links_show_their_address_once() {
        assert_eq!(
            from_html(
                "<a href='https://x.example/a'>https://x.example/a</a>, <a href=\"http://x.example/\">x.example</a>, <a href=mailto:a@example.com>mail</a>"
            ),
            "https://x.example/a, x.example, mail"
        );
    }

    #[test]
    fn quoted_history_is_stripped() {
        let cases = [
            // Apple Mail / Thunderbird: the attribution line stays outside the blockquote.
            "<div>Yes, please.</div><div>On 3 Jun 2024, at 10:00, Alice &lt;alice@example.com&gt; wrote:</div><blockquote type=cite>old</blockquote>",
            // The attribution wrapped onto a second line.
            "<p>Yes, please.</p><p>On Mon, 3 Jun 2024 at 10:00, Alice &lt;alice@example.com&gt;<br>wrote:</p><p>old</p>",
            "<p>Yes, please.</p><p>-----Original Message-----<br>From: x<br>Sent: y</p><p>old</p>",
            // Outlook's header as text, under a rule of underscores.
            "<div>Yes, please.</div><div>________________________________</div><div>From: Alice &lt;a@example.com&gt;</div><div>Sent: Monday</div><div>To: Bob</div><div>Subject: Re: x</div><div>old</div>",
            // Outlook on the web.
            "<div>Yes, please.</div><div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\" tabindex=\"-1\"><div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri\"><b>De :</b> Alice<br><b>Envoyé :</b> lundi</font></div><div>old</div>",
            // Outlook's header under an `<hr>`.
            "<p class=MsoNormal>Yes, please.</p><div class=MsoNormal align=center style='text-align:center'><hr size=2 width=\"100%\" align=center></div><p class=MsoNormal><b>From:</b> Alice<br><b>Date:</b> Monday<br><b>To:</b> Bob</p><p>old</p>",
        ];
        for html in cases {
            assert_eq!(from_html(html), "Yes, please.", "{html}");
        }
    }

    #[test]
    fn history_markers_need_text_above_them() {
        // A forwarded alert with nothing above its header is kept whole.
        assert_eq!(
            from_html(
                "<div>From: the monitoring system</div><div>Sent: 3 alerts</div><div>Disk full</div>"
            ),
            "From: the monitoring system\nSent: 3 alerts\nDisk full"
        );
        // All of it quoted: better the quote than nothing.
        assert_eq!(
            from_html("<blockquote><p>Only quoted</p></blockquote>"),
            "Only quoted"
        );
        // Not an attribution.
        assert_eq!(
            from_html("<p>Fixed.</p><p>On Monday we reboot the server.</p>"),
            "Fixed.\n\nOn Monday we reboot the server."
        );
        // A quote in the middle goes, the answer below it stays.
        assert_eq!(
            from_html("<p>See below.</p><blockquote>old</blockquote><p>Answer.</p>"),
            "See below.\n\nAnswer."
        );
    }

    #[test]
    fn forwarded_messages_are_kept() {
        let html = "<div dir=\"ltr\">FYI, the alert from last night.<br><br>\
            <div class=\"gmail_quote gmail_quote_container\"><div dir=\"ltr\" class=\"gmail_attr\">\
            ---------- Forwarded message ---------<br>From: <strong class=\"gmail_sendername\" \
            dir=\"auto\">Monitoring</strong> <span dir=\"auto\">&lt;<a href=\"mailto:mon@example.com\">\
            mon@example.com</a>&gt;</span><br>Date: Mon, 3 Jun 2024 at 02:00<br>Subject: Disk full \
            on srv1<br>To: &lt;<a href=\"mailto:ops@example.com\">ops@example.com</a>&gt;<br></div>\
            <br><br><div dir=\"ltr\">Disk /var on srv1 is 98% full.</div></div></div>";
        assert_eq!(
            from_html(html),
            "FYI, the alert from last night.\n\
             \n\
             ---------- Forwarded message ---------\n\
             From: Monitoring <mon@example.com>\n\
             Date: Mon, 3 Jun 2024 at 02:00\n\
             Subject: Disk full on srv1\n\
             To: <ops@example.com>\n\
             \n\
             Disk /var on srv1 is 98% full."
        );
        // The history inside the forwarded message still goes.
        let html = "<p>FYI</p><p>-------- Forwarded Message --------<br>Subject: x<br>Date: y<br>\
            From: Alice</p><p>Please check.</p><p>On Mon, Bob wrote:</p><blockquote>old</blockquote>";
        assert_eq!(
            from_html(html),
            "FYI\n\n-------- Forwarded Message --------\nSubject: x\nDate: y\nFrom: Alice\n\n\
             Please check."
        );
    }

    #[test]
    fn deep_nesting_costs_no_recursion() {
        let html = format!("{}x{}y", "<div>".repeat(100_000), "<ul><li>".repeat(50_000));
        // Indentation stops growing after a few levels.
        assert_eq!(from_html(&html), format!("x\n\n{}- y", " ".repeat(14)));
        let html = "<table><tr><td>".repeat(50_000) + "z" + &"<blockquote>".repeat(50_000);
        assert_eq!(from_html(&html), "z");
    }

    #[test]
    fn input_past_the_limit_is_cut() {
        let html = "é".repeat(3 << 20);
        assert_eq!(from_html(&html).len(), MAX_INPUT);
    }

    /// What html5ever's tokenizer alone reports: the most attributes on one tag, and the text
    /// it reads as script.
    #[derive(Default)]
    struct Reference {
        most_attributes: std::cell::Cell<usize>,
        in_script: std::cell::Cell<bool>,
        script: RefCell<String>,
    }

    impl TokenSink for Reference {
        type Handle = ();

        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            match token {
                Token::TagToken(tag) => {
                    let most = self.most_attributes.get().max(tag.attrs.len());
                    self.most_attributes.set(most);
                    self.in_script.set(false);
                    if tag.kind == TagKind::StartTag
                        && let Some((kind, _)) = raw_text(tag.name.as_bytes())
                    {
                        self.in_script.set(&*tag.name == "script");
                        return TokenSinkResult::RawData(kind);
                    }
                }
                Token::CharacterTokens(text) if self.in_script.get() => {
                    self.script.borrow_mut().push_str(&text);
                }
                _ => {}
            }
            TokenSinkResult::Continue
        }
    }

    fn reference(html: &str) -> Reference {
        let tokenizer = Tokenizer::new(Reference::default(), TokenizerOpts::default());
        let input = BufferQueue::default();
        input.push_back(StrTendril::from_slice(html));
        let _ = tokenizer.feed(&input);
        tokenizer.end();
        tokenizer.sink
    }

    fn many_attributes(n: usize) -> String {
        let mut tag = String::from("<p");
        for i in 0..n {
            write!(tag, " a{i}").expect("writing to a String");
        }
        tag + ">"
    }

    #[test]
    fn attributes_past_the_limit_are_dropped() {
        let plain = "<p class=\"a\" id=b>x</p><!-- <p c d> --><script>'<p e f>'</script>";
        assert!(matches!(cap_attributes(plain), Cow::Borrowed(_)));
        let html = format!("before{}after<p a=1>end", many_attributes(50_000));
        let capped = cap_attributes(&html);
        assert_eq!(reference(&capped).most_attributes.get(), MAX_ATTRIBUTES);
        assert!(capped.ends_with(" a62 a63 >after<p a=1>end"));
        let started = Instant::now();
        assert_eq!(from_html(&html), "before\n\nafter\n\nend");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn ten_times_the_input_takes_about_ten_times_as_long() {
        fn soup(size: usize) -> String {
            let mut html = String::with_capacity(size + 4096);
            let mut i = 0;
            while html.len() < size {
                write!(
                    html,
                    "<div><span><b>word{i} &amp; more &rsquo;text&nbsp;here <ul><li>item \
                     <table><tr><td>cell<td>cell <script>var s = '<div>'; if (a < b) {{}}</script>\
                     <!-- c{i} --><p class=MsoNormal>para <a href=\"https://example.com/{i}\">link</a>\
                     <blockquote><i>quoted</blockquote> <style>p {{}}</style>"
                )
                .expect("writing to a String");
                if i % 10 == 0 {
                    html.push_str(&many_attributes(100));
                }
                i += 1;
            }
            html
        }
        fn best_of_three(html: &str) -> Duration {
            (0..3)
                .map(|_| {
                    let started = Instant::now();
                    std::hint::black_box(from_html(html));
                    started.elapsed()
                })
                .min()
                .unwrap_or_default()
        }
        let small = best_of_three(&soup(100_000));
        let large = best_of_three(&soup(1_000_000));
        let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
        assert!(ratio < 40.0, "100 KB: {small:?}, 1 MB: {large:?}");
    }

    /// Tag soup from a small grammar. Script bodies are numbered between snowmen, which nothing
    /// else makes.
    fn soup() -> impl Strategy<Value = String> {
        let name = prop::sample::select(
            "p div span b br ul ol li table tr td th h2 blockquote pre a o:p style title \
             noscript template head body html hr img font script xml"
                .split_whitespace()
                .collect::<Vec<_>>(),
        );
        let attribute = prop::sample::select(
            " class=\"gmail_quote\"| class=MsoNormal| id=divRplyFwdMsg| start=3| x| =|/\
             | style='border:none;border-top:solid #E1E1E1 1.0pt'| style=\"mso-list:Ignore\"\
             | style='mso-list:l0 level3 lfo1'| href=\"https://example.com/\"| title='a>b'\
             | start=-9223372036854775808| a=\"never closed"
                .split('|')
                .collect::<Vec<_>>(),
        );
        let open = (name.clone(), prop::collection::vec(attribute, 0..4))
            .prop_map(|(name, attributes)| format!("<{name}{}>", attributes.concat()));
        let close = name.prop_map(|name| format!("</{name}>"));
        let bits = prop::sample::select(
            "&amp;|&lt;|&rsquo;|&mdash;|&nbsp;|&#x42;|&#66;|&#0;|&#xD800;|&#x110000;|&bogus;|&\
             |&amp|&#|&#x;|<|>|</|<!|<!--|-->|<![if !supportLists]>|<![endif]>\
             |<!--[if gte mso 9]>|<![endif]-->|\"|'|=|\0|\u{1}|\r\n| |\u{a0}|·|From: a|Sent: b\
             |On Mon, Alice wrote:|-----Original Message-----"
                .split('|')
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
        let text = "[a-zA-Z0-9 ,.:é\n\t]{0,12}";
        let script = Just("<script>☃¤☃</script>".to_owned());
        prop::collection::vec(prop_oneof![open, close, bits, text, script], 0..60).prop_map(
            |pieces| {
                let numbered = pieces.iter().enumerate();
                numbered
                    .map(|(i, p)| p.replace('¤', &i.to_string()))
                    .collect()
            },
        )
    }

    /// Tags with many distinct attributes, some with `>` in quotes, among comments and scripts.
    fn attribute_soup() -> impl Strategy<Value = String> {
        let attribute =
            prop::sample::select(vec![" a{}", " a{}=\">\"", "/a{}", " a{}='x y'", "\"a{}\""]);
        let tag = (prop::bool::ANY, prop::collection::vec(attribute, 0..200)).prop_map(
            |(end, attributes)| {
                let mut tag = String::from(if end { "</p" } else { "<p" });
                for (i, a) in attributes.iter().enumerate() {
                    tag.push_str(&a.replace("{}", &i.to_string()));
                }
                tag + ">"
            },
        );
        let bits = prop::sample::select(vec![
            "<!--",
            "-->",
            "<script>",
            "</script>",
            "<title>",
            "</title>",
            "\"",
            "'",
            "<!x",
            ">",
            "text ",
        ])
        .prop_map(str::to_owned);
        prop::collection::vec(prop_oneof![tag, bits], 0..20).prop_map(|pieces| pieces.concat())
    }

    fn is_tidy(text: &str) -> bool {
        text == text.trim() && !text.contains("\n\n\n") && text.lines().all(|l| l == l.trim_end())
    }

    proptest! {
        #[test]
        fn any_string_is_fine(html in any::<String>()) {
            let text = from_html(&html);
            prop_assert!(is_tidy(&text), "{text:?}");
        }

        #[test]
        fn tag_soup_is_fine_and_keeps_scripts_out(html in soup()) {
            let text = from_html(&html);
            // Only what the tokenizer reads as script: `</<script>☃` is a bogus comment and text.
            let script = reference(&html).script.into_inner();
            for body in script.split('☃').filter(|b| !b.is_empty()) {
                prop_assert!(!text.contains(&format!("☃{body}☃")), "{text:?}");
            }
            prop_assert!(is_tidy(&text), "{text:?}");
        }

        #[test]
        fn no_tag_reaches_the_tokenizer_with_too_many_attributes(html in attribute_soup()) {
            prop_assert!(reference(&cap_attributes(&html)).most_attributes.get() <= MAX_ATTRIBUTES);
            from_html(&html);
        }
    }
}
