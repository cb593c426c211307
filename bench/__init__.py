"""Benchmarks: the side-by-side comparison of pyastore with the runtimes users would
otherwise pick (``python -m bench``; see ``bench.harness``), the pytest-benchmark suites
(``pytest bench/ --benchmark-only``), the C drivers (``bench/c/``) and the log benchmark
(``bench/bench_chain.py``). Results and their analysis: ``docs/PERFORMANCE.md``.
"""
