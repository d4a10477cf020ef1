"""satdifuser.viz."""
