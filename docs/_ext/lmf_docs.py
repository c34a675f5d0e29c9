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
import posixpath
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
    "lmf_omics.cli": "Command line: `cli`",
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
    """``generated/api.md``; the stubs under ``generated/api/`` are autosummary's (``autosummary_generate``)."""
    lines = ["# API reference", "", "Every public function and class, by module.", ""]
    stubs = set()
    for module_name, title in API_SECTIONS.items():
        names = public_names(module_name)
        lines += [f"## {title}", "", "```{eval-rst}", f".. currentmodule:: {module_name}", "", ".. autosummary::"]
        lines += ["   :toctree: api", "", *[f"   {name}" for name in names], "```", ""]
        stubs.update(f"{module_name}.{name}.rst" for name in names)
    _write(GENERATED / "api.md", "\n".join(lines))
    _prune(GENERATED / "api", stubs)  # a name no longer public: its stub would be a page outside every toctree


def readme_sections() -> tuple[str, list[tuple[str, str]]]:
    """The README's text before its first ``## `` heading, and its ``(title, body)`` sections."""
    text = (ROOT / "README.md").read_text()
    head, *sections = re.split(r"\n(?=## )", text)
    return head, [(s.split("\n", 1)[0][3:].strip(), s.split("\n", 1)[1]) for s in sections]


def slug(title: str) -> str:
    """A guide page's file name."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def anchor(title: str) -> str:
    """A heading's anchor as GitHub (the README's links) and MyST (``myst_heading_anchors``) spell it."""
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", title.lower().replace(" ", "-"))


def section_page(title: str) -> str:
    """The page (relative to ``generated/``, no suffix) a README ``## `` section is on."""
    return "index" if title.startswith(GUIDE_SKIP) else f"guide/{slug(title)}"


def readme_anchors() -> dict[str, tuple[str, str | None]]:
    """Each README heading's anchor -> ``(page, anchor on that page)``; ``None`` for the page's own title.

    A ``## `` section is a page of its own (the front page for Set-up, which is ``## Set-up`` there); its
    ``### `` headings are one level up on that page, with the same text and so the same anchor.
    """
    anchors: dict[str, tuple[str, str | None]] = {}
    for title, body in readme_sections()[1]:
        page = section_page(title)
        anchors.setdefault(anchor(title), (page, "set-up" if page == "index" else None))
        for heading in re.findall(r"^#{3,} +(.+?) *$", body, flags=re.MULTILINE):
            anchors.setdefault(anchor(heading), (page, anchor(heading)))
    return anchors


def rewrite_links(markdown: str, page: str) -> str:
    """Links of the README written into ``page`` (relative to ``generated/``, no suffix) for the site.

    ``#anchor`` links to a README heading point to the page that heading is on; the tutorials' README becomes
    the tutorials page; links to other files of the repository become plain paths.
    """
    anchors = readme_anchors()
    here = posixpath.dirname(page)

    def relative(target_page: str) -> str:
        return posixpath.relpath(target_page, here or ".") + ".md"

    def replace(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if target.startswith("#") and target[1:] in anchors:
            target_page, on_page = anchors[target[1:]]
            if target_page == page:
                return f"[{text}](#{on_page})" if on_page else text
            return f"[{text}]({relative(target_page)}{f'#{on_page}' if on_page else ''})"
        if re.match(r"[a-z]+://|#", target):
            return match.group(0)  # a web link, or an anchor of no README heading (MyST reports it if broken)
        if target.rstrip("/") in ("tutorials", "tutorials/README.md"):
            return f"[{text}]({relative('tutorials/index')})"
        return text if text.strip("`") == target else f"{text} (`{target}` in the repository)"

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", replace, markdown)


def write_guide() -> list[str]:
    head, sections = readme_sections()
    pages = []
    for title, body in sections:
        if title.startswith(GUIDE_SKIP):
            continue
        body = re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) - 1) + " ", body, flags=re.MULTILINE)
        _write(GENERATED / f"{section_page(title)}.md", f"# {title}\n{rewrite_links(body, section_page(title))}")
        pages.append(slug(title))
    _prune(GENERATED / "guide", {f"{name}.md" for name in [*pages, "index"]})
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
    intro, setup = rewrite_links(intro, "index"), rewrite_links(setup, "index")
    _write(GENERATED / "index.md", f"{title}\n{intro}\n## Set-up\n{setup}\n{toc}\n")
    _write(GENERATED / "changelog.md", "```{include} ../../CHANGELOG.md\n```\n")


def tutorial_scripts() -> list[Path]:
    return sorted((ROOT / "tutorials").glob("*.py"))


def sources_hash(script: Path) -> str:
    """What a tutorial's page depends on: the script, the runner and the package's sources."""
    digest = hashlib.sha256(script.read_bytes())
    digest.update((DOCS / "_ext" / "run_tutorial.py").read_bytes())
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
            run_tutorial(script, folder)
        _copy(folder / f"{script.stem}.md", target / f"{script.stem}.md")
        figures = {path.name for path in (folder / script.stem).iterdir()}
        for name in figures:
            _copy(folder / script.stem / name, target / script.stem / name)
        _prune(target / script.stem, figures)
        rows.append(script.stem)
    intro = rewrite_links((ROOT / "tutorials" / "README.md").read_text().split("\n", 1)[1], "tutorials/index")
    toc = "\n".join([*rows, R_PAGE])
    _write(target / "index.md", f"# Tutorials\n{intro}\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n")
    _write(target / f"{R_PAGE}.md", r_vignette_page())
    _prune(target, {"index.md", f"{R_PAGE}.md", *(f"{row}.md" for row in rows), *rows})


def run_tutorial(script: Path, folder: Path) -> None:
    """Run ``script`` into ``folder`` (its page and figures), through a scratch folder of this process only.

    Builds of several checkouts may share the cache (the default is per user): a complete folder is only
    ever renamed into place, and the cache keeps the :data:`CACHE_VERSIONS` newest versions per tutorial.
    """
    scratch = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    command = [sys.executable, str(DOCS / "_ext" / "run_tutorial.py"), str(script), str(scratch)]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": path})
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete one (a build stopped while copying)
        scratch.rename(folder)
    except OSError:
        if not (folder / f"{script.stem}.md").is_file():  # else another build put the same version in place
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    done = [old for old in folder.parent.iterdir() if ".partial" not in old.name]
    for old in sorted(done, key=lambda old: old.stat().st_mtime, reverse=True)[CACHE_VERSIONS:]:
        shutil.rmtree(old, ignore_errors=True)


CACHE_VERSIONS = 3
R_PAGE = "r_singlecellexperiment"
R_VIGNETTE = ROOT / "lmf_omics" / "R" / "lmfomics" / "vignettes" / "lmfomics.Rmd"


def r_vignette_page() -> str:
    """The R package's vignette as a page: its prose and R chunks as code, not run (it needs R).

    knitr's metadata comment goes, chunks hidden from the reader (``include``/``echo = FALSE``) go, and
    `````{r label, options}`` fences become plain ``r`` code blocks (MyST would read them as directives).
    """
    text = re.sub(r"\A<!--.*?-->\s*", "", R_VIGNETTE.read_text(), flags=re.DOTALL)
    hidden = r"^```\{r[^}]*\b(?:include|echo) *= *FALSE\b[^}]*\}\n.*?^```\n\n?"
    text = re.sub(hidden, "", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"^```\{r\b[^}]*\}", "```r", text, flags=re.MULTILINE)
    title, body = text.split("\n", 1)
    where = R_VIGNETTE.relative_to(ROOT).as_posix()
    note = (
        f"The vignette of the R package `lmfomics` (`{where}` in the repository), not run for these pages "
        "(it needs R); `tests/r` builds and checks the package, vignette included, in real R.\n"
    )
    return f"{title}\n\n{note}{body}"


def _write(path: Path, text: str) -> None:
    """Write only when changed, so Sphinx does not rebuild unchanged pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _copy(source: Path, target: Path) -> None:
    """Copy only when changed (a new modification time would make Sphinx read the page again)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        shutil.copy2(source, target)


def _prune(folder: Path, keep: set[str]) -> None:
    """Remove what an earlier build generated in ``folder`` and this one did not (a page no toctree lists)."""
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def generate(app, config=None) -> None:
    """Write every generated page; at ``config-inited``, before Sphinx lists the sources and autosummary runs."""
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    write_index()
    write_guide()
    write_api()
    write_tutorials(logger)


def root_redirect(app, exception) -> None:
    """``index.html`` at the site's root, forwarding to the front page (``root_doc`` is ``generated/index``)."""
    if exception is None and app.builder.format == "html":
        front = app.builder.get_target_uri(app.config.root_doc)
        page = f'<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url={front}">'
        (Path(app.outdir) / "index.html").write_text(f'{page}<a href="{front}">lmf_omics documentation</a>\n')


def setup(app):
    # Sphinx lists the source files (``env.find_files``) after config-inited and before builder-inited, when
    # autosummary writes its stubs: pages written at builder-inited are missed by both on a fresh build.
    app.connect("config-inited", generate)
    app.connect("build-finished", root_redirect)
    return {"parallel_read_safe": True}
