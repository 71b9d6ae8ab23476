"""The Oracle destination (python-oracledb). See the Oracle section of the README.

``open_destination`` is what ``load.destination.open_destination`` calls for
``oracle://`` URLs. Modules here import ``oracledb`` only inside functions,
so importing this package (for ``plan --offline``, or the golden tests)
never loads the driver.
"""

from __future__ import annotations

from ...logs import Log
from ..destination import Destination, DestinationSpec
from ..options import DestinationOptions


def open_destination(spec: DestinationSpec, options: DestinationOptions, log: Log | None) -> Destination:
    from .destination import open_destination as _open

    return _open(spec, options, log)
