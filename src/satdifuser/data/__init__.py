"""satdifuser.data."""
