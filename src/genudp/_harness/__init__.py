"""The harness: the full-receiver scenario and its books (``scenario``), the comparison with
other runtimes' senders (``compare``), and the benchmark (``bench_runner``, ``bench_workers``).

Rule: like the command line, the harness uses only ``genudp``'s public API, so what it measures
is what a user gets. Its subprocesses run as ``python -m genudp._harness.<module> ...``.
"""
