"""``python -m neuralfuse.cli``: the ``neuralfuse`` command."""
from neuralfuse.cli import main

main(prog_name="neuralfuse")
