//! Markdown as Slack mrkdwn, and mrkdwn split into messages Slack displays well.
//!
//! Models write CommonMark with GitHub extensions; Slack understands only its own "mrkdwn"
//! (<https://api.slack.com/reference/surfaces/formatting>): single-character emphasis markers,
//! `<url|text>` links, no headings, no tables, and `&`, `<`, `>` escaped everywhere. [`to_mrkdwn`]
//! translates the first into the second from pulldown-cmark's events, so that Markdown's own
//! escaping and nesting rules are honoured rather than guessed at with regular expressions.
//! [`split_message`] then cuts the result into messages under [`MAX_MESSAGE_CHARS`], at the most
//! natural boundary available, keeping code blocks fenced in every part.

use std::fmt::Write as _;
use std::iter::Peekable;

use pulldown_cmark::{Alignment, Event, LinkType, Options, Parser, Tag, TagEnd};

/// The most characters rswe puts in one Slack message (Slack truncates `text` beyond 40,000 and
/// displays long messages poorly).
pub const MAX_MESSAGE_CHARS: usize = 3_500;

/// Markdown (CommonMark + GFM tables/strikethrough, as models write it) as Slack mrkdwn.
///
/// Headings become bold lines, lists get `•`/`◦`/`▪` bullets (ordered lists keep their numbers),
/// tables become aligned code blocks, links become `<url|text>`, and bare `http(s)://`/`www.`
/// URLs become `<url>` so Slack never guesses where they end. Text is escaped (`&`, `<`, `>`)
/// everywhere Slack requires it, code included. Never panics; the output has no trailing
/// whitespace and at most one blank line between blocks.
pub fn to_mrkdwn(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events = Parser::new_ext(markdown, options).peekable();
    let mut renderer = Renderer::default();
    while let Some(event) = events.next() {
        renderer.event(event, &mut events);
    }
    renderer.finish()
}

/// What separates the next block from what was written before it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Separator {
    /// Nothing yet (start of a container): the block continues the current line position.
    #[default]
    None,
    /// A line break: consecutive list items.
    Newline,
    /// An empty line: paragraphs and other blocks.
    Blank,
}

/// A block that prefixes every line written inside it.
#[derive(Debug)]
enum Container {
    /// `> ` on every line.
    Quote,
    /// A list; `next` is the number of the next item of an ordered list.
    List { next: Option<u64> },
    /// A list item: its marker on its first line, four spaces on the following ones (so nested
    /// lists are indented by four spaces per level).
    Item { marker: String, written: bool, bullet: bool },
}

/// Inline content collected before it can be written: a link's text is only known at its end,
/// a heading must not be wrapped in `*…*` if empty, and table cells are laid out at the end.
#[derive(Debug)]
struct Capture {
    kind: CaptureKind,
    /// The content as mrkdwn (escaped, with emphasis markers).
    text: String,
    /// The content as plain text (unescaped, no markers): for comparisons, alt text and tables.
    plain: String,
}

#[derive(Debug)]
enum CaptureKind {
    Heading,
    Link { link_type: LinkType, url: String },
    Image { url: String },
    Cell,
}

/// An open emphasis span, to emit the matching closing marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emphasis {
    Italic,
    Bold,
    Strike,
    /// `***x***`: CommonMark nests strong inside emphasis; emitted as `*_x_*` (bold outermost).
    BoldItalic,
}

/// A table being collected; written as a code block once all its cells are known.
#[derive(Debug, Default)]
struct Table {
    alignments: Vec<Alignment>,
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    header_rows: usize,
}

/// Turns pulldown-cmark events into mrkdwn, line by line, prefixing each line for the
/// containers (quotes, list items) it is in.
#[derive(Debug, Default)]
struct Renderer {
    out: String,
    containers: Vec<Container>,
    /// Whether the current line has been started (its prefix written).
    line_open: bool,
    /// Whether the last line written is empty (so no second blank line is added).
    last_blank: bool,
    pending: Separator,
    /// Inside a code block or table: lines are verbatim, trailing spaces kept.
    in_code: bool,
    /// Consecutive text events, joined so bare URLs split across events are still found.
    text: String,
    captures: Vec<Capture>,
    emphasis: Vec<Emphasis>,
    table: Option<Table>,
    /// An HTML block's text, tidied and written at its end.
    html: Option<String>,
}

impl Renderer {
    fn event<'a, I: Iterator<Item = Event<'a>>>(&mut self, event: Event<'a>, rest: &mut Peekable<I>) {
        if let Event::Text(text) = &event {
            if self.in_code {
                self.write_lines(&escape(text));
            } else if let Some(html) = &mut self.html {
                html.push_str(text);
            } else {
                self.text.push_str(text);
            }
            return;
        }
        self.flush_text();
        match event {
            Event::Start(tag) => self.start(tag, rest),
            Event::End(tag) => self.end(tag, rest),
            Event::Text(_) => {}
            Event::Code(code) | Event::InlineMath(code) => self.inline(&format!("`{}`", escape(&code)), &code),
            Event::DisplayMath(math) => {
                self.block_start();
                self.write_code_block(&escape(&math));
                self.pending = Separator::Blank;
            }
            Event::Html(html) => match &mut self.html {
                Some(buffer) => buffer.push_str(&html),
                None => self.inline(&escape(&html), &html),
            },
            Event::InlineHtml(html) => self.inline(&escape(&html), &html),
            Event::FootnoteReference(name) => {
                let reference = format!("[^{name}]");
                self.inline(&escape(&reference), &reference);
            }
            Event::SoftBreak | Event::HardBreak => self.line_break(),
            Event::Rule => {
                self.block_start();
                self.write("———");
                self.pending = Separator::Blank;
            }
            Event::TaskListMarker(done) => self.task(done),
        }
    }

    fn start<'a, I: Iterator<Item = Event<'a>>>(&mut self, tag: Tag<'a>, rest: &mut Peekable<I>) {
        match tag {
            Tag::Paragraph
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => self.block_start(),
            Tag::Heading { .. } => {
                self.block_start();
                self.captures.push(Capture::new(CaptureKind::Heading));
            }
            Tag::BlockQuote(_) => {
                self.block_start();
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(_) => {
                self.block_start();
                self.write("```");
                self.newline();
                self.in_code = true;
            }
            Tag::HtmlBlock => {
                self.block_start();
                self.html = Some(String::new());
            }
            Tag::List(start) => {
                self.block_start();
                self.containers.push(Container::List { next: start });
            }
            Tag::Item => {
                self.block_start();
                let (marker, bullet) = self.next_marker();
                self.containers.push(Container::Item { marker, written: false, bullet });
            }
            Tag::Table(alignments) => {
                self.block_start();
                self.table = Some(Table { alignments, ..Table::default() });
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(table) = &mut self.table {
                    table.row.clear();
                }
            }
            Tag::TableCell => self.captures.push(Capture::new(CaptureKind::Cell)),
            Tag::Emphasis => {
                if matches!(rest.peek(), Some(Event::Start(Tag::Strong))) {
                    rest.next();
                    let bold = self.bold_marker();
                    self.inline(&format!("{bold}_"), "");
                    self.emphasis.push(Emphasis::BoldItalic);
                } else {
                    self.inline("_", "");
                    self.emphasis.push(Emphasis::Italic);
                }
            }
            Tag::Strong => {
                let bold = self.bold_marker();
                self.inline(bold, "");
                self.emphasis.push(Emphasis::Bold);
            }
            Tag::Strikethrough => {
                self.inline("~", "");
                self.emphasis.push(Emphasis::Strike);
            }
            Tag::Superscript | Tag::Subscript => {}
            Tag::Link { link_type, dest_url, .. } => {
                self.captures.push(Capture::new(CaptureKind::Link { link_type, url: dest_url.into_string() }));
            }
            Tag::Image { dest_url, .. } => {
                self.captures.push(Capture::new(CaptureKind::Image { url: dest_url.into_string() }));
            }
        }
    }

    fn end<'a, I: Iterator<Item = Event<'a>>>(&mut self, tag: TagEnd, rest: &mut Peekable<I>) {
        match tag {
            TagEnd::Paragraph
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_) => self.pending = Separator::Blank,
            TagEnd::Heading(_) => {
                if let Some(capture) = self.captures.pop() {
                    let text = capture.text.trim();
                    if !text.is_empty() {
                        self.write(&format!("*{text}*"));
                    }
                }
                self.pending = Separator::Blank;
            }
            TagEnd::BlockQuote(_) => {
                self.pop_container(|c| matches!(c, Container::Quote));
                self.pending = Separator::Blank;
            }
            TagEnd::CodeBlock => {
                if self.line_open {
                    self.newline();
                }
                self.write("```");
                self.in_code = false;
                self.pending = Separator::Blank;
            }
            TagEnd::HtmlBlock => {
                if let Some(html) = self.html.take() {
                    self.write_lines(&escape(&tidy_lines(&html)));
                }
                self.pending = Separator::Blank;
            }
            TagEnd::List(_) => {
                self.pop_container(|c| matches!(c, Container::List { .. }));
                self.pending = Separator::Blank;
            }
            TagEnd::Item => {
                if matches!(self.containers.last(), Some(Container::Item { written: false, .. })) {
                    // An empty item still shows its bullet.
                    self.open_line();
                }
                self.pop_container(|c| matches!(c, Container::Item { .. }));
                self.pending = Separator::Newline;
            }
            TagEnd::Table => self.end_table(),
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    table.rows.push(std::mem::take(&mut table.row));
                    table.header_rows = table.rows.len();
                }
            }
            TagEnd::TableRow => {
                if let Some(table) = &mut self.table {
                    table.rows.push(std::mem::take(&mut table.row));
                }
            }
            TagEnd::TableCell => {
                if let Some(capture) = self.captures.pop()
                    && let Some(table) = &mut self.table
                {
                    table.row.push(capture.plain.trim().to_owned());
                }
            }
            TagEnd::Emphasis => {
                let closing = match self.emphasis.pop() {
                    Some(Emphasis::BoldItalic) => format!("_{}", self.bold_marker()),
                    _ => "_".to_owned(),
                };
                self.inline(&closing, "");
            }
            TagEnd::Strong => {
                let bold = self.bold_marker();
                if let Some(top) = self.emphasis.last_mut()
                    && *top == Emphasis::BoldItalic
                {
                    if matches!(rest.peek(), Some(Event::End(TagEnd::Emphasis))) {
                        rest.next();
                        self.emphasis.pop();
                        self.inline(&format!("_{bold}"), "");
                    } else {
                        // `***a** b*`: bold ends first, but `*_` was opened bold-first, so close
                        // both and reopen the italics.
                        *top = Emphasis::Italic;
                        if !bold.is_empty() {
                            self.inline(&format!("_{bold}_"), "");
                        }
                    }
                } else {
                    self.emphasis.pop();
                    self.inline(bold, "");
                }
            }
            TagEnd::Strikethrough => {
                self.emphasis.pop();
                self.inline("~", "");
            }
            TagEnd::Superscript | TagEnd::Subscript => {}
            TagEnd::Link | TagEnd::Image => self.end_link(),
        }
    }

    /// Bold inside a heading (already bold) would end the heading's bold, so it is dropped.
    fn bold_marker(&self) -> &'static str {
        if self.captures.iter().any(|c| matches!(c.kind, CaptureKind::Heading)) { "" } else { "*" }
    }

    /// The marker of a new item of the innermost list: its number, or a bullet by depth.
    fn next_marker(&mut self) -> (String, bool) {
        let depth = self.containers.iter().filter(|c| matches!(c, Container::List { .. })).count();
        let next = self.containers.iter_mut().rev().find_map(|c| match c {
            Container::List { next } => Some(next),
            _ => None,
        });
        match next {
            Some(Some(number)) => {
                let marker = format!("{number}. ");
                *number = number.saturating_add(1);
                (marker, false)
            }
            _ => {
                let bullet = match depth {
                    0 | 1 => "• ",
                    2 => "◦ ",
                    _ => "▪ ",
                };
                (bullet.to_owned(), true)
            }
        }
    }

    /// A task item's checkbox replaces its bullet (or follows its number).
    fn task(&mut self, done: bool) {
        let checkbox = if done { "☑ " } else { "☐ " };
        if let Some(Container::Item { marker, written: false, bullet }) = self.containers.last_mut() {
            if *bullet {
                *marker = checkbox.to_owned();
            } else {
                marker.push_str(checkbox);
            }
        } else {
            self.inline(checkbox, checkbox);
        }
    }

    fn end_link(&mut self) {
        let Some(capture) = self.captures.pop() else { return };
        let label_plain = capture.plain.trim();
        let (url, label) = match capture.kind {
            CaptureKind::Link { link_type: LinkType::Email, url } if !url.starts_with("mailto:") => {
                (format!("mailto:{url}"), capture.text.trim().to_owned())
            }
            CaptureKind::Link { url, .. } => (url, capture.text.trim().to_owned()),
            // Alt text is plain text: formatting inside it means nothing to Slack.
            CaptureKind::Image { url } => (url, escape(label_plain)),
            CaptureKind::Heading | CaptureKind::Cell => {
                let text = capture.text.trim().to_owned();
                self.inline(&text, label_plain);
                return;
            }
        };
        // Slack links cannot nest (an image inside a link keeps its alt text), and a relative
        // URL (`#section`, `src/main.rs`) leads nowhere from Slack, so only the text remains.
        let in_link = self.captures.iter().any(|c| matches!(c.kind, CaptureKind::Link { .. }));
        if in_link || !is_absolute_url(&url) {
            let label_plain = label_plain.to_owned();
            self.inline(&escape(&label_plain), &label_plain);
            return;
        }
        let target = encode_url(&url);
        if label_plain.is_empty() || label_plain == url {
            self.inline(&format!("<{target}>"), &url);
        } else {
            let plain = format!("{label_plain} ({url})");
            self.inline(&format!("<{target}|{label}>"), &plain);
        }
    }

    fn end_table(&mut self) {
        let Some(table) = self.table.take() else { return };
        self.write("```");
        self.newline();
        self.in_code = true;
        for line in render_table(&table) {
            self.write(&escape(&line));
            self.newline();
        }
        self.write("```");
        self.in_code = false;
        self.pending = Separator::Blank;
    }

    /// Writes the buffered text, turning bare URLs into `<url>` unless inside a link (links do
    /// not nest) or a table (a code block, where links are not links).
    fn flush_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        let linkify = !self.captures.iter().any(|c| !matches!(c.kind, CaptureKind::Heading));
        if !linkify {
            self.inline(&escape(&text), &text);
            return;
        }
        for piece in bare_urls(&text) {
            match piece {
                Piece::Text(text) => self.inline(&escape(text), text),
                Piece::Url { url, label } if url == label => self.inline(&format!("<{}>", encode_url(&url)), &url),
                Piece::Url { url, label } => {
                    self.inline(&format!("<{}|{}>", encode_url(&url), escape(label)), &url);
                }
            }
        }
    }

    /// Inline content: into the innermost capture if any (where line breaks become spaces, as
    /// link texts and headings are single-line in Slack), else onto the current line.
    fn inline(&mut self, text: &str, plain: &str) {
        if let Some(capture) = self.captures.last_mut() {
            capture.text.push_str(&text.replace('\n', " "));
            capture.plain.push_str(&plain.replace('\n', " "));
        } else {
            self.write_lines(text);
        }
    }

    fn line_break(&mut self) {
        if self.captures.is_empty() {
            self.newline();
        } else {
            self.inline(" ", " ");
        }
    }

    fn write_code_block(&mut self, code: &str) {
        self.write("```");
        self.newline();
        self.in_code = true;
        self.write_lines(code.strip_suffix('\n').unwrap_or(code));
        if self.line_open {
            self.newline();
        }
        self.write("```");
        self.in_code = false;
    }

    fn pop_container(&mut self, is_it: impl Fn(&Container) -> bool) {
        if let Some(index) = self.containers.iter().rposition(is_it) {
            self.containers.truncate(index);
        }
    }

    /// Ends the current line and, after a previous block, leaves the blank line that separates
    /// blocks (or just the line break that separates list items).
    fn block_start(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if self.line_open {
            self.newline();
        }
        if pending == Separator::Blank && !self.out.is_empty() && !self.last_blank {
            self.newline();
        }
    }

    /// Writes text that may span lines, each line prefixed for its containers.
    fn write_lines(&mut self, text: &str) {
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                self.newline();
            }
            self.write(line.strip_suffix('\r').unwrap_or(line));
        }
    }

    /// Writes text without line breaks on the current line, starting it if needed.
    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.open_line();
        self.out.push_str(text);
    }

    fn open_line(&mut self) {
        if self.line_open {
            return;
        }
        for container in &mut self.containers {
            match container {
                Container::Quote => self.out.push_str("> "),
                Container::List { .. } => {}
                Container::Item { written: true, .. } => self.out.push_str("    "),
                Container::Item { marker, written, .. } => {
                    self.out.push_str(marker);
                    *written = true;
                }
            }
        }
        self.line_open = true;
        self.last_blank = false;
    }

    /// Ends the current line; an empty line still carries its quote markers (else it would end
    /// the quote in Slack), and no line keeps trailing spaces except verbatim code.
    fn newline(&mut self) {
        if self.line_open {
            if !self.in_code {
                let kept = self.out.trim_end_matches([' ', '\t']).len();
                self.out.truncate(kept);
            }
        } else {
            let mut prefix = String::new();
            for container in &self.containers {
                match container {
                    Container::Quote => prefix.push_str("> "),
                    Container::List { .. } => {}
                    Container::Item { .. } => prefix.push_str("    "),
                }
            }
            self.out.push_str(prefix.trim_end());
            self.last_blank = true;
        }
        self.out.push('\n');
        self.line_open = false;
    }

    fn finish(mut self) -> String {
        self.flush_text();
        if let Some(html) = self.html.take() {
            self.write_lines(&escape(&tidy_lines(&html)));
        }
        let trimmed = self.out.trim_end().trim_start_matches('\n');
        trimmed.to_owned()
    }
}

impl Capture {
    fn new(kind: CaptureKind) -> Self {
        Self { kind, text: String::new(), plain: String::new() }
    }
}

/// Escapes the three characters Slack reserves for its own markup (`<…>` links and mentions,
/// `&…;` entities). Slack requires it even inside code.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Makes a URL safe inside `<url|text>`: `|` would end the URL, `<`/`>` the link, whitespace
/// would break it; they are percent-encoded, which leaves the URL pointing at the same place.
fn encode_url(url: &str) -> String {
    let mut encoded = String::with_capacity(url.len());
    for c in url.chars() {
        if matches!(c, '|' | '<' | '>') || c.is_whitespace() || c.is_control() {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(encoded, "%{byte:02X}");
            }
        } else {
            encoded.push(c);
        }
    }
    encoded
}

/// Whether a link destination has a scheme (`https:`, `mailto:`, …), i.e. leads somewhere when
/// clicked in Slack.
fn is_absolute_url(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A piece of text: plain, or a bare URL found in it.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `url` is what the link leads to (`www.` gets `http://`), `label` what was written.
    Url {
        url: String,
        label: &'a str,
    },
}

/// Finds bare URLs the way GitHub's autolink extension does: `http://`, `https://` or `www.`
/// after a boundary, up to whitespace or `<`, without trailing punctuation or an unbalanced `)`.
fn bare_urls(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut last = 0;
    let mut previous: Option<char> = None;
    let mut index = 0;
    while let Some(rest) = text.get(index..) {
        let Some(c) = rest.chars().next() else { break };
        let at_boundary = previous.is_none_or(|p| p.is_whitespace() || "*_~([{\"'".contains(p));
        if at_boundary
            && let Some(len) = url_len(rest)
            && let Some(label) = rest.get(..len)
        {
            if let Some(before) = text.get(last..index)
                && !before.is_empty()
            {
                pieces.push(Piece::Text(before));
            }
            let url = if starts_with_ignore_case(label, "www.") { format!("http://{label}") } else { label.to_owned() };
            pieces.push(Piece::Url { url, label });
            index += len;
            last = index;
            previous = label.chars().last();
            continue;
        }
        previous = Some(c);
        index += c.len_utf8();
    }
    if let Some(after) = text.get(last..)
        && !after.is_empty()
    {
        pieces.push(Piece::Text(after));
    }
    pieces
}

/// The length in bytes of the URL starting `text`, if one does.
fn url_len(text: &str) -> Option<usize> {
    let scheme = ["https://", "http://", "www."].into_iter().find(|s| starts_with_ignore_case(text, s))?;
    let end = text.find(|c: char| c.is_whitespace() || c.is_control() || c == '<').unwrap_or(text.len());
    let mut url = text.get(..end)?;
    while let Some(last) = url.chars().last() {
        let unbalanced = last == ')' && url.matches('(').count() < url.matches(')').count();
        if !unbalanced && !"?!.,:*_~'\";".contains(last) {
            break;
        }
        url = url.get(..url.len() - last.len_utf8())?;
    }
    let host = url.get(scheme.len()..)?;
    host.chars().next().filter(|c| c.is_alphanumeric()).map(|_| url.len())
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// An HTML block's lines without trailing spaces, runs of empty lines, or empty lines at its ends.
fn tidy_lines(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// A table's lines, columns padded to align (Slack has no tables, but a code block keeps them
/// aligned in a monospace font). A separator follows the header row.
fn render_table(table: &Table) -> Vec<String> {
    let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0).max(table.alignments.len());
    let mut widths = vec![0; columns];
    for row in &table.rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut lines = Vec::new();
    for (index, row) in table.rows.iter().enumerate() {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(column, &width)| {
                let cell = row.get(column).map_or("", String::as_str);
                let alignment = table.alignments.get(column).copied().unwrap_or(Alignment::None);
                pad(cell, width, alignment)
            })
            .collect();
        lines.push(cells.join(" | ").trim_end().to_owned());
        if index + 1 == table.header_rows {
            let rules: Vec<String> = widths.iter().map(|&width| "-".repeat(width.max(1))).collect();
            lines.push(rules.join("-+-"));
        }
    }
    lines
}

fn pad(cell: &str, width: usize, alignment: Alignment) -> String {
    let space = width.saturating_sub(cell.chars().count());
    let (left, right) = match alignment {
        Alignment::Right => (space, 0),
        Alignment::Center => (space / 2, space - space / 2),
        Alignment::Left | Alignment::None => (0, space),
    };
    format!("{}{cell}{}", " ".repeat(left), " ".repeat(right))
}

/// Splits mrkdwn text into messages of at most `limit` characters (chars, not bytes), at the best
/// boundary available: between paragraphs, then lines, then words, and never inside a code block
/// (``` … ```) without closing it at the end of one part and reopening it at the start of the next.
///
/// A boundary is only taken if it fills at least half the part, so a short paragraph followed by a
/// long one does not make a near-empty message; words are not cut inside `<url|text>` links or
/// `&…;` entities unless one is longer than a whole part; whitespace at the cuts is dropped.
/// Returns no parts for blank text; every part is non-empty. Limits too small to hold fences (under
/// 24) split code blocks without reopening them.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let layout = Layout::new(text, limit);
    let chars = &layout.chars;
    let end = chars.iter().rposition(|c| !c.is_whitespace()).map_or(0, |last| last + 1);
    let mut parts = Vec::new();
    let mut start = layout.skip_whitespace(0);
    while start < end {
        let open = layout.prefix_at(start).map(|prefix| format!("{prefix}```\n")).unwrap_or_default();
        let open_len = open.chars().count();
        if open_len.saturating_add(end - start) <= limit {
            parts.push(open + &layout.slice(start, end));
            break;
        }
        let window_has_code = (start..start.saturating_add(limit).min(end)).any(|i| layout.prefix_at(i).is_some());
        let reserve = if window_has_code { layout.close_reserve } else { 0 };
        let budget = limit.saturating_sub(open_len + reserve).max(1);
        let cut = layout.best_cut(start, budget).min(end);
        let mut body_end = cut;
        while body_end > start && chars.get(body_end - 1).is_some_and(|c| c.is_whitespace()) {
            body_end -= 1;
        }
        if body_end > start {
            let close = layout.prefix_at(cut).map(|prefix| format!("\n{prefix}```")).unwrap_or_default();
            parts.push(open + &layout.slice(start, body_end) + &close);
        }
        start = cut;
        if chars.get(start).is_some_and(|c| c.is_whitespace()) {
            start += 1;
        }
        if layout.prefix_at(start).is_none() {
            // Outside code, whitespace at the start of a part is noise; inside, it is indentation.
            start = layout.skip_whitespace(start);
        }
    }
    parts
}

/// Limits under this do not reopen code blocks: the fences would leave little room for content.
const MIN_FENCED_LIMIT: usize = 24;

/// Where the text's code blocks, lines and unbreakable spans are, by char index.
struct Layout {
    chars: Vec<char>,
    /// For each position (the gap before char `i`, up to `chars.len()`), the code block it is in.
    block: Vec<Option<usize>>,
    /// Each code block's opening-fence prefix (`> ` in a quote, spaces in a list), repeated on the
    /// fences added around a cut so the block stays inside its quote or list item.
    prefixes: Vec<String>,
    /// The room the longest closing fence needs.
    close_reserve: usize,
    /// Each char's line.
    line_of: Vec<usize>,
    /// Lines holding a code fence.
    fence_line: Vec<bool>,
    /// Lines holding only whitespace and `>` (blank, possibly quoted).
    blank_line: Vec<bool>,
    /// For a position inside a `<…>` link or an `&…;` entity, where that span starts.
    protected: Vec<Option<usize>>,
}

impl Layout {
    fn new(text: &str, limit: usize) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let fenced = limit >= MIN_FENCED_LIMIT;
        let mut block = vec![None; n + 1];
        let mut prefixes: Vec<String> = Vec::new();
        let mut line_of = Vec::with_capacity(n);
        let mut fence_line = vec![false];
        let mut blank_line = vec![true];
        let mut current = None;
        let mut line = 0;
        let mut line_start = 0;
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            let run = chars.get(i..).map_or(0, |rest| rest.iter().take_while(|&&r| r == '`').count());
            if fenced && run >= 3 {
                for slot in block.iter_mut().skip(i).take(run) {
                    *slot = current;
                }
                line_of.extend(std::iter::repeat_n(line, run));
                current = match current {
                    Some(_) => None,
                    None => {
                        let before: String = chars.get(line_start..i).unwrap_or_default().iter().collect();
                        let usable = before.chars().all(|c| matches!(c, ' ' | '\t' | '>')) && before.len() <= limit / 4;
                        prefixes.push(if usable { before } else { String::new() });
                        Some(prefixes.len() - 1)
                    }
                };
                if let Some(flag) = fence_line.get_mut(line) {
                    *flag = true;
                }
                if let Some(flag) = blank_line.get_mut(line) {
                    *flag = false;
                }
                i += run;
                continue;
            }
            if let Some(slot) = block.get_mut(i) {
                *slot = current;
            }
            line_of.push(line);
            if c == '\n' {
                line += 1;
                line_start = i + 1;
                fence_line.push(false);
                blank_line.push(true);
            } else if !(c.is_whitespace() || c == '>')
                && let Some(flag) = blank_line.get_mut(line)
            {
                *flag = false;
            }
            i += 1;
        }
        if let Some(slot) = block.get_mut(n) {
            *slot = current;
        }
        let close_reserve = 4 + prefixes.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        let protected = protected_spans(&chars);
        Self { chars, block, prefixes, close_reserve, line_of, fence_line, blank_line, protected }
    }

    /// The fence prefix of the code block at `position`, if it is inside one.
    fn prefix_at(&self, position: usize) -> Option<&str> {
        let block = self.block.get(position).copied().flatten()?;
        Some(self.prefixes.get(block).map_or("", String::as_str))
    }

    fn slice(&self, from: usize, to: usize) -> String {
        self.chars.get(from..to).unwrap_or_default().iter().collect()
    }

    fn skip_whitespace(&self, mut position: usize) -> usize {
        while self.chars.get(position).is_some_and(|c| c.is_whitespace()) {
            position += 1;
        }
        position
    }

    fn is_fence_line(&self, line: usize) -> bool {
        self.fence_line.get(line).copied().unwrap_or(false)
    }

    /// Where to end a part starting at `start` with at most `budget` chars: the gap before the
    /// returned position, always after `start`.
    fn best_cut(&self, start: usize, budget: usize) -> usize {
        const CLASSES: usize = 5;
        let last = start.saturating_add(budget).min(self.chars.len().saturating_sub(1));
        // Per class, from best to worst, the last candidate: paragraph break, line break, line
        // break inside code, space, space inside code.
        let mut best: [Option<usize>; CLASSES] = [None; CLASSES];
        for position in (start + 1..=last).rev() {
            if let Some(class) = self.cut_class(position)
                && let Some(slot) = best.get_mut(class)
                && slot.is_none()
            {
                *slot = Some(position);
            }
        }
        for threshold in [budget / 2, 0] {
            if let Some(position) = best.iter().flatten().find(|&&p| p - start >= threshold) {
                return *position;
            }
        }
        self.hard_cut(start, budget)
    }

    /// How good a cut before `position` is (lower is better), or `None` if it is no boundary.
    fn cut_class(&self, position: usize) -> Option<usize> {
        let c = *self.chars.get(position)?;
        let line = self.line_of.get(position).copied().unwrap_or(0);
        let in_code = self.prefix_at(position).is_some();
        if c == '\n' {
            if !in_code {
                let next_blank = self.blank_line.get(line + 1).copied().unwrap_or(false);
                return Some(if next_blank { 0 } else { 1 });
            }
            // Not right after the opening fence nor right before the closing one: that part
            // would hold an empty code block.
            return (!self.is_fence_line(line) && !self.is_fence_line(line + 1)).then_some(2);
        }
        if !c.is_whitespace() || self.protected.get(position).copied().flatten().is_some() {
            return None;
        }
        if !in_code { Some(3) } else { (!self.is_fence_line(line)).then_some(4) }
    }

    /// No boundary: cut at the budget, but not inside a link, an entity, a backtick run or a
    /// character sequence joined into one symbol (ZWJ emoji, combining accents), if avoidable.
    fn hard_cut(&self, start: usize, budget: usize) -> usize {
        let mut cut = start.saturating_add(budget).min(self.chars.len());
        if let Some(Some(span_start)) = self.protected.get(cut)
            && *span_start > start
        {
            cut = *span_start;
        }
        let is_backtick = |i: usize| self.chars.get(i) == Some(&'`');
        if is_backtick(cut) && cut > 0 && is_backtick(cut - 1) {
            let mut run_start = cut;
            while run_start > start && is_backtick(run_start - 1) {
                run_start -= 1;
            }
            if run_start > start {
                cut = run_start;
            }
        }
        let joined = |i: usize| {
            self.chars.get(i).copied().is_some_and(is_joining) || (i > 0 && self.chars.get(i - 1) == Some(&'\u{200D}'))
        };
        let mut candidate = cut;
        while candidate > start + 1 && joined(candidate) {
            candidate -= 1;
        }
        if !joined(candidate) {
            cut = candidate;
        }
        cut.max(start + 1)
    }
}

/// Chars that attach to the previous one (a cut before them would split a visible symbol).
fn is_joining(c: char) -> bool {
    matches!(c, '\u{200D}' | '\u{20E3}' | '\u{0300}'..='\u{036F}' | '\u{FE00}'..='\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}')
}

/// For each position strictly inside a `<…>` (on one line) or an `&name;` entity, the span's start.
fn protected_spans(chars: &[char]) -> Vec<Option<usize>> {
    let mut protected = vec![None; chars.len() + 1];
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let span_end = match c {
            '<' => chars
                .iter()
                .enumerate()
                .skip(i + 1)
                .find(|&(_, &c)| matches!(c, '>' | '<' | '\n'))
                .filter(|&(_, &c)| c == '>')
                .map(|(j, _)| j),
            '&' => chars
                .iter()
                .enumerate()
                .skip(i + 1)
                .take(12)
                .find(|&(_, &c)| !(c.is_ascii_alphanumeric() || c == '#'))
                .filter(|&(j, &c)| c == ';' && j > i + 1)
                .map(|(j, _)| j),
            _ => None,
        };
        match span_end {
            Some(j) => {
                for slot in protected.iter_mut().take(j + 1).skip(i + 1) {
                    *slot = Some(i);
                }
                i = j + 1;
            }
            None => i += 1,
        }
    }
    protected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_markdown_to_mrkdwn() {
        let cases: &[(&str, &str)] = &[
            // Emphasis.
            ("**bold** and __bold__", "*bold* and *bold*"),
            ("*italic* and _italic_", "_italic_ and _italic_"),
            ("~~strike~~", "~strike~"),
            ("***both***", "*_both_*"),
            ("**bold _italic_ bold**", "*bold _italic_ bold*"),
            ("***a** b*", "*_a_*_ b_"),
            // Code.
            ("use `Vec<T>` & `a && b`", "use `Vec&lt;T&gt;` &amp; `a &amp;&amp; b`"),
            (
                "```rust\nfn f() -> Option<&str> {\n\n    None\n}\n```",
                "```\nfn f() -&gt; Option&lt;&amp;str&gt; {\n\n    None\n}\n```",
            ),
            ("text\n\n    indented <code>\n    more", "text\n\n```\nindented &lt;code&gt;\nmore\n```"),
            // Links and images.
            ("[the docs](https://docs.rs/x?a=1&b=2)", "<https://docs.rs/x?a=1&b=2|the docs>"),
            ("[a **bold** link](https://x.io)", "<https://x.io|a *bold* link>"),
            ("[https://x.io](https://x.io)", "<https://x.io>"),
            ("<https://x.io/path>", "<https://x.io/path>"),
            ("mail <me@x.io>", "mail <mailto:me@x.io|me@x.io>"),
            ("see https://x.io/a_(b). Next", "see <https://x.io/a_(b)>. Next"),
            ("(https://x.io/q?a=1&b=2)", "(<https://x.io/q?a=1&b=2>)"),
            ("visit www.x.io, now", "visit <http://www.x.io|www.x.io>, now"),
            ("no link: xhttps://x.io", "no link: xhttps://x.io"),
            ("[a|b <c>](https://x.io/a|b)", "<https://x.io/a%7Cb|a|b &lt;c&gt;>"),
            ("[spaced](<https://x.io/a b>)", "<https://x.io/a%20b|spaced>"),
            ("[section](#usage) and [file](src/main.rs)", "section and file"),
            ("![a cat](https://x.io/cat.png)", "<https://x.io/cat.png|a cat>"),
            ("![](https://x.io/cat.png)", "<https://x.io/cat.png>"),
            ("[![badge](https://x.io/b.svg)](https://x.io)", "<https://x.io|badge>"),
            // Headings.
            ("# Title\nText", "*Title*\n\nText"),
            ("### Deep *one*", "*Deep _one_*"),
            ("## With **bold**", "*With bold*"),
            ("Setext\n======", "*Setext*"),
            // Lists.
            ("- a\n- b", "• a\n• b"),
            ("* a\n  * b\n    * c\n* d", "• a\n    ◦ b\n        ▪ c\n• d"),
            ("3. three\n4. four", "3. three\n4. four"),
            ("1. one\n   - sub\n2. two", "1. one\n    ◦ sub\n2. two"),
            ("- [ ] todo\n- [x] done", "☐ todo\n☑ done"),
            ("1. [x] first", "1. ☑ first"),
            ("- a\n\n- b\n\n  more", "• a\n• b\n\n    more"),
            ("- item\n\n  ```\n  code\n  ```", "• item\n\n    ```\n    code\n    ```"),
            ("- \n- b", "•\n• b"),
            ("Para\n- a\n\nAfter", "Para\n\n• a\n\nAfter"),
            // Quotes.
            ("> quoted\n> lines", "> quoted\n> lines"),
            ("> one\n>\n> two", "> one\n>\n> two"),
            ("> outer\n>\n> > inner", "> outer\n>\n> > inner"),
            ("> - a\n> - b", "> • a\n> • b"),
            ("> ```\n> x\n>\n> y\n> ```", "> ```\n> x\n>\n> y\n> ```"),
            // Rules, breaks, paragraphs.
            ("above\n\n---\n\nbelow", "above\n\n———\n\nbelow"),
            ("soft\nbreak and hard  \nbreak", "soft\nbreak and hard\nbreak"),
            ("one\n\n\n\ntwo", "one\n\ntwo"),
            // Tables.
            (
                "| Name | Qty |\n|:-----|----:|\n| apple | 3 |\n| fig | 12 |",
                "```\nName  | Qty\n------+----\napple |   3\nfig   |  12\n```",
            ),
            ("| a | b |\n|---|:-:|\n| `x<y` | **z** |", "```\na   | b\n----+--\nx&lt;y | z\n```"),
            // Escapes and HTML.
            ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
            ("AT&amp;T &lt;3", "AT&amp;T &lt;3"),
            ("text <b>bold</b> text", "text &lt;b&gt;bold&lt;/b&gt; text"),
            ("<div>\n  block\n</div>", "&lt;div&gt;\n  block\n&lt;/div&gt;"),
            ("<@U123> hi", "&lt;@U123&gt; hi"),
            // Whitespace at the ends.
            ("\n\n  trailing  \n\n", "trailing"),
            ("", ""),
        ];
        let mut failures = Vec::new();
        for (markdown, expected) in cases {
            let actual = to_mrkdwn(markdown);
            if actual != *expected {
                failures.push(format!("{markdown:?}\n  expected {expected:?}\n  actual   {actual:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn output_is_tidy_and_never_panics() {
        let inputs = [
            "#",
            "**",
            "- ",
            "> ",
            "```",
            "|a|\n|-|",
            "[]()",
            "![]()",
            "<",
            "&",
            "***a**",
            "> > > - - - x",
            "1. \n2.",
            "\u{0}\u{FEFF}",
            "https://",
            "www.",
            "[x](https://a.io \"title\")\n\n| a |\n|---|\n| b | c | d |",
            "<!-- comment\n\n\n\nmore -->",
            "a\r\nb\r\n\r\n```\r\ncode\r\n```",
        ];
        for input in inputs {
            let output = to_mrkdwn(input);
            assert_eq!(output, output.trim_end(), "{input:?}");
            assert!(!output.contains("\n\n\n"), "{input:?} → {output:?}");
            for line in output.lines() {
                assert_eq!(line, line.trim_end(), "{input:?} → {output:?}");
            }
        }
    }

    #[test]
    fn converts_a_typical_agent_message() {
        let markdown = "## Summary\n\nI fixed the bug in `parse()`:\n\n1. Read the **config**\n2. Check `a < b`\n\n\
                        ```rust\nif a < b {\n    run();\n}\n```\n\nSee [the PR](https://github.com/o/r/pull/1).";
        let expected = "*Summary*\n\nI fixed the bug in `parse()`:\n\n1. Read the *config*\n2. Check `a &lt; b`\n\n\
                        ```\nif a &lt; b {\n    run();\n}\n```\n\nSee <https://github.com/o/r/pull/1|the PR>.";
        assert_eq!(to_mrkdwn(markdown), expected);
    }

    /// Every part is non-empty, within the limit, fenced evenly, and together they keep all the
    /// non-whitespace content.
    fn check_parts(text: &str, limit: usize) -> Vec<String> {
        let parts = split_message(text, limit);
        for part in &parts {
            assert!(!part.trim().is_empty(), "empty part in {parts:#?}");
            assert!(part.chars().count() <= limit, "part over {limit}: {part:?}");
            if limit >= MIN_FENCED_LIMIT {
                assert_eq!(part.matches("```").count() % 2, 0, "unbalanced fences: {part:?}");
            }
        }
        assert_eq!(content(&parts.concat()), content(text), "content lost");
        parts
    }

    /// The text without whitespace and backticks (parts add fences and drop whitespace).
    fn content(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace() && *c != '`').collect()
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(check_parts("  hello world \n", 100), vec!["hello world"]);
        assert_eq!(split_message("hello", usize::MAX), vec!["hello"]);
        assert_eq!(split_message("hello", 0), vec!["h", "e", "l", "l", "o"]);
        assert!(split_message("", 100).is_empty());
        assert!(split_message(" \n\n ", 100).is_empty());
    }

    #[test]
    fn splits_between_paragraphs() {
        let paragraph = |n: usize| format!("Paragraph {n} has a few words.\nAnd a second line here.");
        let text = (0..10).map(paragraph).collect::<Vec<_>>().join("\n\n");
        let parts = check_parts(&text, 120);
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(part.starts_with("Paragraph"), "{part:?}");
            assert!(part.ends_with("here."), "{part:?}");
        }
    }

    #[test]
    fn splits_a_long_line_at_words() {
        let text = (0..200).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
        let parts = check_parts(&text, 50);
        for part in &parts {
            assert!(part.split(' ').all(|word| word.starts_with("word") && word.len() > 4), "{part:?}");
        }
        assert_eq!(parts.join(" "), text);
    }

    #[test]
    fn hard_splits_a_word_longer_than_the_limit() {
        let text = "x".repeat(95);
        let parts = check_parts(&text, 30);
        assert_eq!(parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), [30, 30, 30, 5]);
        let parts = check_parts(&format!("short {text} end"), 30);
        assert_eq!(parts.first().map(String::as_str), Some("short"));
    }

    #[test]
    fn keeps_code_blocks_fenced_in_every_part() {
        let code = (0..40).map(|i| format!("    let value_{i} = compute({i});")).collect::<Vec<_>>().join("\n");
        let text = format!("Intro paragraph.\n\n```\n{code}\n```\n\nOutro paragraph.");
        let parts = check_parts(&text, 200);
        assert!(parts.len() > 3);
        for part in &parts {
            assert_eq!(part.matches("```").count() % 2, 0, "{part:?}");
        }
        // Reopened blocks keep the code's indentation.
        assert!(parts.iter().skip(1).any(|p| p.starts_with("```\n    let value_")), "{parts:#?}");
        assert!(parts.last().is_some_and(|p| p.ends_with("Outro paragraph.")));
    }

    #[test]
    fn keeps_quoted_code_blocks_quoted() {
        let code = (0..30).map(|i| format!("> line {i}")).collect::<Vec<_>>().join("\n");
        let text = format!("> ```\n{code}\n> ```");
        let parts = split_message(&text, 100);
        assert!(parts.len() > 1);
        let unquoted = |s: &str| content(s).replace('>', "");
        assert_eq!(unquoted(&parts.concat()), unquoted(&text));
        for part in &parts {
            assert!(part.chars().count() <= 100, "{part:?}");
            assert!(part.starts_with("> ```\n"), "{part:?}");
            assert!(part.ends_with("\n> ```"), "{part:?}");
        }
    }

    #[test]
    fn counts_chars_and_never_cuts_them() {
        let text = "é😀".repeat(100);
        let parts = check_parts(&text, 25);
        assert!(parts.iter().all(|p| p.chars().count() == 25 || p == parts.last().unwrap_or(p)));
        assert_eq!(parts.concat(), text);
        let words = "café 😀😀 naïve résumé ".repeat(40);
        check_parts(&words, 33);
        let family = "👨\u{200D}👩\u{200D}👧".repeat(20);
        let parts = check_parts(&family, 10);
        assert!(parts.iter().all(|p| !p.starts_with('\u{200D}') && !p.ends_with('\u{200D}')), "{parts:?}");
    }

    #[test]
    fn does_not_cut_inside_links_or_entities() {
        let text = format!("{} <https://x.io/page|the linked text> and &amp; more words here", "a".repeat(20));
        for limit in 40..60 {
            for part in check_parts(&text, limit) {
                assert_eq!(part.matches('<').count(), part.matches('>').count(), "{part:?}");
                assert!(!part.ends_with("&am") && !part.starts_with("p;"), "{part:?}");
            }
        }
    }

    #[test]
    fn splits_converted_messages_within_limits() {
        let markdown = format!(
            "# Report\n\n{}\n\n```\n{}\n```\n\n| a | b |\n|---|---|\n{}\n\n- {}",
            "Some text with a [link](https://x.io) and **bold**. ".repeat(60),
            "let x = y < z && w;\n".repeat(120),
            "| cell | other |\n".repeat(50),
            "item\n- ".repeat(100),
        );
        let mrkdwn = to_mrkdwn(&markdown);
        for limit in [MAX_MESSAGE_CHARS, 500, 100, 24, 7, 1] {
            let parts = check_parts(&mrkdwn, limit);
            assert!(parts.len() > 1, "limit {limit}");
        }
    }

    #[test]
    fn random_texts_keep_the_invariants() {
        let alphabet: Vec<char> = "ab cd\n\n```<>&;|é😀\u{200D}> x".chars().collect();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..300 {
            let len = 1 + round * 3;
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let index = usize::try_from(seed % alphabet.len() as u64).unwrap_or(0);
                    alphabet.get(index).copied().unwrap_or('a')
                })
                .collect();
            for limit in [1, 5, 24, 40, 97] {
                let parts = split_message(&text, limit);
                // Reopened fences repeat their line's `>` prefix.
                let unquoted = |s: &str| content(s).replace('>', "");
                assert_eq!(unquoted(&parts.concat()), unquoted(&text), "{text:?} at {limit}");
                for part in &parts {
                    assert!(!part.trim().is_empty() && part.chars().count() <= limit, "{part:?} at {limit}");
                }
            }
            let _ = to_mrkdwn(&text);
        }
    }
}
