//! Page preprocessing: decode, grayscale, fit to the training size at the page's own aspect
//! (white padding, never squashing), and crops with their page coordinates for patch
//! training (arXiv 2304.12526).
//!
//! Prepared pages are 8-bit grayscale (white = 255) until they become tensors, where a
//! value `v` is `v / 127.5 - 1`: ink is -1 and paper is +1.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::imageops::FilterType;
use image::{GrayImage, ImageFormat, Luma};

use crate::error::{Error, Result};

/// Largest image side accepted, in pixels: a 200 dpi A3 page is about 3.3k; anything far
/// past that is a broken or hostile file, not a score page. Checked against the header
/// before any pixel is decoded, so a file that claims to be huge allocates nothing.
pub const MAX_SIDE: u32 = 16_384;

/// Smallest image side accepted, in pixels: the tiny preset's 32x48 pages are the smallest
/// pages scoregen makes, and under 16 px there is no room for one staff's five lines and
/// four spaces.
pub const MIN_SIDE: u32 = 16;

/// An image file's width and height in pixels, read from its header without decoding
/// the pixels.
pub fn dimensions(path: &Path) -> Result<(u32, u32)> {
    reader(path)?
        .into_dimensions()
        .map_err(|e| Error::input(format!("{}: unreadable image header: {e}", path.display())))
}

/// A reader for `path` with its format found from the content (the extension is only the
/// fallback), refusing empty files and formats other than PNG and JPEG.
fn reader(path: &Path) -> Result<image::ImageReader<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let length = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if length == 0 {
        return Err(Error::input(format!("{}: empty file", path.display())));
    }
    let reader = image::ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => Ok(reader),
        _ => Err(Error::input(format!("{}: not a PNG or JPEG image", path.display()))),
    }
}

/// Decodes an image file (PNG or JPEG) to grayscale, refusing (as input errors that name
/// the file) empty files, other formats, sides outside [`MIN_SIDE`, `MAX_SIDE`] and
/// corrupt or truncated data.
pub fn decode(path: &Path) -> Result<GrayImage> {
    let (width, height) = dimensions(path)?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::input(format!(
            "{}: too large: {width}x{height} px, the limit is {MAX_SIDE} px on each side",
            path.display()
        )));
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(Error::input(format!(
            "{}: too small: {width}x{height} px, need at least {MIN_SIDE} px on each side",
            path.display()
        )));
    }
    let mut reader = reader(path)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| {
        Error::input(format!("{}: corrupt or truncated image: {e}", path.display()))
    })?;
    Ok(image.to_luma8())
}

/// Scales `page` to fit `width` x `height` at its own aspect ratio and centres it on white.
pub fn fit(page: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (w, h) = page.dimensions();
    let scale = (width as f64 / w as f64).min(height as f64 / h as f64);
    let new_w = ((w as f64 * scale).round() as u32).clamp(1, width);
    let new_h = ((h as f64 * scale).round() as u32).clamp(1, height);
    // Triangle filtering widens its support with the scale factor, so large reductions
    // average the covered pixels instead of aliasing thin staff lines away.
    let resized = if (new_w, new_h) == (w, h) {
        page.clone()
    } else {
        image::imageops::resize(page, new_w, new_h, FilterType::Triangle)
    };
    let mut out = GrayImage::from_pixel(width, height, Luma([255]));
    let (left, top) = ((width - new_w) / 2, (height - new_h) / 2);
    image::imageops::replace(&mut out, &resized, left as i64, top as i64);
    out
}

/// A prepared page ready for batching: `width * height` gray values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedPage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Gray values, 0 (ink) to 255 (paper).
    pub pixels: Vec<u8>,
}

/// A crop of a prepared page: its position on the page and its values in `[-1, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    /// Left edge on the page, in pixels.
    pub left: usize,
    /// Top edge on the page, in pixels.
    pub top: usize,
    /// Values, row-major, `crop_width * crop_height`.
    pub values: Vec<f32>,
}

impl PreparedPage {
    /// From a grayscale image.
    pub fn from_image(image: &GrayImage) -> Self {
        let (width, height) = image.dimensions();
        Self { width: width as usize, height: height as usize, pixels: image.as_raw().clone() }
    }

    /// The crop of `width` x `height` at `(left, top)`, in `[-1, 1]`, with the ink darkened
    /// or lightened by `ink` (1 keeps it; 0.8 makes black ink 80% as dark).
    ///
    /// Panics when the crop does not lie inside the page: callers pick positions with
    /// [`PreparedPage::crop_positions`].
    pub fn crop(&self, left: usize, top: usize, width: usize, height: usize, ink: f32) -> Crop {
        assert!(
            left + width <= self.width && top + height <= self.height,
            "crop {width}x{height} at ({left}, {top}) leaves the {}x{} page",
            self.width,
            self.height
        );
        let mut values = Vec::with_capacity(width * height);
        for row in top..top + height {
            let line = &self.pixels[row * self.width + left..row * self.width + left + width];
            // Paper stays at +1 while ink moves towards it: v' = 1 - ink * (1 - v).
            values.extend(line.iter().map(|&p| 1.0 - ink * (1.0 - (p as f32 / 127.5 - 1.0))));
        }
        Crop { left, top, values }
    }

    /// The number of valid crop origins along each axis for a crop of the given size, on a
    /// grid of `step` pixels (crops aligned to the UNet's size multiple keep the
    /// space-to-depth stem's phase the same as on a whole page).
    pub fn crop_positions(&self, width: usize, height: usize, step: usize) -> (usize, usize) {
        let step = step.max(1);
        let columns = self.width.saturating_sub(width) / step + 1;
        let rows = self.height.saturating_sub(height) / step + 1;
        (columns, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_pads_with_white() {
        // A 100x50 black page into 40x40: scaled to 40x20, centred vertically.
        let page = GrayImage::from_pixel(100, 50, Luma([0]));
        let out = fit(&page, 40, 40);
        assert_eq!(out.dimensions(), (40, 40));
        assert_eq!(out.get_pixel(20, 9).0[0], 255, "above the page is padding");
        assert_eq!(out.get_pixel(20, 10).0[0], 0, "first page row");
        assert_eq!(out.get_pixel(20, 29).0[0], 0, "last page row");
        assert_eq!(out.get_pixel(20, 30).0[0], 255, "below the page is padding");
        assert_eq!(out.get_pixel(0, 20).0[0], 0, "full width");
    }

    #[test]
    fn fit_averages_thin_lines_instead_of_dropping_them() {
        // One-pixel black rows every 8 rows, reduced 4x: each survives as a gray row.
        let mut page = GrayImage::from_pixel(64, 64, Luma([255]));
        for y in (0..64).step_by(8) {
            for x in 0..64 {
                page.put_pixel(x, y, Luma([0]));
            }
        }
        let out = fit(&page, 16, 16);
        let darkest: Vec<u8> = (0..16)
            .map(|y| out.get_pixel(8, y).0[0])
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|c| c[0].min(c[1]))
            .collect();
        assert!(darkest.iter().all(|&v| v < 230), "every line leaves a trace: {darkest:?}");
    }

    #[test]
    fn crops_map_gray_to_unit_range_and_scale_ink() {
        let mut image = GrayImage::from_pixel(4, 4, Luma([255]));
        image.put_pixel(1, 2, Luma([0]));
        let page = PreparedPage::from_image(&image);
        let crop = page.crop(1, 2, 2, 2, 1.0);
        assert_eq!((crop.left, crop.top), (1, 2));
        assert_eq!(crop.values, vec![-1.0, 1.0, 1.0, 1.0]);
        let light = page.crop(1, 2, 1, 1, 0.75);
        assert!((light.values[0] - (-0.5)).abs() < 1e-6, "{:?}", light.values);
        assert_eq!(page.crop_positions(2, 2, 1), (3, 3));
        assert_eq!(page.crop_positions(4, 4, 2), (1, 1));
    }

    /// A PNG that is all header: the signature, an IHDR chunk (8-bit grayscale) claiming
    /// `width` x `height`, an empty IDAT chunk and IEND, with valid CRCs and no pixel data.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", &[]), (b"IEND", &[])] {
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
            bytes.extend_from_slice(kind);
            bytes.extend_from_slice(data);
            bytes.extend_from_slice(&crc.sum().to_be_bytes());
        }
        bytes
    }

    /// Writes `bytes` to `name` in `dir` and decodes it, expecting an input error that names
    /// the file and says `why`.
    fn refused(dir: &Path, name: &str, bytes: &[u8], why: &str) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = decode(&path).unwrap_err();
        let text = err.to_string();
        assert!(err.is_input(), "{name}: {text}");
        assert!(text.starts_with(&path.display().to_string()), "{name}: {text}");
        assert!(text.contains(why), "{name}: {text}");
    }

    #[test]
    fn unusable_files_are_input_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = Vec::new();
        let pixel = GrayImage::from_pixel(1, 1, Luma([0]));
        pixel.write_to(&mut std::io::Cursor::new(&mut one), ImageFormat::Png).unwrap();
        refused(dir.path(), "one.png", &one, "too small: 1x1 px, need at least 16 px");

        // The header alone claims 600 million pixels: refused by its size, not by the
        // missing data, so the check came before any decoding.
        let huge = png_header(20_000, 30_000);
        assert_eq!(dimensions_of(dir.path(), &huge), (20_000, 30_000));
        refused(dir.path(), "huge.png", &huge, "too large: 20000x30000 px, the limit is 16384");

        refused(dir.path(), "empty.png", b"", "empty file");
        refused(dir.path(), "text.png", b"staff lines and notes", "not a PNG or JPEG image");

        let page = std::fs::read(crate::dataset::bundled_mini().join("val/M21W0004_1.png"));
        let page = page.unwrap();
        let truncated = &page[..page.len() / 2];
        refused(dir.path(), "truncated.png", truncated, "corrupt or truncated image");
        refused(dir.path(), "header_only.png", &png_header(64, 64), "corrupt or truncated");
    }

    fn dimensions_of(dir: &Path, bytes: &[u8]) -> (u32, u32) {
        let path = dir.join("probe.png");
        std::fs::write(&path, bytes).unwrap();
        dimensions(&path).unwrap()
    }

    #[test]
    fn the_smallest_and_a_real_page_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.png");
        GrayImage::from_pixel(MIN_SIDE, MIN_SIDE, Luma([7])).save(&path).unwrap();
        assert_eq!(decode(&path).unwrap().get_pixel(3, 3).0[0], 7);
        let page = decode(&crate::dataset::bundled_mini().join("val/M21W0004_1.png")).unwrap();
        assert_eq!(page.dimensions(), (512, 724));
    }
}
