"""Hardware-in-the-loop and end-to-end test tooling (bench CSMS)."""
