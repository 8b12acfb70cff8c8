"""connectome-bpu: a frozen connectome as a recurrent core, benchmarked against matched controls.

All logic lives in this package so that it can be unit-tested without Snakemake; the workflow's
rules only unpack paths and parameters and call one function here.
"""

__version__ = "0.1.0"
