"""``python -m benchmarks``: run the benchmark suite (same as ``chaosml bench``); see benchmarks/README.md."""

import sys

from chaosml.bench import main

if __name__ == "__main__":
    sys.exit(main())
