//! Evaluating a folder of pages: every page scored, prompts read from the pages' own PNG
//! text (as `scoregen generate` writes it) or from a prompts file, and the set compared
//! with a folder of real pages.

use std::path::{Path, PathBuf};

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
    /// The set's summary.
    pub summary: SetSummary,
    /// Mean adherence over pages whose prompt names a known instrumentation.
    pub mean_adherence: Option<f64>,
    /// The reference set's summary, when one was given.
    pub reference: Option<SetSummary>,
    /// Frechet distance between the two sets' page features, when a reference was given.
    pub frechet_distance: Option<f64>,
}

/// The image files of a folder, sorted.
pub fn images(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for item in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let path = item.map_err(|e| Error::io(folder, e))?.path();
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if path.is_file() && ["png", "jpg", "jpeg"].contains(&ext.as_str()) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::input(format!(
            "{}: no .png or .jpg pages to evaluate",
            folder.display()
        )));
    }
    Ok(files)
}

/// The `prompt` text chunk of a PNG written by `scoregen generate`.
pub fn png_prompt(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().ok()?;
    let info = reader.info();
    let latin1 = info
        .uncompressed_latin1_text
        .iter()
        .find(|t| t.keyword == "prompt")
        .map(|t| t.text.clone());
    latin1.or_else(|| {
        info.utf8_text.iter().find(|t| t.keyword == "prompt").and_then(|t| t.get_text().ok())
    })
}

/// Scores every page of `folder`; `prompts` (one per page, in file-name order) override
/// prompts stored in the pages.
pub fn evaluate(
    folder: &Path,
    prompts: Option<&[String]>,
    detector: &StaffDetector,
) -> Result<(SetReport, Vec<[f64; super::FEATURES]>)> {
    let files = images(folder)?;
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
        pages,
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

#[cfg(test)]
mod tests {
    use super::*;

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
