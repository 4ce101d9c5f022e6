//! The loss curve as a PNG (plotters), from the run's JSONL log: the raw loss per logged
//! step, its moving average and the held-out loss where it was measured, on a log scale.

use std::path::Path;

use plotters::prelude::*;

use super::log::LogRecord;
use crate::error::{Error, Result};

/// The font every plot uses, shipped with scoregen (DejaVu Sans; licence beside it).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the bundled font could not be read; plots will have no labels");
        }
    });
}

/// The mean of each window of `width` records ending at each record.
pub fn moving_average(losses: &[f64], width: usize) -> Vec<f64> {
    let width = width.max(1);
    (0..losses.len())
        .map(|i| {
            let window = &losses[i.saturating_sub(width - 1)..=i];
            window.iter().sum::<f64>() / window.len() as f64
        })
        .collect()
}

/// `value` to `digits` significant digits (whole numbers stay whole) without trailing
/// zeros: 0.4, 0.05, 0.012, 20.
fn significant(value: f64, digits: i32) -> String {
    if value <= 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let decimals = (digits - 1 - value.log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Draws `records` to a PNG of `width` x `height` pixels at `path`.
pub fn loss_curve(records: &[LogRecord], path: &Path, width: u32, height: u32) -> Result<()> {
    if records.is_empty() {
        return Err(Error::input(format!("{}: no logged steps to plot", path.display())));
    }
    register_font();
    let fail = |e: &dyn std::fmt::Display| {
        Error::runtime(format!("{}: could not draw the loss curve: {e}", path.display()))
    };
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let losses: Vec<f64> = records.iter().map(|r| r.loss.max(1e-8)).collect();
        let smooth = moving_average(&losses, (records.len() / 20).max(1));
        let held_out: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| r.held_out.as_ref().map(|h| (r.step as f64, h.mean.max(1e-8))))
            .collect();
        let (low, high) = losses
            .iter()
            .chain(held_out.iter().map(|(_, l)| l))
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let last_step = records.last().map_or(1, |r| r.step).max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("training loss", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..last_step, (low * 0.9..high * 1.1).log_scale())
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .x_label_formatter(&|step| format!("{step:.0}"))
            .y_label_formatter(&|loss| significant(*loss, 2))
            .draw()
            .map_err(|e| fail(&e))?;
        let raw = records.iter().zip(&losses).map(|(r, &l)| (r.step as f64, l));
        chart.draw_series(LineSeries::new(raw, RGBColor(170, 190, 230))).map_err(|e| fail(&e))?;
        let averaged = records.iter().zip(&smooth).map(|(r, &l)| (r.step as f64, l));
        chart
            .draw_series(LineSeries::new(averaged, RGBColor(20, 60, 160).stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label("training (moving average)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(20, 60, 160)));
        if !held_out.is_empty() {
            let orange = RGBColor(230, 120, 20);
            chart
                .draw_series(LineSeries::new(held_out.clone(), orange.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label("held-out pages")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], orange));
            chart
                .draw_series(held_out.iter().map(|&p| Circle::new(p, 4, orange.filled())))
                .map_err(|e| fail(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    let image = image::RgbImage::from_raw(width, height, pixels).expect("the buffer fits");
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| fail(&e))?;
    crate::fsutil::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::held_out::HeldOutLoss;

    #[test]
    fn axis_labels_keep_two_significant_digits() {
        let cases = [(0.4000000000004, "0.4"), (0.05, "0.05"), (0.0123, "0.012"), (20.0, "20")];
        for (value, expected) in cases {
            assert_eq!(significant(value, 2), expected, "{value}");
        }
        assert_eq!(significant(1234.0, 2), "1234", "whole numbers are not rounded");
    }

    #[test]
    fn moving_average_matches_hand_values() {
        assert_eq!(moving_average(&[1.0, 3.0, 5.0, 7.0], 2), [1.0, 2.0, 4.0, 6.0]);
        assert_eq!(moving_average(&[2.0], 5), [2.0]);
    }

    #[test]
    fn the_curve_is_drawn_with_ink_where_the_data_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let records: Vec<LogRecord> = (1..=50)
            .map(|step| LogRecord {
                step,
                loss: 1.0 / step as f64,
                learning_rate: 1e-3,
                images_per_second: 1.0,
                elapsed_seconds: step as f64,
                held_out: step.is_multiple_of(10).then(|| HeldOutLoss {
                    pages: 1,
                    mean: 2.0 / step as f64,
                    by_timestep: Vec::new(),
                }),
            })
            .collect();
        loss_curve(&records, &path, 400, 300).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (400, 300));
        let blue = image.pixels().filter(|p| p.0[2] > 120 && p.0[0] < 60).count();
        assert!(blue > 100, "the averaged curve is drawn ({blue} px)");
        let orange = image.pixels().filter(|p| p.0[0] > 200 && p.0[2] < 60).count();
        assert!(orange > 100, "the held-out points are drawn ({orange} px)");
        let dark = image.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
        assert!(dark > 200, "axes and labels are drawn ({dark} px)");
        assert!(loss_curve(&[], &path, 10, 10).is_err());
    }
}
