"""Real drivers on a real board (``hal: {backend: hardware}``)."""
