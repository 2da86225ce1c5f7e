"""Hardware abstraction layer: interfaces, backend registry, simulated plant."""
