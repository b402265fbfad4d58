# -*- coding: utf-8 -*-
"""Resolves Autobahn case patterns exactly as wstest does (helper of run.py).

Python 2.7 only: run.py runs it with the interpreter of the testsuite's venv
(see scripts/autobahn-install.sh), so the selection always matches wstest's own.

usage: python list_cases.py '<json: {"cases": [...], "exclude-cases": [...]}>'
prints JSON: {"cases": [selected ids, wstest order], "all": [every case id],
              "unknown": [patterns without '*' that are no case id],
              "categories": {section: name}, "descriptions": {id: text},
              "versions": {"autobahntestsuite": .., "autobahn": .., "python": ..}}
"""
import json
import sys

import autobahn
import autobahntestsuite
from autobahntestsuite.case import (Cases, CaseSetname, CaseBasename,
                                    CaseCategories, CaseSubCategories)
from autobahntestsuite.caseset import CaseSet


def main():
    spec = json.loads(sys.argv[1])
    cs = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
    pats = list(spec.get("cases", [])) + list(spec.get("exclude-cases", []))
    unknown = [p for p in pats if "*" not in p and p not in cs.CasesIndices]
    ids = [] if unknown else cs.parseSpecCases(spec)
    every = cs.parseSpecCases({"cases": ["*"]})
    out = {
        "cases": ids,
        "all": every,
        "unknown": unknown,
        "categories": CaseCategories,
        "descriptions": dict((i, cs.caseClassToPrettyDescription(cs.CasesById[i])) for i in every),
        "versions": {"autobahntestsuite": autobahntestsuite.version,
                     "autobahn": autobahn.version,
                     "python": sys.version.split()[0]},
    }
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
