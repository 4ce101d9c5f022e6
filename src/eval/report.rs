//! Evaluating a folder of pages: every page scored, prompts read from the pages' own PNG
//! text (as `scoregen generate` writes it) or from a prompts file, and the set compared
//! with a folder of real pages.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use super::{
    PageScore, SetSummary, StaffDetector, adherence, expected_staves, frechet_distance, overlay,
    page_features,
};
use crate::dataset::page::decode;
use crate::error::{Error, Result};

/// One evaluated page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageReport {
    /// The image file.
    pub path: PathBuf,
    /// The prompt it was made for, where known.
    pub prompt: Option<String>,
    /// The structural measures.
    pub score: PageScore,
    /// Fraction of systems with the staff count the prompt's instrumentation implies.
    pub adherence: Option<f64>,
}

/// A set of evaluated pages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetReport {
    /// Per page, in file-name order.
    pub pages: Vec<PageReport>,
    /// Images in the folder that were not scored because they are contact sheets or reports
    /// (see [`is_sheet`]).
    pub skipped: Vec<PathBuf>,
    /// The set's summary.
    pub summary: SetSummary,
    /// Mean adherence over pages whose prompt names a known instrumentation.
    pub mean_adherence: Option<f64>,
    /// The reference set's summary, when one was given.
    pub reference: Option<SetSummary>,
    /// Frechet distance between the two sets' page features, when a reference was given.
    pub frechet_distance: Option<f64>,
    /// Time spent on this set's pages (decoding, detection and scoring; not the reference).
    pub timing: Timing,
}

/// How long evaluating a set of pages took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Wall-clock time over all pages (s).
    pub seconds: f64,
    /// Mean time per page (ms); 0 without pages.
    pub ms_per_page: f64,
    /// Pages per second; 0 without pages.
    pub pages_per_second: f64,
}

impl Timing {
    fn new(seconds: f64, pages: usize) -> Self {
        if pages == 0 || seconds <= 0.0 {
            return Self { seconds, ..Self::default() };
        }
        Self {
            seconds,
            ms_per_page: 1000.0 * seconds / pages as f64,
            pages_per_second: pages as f64 / seconds,
        }
    }
}

/// The PNG text keyword that says what kind of image scoregen wrote; any value but
/// [`KIND_PAGE`] marks an image that is not a page (a contact sheet, an eval report).
pub const KIND_KEYWORD: &str = "scoregen-kind";

/// The [`KIND_KEYWORD`] value of a single page.
pub const KIND_PAGE: &str = "page";

/// The [`KIND_KEYWORD`] value of the sheet [`extremes_sheet`] draws.
pub const KIND_EVAL_REPORT: &str = "eval report";

/// Whether an image file is a contact sheet or report rather than a page: its name starts
/// with `sheet` or `contact` (as `scoregen generate` names its contact sheet), or it is a PNG
/// whose [`KIND_KEYWORD`] text says it is not a page.
pub fn is_sheet(path: &Path) -> bool {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    if stem.starts_with("sheet") || stem.starts_with("contact") {
        return true;
    }
    png_text(path, KIND_KEYWORD).is_some_and(|kind| kind != KIND_PAGE)
}

/// The pages of a folder (image files, sorted) and, apart, the sheets among its images.
pub fn images(folder: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    for item in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let path = item.map_err(|e| Error::io(folder, e))?.path();
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if path.is_file() && ["png", "jpg", "jpeg"].contains(&ext.as_str()) {
            files.push(path);
        }
    }
    files.sort();
    let (sheets, pages): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|path| is_sheet(path));
    if pages.is_empty() {
        let sheets = match sheets.len() {
            0 => String::new(),
            n => format!(" (only {n} contact sheets or reports, which are not scored)"),
        };
        return Err(Error::input(format!(
            "{}: no .png or .jpg pages to evaluate{sheets}",
            folder.display()
        )));
    }
    Ok((pages, sheets))
}

/// The `prompt` text chunk of a PNG written by `scoregen generate`.
pub fn png_prompt(path: &Path) -> Option<String> {
    png_text(path, "prompt")
}

/// The text stored under `keyword` in a PNG (tEXt or iTXt); `None` for other files.
fn png_text(path: &Path, keyword: &str) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().ok()?;
    let info = reader.info();
    let latin1 =
        info.uncompressed_latin1_text.iter().find(|t| t.keyword == keyword).map(|t| t.text.clone());
    latin1.or_else(|| {
        info.utf8_text.iter().find(|t| t.keyword == keyword).and_then(|t| t.get_text().ok())
    })
}

/// Scores every page of `folder`, leaving out contact sheets and reports; `prompts` (one per
/// page, in file-name order) override prompts stored in the pages.
pub fn evaluate(
    folder: &Path,
    prompts: Option<&[String]>,
    detector: &StaffDetector,
) -> Result<(SetReport, Vec<[f64; super::FEATURES]>)> {
    let start = Instant::now();
    let (files, skipped) = images(folder)?;
    if let Some(prompts) = prompts
        && prompts.len() != files.len()
    {
        return Err(Error::input(format!(
            "{} prompts for {} pages in {}: give one prompt per page",
            prompts.len(),
            files.len(),
            folder.display()
        )));
    }
    let mut pages = Vec::new();
    let mut features = Vec::new();
    for (i, path) in files.into_iter().enumerate() {
        let page = decode(&path)?;
        let structure = detector.detect(&page);
        features.push(page_features(&structure));
        let score = PageScore::from_structure(&structure);
        let prompt = match prompts {
            Some(prompts) => Some(prompts[i].clone()),
            None => png_prompt(&path),
        };
        let adherence = prompt
            .as_deref()
            .and_then(expected_staves)
            .map(|expected| adherence(&score, &expected));
        pages.push(PageReport { path, prompt, score, adherence });
    }
    let scores: Vec<PageScore> = pages.iter().map(|p| p.score.clone()).collect();
    let adherences: Vec<f64> = pages.iter().filter_map(|p| p.adherence).collect();
    let report = SetReport {
        summary: SetSummary::from_scores(&scores),
        mean_adherence: (!adherences.is_empty())
            .then(|| adherences.iter().sum::<f64>() / adherences.len() as f64),
        timing: Timing::new(start.elapsed().as_secs_f64(), pages.len()),
        pages,
        skipped,
        reference: None,
        frechet_distance: None,
    };
    Ok((report, features))
}

/// Scores `folder` and, with a reference folder of real pages, compares the two sets.
pub fn evaluate_against(
    folder: &Path,
    reference: Option<&Path>,
    prompts: Option<&[String]>,
) -> Result<SetReport> {
    let detector = StaffDetector::default();
    let (mut report, features) = evaluate(folder, prompts, &detector)?;
    if let Some(reference) = reference {
        let (real, real_features) = evaluate(reference, None, &detector)?;
        report.reference = Some(real.summary);
        report.frechet_distance = Some(frechet_distance(&features, &real_features)?);
    }
    Ok(report)
}

/// The `count` worst and best pages side by side with their detections drawn over them.
pub fn extremes_sheet(report: &SetReport, count: usize) -> Result<RgbImage> {
    let mut order: Vec<&PageReport> = report.pages.iter().collect();
    order.sort_by(|a, b| a.score.readability.total_cmp(&b.score.readability));
    let worst = order.iter().take(count);
    let best = order.iter().rev().take(count.min(order.len().saturating_sub(count)));
    let mut tiles = Vec::new();
    for page in worst.chain(best) {
        let image: GrayImage = decode(&page.path)?;
        tiles.push(overlay(&image, &StaffDetector::default().detect(&image)));
    }
    let width: u32 = tiles.iter().map(|t| t.width() + 8).sum::<u32>() + 8;
    let height = tiles.iter().map(|t| t.height()).max().unwrap_or(1) + 16;
    let mut sheet = RgbImage::from_pixel(width, height, image::Rgb([200, 200, 200]));
    let mut x = 8;
    for tile in &tiles {
        image::imageops::replace(&mut sheet, tile, x as i64, 8);
        x += tile.width() + 8;
    }
    Ok(sheet)
}

/// Encodes a sheet from [`extremes_sheet`] as PNG, marked with [`KIND_KEYWORD`] so that a
/// later evaluation of the same folder does not score it as a page.
pub fn encode_report_png(sheet: &RgbImage) -> Result<Vec<u8>> {
    let failed = |e: png::EncodingError| Error::runtime(format!("eval report PNG: {e}"));
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, sheet.width(), sheet.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .add_text_chunk(KIND_KEYWORD.to_string(), KIND_EVAL_REPORT.to_string())
            .map_err(failed)?;
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(sheet.as_raw()).map_err(failed)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with one staff of five lines 4 px apart.
    fn staff_page() -> GrayImage {
        let mut page = GrayImage::from_pixel(256, 128, image::Luma([255]));
        for line in 0..5 {
            for x in 20..236 {
                page.put_pixel(x, 40 + 4 * line, image::Luma([0]));
            }
        }
        page
    }

    #[test]
    fn contact_sheets_and_reports_are_skipped_and_counted() {
        use crate::sample::output::{contact_sheet, write_png};
        let dir = tempfile::tempdir().unwrap();
        let page = staff_page();
        let kind = |k: &str| vec![(KIND_KEYWORD, k.to_string())];
        write_png(&dir.path().join("page-000.png"), &page, &[]).unwrap();
        write_png(&dir.path().join("page-001.png"), &page, &kind(KIND_PAGE)).unwrap();
        // What `scoregen generate` writes beside its pages: a sheet without text chunks.
        let sheet = contact_sheet(&[(page.clone(), "a".into()), (page.clone(), "b".into())], 2);
        write_png(&dir.path().join("sheet.png"), &sheet, &[]).unwrap();
        write_png(&dir.path().join("Contact-2.png"), &sheet, &[]).unwrap();
        write_png(&dir.path().join("grid.png"), &sheet, &kind("contact sheet")).unwrap();

        let (report, _) = evaluate(dir.path(), None, &StaffDetector::default()).unwrap();
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect()
        };
        let scored: Vec<PathBuf> = report.pages.iter().map(|p| p.path.clone()).collect();
        assert_eq!(names(&scored), ["page-000.png", "page-001.png"]);
        assert_eq!(names(&report.skipped), ["Contact-2.png", "grid.png", "sheet.png"]);
        assert_eq!(report.summary.pages, 2);
        assert_eq!(report.summary.staves_per_system, [(1, 2)].into());

        // The report `scoregen eval --report` writes is skipped on the next evaluation.
        let worst_best = extremes_sheet(&report, 1).unwrap();
        let bytes = encode_report_png(&worst_best).unwrap();
        std::fs::write(dir.path().join("worst-best.png"), bytes).unwrap();
        let (again, _) = evaluate(dir.path(), None, &StaffDetector::default()).unwrap();
        assert_eq!(again.summary.pages, 2);
        assert_eq!(again.skipped.len(), 4);

        let only_sheets = tempfile::tempdir().unwrap();
        write_png(&only_sheets.path().join("sheet.png"), &sheet, &[]).unwrap();
        let err = evaluate(only_sheets.path(), None, &StaffDetector::default()).unwrap_err();
        assert!(err.to_string().contains("only 1 contact sheets or reports"), "{err}");
    }

    #[test]
    fn timing_is_per_scored_page() {
        let timing = Timing::new(2.0, 8);
        assert_eq!((timing.ms_per_page, timing.pages_per_second), (250.0, 4.0));
        assert_eq!(Timing::new(0.0, 0), Timing::default());

        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            staff_page().save(dir.path().join(format!("{i}.png"))).unwrap();
        }
        let (report, _) = evaluate(dir.path(), None, &StaffDetector::default()).unwrap();
        let t = report.timing;
        assert!(t.seconds > 0.0, "{t:?}");
        assert!((t.ms_per_page * 3.0 - 1000.0 * t.seconds).abs() < 1e-9, "{t:?}");
        assert!((t.pages_per_second * t.seconds - 3.0).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn real_pages_read_as_scores_and_noise_does_not() {
        let real = crate::dataset::bundled_mini().join("test");
        let (report, _) = evaluate(&real, None, &StaffDetector::default()).unwrap();
        assert!(report.summary.mean_readability > 0.9, "{:?}", report.summary);
        assert_eq!(report.summary.with_system, 1.0);

        let dir = tempfile::tempdir().unwrap();
        let mut noise = crate::diffusion::HostNoise::new(1);
        for i in 0..3 {
            let pixels = noise
                .normal_vec(128 * 176)
                .into_iter()
                .map(|v| (128.0 + 60.0 * v).clamp(0.0, 255.0) as u8)
                .collect();
            let page = GrayImage::from_raw(128, 176, pixels).unwrap();
            crate::sample::output::write_png(
                &dir.path().join(format!("{i}.png")),
                &page,
                &[("prompt", "a music score, instrumentation is piano".into())],
            )
            .unwrap();
        }
        let report = evaluate_against(dir.path(), Some(&real), None).unwrap();
        assert_eq!(report.summary.mean_readability, 0.0);
        assert_eq!(
            report.pages[0].prompt.as_deref(),
            Some("a music score, instrumentation is piano")
        );
        assert_eq!(report.mean_adherence, Some(0.0));
        assert!(report.frechet_distance.unwrap() > 1.0, "{:?}", report.frechet_distance);

        let err = evaluate(dir.path(), Some(&["one".to_string()]), &StaffDetector::default())
            .unwrap_err();
        assert!(err.to_string().contains("1 prompts for 3 pages"), "{err}");
    }
}
