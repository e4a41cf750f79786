"""Instructions per request from the dumps of `bench/inprocess.py --callgrind`.

Usage: .venv/bin/python bench/callgrind_totals.py callgrind.out.PID
(the dumps are callgrind.out.PID.1, .2, …; each holds the counts since the one before)."""

import re
import sys
from pathlib import Path


def totals(base: str) -> dict[str, int]:
    """{dump label: instructions since the dump before}."""
    found = {}
    for path in Path(base).parent.glob(Path(base).name + ".*"):
        text = path.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: dump (\S+)$", text, re.M)
        if trigger:
            found[trigger.group(1)] = int(re.search(r"^summary: (\d+)", text, re.M).group(1))
    return found


def main() -> None:
    found = totals(sys.argv[1])
    per_request = {
        page: (found[f"{page}-30"] - found[f"{page}-10"]) / 20 for page in ("portal", "minimal")
    }
    for page, count in per_request.items():
        print(f"{page}: {count / 1e6:.2f} M instructions per request")
    print(f"minimal / portal: {per_request['minimal'] / per_request['portal']:.1%}")


if __name__ == "__main__":
    main()
