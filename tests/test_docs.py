"""The documentation's facts are the code's: the generated reference and README's task table are what the code
prints now, README stays a five-minute read, and every page it links exists."""

import os
import re

from pipelines import reference
from tests.conftest import ROOT


def read(*path: str) -> str:
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def test_the_reference_is_what_the_code_says_now():
    assert read("docs", "reference.md") == reference.reference(), "run `make docs`"


def test_readmes_task_table_is_what_the_code_says_now():
    readme = read("README.md")
    assert reference.with_task_table(readme) == readme, "run `make docs`"


def test_the_readme_is_short_and_every_page_it_links_exists():
    readme = read("README.md")
    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and all(os.path.exists(os.path.join(ROOT, link)) for link in links)
    for page in os.listdir(os.path.join(ROOT, "docs")):
        if page.endswith(".md"):
            assert f"docs/{page}" in readme, f"README does not lead to docs/{page}"
