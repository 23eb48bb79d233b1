"""Commands that run in this process on the backends of a data dir (or the ones their flags name):
`run`, `serve`, `log`, `accounts`."""
