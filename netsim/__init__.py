"""netsim: the wireless cell, the devices and the edge server as a SimPy discrete-event world.

Pure numpy physics (path loss, fading, OFDMA rates, compute and energy models), mobility,
the allocation of tokens, bandwidth and power, and the SimPy processes that time each phase
of a split-learning round. Never imports torch or :mod:`learning`.
"""
