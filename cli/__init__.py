"""The `rfm` command line (installed as the `rfm_fast_cli` package)."""
