import sys

from benchmarks._cli import main

sys.exit(main())
