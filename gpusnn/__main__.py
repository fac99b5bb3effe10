import sys

from gpusnn.cli import main

if __name__ == "__main__":  # not when a worker (e.g. of mpi4py.futures) imports the main module
    sys.exit(main())
