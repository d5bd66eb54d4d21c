"""Run unittest test modules and write each test's outcome as JSON.

Written by Ouroboros next to its scratch copy of a repository and run there:
    python unittest_shim.py OUT.json MODULE [MODULE ...]
The working directory (the copy's root) comes first on sys.path, so the project's own modules
are imported, not installed ones of the same name. A module that cannot be imported is one
failing test named after it.
"""

import json
import os
import sys
import traceback
import unittest


class Outcomes(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.rows = []

    def _add(self, test, outcome, message=""):
        self.rows.append({"id": test.id(), "outcome": outcome, "message": message})

    def addSuccess(self, test):
        self._add(test, "passed")

    def addFailure(self, test, err):
        self._add(test, "failed", _last_lines(err))

    def addError(self, test, err):
        self._add(test, "failed", _last_lines(err))

    def addSkip(self, test, reason):
        self._add(test, "skipped", reason)

    def addExpectedFailure(self, test, err):
        self._add(test, "passed")

    def addUnexpectedSuccess(self, test):
        self._add(test, "failed", "unexpected success")

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._add(subtest, "failed", _last_lines(err))


def _last_lines(err):
    text = "".join(traceback.format_exception(*err)).strip()
    return "\n".join(text.splitlines()[-6:])


def main():
    out, modules = sys.argv[1], sys.argv[2:]
    sys.path.insert(0, os.getcwd())
    result = Outcomes()
    loader = unittest.TestLoader()
    for name in modules:
        try:
            suite = loader.loadTestsFromName(name)
        except Exception:
            result.rows.append(
                {"id": name, "outcome": "failed", "message": _last_lines(sys.exc_info())}
            )
            continue
        suite.run(result)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result.rows, f)


if __name__ == "__main__":
    main()
