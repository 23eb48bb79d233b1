"""`python -m streamcalc.cli`: the command line, as the `streamcalc` script runs it."""

from streamcalc.cli import app

app()
