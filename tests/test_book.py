"""The chapters' shape, and the Colab-link check that runs after every book build."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("book_tools", ROOT / "scripts" / "book_tools.py")
book_tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book_tools)


@pytest.mark.parametrize("chapter", book_tools.toc_chapters(), ids=lambda p: p.stem)
def test_chapter_shape(chapter):
    assert book_tools.check_notebook(chapter) == []


def test_chapter_check_catches_outputs_and_missing_sections(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "source": "print(1)", "outputs": [{"text": "1"}],
         "execution_count": 1, "metadata": {}},
        {"cell_type": "markdown", "source": "# Title", "metadata": {}}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    problems = "\n".join(book_tools.check_notebook(path))
    for expected in ("set-up cell", "has outputs", "Summary", "Exercises", "dropdown"):
        assert expected in problems


def _page(tmp_path: Path, chapter: Path, link: str | None) -> None:
    page = tmp_path / chapter.relative_to(ROOT).with_suffix(".html")
    page.parent.mkdir(parents=True, exist_ok=True)
    body = f'<a href="{link}">Colab</a>' if link else "<p>no link</p>"
    page.write_text(f"<html><body>{body}</body></html>")


def test_colab_check_accepts_existing_and_rejects_missing(tmp_path):
    chapters = book_tools.toc_chapters()
    base = "https://colab.research.google.com/github/o/r/blob/main/"
    for ch in chapters:
        _page(tmp_path, ch, base + str(ch.relative_to(ROOT)))
    assert book_tools.colab_problems(tmp_path) == []
    _page(tmp_path, chapters[0], base + "book/not_there.ipynb")
    _page(tmp_path, chapters[1], None)
    problems = book_tools.colab_problems(tmp_path)
    assert len(problems) == 2
    assert "not_there.ipynb" in problems[0] and "no Colab launch link" in problems[1]
