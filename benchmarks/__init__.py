"""Benchmarks of rbmvae: speed against the hardware's floor and against what users would pick.

``python benchmarks/run.py`` (or ``make bench``) runs them and writes ``benchmarks/RESULTS.md``.
The modules, each importing only those above it:

- ``settings``: the sizes of every workload (``Settings``) and the shared constants;
- ``costs``: the cost model, the matrix products and random draws each workload needs, and the
  floor they set;
- ``harness``: timing, the ``Worker`` a workload runs in, one subprocess per workload, waiting
  for quiet CPUs and running a disturbed workload again;
- ``workloads_compared``: scikit-learn's BernoulliRBM, a plain PyTorch VAE loop and the
  equal-wall-time comparison;
- ``workloads``: rbmvae's own workloads, the registry of all of them and the plan of a run;
- ``targets`` and ``render``: the targets met or missed, RESULTS.md and the terminal table;
- ``run``: the command line and ``run_all``.
"""
