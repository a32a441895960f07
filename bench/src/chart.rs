//! The SVG bar chart of the report binaries (`dense.svg` of `src/bin/report.rs`, `models.svg`
//! of `src/bin/models.rs`): groups of bars, one per series, each a time relative to a
//! reference (the roofline bound, the floor) on a log axis from 0.5× (so bars at the
//! reference stay visible) to the next power of ten, with a legend under the plot.

use std::fmt::Write as _;

/// Where the parts of a [`BarChart`] go, in SVG user units (pixels).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Width of one bar slot (the bar is 1 narrower).
    pub bar: f64,
    /// Space added to each group besides its bars.
    pub group_gap: f64,
    /// Offset of a group's first bar from the group's left edge.
    pub group_inset: f64,
    /// Left edge of the plot (the tick labels stand left of it).
    pub left: f64,
    /// Top edge of the plot.
    pub top: f64,
    /// Height of the plot.
    pub plot_h: f64,
    /// Baseline of the subtitle.
    pub subtitle_y: f64,
    /// Space right of the plot (the reference line's label).
    pub right: f64,
    /// The least width of the whole chart.
    pub min_width: f64,
    /// Space under the plot before the legend's rows.
    pub below: f64,
    /// Baseline of a group's label under the plot.
    pub group_label_dy: f64,
    /// Legend entries per row, and the width of one.
    pub legend_cols: usize,
    /// Width of one legend entry.
    pub legend_col_w: f64,
    /// Baseline of the legend's first row under the plot.
    pub legend_dy: f64,
}

/// A series: one bar in each group that has a value for it, and one legend entry.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// Fill colour.
    pub color: &'static str,
}

/// One bar: its ratio to the reference and its tooltip.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Time relative to the reference (1 = at the reference).
    pub ratio: f64,
    /// The tooltip (`<title>`).
    pub title: String,
}

/// A group of bars under one label, one slot per series (`None`: no bar there).
#[derive(Clone, Debug)]
pub struct Group {
    /// The label under the group.
    pub label: String,
    /// `bars[i]` belongs to series `i`.
    pub bars: Vec<Option<Bar>>,
}

/// A grouped bar chart; [`BarChart::svg`] draws it.
#[derive(Clone, Debug)]
pub struct BarChart {
    /// The bold first line.
    pub title: String,
    /// The grey second line.
    pub subtitle: String,
    /// The label of the 1× line.
    pub reference: String,
    /// The series, in bar and legend order.
    pub series: Vec<Series>,
    /// The groups, left to right.
    pub groups: Vec<Group>,
    /// Labels that each span a run of consecutive groups (`(label, groups)`), drawn under the
    /// groups' own labels with a rule between runs; empty for none.
    pub sections: Vec<(String, usize)>,
    /// Sizes and places.
    pub layout: Layout,
}

/// `s` with `&`, `<` and `>` escaped for SVG text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl BarChart {
    /// The SVG document.
    pub fn svg(&self) -> String {
        let l = &self.layout;
        let (left, top, plot_h, bar) = (l.left, l.top, l.plot_h, l.bar);
        let n_series = self.series.len();
        let group_w = bar * n_series as f64 + l.group_gap;
        let plot_right = left + group_w * self.groups.len() as f64;
        let width = (plot_right + l.right).max(l.min_width);
        let legend_h = 18.0 * n_series.div_ceil(l.legend_cols) as f64;
        let height = top + plot_h + l.below + legend_h;
        let lo = 0.5f64;
        let max = self
            .groups
            .iter()
            .flat_map(|g| g.bars.iter().flatten())
            .map(|b| b.ratio)
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max);
        let decades = max.log10().ceil().max(1.0);
        let span = decades - lo.log10();
        let y_of = |ratio: f64| top + plot_h - ((ratio.max(lo).log10() - lo.log10()) / span) * plot_h;

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{left}" y="22" font-size="15" font-weight="bold">{}</text>"#, esc(&self.title));
        let _ = writeln!(s, r##"<text x="{left}" y="{}" fill="#444">{}</text>"##, l.subtitle_y, esc(&self.subtitle));
        let mut ticks = vec![lo];
        ticks.extend((0..=decades as i32).map(|dec| 10f64.powi(dec)));
        for v in ticks {
            let y = y_of(v);
            let stroke = if v == 1.0 { "#d62728" } else { "#ddd" };
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{plot_right:.0}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}"/><text x="{:.0}" y="{:.1}" text-anchor="end">{v}×</text>"##,
                left - 6.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" fill="#d62728">{}</text>"##,
            plot_right + 6.0,
            y_of(1.0) + 4.0,
            esc(&self.reference)
        );
        for (gi, group) in self.groups.iter().enumerate() {
            let gx = left + gi as f64 * group_w + l.group_inset;
            for (ni, b) in group.bars.iter().enumerate() {
                let (Some(b), Some(series)) = (b, self.series.get(ni)) else {
                    continue;
                };
                let y = y_of(b.ratio);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                    gx + ni as f64 * bar,
                    bar - 1.0,
                    (top + plot_h - y).max(0.5),
                    series.color,
                    esc(&b.title)
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + bar * n_series as f64 / 2.0,
                top + plot_h + l.group_label_dy,
                esc(&group.label)
            );
        }
        // One label per section, centred under its groups, and a rule between sections.
        let mut gi = 0;
        for (label, count) in &self.sections {
            let x0 = left + gi as f64 * group_w;
            let x1 = x0 + *count as f64 * group_w;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text>"#,
                (x0 + x1) / 2.0,
                top + plot_h + 32.0,
                esc(label)
            );
            if gi > 0 {
                let _ = writeln!(
                    s,
                    r##"<line x1="{x0:.1}" x2="{x0:.1}" y1="{top}" y2="{:.0}" stroke="#999"/>"##,
                    top + plot_h + 36.0
                );
            }
            gi += count;
        }
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.0}" stroke="#000"/><line x1="{left}" x2="{plot_right:.0}" y1="{:.0}" y2="{:.0}" stroke="#000"/>"##,
            top + plot_h,
            top + plot_h,
            top + plot_h
        );
        for (ni, series) in self.series.iter().enumerate() {
            let x = left + (ni % l.legend_cols) as f64 * l.legend_col_w;
            let y = top + plot_h + l.legend_dy + (ni / l.legend_cols) as f64 * 18.0;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.0}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{y:.0}">{}</text>"#,
                y - 10.0,
                series.color,
                x + 17.0,
                esc(&series.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> BarChart {
        let series = ["a", "b <&>"].iter().map(|&n| Series { label: n.to_string(), color: "#1b9e77" }).collect();
        let bar = |ratio: f64| Some(Bar { ratio, title: format!("{ratio}× & more") });
        BarChart {
            title: "T".into(),
            subtitle: "sub".into(),
            reference: "floor".into(),
            series,
            groups: vec![
                Group { label: "batch 1".into(), bars: vec![bar(1.0), bar(37.0)] },
                Group { label: "batch 8".into(), bars: vec![None, bar(f64::NAN)] },
                Group { label: "batch 64".into(), bars: vec![bar(0.2), bar(2.0)] },
            ],
            sections: vec![("m1".into(), 2), ("m2".into(), 1)],
            layout: Layout {
                bar: 10.0,
                group_gap: 10.0,
                group_inset: 5.0,
                left: 50.0,
                top: 40.0,
                plot_h: 300.0,
                subtitle_y: 36.0,
                right: 80.0,
                min_width: 700.0,
                below: 60.0,
                group_label_dy: 14.0,
                legend_cols: 2,
                legend_col_w: 200.0,
                legend_dy: 48.0,
            },
        }
    }

    #[test]
    fn draws_every_bar_tick_and_label_escaped() {
        let svg = chart().svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"700\""), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        // Five bars (one slot empty), two legend swatches, the background.
        assert_eq!(svg.matches("<rect").count(), 5 + 2 + 1);
        // 0.5×, 1×, 10× and 100× (the largest ratio is 37).
        for tick in [">0.5×<", ">1×<", ">10×<", ">100×<"] {
            assert!(svg.contains(tick), "{tick}");
        }
        assert!(!svg.contains(">1000×<"));
        assert!(svg.contains("b &lt;&amp;&gt;") && svg.contains("37× &amp; more"));
        // A rule between the two sections only.
        assert_eq!(svg.matches("stroke=\"#999\"").count(), 1);
        // Well-formed enough for a parser: every opened element is closed.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<title>").count(), svg.matches("</title>").count());
    }
}
