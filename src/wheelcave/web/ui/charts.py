"""Stacked bar charts as inline SVG, drawn on the server (no script, no other origin).

Colours come from the stylesheet (classes ``s0``, ``s1``, ``s2`` and the theme's variables), so
both themes apply; each chart has a title and a description for screen readers, and the page
shows the same numbers as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

__all__ = ["bar_chart", "human_bytes"]

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 64, 22, 8


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _plain(n: float) -> str:
    return f"{n:,.0f}"


def bar_chart(chart_id: str, title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
              fmt: Callable[[float], str] = _plain) -> Markup:
    """One stacked bar per label; ``series``: (name, one value per label), bottom first."""
    count = max(1, len(labels))
    stacks = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = max(stacks, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / count
    bar = max(1.0, slot * 0.8)
    total = sum(stacks)
    desc = "; ".join(f"{name}: {fmt(sum(values))}" for name, values in series)
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(f"In all: {fmt(total)}. {desc}.")}</desc>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 4}" y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(fmt(top))}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_h
        for s, (name, values) in enumerate(series):
            h = plot_h * values[i] / top
            if h <= 0:
                continue
            y -= h
            parts.append(f'<rect class="s{s}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                         f'<title>{escape(label)}: {escape(name)} {escape(fmt(values[i]))}</title></rect>')
    for i in sorted({0, count // 2, count - 1}):
        if i < len(labels):
            anchor = "start" if i == 0 else "end" if i == count - 1 else "middle"
            x = LEFT + i * slot + (0 if anchor == "start" else slot if anchor == "end" else slot / 2)
            parts.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">{escape(label)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<li><span class="swatch s{s}" aria-hidden="true"></span>{escape(name)}: {escape(fmt(sum(values)))}</li>'
                     for s, (name, values) in enumerate(series))
    return Markup(f'<figure class="chart">{"".join(parts)}<figcaption><strong>{escape(title)}</strong>'
                  f'<ul class="legend">{legend}</ul></figcaption></figure>')
