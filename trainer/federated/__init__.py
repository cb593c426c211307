"""Federated random forests: agents that FIT, SHARE and GET ranked trees over the log.

N agents (banks, branches, devices) each hold private rows; none moves a row. Each grows
regression trees on its own data and exchanges **trees**, every tree a signed one-tree
container whose store key is anchored in the verifiable log, so an auditor can later prove
which tree came from whom and that nothing was injected. ``docs/FEDERATED.md`` is the design.

Modules, one concern each:

* :mod:`trainer.federated.trees`     -- the tree value (id, IR tree in raw units), fitting on
  standardised features with the scaler folded exactly into the thresholds, numpy evaluation,
  the tree digest;
* :mod:`trainer.federated.kernel`    -- the positive-definite tree kernel (Collins-Duffy
  common-subtree count weighted by a linear kernel on split thresholds) and Gram matrices;
* :mod:`trainer.federated.ranking`   -- GET_TOP rankings: P-greedy on the kernel, bootstrapped
  linear regression (supervised), none (most recent first);
* :mod:`trainer.federated.containers` -- one-tree signed containers and the agents' final
  containers (every tree's origin in META);
* :mod:`trainer.federated.logbook`   -- the federation's records in the log (process, fit,
  share, status) and an agent's incremental index of them;
* :mod:`trainer.federated.registry`  -- registry slots (one bounded, overwritten slot per
  directed edge) and GET's acceptance rules;
* :mod:`trainer.federated.agent`     -- one agent: FIT, SHARE, GET, CROP, its final model;
* :mod:`trainer.federated.schedules` -- topologies and the ``sync`` schedule;
* :mod:`trainer.federated.simulation` -- a whole federation on one machine (the Python API
  behind ``pyastore-train federated``);
* :mod:`trainer.federated.worker`    -- one agent as its own OS process (``federated-agent``)
  and the ``async`` schedule made of such processes;
* :mod:`trainer.federated.experiment` -- data partition, metrics, seeds, plots and the report;
* :mod:`trainer.federated.cli`       -- ``pyastore-train federated`` and ``federated-agent``.
"""
