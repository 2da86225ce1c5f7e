"""Real drivers against emulated devices (``hal: {backend: emulated}``)."""
