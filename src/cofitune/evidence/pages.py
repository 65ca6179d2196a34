"""Markdown files (the summary, the model card) as self-contained HTML pages for Snakemake's report,
which shows HTML and pictures but only offers other files for download."""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 70em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f0f0; }
code, pre { background: #f6f6f6; font-size: 0.9em; }
pre { padding: 0.8em; overflow-x: auto; }
.front-matter { color: #666; font-size: 0.85em; }
"""


def markdown_page(title: str, markdown: str) -> str:
    """One HTML document: YAML front matter (a model card's metadata) shown as such, the rest rendered."""
    front, body = split_front_matter(markdown)
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    meta = f'<pre class="front-matter">{html.escape(front)}</pre>\n' if front else ""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{meta}{renderer.render(body)}</body></html>\n")


def split_front_matter(markdown: str) -> tuple[str, str]:
    """('key: value lines', rest) for a document opening with a '---' block; ('', markdown) otherwise."""
    if not markdown.startswith("---\n"):
        return "", markdown
    front, sep, rest = markdown[4:].partition("\n---\n")
    return (front, rest) if sep else ("", markdown)
