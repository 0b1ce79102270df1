"""The chaosml benchmark suite: ``python -m benchmarks [--quick] [--only SECTION]``; the code lives in chaosml.bench."""
