"""A pytest plugin for tests/test_oracle_setup.py: what a collection selected, as JSON.

    MARKERKIT_OUT=items.json PYTHONPATH=tests pytest --collect-only -p markerkit [-m EXPR]

writes one object per selected test: its node id, module file name, the
``dest`` fixture's parameter (None when the test does not load into a
destination) and whether it carries the ``oracle`` marker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    items = []
    for item in session.items:  # after -m deselection
        callspec = getattr(item, "callspec", None)
        items.append({
            "nodeid": item.nodeid,
            "module": item.path.name,
            "dest": callspec.params.get("dest") if callspec else None,
            "oracle": item.get_closest_marker("oracle") is not None,
        })
    Path(os.environ["MARKERKIT_OUT"]).write_text(json.dumps(items))
