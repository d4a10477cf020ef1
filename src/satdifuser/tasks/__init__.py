"""satdifuser.tasks."""
