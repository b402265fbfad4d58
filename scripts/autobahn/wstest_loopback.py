# -*- coding: utf-8 -*-
"""Runs `wstest` (Autobahn|Testsuite) with its listening sockets bound to 127.0.0.1.

Helper of run.py; Python 2.7 only (run with the testsuite venv's interpreter).
Stock wstest binds its fuzzingserver (and its web UI) to all interfaces; this
wrapper changes only the bind address, nothing in the test cases.

usage: python wstest_loopback.py <wstest arguments>
"""
import sys

from autobahntestsuite import fuzzing  # the package __init__ installs the reactor first

_listenWS = fuzzing.listenWS


def _listenWS_loopback(factory, contextFactory=None, backlog=50, interface="127.0.0.1"):
    return _listenWS(factory, contextFactory, backlog, interface or "127.0.0.1")


fuzzing.listenWS = _listenWS_loopback

from autobahntestsuite.wstest import run  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "wstest"
    run()
