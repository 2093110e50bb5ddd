"""SIMULATOR: acewatchd's stand-in for the ACE-Step package (preprocessing only).

This is a test double installed by ``acewatchd.simulator.stub_acestep.install``. It is not
ACE-Step and produces no usable tensors.
"""

SIMULATOR = True
