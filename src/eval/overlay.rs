//! Drawing what the staff detector found over the page, for reports: every long line in
//! orange, staff lines in red over them, and a blue bracket left of each system.

use image::{GrayImage, Rgb, RgbImage};

use super::staff::PageStructure;

/// Long lines that are in no staff (lyric extenders, beams, stray lines).
const OTHER_LINE: Rgb<u8> = Rgb([255, 150, 0]);
/// Lines of detected staves.
const STAFF_LINE: Rgb<u8> = Rgb([220, 0, 0]);
/// System brackets.
const SYSTEM: Rgb<u8> = Rgb([0, 70, 255]);
/// Distance of a system bracket left of its staves (px).
const BRACKET_OFFSET: u32 = 4;
/// Length of the bracket's end ticks (px).
const TICK: u32 = 3;

/// The page in colour with the detected structure drawn over it. The page is lightened so the
/// marks stand out; marks falling outside the page (a structure from another page size) are
/// clipped.
pub fn overlay(page: &GrayImage, structure: &PageStructure) -> RgbImage {
    let mut out = RgbImage::from_fn(page.width(), page.height(), |x, y| {
        let grey = page.get_pixel(x, y).0[0] / 2 + 127;
        Rgb([grey, grey, grey])
    });
    for line in &structure.lines {
        horizontal(&mut out, line.y, line.x0, line.x1, OTHER_LINE);
    }
    for staff in &structure.staves {
        for &row in &staff.line_rows {
            horizontal(&mut out, row, staff.left, staff.right, STAFF_LINE);
        }
    }
    for system in &structure.systems {
        let x = system.left.saturating_sub(BRACKET_OFFSET);
        let (top, bottom) = (row_of(system.top), row_of(system.bottom));
        for y in top..=bottom.min(out.height()) {
            put(&mut out, x, y, SYSTEM);
            put(&mut out, x + 1, y, SYSTEM);
        }
        for dx in 0..=TICK {
            put(&mut out, x + dx, top, SYSTEM);
            put(&mut out, x + dx, bottom, SYSTEM);
        }
    }
    out
}

/// The pixel row holding continuous row `y` (negative rows clamp to 0).
fn row_of(y: f64) -> u32 {
    y.floor().max(0.0) as u32
}

fn horizontal(image: &mut RgbImage, y: f64, x0: u32, x1: u32, colour: Rgb<u8>) {
    if y < 0.0 {
        return;
    }
    let row = row_of(y);
    for x in x0..x1.min(image.width()) {
        put(image, x, row, colour);
    }
}

fn put(image: &mut RgbImage, x: u32, y: u32, colour: Rgb<u8>) {
    if x < image.width() && y < image.height() {
        image.put_pixel(x, y, colour);
    }
}

#[cfg(test)]
mod tests {
    use image::Luma;

    use super::*;
    use crate::eval::StaffDetector;

    #[test]
    fn draws_staff_lines_and_system_brackets() {
        let mut page = GrayImage::from_pixel(300, 200, Luma([255]));
        for line in 0..5 {
            for x in 30..270 {
                page.put_pixel(x, 40 + 4 * line, Luma([0]));
                page.put_pixel(x, 100 + 4 * line, Luma([0]));
            }
        }
        for y in 40..117 {
            page.put_pixel(30, y, Luma([0]));
        }
        let structure = StaffDetector::default().detect(&page);
        assert_eq!(structure.staves_per_system(), vec![2]);
        let drawn = overlay(&page, &structure);
        assert_eq!(drawn.dimensions(), page.dimensions());
        assert_eq!(*drawn.get_pixel(150, 44), STAFF_LINE);
        assert_eq!(*drawn.get_pixel(150, 104), STAFF_LINE);
        let bracket_x = structure.systems[0].left - BRACKET_OFFSET;
        assert_eq!(*drawn.get_pixel(bracket_x, 80), SYSTEM);
        // White paper is lightened grey, not a mark.
        assert_eq!(*drawn.get_pixel(150, 10), Rgb([254, 254, 254]));
    }

    #[test]
    fn clips_a_structure_from_a_larger_page() {
        let big = StaffDetector::default().detect(&{
            let mut page = GrayImage::from_pixel(512, 300, Luma([255]));
            for line in 0..5 {
                for x in 40..472 {
                    page.put_pixel(x, 250 + 4 * line, Luma([0]));
                }
            }
            page
        });
        assert_eq!(big.staves.len(), 1);
        let small = GrayImage::from_pixel(100, 100, Luma([255]));
        assert_eq!(overlay(&small, &big).dimensions(), (100, 100));
    }
}
