"""satdifuser.interop."""
