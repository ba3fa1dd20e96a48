//! Lays out the tokenizer's tokens as text (see the parent module's docs).

use std::cell::RefCell;

use html5ever::LocalName;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::scan::raw_text;

/// Renders the tokens; with `strip`, blockquotes are dropped and the places where other quoted
/// history may start are noted.
pub(super) fn render(html: &str, strip: bool) -> Rendered {
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

pub(super) struct Rendered {
    pub(super) out: String,
    /// Where quoted history may start, by markers in the HTML.
    pub(super) history: Vec<usize>,
}

pub(super) struct Sink(RefCell<Render>);

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
pub(super) struct Table {
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
pub(super) struct MsoMarker {
    depth: u32,
    text: String,
}

/// Nested lists indent by two spaces a level, up to this many levels.
pub(super) const MAX_INDENT: usize = 8;

/// The layout state. Elements are handled one token at a time with explicit counters and
/// stacks, so deep nesting costs no recursion.
#[derive(Default)]
pub(super) struct Render {
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

pub(super) fn attr<'a>(tag: &'a Tag, name: &str) -> Option<&'a str> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

pub(super) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// A style attribute in lower case without whitespace, to look for declarations in.
pub(super) fn squeeze(style: &str) -> String {
    style
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The level in an Outlook list paragraph's `mso-list:l0 level2 lfo1`.
pub(super) fn mso_list_level(style: &str) -> usize {
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
pub(super) const MAX_HISTORY_MARKERS: usize = 16;

/// Where a mail client puts the quoted message: Gmail's (or Yahoo's) quote, Outlook's reply
/// header (the `<div>` with only a top border around "From: … Sent: …") or Outlook on the
/// web's `divRplyFwdMsg` (after an `appendonsend` placeholder).
pub(super) fn starts_history_block(tag: &Tag) -> bool {
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
