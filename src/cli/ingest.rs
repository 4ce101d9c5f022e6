//! `scoregen ingest`: IMSLP work pages in, typed metadata (JSON Lines) or captions out, and
//! one report line per input file.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::error::Error;
use crate::fsutil::write_atomic;
use crate::imslp::{
    CaptionOptions, Form, IngestOptions, InputReport, Licence, LicenceFilter, Outcome,
    WorkMetadata, ingest,
};

/// Arguments of `scoregen ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// IMSLP work pages (HTML, wikitext, API.ISCR.php JSON or a MusicScore metadata.json) and
    /// folders of them. Folders are walked in sorted order; hidden files are not read.
    #[arg(required = true, value_name = "PAGES")]
    pub inputs: Vec<PathBuf>,
    /// Read every input as this form instead of detecting it from each file's content.
    #[arg(long, value_enum)]
    pub form: Option<Form>,
    /// Keep only editions under these licences, comma separated: public-domain, cc0, or a
    /// Creative Commons code such as cc-by (any version), cc-by-4.0 or cc-by-sa-3.0. A work
    /// left with no edition is reported as skipped.
    #[arg(long, alias = "license", value_delimiter = ',', value_name = "LICENCES")]
    pub licence: Option<Vec<Licence>>,
    /// Caption template: `reference` gives instrumentation and key ("a music score,
    /// instrumentation is piano, key is A major"); `rich` adds style, composer and genre, as
    /// the training data set's captions do.
    #[arg(long, value_enum, default_value = "reference")]
    pub caption: CaptionTemplate,
    /// Caption parts to add to the template, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PARTS")]
    pub caption_with: Vec<CaptionPart>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: IngestFormat,
    /// Write to this file, replaced whole once every input is read, instead of standard
    /// output. The per-input report goes to standard output then, else to standard error.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// What `ingest` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IngestFormat {
    /// JSON Lines: one work's typed metadata per line, with its `caption`.
    Jsonl,
    /// The typed metadata of every work, as one JSON list.
    Json,
    /// One caption per line.
    Captions,
}

/// The caption template `--caption` starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptionTemplate {
    /// Instrumentation and key, MusicScore's reference template.
    Reference,
    /// Also style, composer and genre, as the training data set's captions.
    Rich,
}

/// A caption part `--caption-with` adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptionPart {
    /// The composer time period.
    Period,
    /// The piece style.
    Style,
    /// The composer, first name first.
    Composer,
    /// The first genre category.
    Genre,
}

impl IngestArgs {
    fn caption_options(&self) -> CaptionOptions {
        let mut options = match self.caption {
            CaptionTemplate::Reference => CaptionOptions::REFERENCE,
            CaptionTemplate::Rich => CaptionOptions::RICH,
        };
        for part in &self.caption_with {
            match part {
                CaptionPart::Period => options.period = true,
                CaptionPart::Style => options.style = true,
                CaptionPart::Composer => options.composer = true,
                CaptionPart::Genre => options.genre = true,
            }
        }
        options
    }
}

/// One JSON Lines record: the work's fields and its caption.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    work: &'a WorkMetadata,
    caption: String,
}

/// Runs `scoregen ingest`: reads every input, reports each, and writes the works of all
/// inputs that gave any. When none did, nothing is written and the error is bad input.
pub fn run(args: &IngestArgs, quiet: bool) -> anyhow::Result<()> {
    let options =
        IngestOptions { form: args.form, licences: args.licence.clone().map(LicenceFilter::new) };
    let reports: Vec<InputReport> = ingest(&args.inputs, &options).collect();
    let works: Vec<&WorkMetadata> = reports.iter().flat_map(InputReport::works).collect();
    let read = reports.iter().filter(|report| !report.works().is_empty()).count();
    let total = reports.len();
    if let ([report], 0) = (reports.as_slice(), read) {
        let why = report_line(report).expect_err("an input without works is skipped");
        return Err(Error::input(why).into());
    }

    // Data and report never share a stream: the report goes where the data does not.
    let say =
        |line: String| if args.out.is_some() { println!("{line}") } else { eprintln!("{line}") };
    for report in &reports {
        match report_line(report) {
            Ok(line) if !quiet => say(line),
            Ok(_) => {}
            Err(why) => say(format!("skipped {why}")),
        }
    }
    if read == 0 {
        let why = format!("none of the {total} inputs gave IMSLP metadata (each is listed above)");
        return Err(Error::input(why).into());
    }

    let captions = args.caption_options();
    let text = match args.format {
        IngestFormat::Jsonl => works.iter().map(|&work| jsonl(work, captions)).collect(),
        IngestFormat::Json => {
            serde_json::to_string_pretty(&works).expect("metadata serialises") + "\n"
        }
        IngestFormat::Captions => works.iter().map(|w| w.caption(captions) + "\n").collect(),
    };
    match &args.out {
        Some(path) => {
            write_atomic(path, text.as_bytes())?;
            if !quiet {
                let works = works.len();
                say(format!(
                    "wrote {works} works from {read} of {total} inputs to {}",
                    path.display()
                ));
            }
        }
        None => {
            print!("{text}");
            if !quiet {
                say(format!("{} works from {read} of {total} inputs", works.len()));
            }
        }
    }
    Ok(())
}

fn jsonl(work: &WorkMetadata, captions: CaptionOptions) -> String {
    let line = Line { work, caption: work.caption(captions) };
    serde_json::to_string(&line).expect("metadata serialises") + "\n"
}

/// What an input gave, as one line: `Ok` with what was extracted, `Err` with why it was
/// skipped, naming the input.
fn report_line(report: &InputReport) -> Result<String, String> {
    let path = report.path.display();
    let (works, left_out) = match &report.outcome {
        Outcome::Failed(err) => return Err(err.to_string()),
        Outcome::Read { works, left_out } => (works, left_out),
    };
    let first_left_out = left_out.first().map(|out| {
        let title = out.title.as_deref().unwrap_or("untitled work");
        format!("\"{title}\": {}", out.reason)
    });
    match (works.as_slice(), left_out.len(), first_left_out) {
        ([], 0, _) => Err(format!("{path}: it lists no work")),
        ([], 1, _) => Err(format!("{path}: {}", left_out[0].reason)),
        ([], n, Some(first)) => Err(format!("{path}: all {n} works left out ({first})")),
        (works, n, first) => {
            let mut line = format!("{path}: {}", extracted(works));
            if let Some(first) = first {
                line.push_str(&format!("; left out {} (first, {first})", plural(n, "work")));
            }
            Ok(line)
        }
    }
}

/// `"Title" by First Last, 3 editions`, or for several works their count and the first.
fn extracted(works: &[WorkMetadata]) -> String {
    let describe = |work: &WorkMetadata| {
        let title = work.work_title.as_deref().unwrap_or("untitled work").replace('\n', " ");
        match work.composer_display() {
            Some(composer) => format!("\"{title}\" by {composer}"),
            None => format!("\"{title}\""),
        }
    };
    let editions: usize = works.iter().map(|work| work.editions.len()).sum();
    let editions = plural(editions, "edition");
    match works {
        [work] => format!("{}, {editions}", describe(work)),
        _ => {
            format!("{}, {editions} (first: {})", plural(works.len(), "work"), describe(&works[0]))
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imslp::LeftOut;

    fn work(title: &str, composer: &str, editions: usize) -> WorkMetadata {
        let mut work = WorkMetadata::from_fields([("Work Title", title), ("Composer", composer)]);
        work.editions = vec![Default::default(); editions];
        work
    }

    fn read(works: Vec<WorkMetadata>, left_out: Vec<LeftOut>) -> InputReport {
        InputReport { path: PathBuf::from("in.json"), outcome: Outcome::Read { works, left_out } }
    }

    #[test]
    fn report_lines_say_what_was_kept_and_what_was_left_out() {
        let lost = |title: &str| LeftOut {
            title: Some(title.to_string()),
            reason: "no edition under cc0 (editions: \"Copyright\")".to_string(),
        };
        let one = read(vec![work("Air", "Purcell, Henry", 1)], Vec::new());
        assert_eq!(report_line(&one).unwrap(), "in.json: \"Air\" by Henry Purcell, 1 edition");

        let partly = read(
            vec![work("Air", "Purcell, Henry", 2), work("Jig", "Anonymous", 1)],
            vec![lost("Reel")],
        );
        assert_eq!(
            report_line(&partly).unwrap(),
            "in.json: 2 works, 3 editions (first: \"Air\" by Henry Purcell); left out 1 work \
             (first, \"Reel\": no edition under cc0 (editions: \"Copyright\"))"
        );

        let none = read(Vec::new(), vec![lost("Reel")]);
        assert_eq!(
            report_line(&none).unwrap_err(),
            "in.json: no edition under cc0 (editions: \"Copyright\")"
        );
        let empty = read(Vec::new(), Vec::new());
        assert_eq!(report_line(&empty).unwrap_err(), "in.json: it lists no work");
    }
}
