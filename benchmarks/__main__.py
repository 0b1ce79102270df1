"""``python -m benchmarks``: run the benchmark suite (same as ``chaosml bench``); see benchmarks/README.md."""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main())
