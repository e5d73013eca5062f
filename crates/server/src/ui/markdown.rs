//! Markdown from models, repositories and people, as HTML that cannot run anything.
//!
//! pulldown-cmark renders it; bare URLs become links, images become links (a remote
//! image would load, and tell its server what the page shows); then ammonia keeps only
//! a small set of harmless tags and attributes, and `http`, `https` and `mailto` links.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// The tags kept. No `img`, `input`, `form`, `style`, `script`, frames or media.
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(TAGS.iter().copied().collect())
        .clean_content_tags(["script", "style", "template", "textarea", "title", "noscript"].into_iter().collect())
        .generic_attributes(["title"].into_iter().collect())
        .add_tag_attributes("a", ["href"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("ol", ["start"])
        .add_tag_attributes("td", ["colspan", "rowspan"])
        .add_tag_attributes("th", ["colspan", "rowspan"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect::<HashSet<_>>())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .strip_comments(true)
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            // Only the `language-…` class pulldown-cmark gives fenced code, for the highlighter.
            ("code", "class") => language_class(value).map(Cow::Owned),
            _ => Some(Cow::Borrowed(value)),
        });
    builder
});

fn language_class(value: &str) -> Option<String> {
    let language = value.split_whitespace().find_map(|class| class.strip_prefix("language-"))?;
    let valid = !language.is_empty()
        && language.len() <= 32
        && language.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-' | '_' | '.'));
    valid.then(|| format!("language-{}", language.to_ascii_lowercase()))
}

/// Cleans HTML with the same rules as Markdown's output.
pub fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// Markdown as sanitised HTML.
pub fn render(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events = Vec::new();
    let mut in_link = 0usize;
    let mut in_code = false;
    // Text outside links and code, gathered: the parser splits it at `_` and `*`.
    let mut plain = String::new();
    for event in Parser::new_ext(text, options) {
        if let Event::Text(text) = &event
            && in_link == 0
            && !in_code
        {
            plain.push_str(text);
            continue;
        }
        if !plain.is_empty() {
            linkify(CowStr::from(std::mem::take(&mut plain)), &mut events);
        }
        match event {
            Event::Start(Tag::Image { dest_url, title, .. }) => {
                in_link += 1;
                events.push(Event::Start(Tag::Link {
                    link_type: LinkType::Inline,
                    dest_url,
                    title,
                    id: CowStr::Borrowed(""),
                }));
                events.push(Event::Text(CowStr::Borrowed("🖼 ")));
            }
            Event::End(TagEnd::Image) => {
                in_link = in_link.saturating_sub(1);
                events.push(Event::End(TagEnd::Link));
            }
            Event::Start(Tag::Link { .. }) => {
                in_link += 1;
                events.push(event);
            }
            Event::End(TagEnd::Link) => {
                in_link = in_link.saturating_sub(1);
                events.push(event);
            }
            Event::Start(Tag::CodeBlock(_)) => {
                in_code = true;
                events.push(event);
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = false;
                events.push(event);
            }
            Event::TaskListMarker(done) => {
                events.push(Event::Text(CowStr::Borrowed(if done { "☑ " } else { "☐ " })))
            }
            other => events.push(other),
        }
    }
    if !plain.is_empty() {
        linkify(CowStr::from(plain), &mut events);
    }
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    sanitize(&html)
}

/// Splits text around the `http(s)://` URLs in it, which become links.
fn linkify<'a>(text: CowStr<'a>, out: &mut Vec<Event<'a>>) {
    let mut rest: &str = &text;
    let mut pieces: Vec<Event<'a>> = Vec::new();
    let mut found = false;
    while let Some((start, end)) = find_url(rest) {
        found = true;
        if start > 0 {
            pieces.push(Event::Text(CowStr::from(rest[..start].to_string())));
        }
        let url = rest[start..end].to_string();
        pieces.push(Event::Start(Tag::Link {
            link_type: LinkType::Autolink,
            dest_url: CowStr::from(url.clone()),
            title: CowStr::Borrowed(""),
            id: CowStr::Borrowed(""),
        }));
        pieces.push(Event::Text(CowStr::from(url)));
        pieces.push(Event::End(TagEnd::Link));
        rest = &rest[end..];
    }
    if !found {
        out.push(Event::Text(text));
        return;
    }
    if !rest.is_empty() {
        pieces.push(Event::Text(CowStr::from(rest.to_string())));
    }
    out.extend(pieces);
}

/// The byte range of the first URL in `text`.
fn find_url(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let relative = ["https://", "http://"].iter().filter_map(|scheme| text[from..].find(scheme)).min()?;
        let start = from + relative;
        let boundary = text[..start].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let body_start = start + if text[start..].starts_with("https://") { 8 } else { 7 };
        let mut end = text[body_start..]
            .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '`' | '\''))
            .map_or(text.len(), |i| body_start + i);
        // Sentence punctuation after a URL is not part of it, nor an unbalanced bracket.
        while end > body_start {
            let Some(last) = text[..end].chars().next_back() else { break };
            let unbalanced = match last {
                ')' => text[start..end].matches('(').count() < text[start..end].matches(')').count(),
                ']' => text[start..end].matches('[').count() < text[start..end].matches(']').count(),
                '.' | ',' | ':' | ';' | '!' | '?' | '*' | '_' => true,
                _ => false,
            };
            if !unbalanced {
                break;
            }
            end -= last.len_utf8();
        }
        if boundary && end > body_start {
            return Some((start, end));
        }
        from = body_start;
    }
}

/// Whether a string names a pull request on GitHub: `https://github.com/o/r/pull/N`.
pub fn is_pull_request(url: &str) -> bool {
    let Some(path) = url.strip_prefix("https://github.com/") else { return false };
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    parts.len() == 4 && parts[2] == "pull" && !parts[3].is_empty() && parts[3].bytes().all(|b| b.is_ascii_digit())
}

/// The pull request URLs in a text, in order, once each.
pub fn pull_requests(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some((start, end)) = find_url(rest) {
        let url = &rest[start..end];
        // A link to a PR's files or commits still names the PR.
        let pr = url.split('#').next().unwrap_or(url);
        let pr = match pr.match_indices("/pull/").next() {
            Some((i, _)) => {
                let number: String = pr[i + 6..].chars().take_while(char::is_ascii_digit).collect();
                format!("{}/pull/{number}", &pr[..i])
            }
            None => pr.to_string(),
        };
        if is_pull_request(&pr) && !found.contains(&pr) {
            found.push(pr);
        }
        rest = &rest[end..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_the_usual() {
        let html =
            render("# Title\n\nSome **bold** and `code`.\n\n```rust\nfn main() {}\n```\n\n- [x] done\n- [ ] not");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<code>code</code>"), "{html}");
        assert!(html.contains(r#"<pre><code class="language-rust">fn main() {}"#), "{html}");
        assert!(html.contains("☑ done") && html.contains("☐ not"), "{html}");
    }

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let evil = concat!(
            "Hello <script>window.__xss=1</script> there\n\n",
            "<img src=x onerror=\"window.__xss=1\">\n\n",
            "[click](javascript:alert(1)) and <a href=\"javascript:alert(2)\" onclick=\"x()\">raw</a>\n\n",
            "<div onmouseover=\"x()\" style=\"position:fixed\">box</div>\n\n",
            "<iframe src=\"https://evil.example\"></iframe><svg onload=alert(1)></svg>",
            "<form action=/logout method=post><button>go</button></form>\n\n",
            "```\"><script>alert(3)</script>\n```\n",
            "![tracker](https://evil.example/pixel.png?secret=1)",
        );
        let html = render(evil);
        let lower = html.to_lowercase();
        for forbidden in [
            "<script",
            "onerror",
            "onclick",
            "onmouseover",
            "onload",
            "javascript:",
            "<iframe",
            "<img",
            "<form",
            "style=",
        ] {
            assert!(!lower.contains(forbidden), "{forbidden} survived: {html}");
        }
        assert!(html.contains("box"), "{html}");
        // The image is a plain link now.
        assert!(html.contains(r#"href="https://evil.example/pixel.png?secret=1""#), "{html}");
    }

    #[test]
    fn odd_code_classes_are_dropped() {
        let html = render("```js\" onclick=\"x\nlet a = 1;\n```");
        assert!(!html.contains("onclick"), "{html}");
        assert_eq!(language_class("language-rust"), Some("language-rust".into()));
        assert_eq!(language_class("language-C++"), Some("language-c++".into()));
        assert_eq!(language_class("x language-a\"b"), None);
        assert_eq!(language_class("hljs"), None);
    }

    #[test]
    fn bare_urls_become_links_but_not_in_code() {
        let html = render("See https://github.com/o/r/pull/12. Also (https://example.com/a_(b)) and `https://no.link`");
        assert!(html.contains(
            r#"<a href="https://github.com/o/r/pull/12" target="_blank" rel="noopener noreferrer nofollow">"#
        ));
        assert!(html.contains(">https://github.com/o/r/pull/12</a>."), "{html}");
        assert!(html.contains(r#"href="https://example.com/a_(b)""#), "{html}");
        assert!(html.contains("<code>https://no.link</code>"), "{html}");
        let linked = render("[PR](https://github.com/o/r/pull/3)");
        assert_eq!(linked.matches("<a ").count(), 1, "{linked}");
        // Relative links go nowhere: they would point into this server.
        let relative = render("[x](/api/v1/keys)");
        assert!(!relative.contains("href"), "{relative}");
    }

    #[test]
    fn urls_are_found_in_text() {
        assert_eq!(find_url("go to http://a.b/c, now"), Some((6, 18)));
        assert_eq!(find_url("xhttps://a.b"), None);
        assert_eq!(find_url("https:// nothing"), None);
        assert_eq!(find_url("<https://a.b/x>"), Some((1, 14)));
    }

    #[test]
    fn pull_requests_are_recognised() {
        let text = "Opened https://github.com/acme/app/pull/42 (see https://github.com/acme/app/pull/42/files), \
                    not https://github.com/acme/app/issues/1 or https://github.com/acme/app/pull/x.";
        assert_eq!(pull_requests(text), vec!["https://github.com/acme/app/pull/42".to_string()]);
    }
}
