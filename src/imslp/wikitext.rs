//! IMSLP wikitext: the source of a work page, one `{{#fte:imslppage ...}}` template.
//!
//! The page template's named arguments are the "General Information" labels
//! (`|Work Title=...`). Its section markers (`|*****FILES*****=`, `|*****WORK INFO*****=`,
//! ...) are arguments too. Under a marker, each edition is a `{{#fte:imslpfile ...}}`
//! template: fields ending in a file number (`|File Name 1=`, `|Page Count 2=`) belong to
//! that file, the others (`|Copyright=`, `|Publisher Information=`) to every file of the
//! edition. One [`Edition`] is made per file number.
//!
//! The text is cut into the tokens `{{`, `}}`, `[[`, `]]`, `|`, `=` and plain text, and parsed
//! with nesting, so the `|` of an inner template or link never splits the outer template; as
//! in MediaWiki, only the first `=` of an argument (outside inner templates and links) ends
//! its name. Values are rendered to plain text:
//! - `[[Target|label]]` gives "label" and `[[Target]]` gives "Target";
//! - an inner template gives its unnamed arguments joined by spaces
//!   (`{{LinkEd|Karl|Beispiel}}` gives "Karl Beispiel"), or its name when it has none;
//!   `{{!}}` gives "|";
//! - HTML tags are removed and `<br>` becomes a line break; `<!-- comments -->` and the
//!   quote runs of bold and italics are dropped; common character entities are decoded.
//!
//! A template or link that is never closed, or a `}}` that closes nothing, is an input
//! error naming the line where it happens.

use std::collections::BTreeMap;

use super::{Edition, WorkMetadata};
use crate::error::{Error, Result};

const OPEN: &str = "{{";
const CLOSE: &str = "}}";
const PAGE_TEMPLATE: &str = "#fte:imslppage";
const FILE_TEMPLATE: &str = "#fte:imslpfile";
/// Deeper nesting than this is not a real page; refusing it keeps the recursion bounded.
const MAX_DEPTH: usize = 200;

/// Parses a work page's wikitext: the first `{{#fte:imslppage ...}}` template in it.
pub fn parse_wikitext(text: &str) -> Result<WorkMetadata> {
    let tokens = tokenize(text);
    let mut parser = Parser { tokens: &tokens, pos: 0, depth: 0 };
    let (pieces, _, _) = parser.pieces(Scope::Top)?;
    let page = templates_named(&pieces, PAGE_TEMPLATE).into_iter().next().ok_or_else(|| {
        Error::input(format!("wikitext: no `{OPEN}{PAGE_TEMPLATE} ...{CLOSE}` work template"))
    })?;
    let mut fields = Vec::new();
    let mut editions = Vec::new();
    for (position, arg) in page.args.iter().enumerate() {
        match &arg.name {
            Some(name) if is_section(name) => {
                for file in templates_named(&arg.value, FILE_TEMPLATE) {
                    editions.extend(file_editions(file)?);
                }
            }
            Some(name) => fields.push((name.clone(), plain_text(&render(&arg.value)))),
            None => {
                // IMSLP closes the template with an unnamed `|*****END OF TEMPLATE*****`.
                let value = plain_text(&render(&arg.value));
                if !is_section(value.trim()) {
                    fields.push((format!("unnamed argument {}", position + 1), value));
                }
            }
        }
    }
    let mut work = WorkMetadata::from_fields(fields);
    work.editions = editions;
    Ok(work)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Text(String),
    Open,
    Close,
    LinkOpen,
    LinkClose,
    Pipe,
    Equals,
}

impl Kind {
    /// The source text of a token, for tokens that are plain text where they stand.
    fn as_text(&self) -> &str {
        match self {
            Self::Text(text) => text.as_str(),
            Self::Open => OPEN,
            Self::Close => CLOSE,
            Self::LinkOpen => "[[",
            Self::LinkClose => "]]",
            Self::Pipe => "|",
            Self::Equals => "=",
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// 1-based line where the token starts.
    line: usize,
}

/// The markup token at the start of `rest`, with its length in bytes.
fn mark(rest: &str) -> Option<(Kind, usize)> {
    let marks = [
        (OPEN, Kind::Open),
        (CLOSE, Kind::Close),
        ("[[", Kind::LinkOpen),
        ("]]", Kind::LinkClose),
        ("|", Kind::Pipe),
        ("=", Kind::Equals),
    ];
    marks
        .into_iter()
        .find(|(text, _)| rest.starts_with(*text))
        .map(|(text, kind)| (kind, text.len()))
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut pending = String::new();
    let (mut line, mut pending_line) = (1, 1);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(body) = rest.strip_prefix("<!--") {
            // Comments may hold `|` or braces that are not markup; drop them whole.
            let len = body.find("-->").map_or(body.len(), |end| end + 3);
            line += body[..len].matches('\n').count();
            rest = &body[len..];
            continue;
        }
        if let Some((kind, len)) = mark(rest) {
            flush(&mut tokens, &mut pending, pending_line);
            tokens.push(Token { kind, line });
            rest = &rest[len..];
            continue;
        }
        if pending.is_empty() {
            pending_line = line;
        }
        pending.push(c);
        if c == '\n' {
            line += 1;
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut tokens, &mut pending, pending_line);
    tokens
}

fn flush(tokens: &mut Vec<Token>, pending: &mut String, line: usize) {
    if !pending.is_empty() {
        tokens.push(Token { kind: Kind::Text(std::mem::take(pending)), line });
    }
}

/// Parsed wikitext: plain text, a template, or a link's `|`-separated parts.
#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Template(Template),
    Link(Vec<Vec<Piece>>),
}

#[derive(Clone, Debug)]
struct Template {
    /// The rendered name, trimmed: "#fte:imslppage", "LinkEd".
    name: String,
    args: Vec<Arg>,
}

#[derive(Clone, Debug)]
struct Arg {
    /// The rendered, trimmed name of a named (`|name=value`) argument.
    name: Option<String>,
    value: Vec<Piece>,
    /// Line of the `|` that starts the argument.
    line: usize,
}

/// What ended a run of pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Eof,
    Pipe,
    Equals,
    Close,
    LinkClose,
}

/// Where a run of pieces is read, which decides the tokens that end it.
#[derive(Clone, Copy, Debug)]
enum Scope {
    Top,
    /// Inside a template opened on line `opened`; in an argument's first part, `=` ends
    /// the name.
    Template {
        opened: usize,
        split_at_equals: bool,
    },
    Link {
        opened: usize,
    },
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    /// Reads pieces up to the token that ends `scope`, returning that token and its line.
    fn pieces(&mut self, scope: Scope) -> Result<(Vec<Piece>, End, usize)> {
        let tokens = self.tokens;
        let mut out = Vec::new();
        while let Some(token) = tokens.get(self.pos) {
            self.pos += 1;
            let line = token.line;
            let end = match (&token.kind, scope) {
                (Kind::Open, _) => {
                    out.push(Piece::Template(self.template(line)?));
                    continue;
                }
                (Kind::LinkOpen, _) => {
                    out.push(Piece::Link(self.link(line)?));
                    continue;
                }
                (Kind::Pipe, Scope::Template { .. } | Scope::Link { .. }) => End::Pipe,
                (Kind::Equals, Scope::Template { split_at_equals: true, .. }) => End::Equals,
                (Kind::Close, Scope::Template { .. }) => End::Close,
                (Kind::LinkClose, Scope::Link { .. }) => End::LinkClose,
                (Kind::Close, Scope::Link { opened }) => {
                    return Err(unclosed_link(opened, &format!("before `{CLOSE}` on line {line}")));
                }
                (Kind::Close, Scope::Top) => {
                    let why = format!("wikitext line {line}: `{CLOSE}` closes no open template");
                    return Err(Error::input(why));
                }
                (kind, _) => {
                    out.push(Piece::Text(kind.as_text().to_string()));
                    continue;
                }
            };
            return Ok((out, end, line));
        }
        match scope {
            Scope::Top => Ok((out, End::Eof, 0)),
            Scope::Template { opened, .. } => Err(Error::input(format!(
                "wikitext line {opened}: template `{OPEN}` is never closed \
                 (expected `{CLOSE}` before the end of the text)"
            ))),
            Scope::Link { opened } => Err(unclosed_link(opened, "before the end of the text")),
        }
    }

    /// Reads a template whose `{{` (on line `opened`) was just consumed.
    fn template(&mut self, opened: usize) -> Result<Template> {
        self.enter(opened)?;
        let plain = Scope::Template { opened, split_at_equals: false };
        let first_part = Scope::Template { opened, split_at_equals: true };
        let (name, mut end, mut end_line) = self.pieces(plain)?;
        let mut args = Vec::new();
        while end == End::Pipe {
            let line = end_line;
            let (head, head_end, head_line) = self.pieces(first_part)?;
            let (name, value, arg_end, arg_line) = if head_end == End::Equals {
                let (value, value_end, value_line) = self.pieces(plain)?;
                (Some(render(&head).trim().to_string()), value, value_end, value_line)
            } else {
                (None, head, head_end, head_line)
            };
            args.push(Arg { name, value, line });
            (end, end_line) = (arg_end, arg_line);
        }
        self.depth -= 1;
        Ok(Template { name: render(&name).trim().to_string(), args })
    }

    /// Reads a link whose `[[` (on line `opened`) was just consumed.
    fn link(&mut self, opened: usize) -> Result<Vec<Vec<Piece>>> {
        self.enter(opened)?;
        let mut parts = Vec::new();
        loop {
            let (part, end, _) = self.pieces(Scope::Link { opened })?;
            parts.push(part);
            if end != End::Pipe {
                break;
            }
        }
        self.depth -= 1;
        Ok(parts)
    }

    fn enter(&mut self, line: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::input(format!(
                "wikitext line {line}: templates and links nest more than {MAX_DEPTH} deep"
            )));
        }
        Ok(())
    }
}

fn unclosed_link(opened: usize, place: &str) -> Error {
    Error::input(format!("wikitext line {opened}: link `[[` is not closed (expected `]]` {place})"))
}

/// Templates of a given name (ignoring case and spaces) among `pieces`, not nested ones.
fn templates_named<'p>(pieces: &'p [Piece], name: &str) -> Vec<&'p Template> {
    let named = |template: &&Template| {
        let squashed: String = template.name.split_whitespace().collect();
        squashed.eq_ignore_ascii_case(name)
    };
    let templates = pieces.iter().filter_map(|piece| match piece {
        Piece::Template(template) => Some(template),
        _ => None,
    });
    templates.filter(named).collect()
}

fn is_section(name: &str) -> bool {
    name.starts_with("*****")
}

/// One field of a file template, with where it came from for error messages.
struct FileField {
    /// The label without its file number: "Page Count".
    label: String,
    /// The label as written: "Page Count 1".
    name: String,
    value: String,
    line: usize,
}

/// The editions of one `{{#fte:imslpfile ...}}` template, one per file number.
fn file_editions(file: &Template) -> Result<Vec<Edition>> {
    let mut shared = Vec::new();
    let mut numbered: BTreeMap<u32, Vec<FileField>> = BTreeMap::new();
    for arg in &file.args {
        let Some(name) = &arg.name else { continue };
        let value = plain_text(&render(&arg.value));
        let (label, number) = match numbered_label(name) {
            Some((label, number)) => (label, Some(number)),
            None => (name.as_str(), None),
        };
        let field =
            FileField { label: label.to_string(), name: name.clone(), value, line: arg.line };
        match number {
            Some(number) => numbered.entry(number).or_default().push(field),
            None => shared.push(field),
        }
    }
    if numbered.is_empty() {
        if shared.iter().all(|field| field.value.trim().is_empty()) {
            return Ok(Vec::new());
        }
        // An edition without numbered files still records its facts once.
        numbered.insert(1, Vec::new());
    }
    let edition = |own: &Vec<FileField>| -> Result<Edition> {
        let mut edition = Edition::default();
        for field in shared.iter().chain(own) {
            edition.set_labelled(&field.label, &field.value).map_err(|why| {
                Error::input(format!("wikitext line {}: field `{}`: {why}", field.line, field.name))
            })?;
        }
        Ok(edition)
    };
    numbered.values().map(edition).collect()
}

/// "Page Count 12" to ("Page Count", 12); `None` when the name ends in no number.
fn numbered_label(name: &str) -> Option<(&str, u32)> {
    let (label, number) = name.trim().rsplit_once(' ')?;
    Some((label.trim_end(), number.parse().ok()?))
}

fn render(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Link(parts) => out.push_str(&link_label(parts)),
            Piece::Template(template) => out.push_str(&render_template(template)),
        }
    }
    out
}

/// A link's label: its last part, or its target when the last part is empty.
fn link_label(parts: &[Vec<Piece>]) -> String {
    let rendered: Vec<String> = parts.iter().map(|part| render(part).trim().to_string()).collect();
    let label = rendered.iter().rev().find(|part| !part.is_empty()).cloned().unwrap_or_default();
    label.trim_start_matches(':').to_string()
}

fn render_template(template: &Template) -> String {
    if template.name == "!" {
        return "|".to_string();
    }
    let positional: Vec<String> = template
        .args
        .iter()
        .filter(|arg| arg.name.is_none())
        .map(|arg| render(&arg.value).trim().to_string())
        .filter(|text| !text.is_empty())
        .collect();
    if positional.is_empty() { template.name.clone() } else { positional.join(" ") }
}

/// Rendered wikitext to plain text: tags removed (`<br>` to a line break), bold and italic
/// quote runs removed, entities decoded.
fn plain_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag = &rest[start + 1..];
        match tag.find('>') {
            Some(end) if is_tag(&tag[..end]) => {
                if tag_name(&tag[..end]) == "br" {
                    out.push('\n');
                }
                rest = &tag[end + 1..];
            }
            // A lone `<` ("a < b") is text.
            _ => {
                out.push('<');
                rest = tag;
            }
        }
    }
    out.push_str(rest);
    decode_entities(&out.replace("'''", "").replace("''", ""))
}

fn is_tag(inner: &str) -> bool {
    inner.trim_start_matches('/').starts_with(|c: char| c.is_ascii_alphabetic())
}

fn tag_name(inner: &str) -> String {
    let name = inner.trim_start_matches('/').chars().take_while(char::is_ascii_alphanumeric);
    name.collect::<String>().to_ascii_lowercase()
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let decoded = after
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| entity(&after[..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let named = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        _ => {
            let code = name.strip_prefix('#')?;
            let value = match code.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => code.parse().ok()?,
            };
            return char::from_u32(value);
        }
    };
    Some(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::tests::WIKITEXT;

    fn page(body: &str) -> String {
        format!("{OPEN}{PAGE_TEMPLATE}\n{body}\n{CLOSE}\n")
    }

    #[test]
    fn reads_every_work_field() {
        let work = parse_wikitext(WIKITEXT).unwrap();
        crate::imslp::tests::assert_fixture_work(&work);
        assert_eq!(work.composer_time_period, None);
        assert!(work.genre_categories.is_empty());
    }

    #[test]
    fn keeps_unknown_fields_and_drops_empty_ones() {
        let work = parse_wikitext(WIKITEXT).unwrap();
        let extra = |key: &str| work.extra.get(key).map(String::as_str);
        assert_eq!(extra("Dedication"), Some("Count Joseph Georg Erdődy"));
        assert_eq!(extra("Average Duration"), Some("22 minutes"));
        assert_eq!(extra("Tags"), Some("quartets ; 2vn va vc ; strings"));
        assert_eq!(
            extra("Extra Information"),
            Some(
                "The slow movement varies the hymn Gott erhalte Franz den Kaiser & closes \
                 pianissimo."
            )
        );
        for empty in ["Librettist", "Language", "First Performance", "Movements Header"] {
            assert_eq!(extra(empty), None, "{empty}");
        }
        assert_eq!(work.extra.len(), 4, "{:?}", work.extra);
    }

    #[test]
    fn reads_each_file_of_each_edition() {
        let work = parse_wikitext(WIKITEXT).unwrap();
        let summary: Vec<_> = work
            .editions
            .iter()
            .map(|e| {
                (e.file_name.as_deref(), e.description.as_deref(), e.pages, e.licence.as_deref())
            })
            .collect();
        let cc = Some("Creative Commons Attribution 4.0");
        assert_eq!(
            summary,
            [
                (
                    Some("PMLP99001-Haydn_Op76No3_Score.pdf"),
                    Some("Complete Score"),
                    Some(24_u32),
                    Some("Public Domain")
                ),
                (Some("PMLP99001-Haydn_Op76No3_Violin1.pdf"), Some("Violin 1"), Some(6), cc),
                (Some("PMLP99001-Haydn_Op76No3_Violin2.pdf"), Some("Violin 2"), Some(5), cc),
            ]
        );
        let score = &work.editions[0];
        assert_eq!(score.file_id, None);
        assert_eq!(score.editor.as_deref(), Some("Karl Beispiel"));
        assert_eq!(
            score.publisher.as_deref(),
            Some("Leipzig: Example Musikverlag, n.d. (ca. 1910). Plate E.M. 2077.")
        );
        let extra = |key: &str| score.extra.get(key).map(String::as_str);
        assert_eq!(extra("Uploader"), Some("Examplescanner"));
        assert_eq!(extra("Image Type"), Some("Normal Scan"));
        assert_eq!(extra("Date Submitted"), Some("2019/04/02"));
        assert_eq!(extra("Scanner"), None);
        assert_eq!(work.editions[2].editor.as_deref(), Some("Example Editor"));
        assert_eq!(work.editions[2].extra.get("Misc. Notes"), None);
    }

    #[test]
    fn nested_templates_and_links_do_not_split_fields() {
        let text = page(
            "|Composer={{LinkComp|Bach, Johann Sebastian}}\n\
             |Work Title={{Outer|{{Inner|a|b}}|c=d|e}} [[Target|shown|label]]\n\
             |Key=[[A major]] {{!}} [[:Category:Keys|]]\n\
             |Piece Style={{Baroque}}\n\
             |Instrumentation=Flute = recorder",
        );
        let work = parse_wikitext(&text).unwrap();
        assert_eq!(work.composer.as_deref(), Some("Bach, Johann Sebastian"));
        assert_eq!(work.composer_display().as_deref(), Some("Johann Sebastian Bach"));
        assert_eq!(work.work_title.as_deref(), Some("a b e label"));
        assert_eq!(work.key.as_deref(), Some("A major | Category:Keys"));
        assert_eq!(work.piece_style.as_deref(), Some("Baroque"));
        assert_eq!(work.instrumentation.as_deref(), Some("Flute = recorder"));
        assert!(work.extra.is_empty(), "{:?}", work.extra);
    }

    #[test]
    fn markup_becomes_plain_text() {
        let text = page(
            "|Alternative Title=One<br>Two<br />Three<BR/>Four\n\
             |Key='''D''' ''minor'' &amp; more&nbsp;text &#x263A; &bogus; a < b\n\
             |Work Title=<span class=\"t\">Air</span><!-- a | comment {{ -->\n\
             |Year/Date of Composition=<ref>note</ref>1720s",
        );
        let work = parse_wikitext(&text).unwrap();
        assert_eq!(work.alternative_title.as_deref(), Some("One\nTwo\nThree\nFour"));
        assert_eq!(work.key.as_deref(), Some("D minor & more text \u{263A} &bogus; a < b"));
        assert_eq!(work.work_title.as_deref(), Some("Air"));
        assert_eq!(work.year_of_composition.as_deref(), Some("note1720s"));
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            ("before\n\n{{#fte:imslppage\n|Work Title=X\n", "line 3", "never closed"),
            ("{{#fte:imslppage\n|Key={{Nowrap|C major\n|Work Title=X\n", "line 2", "never closed"),
            ("{{#fte:imslppage\n|Key=C\n}}\n}}\n", "line 4", "closes no open template"),
            ("{{#fte:imslppage\n|Key=[[C major\n}}", "line 2", "before `}}` on line 3"),
            ("{{#fte:imslppage\n|Key=[[C major", "line 2", "end of the text"),
        ];
        for (text, line, why) in cases {
            let err = parse_wikitext(text).unwrap_err();
            assert!(err.is_input());
            let message = err.to_string();
            assert!(message.contains(line) && message.contains(why), "{text:?}: {message}");
        }
        let deep = format!("{}{}", OPEN.repeat(MAX_DEPTH + 1), CLOSE.repeat(MAX_DEPTH + 1));
        assert!(parse_wikitext(&deep).unwrap_err().to_string().contains("nest more than"));
    }

    #[test]
    fn a_bad_page_count_names_the_field_and_line() {
        let text = page(
            "|*****FILES*****=\n{{#fte:imslpfile\n|File Description 1=Score\n\
             |Page Count 1=twelve\n}}",
        );
        let message = parse_wikitext(&text).unwrap_err().to_string();
        assert!(message.contains("line 5"), "{message}");
        assert!(message.contains("`Page Count 1`") && message.contains("twelve"), "{message}");
    }

    #[test]
    fn text_without_the_page_template_is_an_error() {
        let message = parse_wikitext("{{Other|x}}\n[[Category:Y]]").unwrap_err().to_string();
        assert!(message.contains("#fte:imslppage"), "{message}");
    }

    #[test]
    fn an_edition_without_file_numbers_keeps_its_facts() {
        let text = page(
            "|*****FILES*****=\n{{#fte:imslpfile\n|Copyright=Public Domain\n}}\n\
             {{#fte:imslpfile\n|Scanner=\n}}",
        );
        let work = parse_wikitext(&text).unwrap();
        assert_eq!(work.editions.len(), 1);
        assert_eq!(work.editions[0].licence.as_deref(), Some("Public Domain"));
    }
}
