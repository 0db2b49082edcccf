"""``python -m rfm_fast_cli``."""

from rfm_fast_cli import main

main()
