"""Writing a table: its raw numbers as CSV, its display as Markdown and as LaTeX (booktabs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memnet.io import atomic_path, write_text

NO_RESULTS = "No results for this table in this run."


def to_markdown(display: pd.DataFrame) -> str:
    if display.empty:
        return f"*{NO_RESULTS}*\n"
    numeric = [_is_numeric_column(display[c]) for c in display.columns]
    lines = [
        "| " + " | ".join(display.columns) + " |",
        "|" + "|".join("---:" if num else ":---" for num in numeric) + "|",
    ]
    for row in display.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _is_numeric_column(values: pd.Series) -> bool:
    cleaned = values.astype(str).str.replace(r"[\s,%±≈+\-–\[\]()]", "", regex=True)
    return (
        bool(len(values))
        and cleaned.str.replace(".", "", regex=False).str.isdigit().any()
        and (cleaned.str.fullmatch(r"[\d.]*").all())
    )


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
LATEX_SYMBOLS = {"±": r"$\pm$", "≈": r"$\approx$", "Δ": r"$\Delta$", "–": "--", "`": ""}


def latex_escape(text) -> str:
    out = "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))
    for symbol, command in LATEX_SYMBOLS.items():
        out = out.replace(symbol, command)
    return out


def to_latex(display: pd.DataFrame, caption: str, label: str, wide: dict | None = None) -> str:
    """A booktabs table; ``wide`` maps a column to a paragraph width (e.g. {'Why': '5cm'})."""
    wide = wide or {}
    if display.empty:
        display = pd.DataFrame({"": [NO_RESULTS]})
    spec = "".join(
        f"p{{{wide[c]}}}" if c in wide else ("r" if _is_numeric_column(display[c]) else "l")
        for c in display.columns
    )
    lines = [
        r"\begin{table}[tbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(caption)}}}",
        rf"\label{{tab:{label}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in display.columns) + r" \\",
        r"\midrule",
    ]
    first = display.columns[0]
    previous = None
    for _, row in display.iterrows():
        if previous is not None and row[first] != previous and first == "Dataset":
            lines.append(r"\midrule")
        previous = row[first]
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    raw: pd.DataFrame,
    display: pd.DataFrame,
    stem: str,
    out_dir: str | Path,
    wide: dict | None = None,
    caption: str | None = None,
) -> list[Path]:
    """``stem``.csv (raw numbers), .md and .tex (formatted, with ``caption``) under ``out_dir``."""
    out_dir = Path(out_dir)
    csv_path = out_dir / f"{stem}.csv"
    with atomic_path(csv_path) as tmp:
        raw.to_csv(tmp, index=False)
    write_text(out_dir / f"{stem}.md", to_markdown(display))
    write_text(out_dir / f"{stem}.tex", to_latex(display, caption or stem, stem, wide))
    return [csv_path, out_dir / f"{stem}.md", out_dir / f"{stem}.tex"]
