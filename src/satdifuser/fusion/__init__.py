"""satdifuser.fusion."""
