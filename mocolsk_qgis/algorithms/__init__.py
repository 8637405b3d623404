"""Processing algorithms of the MoCoLSK provider."""
