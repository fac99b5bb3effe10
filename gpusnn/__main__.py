import sys

from gpusnn.cli import main

sys.exit(main())
