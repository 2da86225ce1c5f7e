"""Emulators: the far side of real drivers' wires, backed by the simulated ``World``.

An emulator lets a hardware driver (GPIO, serial, CAN, Modbus) run unchanged
against the simulated plant: it reads what the driver puts on the wire, moves
the ``hal.sim.world.World`` accordingly and answers with what the world's
physics say the hardware would report.
"""
