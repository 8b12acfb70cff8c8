"""Error types that carry enough context (file, column, value, expectation) to act on."""


class BPUInputError(ValueError):
    """Bad user input: an export file, a config value or a derived quantity that cannot be used.

    The message always names the offending file/column/key and what was expected, because the
    person reading it is usually looking at a Snakemake log far away from the code.
    """


class GraphError(RuntimeError):
    """A graph-level property makes the benchmark undefined (empty pool, no reachable output...)."""
