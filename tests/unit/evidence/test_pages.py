"""Markdown to self-contained HTML pages for the report."""

from __future__ import annotations

from cofitune.evidence.pages import markdown_page, split_front_matter


def test_tables_render_and_raw_html_is_escaped():
    page = markdown_page("Summary", "| a | b |\n|---|---|\n| **x** | <script>alert(1)</script> |\n")
    assert page.startswith("<!DOCTYPE html>") and "<title>Summary</title>" in page
    assert "<table>" in page and "<strong>x</strong>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_front_matter_is_shown_as_metadata_not_as_markdown():
    front, body = split_front_matter("---\nlibrary_name: transformers\n---\n# Title\n")
    assert front == "library_name: transformers" and body == "# Title\n"
    page = markdown_page("Card", "---\nbase_model: org/m\n---\n# Title\n")
    assert '<pre class="front-matter">base_model: org/m</pre>' in page and "<h1>Title</h1>" in page
    assert split_front_matter("# no front matter\n---\n") == ("", "# no front matter\n---\n")
