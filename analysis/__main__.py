"""``python -m analysis plot|compare RUN_DIR ...``: see analysis.cli."""
import sys

from analysis.cli import main

sys.exit(main())
