"""Write docs/bad_inputs.md: the bad-input catalogue of tests/test_bad_inputs.py, with messages.

Runs every case of the catalogue through the ``vaekit`` command (in-process, each from a fresh
folder holding its bad input), checks the house rule on the way (exit code 2, one ``error:``
line) and writes the table input -> command -> message. The messages are the real ones, never
written by hand; ``tests/test_bad_inputs.py::test_docs_table_is_current`` fails when they drift.

    python docs/make_bad_inputs.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_bad_inputs import (  # the tests folder is not a package: imported by path
    CASES,
    DOC,
    check_cli_result,
    invoke_in,
    make_runs,
    prepare,
    render_table,
)


def main() -> None:
    messages = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = make_runs(Path(tmp) / "runs")
        for case in CASES:
            folder = Path(tmp) / "cases" / case.id
            folder.mkdir(parents=True)
            prepare(case, folder, runs)
            code, stderr = invoke_in(folder, case)
            messages[case.id] = check_cli_result(case, code, stderr)
    DOC.write_text(render_table(messages))
    print(f"wrote {len(messages)} cases to {DOC}")


if __name__ == "__main__":
    main()
