"""Physics without a network: kinematics, the analytic neutrino solution, and event generators.

* :mod:`spanet_lite.physics.kinematics` - four-vectors, eta/phi/mass conversions, delta R,
  boosts, two-body decays, Breit-Wigner sampling (pure numpy functions).
* :mod:`spanet_lite.physics.neutrino` - the W-mass-constrained neutrino pz (both roots, a choice
  rule, the closed-form fix for a negative discriminant), numpy or torch.
* :mod:`spanet_lite.physics.generator` - the fast vectorised generator behind ``spanet-generate``.
* :mod:`spanet_lite.physics.pythia` - the optional Pythia 8 backend (``--backend pythia``).
"""
