"""The HTTP surface: a thin Quart-Trio app over the other rooms."""
