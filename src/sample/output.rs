//! Writing pages: grayscale PNGs with their generation settings in text chunks, and
//! contact sheets with each page's prompt written under it.

use std::path::Path;

use image::{GrayImage, Luma};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Encodes a grayscale page as PNG with `(keyword, text)` chunks (tEXt, or iTXt where the
/// text is not Latin-1).
pub fn encode_png(page: &GrayImage, text: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, page.width(), page.height());
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        for (keyword, value) in text {
            let latin1 = value.chars().all(|c| (c as u32) < 256);
            let added = if latin1 {
                encoder.add_text_chunk(keyword.to_string(), value.clone())
            } else {
                encoder.add_itxt_chunk(keyword.to_string(), value.clone())
            };
            added.map_err(|e| Error::runtime(format!("PNG text chunk `{keyword}`: {e}")))?;
        }
        let mut writer =
            encoder.write_header().map_err(|e| Error::runtime(format!("PNG header: {e}")))?;
        writer
            .write_image_data(page.as_raw())
            .map_err(|e| Error::runtime(format!("PNG data: {e}")))?;
    }
    Ok(bytes)
}

/// Writes a page as PNG, atomically.
pub fn write_png(path: &Path, page: &GrayImage, text: &[(&str, String)]) -> Result<()> {
    write_atomic(path, &encode_png(page, text)?)
}

/// Height of one line of caption text on a contact sheet, in pixels.
const LINE: u32 = 10;

/// Lays pages out in a grid with each caption wrapped underneath in an 8x8 bitmap font.
pub fn contact_sheet(pages: &[(GrayImage, String)], columns: usize) -> GrayImage {
    let columns = columns.clamp(1, pages.len().max(1)) as u32;
    let cell_w = pages.iter().map(|(p, _)| p.width()).max().unwrap_or(1);
    let cell_h = pages.iter().map(|(p, _)| p.height()).max().unwrap_or(1);
    let chars_per_line = (cell_w / 8).max(1) as usize;
    let lines = pages.iter().map(|(_, c)| wrap(c, chars_per_line).len()).max().unwrap_or(0) as u32;
    let caption_h = lines * LINE + 6;
    let rows = (pages.len() as u32).div_ceil(columns);
    let gap = 8;
    let width = columns * (cell_w + gap) + gap;
    let height = rows * (cell_h + caption_h + gap) + gap;
    let mut sheet = GrayImage::from_pixel(width, height, Luma([200]));
    for (i, (page, caption)) in pages.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let x = gap + col * (cell_w + gap);
        let y = gap + row * (cell_h + caption_h + gap);
        image::imageops::replace(&mut sheet, page, x as i64, y as i64);
        for (n, line) in wrap(caption, chars_per_line).iter().enumerate() {
            draw_text(&mut sheet, line, x, y + cell_h + 4 + n as u32 * LINE);
        }
    }
    sheet
}

/// Greedy word wrap to `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draws ASCII text in black; other characters show as `?`.
fn draw_text(image: &mut GrayImage, text: &str, x: u32, y: u32) {
    for (i, c) in text.chars().enumerate() {
        let code = if c.is_ascii() { c as usize } else { '?' as usize };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        for (dy, bits) in glyph.iter().enumerate() {
            for dx in 0..8 {
                let (px, py) = (x + i as u32 * 8 + dx, y + dy as u32);
                if bits >> dx & 1 == 1 && px < image.width() && py < image.height() {
                    image.put_pixel(px, py, Luma([0]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_pixels_and_text() {
        let mut page = GrayImage::from_pixel(5, 3, Luma([255]));
        page.put_pixel(2, 1, Luma([0]));
        let bytes =
            encode_png(&page, &[("prompt", "a music score".into()), ("seed", "7".into())]).unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap().to_luma8();
        assert_eq!(decoded, page);
        let reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().unwrap();
        let texts: Vec<(String, String)> = reader
            .info()
            .uncompressed_latin1_text
            .iter()
            .map(|t| (t.keyword.clone(), t.text.clone()))
            .collect();
        assert!(texts.contains(&("prompt".into(), "a music score".into())), "{texts:?}");
        assert!(texts.contains(&("seed".into(), "7".into())));
    }

    #[test]
    fn sheet_places_pages_and_writes_captions() {
        let black = GrayImage::from_pixel(16, 20, Luma([0]));
        let sheet = contact_sheet(&[(black.clone(), "ab".into()), (black, "a b c d e".into())], 2);
        // Two columns of 16 px with 8 px gaps; captions wrap at 2 characters: 5 lines.
        assert_eq!(sheet.width(), 2 * (16 + 8) + 8);
        assert_eq!(sheet.height(), 20 + 5 * LINE + 6 + 2 * 8);
        assert_eq!(sheet.get_pixel(8, 8).0[0], 0, "first page");
        assert_eq!(sheet.get_pixel(32, 8).0[0], 0, "second page");
        let caption_ink = (8..24)
            .flat_map(|x| (32..42).map(move |y| (x, y)))
            .filter(|&(x, y)| sheet.get_pixel(x, y).0[0] == 0)
            .count();
        assert!(caption_ink > 5, "caption text is drawn");
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
    }
}
