//! Charts drawn on the server as SVG: no script, readable without colour (each segment names its
//! day, series and amount in a `<title>`, which browsers show on hover and screen readers read),
//! and themed by the page's CSS (series colours and ink come from classes, so light and dark both
//! work). Amounts in labels are the exact decimals rounded for display; only the geometry uses
//! floating point.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
/// Room for the y-axis labels on the left and the dates below.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;
/// Series get these classes in turn (`series-0` …), styled in app.css.
const SERIES_CLASSES: usize = 6;

/// Escapes text for SVG content and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round number at or above `max` for the top of the axis: 1, 2 or 5 times a power of ten.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|v| *v >= max).unwrap_or(10.0 * magnitude)
}

/// What a bar stands for: a day, or a period named by text (an hour, a week by its Monday).
pub trait Bar: Ord + Clone + std::fmt::Display {
    /// The short label under the bar.
    fn axis(&self) -> String;
}

impl Bar for NaiveDate {
    fn axis(&self) -> String {
        self.format("%b %-d").to_string()
    }
}

/// A period as the explorer names it: `2026-11-05` (a day, or the first day of a week or month),
/// `2026-11-05 14:00` (an hour) or `2026-11-05 (whole day)` (a line without hours in an hourly
/// view). Ordered as text, which is time order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeriodLabel(pub String);

impl std::fmt::Display for PeriodLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Bar for PeriodLabel {
    fn axis(&self) -> String {
        let (day, rest) = self.0.split_at(self.0.len().min(10));
        match (day.parse::<NaiveDate>(), rest.trim()) {
            (Ok(d), "") => d.axis(),
            (Ok(d), hour) if hour.ends_with(":00") => format!("{} {hour}", d.format("%-d")),
            (Ok(d), _) => format!("{} (day)", d.axis()),
            (Err(_), _) => self.0.clone(),
        }
    }
}

/// One bar per period, stacked by series, for `bars` in order (periods without spend get no bar
/// but keep their place). `amounts` maps (period, series) to an amount in `currency`; `unit`
/// names a period in the description ("day", "hour", …). `None` when there is nothing to draw.
pub fn stacked<B: Bar>(
    id: &str,
    title: &str,
    bars: &[B],
    amounts: &BTreeMap<(B, String), Decimal>,
    currency: &str,
    unit: &str,
) -> Option<String> {
    let days = bars;
    if days.is_empty() || amounts.is_empty() {
        return None;
    }
    let series: Vec<&String> = {
        let mut totals: BTreeMap<&String, Decimal> = BTreeMap::new();
        for ((_, s), a) in amounts {
            *totals.entry(s).or_default() += *a;
        }
        let mut names: Vec<(&String, Decimal)> = totals.into_iter().collect();
        // The largest series at the bottom of each bar, and first in the legend.
        names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        names.into_iter().map(|(n, _)| n).collect()
    };
    let day_total =
        |d: &B| -> Decimal { series.iter().filter_map(|s| amounts.get(&(d.clone(), (*s).clone()))).copied().sum() };
    let max = days.iter().map(day_total).max().unwrap_or_default();
    let top = nice_ceiling(max.to_f64().unwrap_or(0.0));
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / days.len() as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let total: Decimal = amounts.values().copied().sum();

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-title\">{}</title>\
         <desc id=\"{id}-desc\">{} {} over {} {unit}{}, from {} to {}; the highest {unit} {} {}.</desc>",
        escape(title),
        total.round_dp(2),
        escape(currency),
        days.len(),
        if days.len() == 1 { "" } else { "s" },
        escape(&days[0].to_string()),
        escape(&days[days.len() - 1].to_string()),
        max.round_dp(2),
        escape(currency),
    );
    // Grid lines and labels at quarters of the axis.
    for step in 0..=4 {
        let value = top * f64::from(step) / 4.0;
        let gy = y(value);
        let label = Decimal::from_f64_retain(value).unwrap_or_default().round_dp(2).normalize();
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT - 6.0,
            gy + 4.0
        );
    }
    let label_every = (days.len() / 6).max(1);
    for (i, day) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let Some(amount) = amounts.get(&(day.clone(), (*s).clone())) else { continue };
            let v = amount.to_f64().unwrap_or(0.0).max(0.0);
            let (y_top, h) = (y(base + v), v / top * plot_h);
            base += v;
            let _ = write!(
                svg,
                "<rect class=\"series-{}\" x=\"{x:.1}\" y=\"{y_top:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\">\
                 <title>{} · {}: {} {}</title></rect>",
                k % SERIES_CLASSES,
                escape(&day.to_string()),
                escape(s),
                amount.round_dp(2),
                escape(currency)
            );
        }
        if i % label_every == 0 || i == days.len() - 1 {
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                HEIGHT - 8.0,
                escape(&day.axis())
            );
        }
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<ul class=\"legend\">");
    for (k, s) in series.iter().enumerate() {
        let _ = write!(legend, "<li><span class=\"swatch series-{}\"></span>{}</li>", k % SERIES_CLASSES, escape(s));
    }
    legend.push_str("</ul>");
    Some(svg + &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn bars_stack_their_series_and_each_segment_says_its_amount() {
        let mut amounts = BTreeMap::new();
        amounts.insert((day(1), "OpenAI".to_owned()), Decimal::new(1234, 2));
        amounts.insert((day(1), "A&B <Labs>".to_owned()), Decimal::new(500, 2));
        amounts.insert((day(3), "OpenAI".to_owned()), Decimal::new(2000, 2));
        let svg = stacked("c", "Spend", &[day(1), day(2), day(3)], &amounts, "USD", "day").unwrap();
        assert!(svg.contains("<title>2026-11-01 · OpenAI: 12.34 USD</title>"), "{svg}");
        assert!(svg.contains("2026-11-01 · A&amp;B &lt;Labs&gt;: 5.00 USD"), "names are escaped: {svg}");
        assert_eq!(svg.matches("<rect").count(), 3, "no bar for a day without spend");
        assert!(svg.contains("37.34 USD over 3 days"), "{svg}");
        // OpenAI is the larger series: it sits at the bottom, in the first colour.
        assert!(
            svg.contains("<rect class=\"series-0\"")
                && svg.contains("<li><span class=\"swatch series-0\"></span>OpenAI</li>")
        );
        assert_eq!(nice_ceiling(37.34), 50.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }

    #[test]
    fn one_day_draws_one_bar_and_nothing_draws_nothing() {
        let mut amounts = BTreeMap::new();
        amounts.insert((day(5), "Anthropic".to_owned()), Decimal::new(3, 0));
        let svg = stacked("c", "Spend", &[day(5)], &amounts, "USD", "day").unwrap();
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains("over 1 day, from 2026-11-05 to 2026-11-05"), "{svg}");
        assert!(stacked("c", "Spend", &[day(5)], &BTreeMap::new(), "USD", "day").is_none());
    }

    #[test]
    fn hours_and_whole_days_are_labelled_in_time_order() {
        let label = |s: &str| PeriodLabel(s.to_owned());
        let mut bars = vec![label("2026-11-05 14:00"), label("2026-11-05 (whole day)"), label("2026-11-05 09:00")];
        bars.sort();
        assert_eq!(bars[0], label("2026-11-05 (whole day)"), "a whole day comes before the day's hours");
        assert_eq!(bars.iter().map(Bar::axis).collect::<Vec<_>>(), ["Nov 5 (day)", "5 09:00", "5 14:00"]);
        assert_eq!(label("2026-11-02").axis(), "Nov 2");
        let mut amounts = BTreeMap::new();
        amounts.insert((label("2026-11-05 09:00"), "OpenAI".to_owned()), Decimal::new(70, 2));
        let svg = stacked("c", "Spend", &bars, &amounts, "USD", "hour").unwrap();
        assert!(svg.contains("0.70 USD over 3 hours, from 2026-11-05 (whole day) to 2026-11-05 14:00"), "{svg}");
        assert!(svg.contains("<title>2026-11-05 09:00 · OpenAI: 0.70 USD</title>"), "{svg}");
    }
}
