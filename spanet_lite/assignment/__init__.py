"""From the network's assignment distributions to answers, and how right those answers are.

Training (validation purity) and evaluation (``spanet-test``, ``spanet-predict``, ONNX) share
these, so they sit below both layers:

* :mod:`~spanet_lite.assignment.numpy_decoder`: greedy and exact decoding in numpy alone (the
  file ``spanet-export --copy-decoder`` writes next to an ONNX model as ``onnx_decoder.py``);
* :mod:`~spanet_lite.assignment.decoding`: the same for torch tensors and an event spec;
* :mod:`~spanet_lite.assignment.torch_decoding`: greedy decoding on the tensors' own device,
  with no host round trip (validation steps on a GPU);
* :mod:`~spanet_lite.assignment.metrics`: symmetry-aware event purity, particle purity and
  efficiency, and their tables by jet multiplicity;
* :mod:`~spanet_lite.assignment.jets`: what counts as a jet in those tables (leptons excluded).
"""
