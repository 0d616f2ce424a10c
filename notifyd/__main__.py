"""`python -m notifyd`."""

from notifyd.cli import main

main()
