"""satdifuser.features."""
