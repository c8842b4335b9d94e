"""Using a trained run: metrics, spanet-test / -predict / -export and the Python API.

Decoding and assignment purities come from :mod:`spanet_lite.assignment` (shared with training).

* :mod:`~spanet_lite.evaluation.metrics`: regression, classification and detection metrics
  (pure functions);
* :mod:`~spanet_lite.evaluation.run`: ``load_run(run_dir) -> Run`` with ``.predict`` and ``.evaluate``;
* :mod:`~spanet_lite.evaluation.evaluate`, :mod:`~spanet_lite.evaluation.report`,
  :mod:`~spanet_lite.evaluation.plots`: what ``spanet-test`` computes, prints and draws;
* :mod:`~spanet_lite.evaluation.predict`: ``spanet-predict``'s output file;
* :mod:`~spanet_lite.evaluation.export`: ``spanet-export``'s ONNX graph;
* :mod:`~spanet_lite.evaluation.baseline`: the analytic neutrino baseline;
* :mod:`~spanet_lite.evaluation.overlap`: is the test file the run's training file?;
* :mod:`~spanet_lite.evaluation.units`: physical units of regression targets, where known.

Nothing here is imported by ``import spanet_lite`` (the CLI stays fast).
"""
