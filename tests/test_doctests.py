"""Run the examples in the public modules' docstrings."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["shadho", "shadho.spaces", "shadho.domains", "shadho.search_space", "shadho.spec_split", "shadho.store", "shadho.store_json", "shadho.trial",
           "shadho.compute", "shadho.errors", "shadho.deprecation", "shadho.history", "shadho.samplers.base", "shadho.managers.local",
           "shadho.heuristics.scheduler", "shadho.driver", "shadho.progress",
           "shadho.batch", "shadho.batch.base", "shadho.batch.worker_spec", "shadho.batch.slurm", "shadho.batch.htcondor",
           "shadho.batch.local", "shadho.batch.pool", "shadho.cli", "shadho.status", "shadho.report",
           "shadho.progress_rich", "shadho_launch_worker", "shadho.heuristics",
           "shadho.heuristics.complexity", "shadho.heuristics.uncertainty", "shadho.heuristics.assignment",
           "shadho.heuristics.strength", "shadho.sim", "shadho.samplers.tpe", "shadho.samplers.categories", "shadho.samplers.gp",
           "shadho.samplers.random", "shadho.managers.workqueue", "shadho.demo", "shadho.lease",
           "shadho.store_integrity", "shadho.store_schema", "shadho.resume", "shadho.spec_checks",
           "shadho.managers.task_shell", "shadho.managers.base", "shadho.managers.outcome",
           "shadho.managers.wq_results", "shadho.managers.wq_pool", "shadho.managers.tmpdirs",
           "shadho.managers.local_workers", "shadho.managers.packaging", "shadho.managers.wq_setup"]
MODULES += ["shadho.export", "shadho.report_data", "shadho.report_plots", "shadho.report_params",
            "shadho.report_routing", "shadho.report_html", "shadho.report_failures", "shadho.serve",
            "shadho.status_rich", "shadho.store_reads", "shadho.snapshot", "shadho.formatting",
            "shadho.cli_args", "shadho.cli_read"]
MODULES += ["shadho.sim_work", "shadho.plan_sim", "shadho.plan_inflight", "shadho.planner", "shadho.plan_model"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
