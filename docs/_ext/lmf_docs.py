"""Pages generated at build time, so the site follows the code: the API list, the README's guide, the tutorials.

- ``generated/api.md``: every public name of every public module (``__all__``), one autosummary page each;
- ``generated/guide/*.md``: the README's ``## `` sections, one page each;
- ``generated/tutorials/*.md``: each tutorial run cell by cell (``run_tutorial.py``) with its output and
  figures, cached in ``$LMF_DOCS_CACHE`` (default ``~/.cache/lmf_omics/docs``) under a hash of the script and
  the package's sources, so an unchanged tutorial is not run again.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GENERATED = DOCS / "generated"

API_SECTIONS = {
    "lmf_omics": "The estimator (arrays in, arrays out)",
    "lmf_omics.pp": "Preprocessing: `pp`",
    "lmf_omics.tl": "Tools: `tl`",
    "lmf_omics.get": "Reading results: `get`",
    "lmf_omics.pl": "Plotting: `pl`",
    "lmf_omics.datasets": "Datasets",
    "lmf_omics.nn": "Neural form: `nn` (needs torch)",
    "lmf_omics.r": "R entry point: `r` (through reticulate)",
    "lmf_omics.demo": "Demo job",
}
GUIDE_SKIP = ("Set-up",)  # on the front page instead


def public_names(module_name: str) -> list[str]:
    """``__all__`` of a module, without its submodules and dunders; else its own public functions and classes."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if getattr(v, "__module__", None) == module_name]
    return sorted(
        n for n in names if not n.startswith("_") and not isinstance(getattr(module, n), type(sys)) and not n.isupper()
    )


def write_api() -> None:
    lines = ["# API reference", "", "Every public function and class, by module.", ""]
    for module_name, title in API_SECTIONS.items():
        lines += [f"## {title}", "", "```{eval-rst}", f".. currentmodule:: {module_name}", "", ".. autosummary::"]
        lines += ["   :toctree: api", "", *[f"   {name}" for name in public_names(module_name)], "```", ""]
    _write(GENERATED / "api.md", "\n".join(lines))


def readme_sections() -> tuple[str, list[tuple[str, str]]]:
    """The README's text before its first ``## `` heading, and its ``(title, body)`` sections."""
    text = (ROOT / "README.md").read_text()
    head, *sections = re.split(r"\n(?=## )", text)
    return head, [(s.split("\n", 1)[0][3:].strip(), s.split("\n", 1)[1]) for s in sections]


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def rewrite_links(markdown: str) -> str:
    """Links to files of the repository: the tutorials' README becomes the tutorials page, others plain paths."""

    def replace(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+://|#", target):
            return match.group(0)
        if target.rstrip("/") in ("tutorials", "tutorials/README.md"):
            return f"[{text}](../tutorials/index.md)"
        return text if text.strip("`") == target else f"{text} (`{target}` in the repository)"

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", replace, markdown)


def write_guide() -> list[str]:
    head, sections = readme_sections()
    pages = []
    for title, body in sections:
        if title.startswith(GUIDE_SKIP):
            continue
        body = re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) - 1) + " ", body, flags=re.MULTILINE)
        _write(GENERATED / "guide" / f"{slug(title)}.md", f"# {title}\n{rewrite_links(body)}")
        pages.append(slug(title))
    toc = "\n".join(pages)
    _write(
        GENERATED / "guide" / "index.md",
        f"# User guide\n\nThe README's guide, one page per section.\n\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n",
    )
    return pages


def write_index() -> None:
    head, sections = readme_sections()
    setup = next(body for title, body in sections if title.startswith("Set-up"))
    title, intro = head.split("\n", 1)
    toc = "```{toctree}\n:maxdepth: 2\n:hidden:\n\nguide/index\ntutorials/index\napi\nchangelog\n```"
    _write(GENERATED / "index.md", f"{title}\n{rewrite_links(intro)}\n## Set-up\n{rewrite_links(setup)}\n{toc}\n")
    _write(GENERATED / "changelog.md", "```{include} ../../CHANGELOG.md\n```\n")


def tutorial_scripts() -> list[Path]:
    return sorted((ROOT / "tutorials").glob("*.py"))


def sources_hash(script: Path) -> str:
    digest = hashlib.sha256(script.read_bytes())
    for path in sorted((ROOT / "lmf_omics").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".R"):
            digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def write_tutorials(logger) -> None:
    cache = Path(os.environ.get("LMF_DOCS_CACHE") or Path.home() / ".cache" / "lmf_omics" / "docs")
    target = GENERATED / "tutorials"
    target.mkdir(parents=True, exist_ok=True)
    rows = []
    for script in tutorial_scripts():
        folder = cache / script.stem / sources_hash(script)
        if not (folder / f"{script.stem}.md").is_file():
            logger.info(f"running tutorial {script.name} for the docs")
            scratch = folder.with_name(folder.name + ".partial")
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            command = [sys.executable, str(DOCS / "_ext" / "run_tutorial.py"), str(script), str(scratch)]
            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": path})
            shutil.rmtree(folder, ignore_errors=True)
            scratch.rename(folder)
        shutil.copy2(folder / f"{script.stem}.md", target / f"{script.stem}.md")
        shutil.rmtree(target / script.stem, ignore_errors=True)
        shutil.copytree(folder / script.stem, target / script.stem)
        rows.append(script.stem)
    intro = rewrite_links((ROOT / "tutorials" / "README.md").read_text().split("\n", 1)[1])
    toc = "\n".join([*rows, "r_singlecellexperiment"])
    _write(target / "index.md", f"# Tutorials\n{intro}\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n")
    r_script = ROOT / "tutorials" / "r_singlecellexperiment.R"
    _write(
        target / "r_singlecellexperiment.md",
        "# R: a SingleCellExperiment through reticulate\n\n"
        "Not run for these pages (it needs R); `tests/r` runs the same functions from real R.\n\n"
        f"```{{literalinclude}} ../../../tutorials/{r_script.name}\n:language: r\n```\n",
    )


def _write(path: Path, text: str) -> None:
    """Write only when changed, so Sphinx does not rebuild unchanged pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def generate(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    write_index()
    write_guide()
    write_api()
    write_tutorials(logger)


def setup(app):
    app.connect("builder-inited", generate, priority=100)  # before autosummary reads the generated pages
    return {"parallel_read_safe": True}
