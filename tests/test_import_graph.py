"""The import graph of `samapp` (every import, module-level or inside a function, as grimp reads
them from the source) has no cycle: dependencies point one way, api → services → models/ml."""

from graphlib import CycleError, TopologicalSorter

import grimp


def test_samapp_imports_form_no_cycle() -> None:
    graph = grimp.build_graph("samapp")
    edges = {
        module: graph.find_modules_directly_imported_by(module) - {module}
        for module in graph.modules
    }
    assert len(edges) > 50  # the whole app was read
    try:
        TopologicalSorter(edges).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' → '.join(exc.args[1])}") from None
