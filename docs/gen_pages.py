"""mkdocs-gen-files script: writes the generated reference pages (see reference_gen.py) into the build."""

import sys
from pathlib import Path

import mkdocs_gen_files

DOCS = Path(__file__).resolve().parent
for path in (DOCS, DOCS.parent / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import reference_gen  # noqa: E402

pages = {"reference/cli.md": reference_gen.cli_markdown(), "reference/settings.md": reference_gen.config_markdown()}
pages.update(reference_gen.api_pages())
for name, text in pages.items():
    with mkdocs_gen_files.open(name, "w") as fh:
        fh.write(text)
    mkdocs_gen_files.set_edit_path(name, "reference_gen.py")
