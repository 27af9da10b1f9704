"""Small inline SVG line charts, embedded in log.html (no files, so parallel runs never collide)."""

from __future__ import annotations

from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def line_chart(series: dict[str, list[tuple[float, float | None]]], title: str, x_label: str, y_label: str,
               width: int = 640, height: int = 260) -> str:
    """An SVG with one polyline per series; ``None`` values break the line."""
    points = [(x, y) for values in series.values() for x, y in values if y is not None]
    left, right, top, bottom = 60, 130, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    if not points:
        out.append(f'<text x="{left}" y="{top + 20}">no data</text></svg>')
        return "".join(out)
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    y_max = max(p[1] for p in points) or 1.0
    y_max *= 1.1
    x_span = (x_max - x_min) or 1.0

    def sx(x: float) -> float:
        return left + (x - x_min) / x_span * plot_w

    def sy(y: float) -> float:
        return top + plot_h - y / y_max * plot_h

    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for i in range(5):
        value = y_max * i / 4
        grid_y = sy(value)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{grid_y:.1f}" y2="{grid_y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{grid_y + 4:.1f}" text-anchor="end">{value:.3g}</text>')
    for i in range(5):
        value = x_min + x_span * i / 4
        out.append(f'<text x="{sx(value):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{value:.3g}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="12" y="{top + plot_h / 2}" transform="rotate(-90 12 {top + plot_h / 2})" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    for idx, (name, values) in enumerate(series.items()):
        color = COLORS[idx % len(COLORS)]
        segment: list[str] = []
        segments = []
        for x, y in values:
            if y is None:
                if segment:
                    segments.append(segment)
                segment = []
            else:
                segment.append(f"{sx(x):.1f},{sy(y):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            else:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{" ".join(seg)}"/>')
        ly = top + 14 + idx * 16
        out.append(f'<line x1="{left + plot_w + 10}" x2="{left + plot_w + 28}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{left + plot_w + 32}" y="{ly}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
