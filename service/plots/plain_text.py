"""Text that Plotly shows as written: Plotly renders a subset of HTML (`<a href>`, `<b>`, `<br>`, ...) in titles,
tick labels, legends and hover texts, so a label made of user input (a task option's key or value) must not
carry tags."""

from __future__ import annotations


def plain_text(label: str) -> str:
    """`label` with `&`, `<` and `>` as HTML entities, which Plotly draws as those characters, never as markup."""
    return label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
