"""``python -m satdifuser`` runs the CLI."""

import sys

from satdifuser.cli.main import main

sys.exit(main())
