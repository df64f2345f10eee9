"""labkit: the code behind tests/lab/labctl (the clusterops.upgrade test lab).

Standard library (plus PyYAML for the inventory) only; run with the project's
.venv/bin/python. Tests import it to reach the lab (see docs/lab.md).
"""
