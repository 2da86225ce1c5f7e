"""Hardware-in-the-loop tooling: the bench CSMS, the bench runner (``python -m hil``), the demo."""
