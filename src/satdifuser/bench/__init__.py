"""satdifuser.bench."""
