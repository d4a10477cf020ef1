"""satdifuser.heads."""
