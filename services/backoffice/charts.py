"""Charts for the dashboard, drawn on the server as inline SVG.

Why SVG strings and not a chart library: the pages have no build step and load nothing from
elsewhere; a horizontal bar chart is a few rectangles and labels, and a page that is only HTML
renders on a phone and in a screenshot test alike. Every label is escaped here (``Markup.format``), so
the returned ``Markup`` is safe to place in a template as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 210
VALUE_WIDTH = 110
WIDTH = 640
COLOURS = ("#1f6feb", "#e36209", "#067647", "#b42318", "#6f42c1")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # what the bar's length shows
    shown: str  # what the bar's end says (a count, a rate, an amount, a duration)
    series: int = 0  # colour index, for bars of different kinds in one chart


def bars(title: str, rows: Sequence[Bar], *, empty: str = "nothing in this period") -> Markup:
    """A horizontal bar chart, longest bar = the largest value; an accessible title and a table
    fallback are the caller's (the page shows the same figures as a table beside it)."""
    if not rows:
        return Markup('<p class="muted">{}</p>').format(empty)
    top = max((row.value for row in rows), default=0.0) or 1.0
    track = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = len(rows) * (BAR_HEIGHT + GAP)
    parts = [Markup('<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="100%" '
                    'preserveAspectRatio="xMinYMin meet"><title>{t}</title>').format(w=WIDTH, h=height, t=title)]
    for index, row in enumerate(rows):
        y = index * (BAR_HEIGHT + GAP)
        length = max(round(track * max(row.value, 0.0) / top), 1 if row.value > 0 else 0)
        colour = COLOURS[row.series % len(COLOURS)]
        parts.append(Markup(
            '<text x="0" y="{ty}" font-size="12" fill="#1d2433">{label}</text>'
            '<rect x="{x}" y="{y}" width="{length}" height="{bh}" rx="3" fill="{colour}"></rect>'
            '<text x="{vx}" y="{ty}" font-size="13" fill="#475467">{shown}</text>').format(
                ty=y + BAR_HEIGHT - 6, label=_fit(row.label), x=LABEL_WIDTH, y=y, length=length, bh=BAR_HEIGHT,
                colour=colour, vx=LABEL_WIDTH + length + 6, shown=row.shown))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _fit(label: str, limit: int = 26) -> str:
    """Cut to fit the label column (``Markup.format`` escapes it)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"
