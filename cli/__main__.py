"""``python -m rfm_fast_cli``."""

from rfm_fast_cli.main import main

main()
