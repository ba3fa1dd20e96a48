//! A first pass over the HTML before the tokenizer sees it: it finds tags, comments and raw text
//! as the tokenizer will, and drops attributes past the 64th of any tag (html5ever compares each
//! new attribute with all earlier ones on its tag).

use std::borrow::Cow;

use html5ever::tokenizer::states::RawKind;

/// Elements the tokenizer reads as raw text, and whether that text is shown. `<script>` is read
/// as plain raw text rather than with the spec's script-data escapes, which only matter to a
/// browser running it, so that [`cap_attributes`] can find its end with a plain search.
pub(super) const RAW_TEXT: [(&str, RawKind, bool); 9] = [
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

pub(super) fn raw_text(name: &[u8]) -> Option<(RawKind, bool)> {
    RAW_TEXT
        .iter()
        .find(|(n, ..)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(_, kind, shown)| (kind, shown))
}

/// More attributes on one tag than any real element has.
pub(super) const MAX_ATTRIBUTES: usize = 64;

/// html5ever checks each attribute of a tag against the tag's earlier ones, so a tag with n
/// distinct attributes costs n² (a 4 MiB tag of them takes minutes). This pass follows the
/// tokenizer's rules for tags, comments and raw text just far enough to count each tag's
/// attributes, and drops those past the first [`MAX_ATTRIBUTES`]. Usually it changes nothing.
pub(super) fn cap_attributes(html: &str) -> Cow<'_, str> {
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

pub(super) fn after_gt(html: &str, from: usize) -> usize {
    html[from..]
        .find('>')
        .map_or(html.len(), |off| from + off + 1)
}

/// A comment that starts at `lt` ends at the first `-->` (its own dashes count, as in
/// `<!-->`) or `--!>` after the opening.
pub(super) fn comment_end(html: &str, lt: usize) -> usize {
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
pub(super) fn raw_text_end(
    html: &str,
    from: usize,
    name: &[u8],
    cuts: &mut Vec<(usize, usize)>,
) -> usize {
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

pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Follows one tag from the first letter of its name to its closing `>`, as the tokenizer's
/// tag states do; records the attributes past the limit in `cuts`. Returns the position after
/// the tag and its name.
pub(super) fn scan_tag<'a>(
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
