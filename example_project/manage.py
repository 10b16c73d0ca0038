#!/usr/bin/env python
"""The example project's manage.py; run it from the repository root:
``python example_project/manage.py COMMAND``."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    # From a checkout: an installed omniman wins, else the one next to this folder.
    sys.path.append(str(here.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
