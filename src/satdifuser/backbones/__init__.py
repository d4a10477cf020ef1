"""satdifuser.backbones."""
