//! Between the portal's plain text and SDP's HTML fields.

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

const BLOCKS: [&str; 9] = ["br", "p", "/p", "div", "/div", "li", "/li", "tr", "/tr"];

/// SDP HTML → plain text: tags dropped (block tags become line breaks), entities decoded,
/// `<script>`/`<style>` content removed. The result is shown escaped like any other text.
pub fn from_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/' && !tag.starts_with('/'))
            .next()
            .unwrap_or_default();
        rest = &rest[lt + gt + 1..];
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            let end = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
            rest = &rest[end..];
            if let Some(gt) = rest.find('>') {
                rest = &rest[gt + 1..];
            }
            continue;
        }
        if BLOCKS.contains(&name) && !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
    }
    out.push_str(&decode_entities(rest));
    out.trim().to_owned()
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &rest[1..e];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        if let Some((c, e)) = decoded {
            out.push(c);
            rest = &rest[e + 1..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
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
        assert_eq!(from_html("<p>one</p><p>two</p>"), "one\ntwo");
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
}
