"""Write the README's recipe list (between its `<!-- recipes -->` markers) from src/ganforge/recipes/*.yaml.

    .venv/bin/python scripts/readme_recipes.py           # rewrite the block
    .venv/bin/python scripts/readme_recipes.py --check   # exit 1 if the README is out of date (tests/test_recipes.py)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ganforge.recipes import recipes

README = Path(__file__).resolve().parent.parent / "README.md"
ORDER = ("builtin:ring8", "builtin:grid25", "builtin:fashion-mnist", "builtin:digits")  # then the translation sets
PATTERN = re.compile(r"<!-- recipes: generated.*?<!-- /recipes -->", flags=re.S)


def block() -> str:
    rows = sorted((r for r in recipes() if r.data.startswith("builtin:")),
                  key=lambda r: (ORDER.index(r.data) if r.data in ORDER else len(ORDER), r.data, r.priority, r.name))
    lines = ["<!-- recipes: generated from src/ganforge/recipes/*.yaml by scripts/readme_recipes.py -->", "```"]
    lines += [r.command for r in rows]
    lines += ["```", "", "| recipe | budget (2 CPU cores) | figure | measured |", "|---|---|---|---|"]
    lines += [f"| `{r.tag}` | {r.budget} | {r.figure} | {r.measured or 'not measured yet'} |" for r in rows]
    return "\n".join(lines + ["<!-- /recipes -->"])


def main() -> int:
    text = README.read_text()
    if not PATTERN.search(text):
        print("README.md has no <!-- recipes: generated ... --> block", file=sys.stderr)
        return 1
    new = PATTERN.sub(lambda m: block(), text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print("README.md's recipe list is out of date: run scripts/readme_recipes.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
