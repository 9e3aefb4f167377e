"""``python -m harness`` does what the ``harness`` console script does."""

from harness.cli import main

if __name__ == "__main__":
    main()
